//! Review decisions.

use serde::{Deserialize, Serialize};

use crate::states::VersionState;

/// What a reviewer decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Approved: the version enters the index.
    Approve,
    /// Rejected.
    Reject,
}

impl Decision {
    /// The decision's name (also the event it is logged as).
    pub const fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Reject => "reject",
        }
    }
}

/// An approval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Approval {
    /// What the reviewer vouches for (for example `safe-to-run`).
    #[serde(default)]
    pub criteria: Option<String>,
    /// The reviewer's own signed review statement (a Sigstore bundle), kept with the decision.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub bundle: Option<serde_json::Value>,
}

/// A rejection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rejection {
    /// Why (shown to the author).
    pub reason: String,
}

/// The answer to a decision: the version's state now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Decided {
    /// The state the decision moved the version to.
    pub state: VersionState,
}
