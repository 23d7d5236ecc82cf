//! The error bodies of kiln's services.
//!
//! The registry answers Cargo's form, `{"errors":[{"detail":"…"}]}`, so that Cargo shows the
//! detail; the executor answers `{"error": CODE, "message": "…"}` with a stable code. Both
//! answer an internal failure with a bare message and the request's id, which names the log
//! line that has the detail.

use serde::{Deserialize, Serialize};

/// One error in Cargo's form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// What went wrong, for people.
    pub detail: String,
}

/// The registry's error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RegistryErrorBody {
    /// The errors (kiln sends one).
    pub errors: Vec<ErrorDetail>,
}

impl RegistryErrorBody {
    /// A body with one error.
    pub fn new(detail: impl Into<String>) -> Self {
        Self {
            errors: vec![ErrorDetail {
                detail: detail.into(),
            }],
        }
    }

    /// The first error's detail.
    pub fn detail(&self) -> Option<&str> {
        self.errors.first().map(|e| e.detail.as_str())
    }
}

/// The executor's error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExecutorErrorBody {
    /// A stable code (`invalid-notebook`, `busy`, `unauthorized`, `internal`, …).
    pub error: String,
    /// What went wrong, for people.
    pub message: String,
    /// The request's id, for an internal error: the server's log names it with the detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}
