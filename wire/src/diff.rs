//! A submission's source diff against an earlier approved version, as reviewers read it
//! (`GET /api/kiln/v1/submissions/{name}/{version}/diff`).

use serde::{Deserialize, Serialize};

/// The diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SourceDiff {
    /// The crate.
    #[serde(rename = "crate")]
    pub krate: String,
    /// The version reviewed.
    pub version: String,
    /// The version it is compared with; `None` for a first version (every file is new).
    pub against: Option<String>,
    /// What a reviewer should look at first: new dependencies, new imports, a new or changed
    /// build script, added `unsafe`.
    pub notes: Vec<String>,
    /// Each file that differs, in path order.
    pub files: Vec<FileDiff>,
}

/// One file's change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FileDiff {
    /// Its path in the `.crate`.
    pub path: String,
    /// `added`, `removed` or `changed`.
    pub change: String,
    /// The unified diff (`a/PATH`, `b/PATH`).
    pub unified: String,
}
