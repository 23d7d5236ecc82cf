//! The kernel catalogue: every approved kernel version, what it imports and exports, its entry
//! points, and who built, audited and reviewed it (`GET /api/kiln/v1/catalogue`). Notebook
//! editors pick kernels from it; `kiln notebook lock` pins from it.

use serde::{Deserialize, Serialize};

use crate::submissions::{ArtifactInfo, KernelBuild, ReviewRecord};

/// One approved kernel version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CatalogueEntry {
    /// The crate.
    #[serde(rename = "crate")]
    pub krate: String,
    /// The version.
    pub version: String,
    /// Who published it.
    pub published_by: String,
    /// When it was published (Unix milliseconds).
    pub published_at: i64,
    /// Its module: digests, imports, exports, entry points and their media types.
    pub kernel: KernelBuild,
    /// The audit the builder signed: its date, verdict and the advisories it matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditSummary>,
    /// The review decisions, oldest first.
    pub reviews: Vec<ReviewRecord>,
    /// The signed statements about it (provenance by the builder, audit, review), each with the
    /// key that signed it and when it was recorded.
    pub statements: Vec<SignedStatement>,
    /// Why it is revoked, when it is: executors refuse it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<String>,
}

/// A signed statement about a kernel version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SignedStatement {
    /// The stored bundle.
    #[serde(flatten)]
    pub artifact: ArtifactInfo,
    /// The id of the key that signed it (the bundle's key hint).
    pub signed_by: Option<String>,
}

/// What a signed audit said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditSummary {
    /// The audit's date (YYYY-MM-DD).
    pub date: String,
    /// `pass`, `needs-review` or `deny`.
    pub verdict: String,
    /// The advisory database's revision.
    pub advisory_db: String,
    /// The advisories that matched a crate of its closure (`RUSTSEC-…: title`).
    pub advisories: Vec<String>,
    /// Advisories found by re-audits after its approval.
    pub later_advisories: usize,
}
