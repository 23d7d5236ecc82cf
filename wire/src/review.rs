//! Review decisions.

use serde::{Deserialize, Serialize};

use crate::FeatureSet;
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

/// A request to extend the features a version's review covers (`POST …/curate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CurateRequest {
    /// The features to cover besides those covered already (`default` for the default ones).
    pub features: FeatureSet,
}

/// The answer to a [`CurateRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Curation {
    /// `NAME@VERSION`.
    pub subject: String,
    /// The features the version's review round covers now.
    pub features: FeatureSet,
    /// Whether a new round started (false: the features were covered already).
    pub started: bool,
    /// The version's state now.
    pub state: VersionState,
}

/// Where a closure's member stands against what is approved already.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Standing {
    /// Approved for every feature the closure turns on in it.
    Approved,
    /// Approved, but not for every feature the closure turns on in it.
    NewFeatures,
    /// Not approved yet.
    New,
}

impl Standing {
    /// The standing as text.
    pub const fn as_str(self) -> &'static str {
        match self {
            Standing::Approved => "approved",
            Standing::NewFeatures => "new features",
            Standing::New => "new",
        }
    }
}

/// One package of a version's closure, as a reviewer reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClosureEntry {
    /// The crate.
    #[serde(rename = "crate")]
    pub krate: String,
    /// The version.
    pub version: String,
    /// The features the closure's resolution turns on in it.
    pub features: FeatureSet,
    /// Its state here (`None`: not here, which a finished audit does not leave).
    pub state: Option<VersionState>,
    /// Why it is in that state, when there is a reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_reason: Option<String>,
    /// The verdict of its own latest audit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub verdict: Option<crate::Verdict>,
    /// The findings about it in the closure's audit.
    #[schema(value_type = Vec<Object>)]
    pub findings: Vec<crate::Finding>,
    /// Its licence expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// Whether it has a build script.
    pub build_script: bool,
    /// Whether it is a procedural macro.
    pub proc_macro: bool,
    /// The advisories that match it (`RUSTSEC-…`), whatever the policy did with them.
    pub advisories: Vec<String>,
    /// The features approved for it so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_features: Option<FeatureSet>,
    /// Against what is approved already.
    pub standing: Standing,
}

/// A version's closure: every package a dependent's build of it resolves, the version itself
/// included, dependencies first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClosureReview {
    /// `NAME@VERSION`.
    pub root: String,
    /// The members, dependencies before their dependents.
    pub members: Vec<ClosureEntry>,
}

/// The answer to a closure approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClosureApproved {
    /// The versions approved now (`NAME@VERSION`), in the order they were approved.
    pub approved: Vec<String>,
    /// The members that were approved for their features already.
    pub present: Vec<String>,
}
