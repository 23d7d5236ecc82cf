//! What admins ask the registry: revocations, imports, advisory database syncs, sweeps.

use kiln_policy::Digest;
use serde::{Deserialize, Serialize};

use crate::features::FeatureSet;

/// A revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RevokeRequest {
    /// `NAME@VERSION` (its `.crate` and every artifact built from it) or a digest (`sha256:…`).
    pub target: String,
    /// Why, for the record and for the executors' refusals.
    pub reason: String,
}

/// What a revocation revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Revoked {
    /// The digests now revoked.
    #[schema(value_type = Vec<String>)]
    pub revoked: Vec<Digest>,
}

/// A closure import: a crate, with what a dependent's build would pull in with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImportRequest {
    /// The crate.
    #[serde(rename = "crate")]
    pub krate: String,
    /// A version (`1.0.145`: exactly it) or a requirement (`1`, `^1.2`: the newest upstream
    /// version matching it).
    pub req: String,
    /// Features a dependent turns on, besides the default ones.
    #[serde(default)]
    pub features: Vec<String>,
    /// Whether the dependent keeps the default features on.
    #[serde(default = "yes")]
    pub default_features: bool,
    /// Resolve and list the closure; import nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// The upstream sparse index (default: crates.io's).
    #[serde(default)]
    pub upstream: Option<String>,
}

fn yes() -> bool {
    true
}

/// What became of a member of an imported closure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MemberStatus {
    /// Brought in, into quarantine.
    Added,
    /// Here already, approved for these features.
    Present,
    /// Here already, in review for these features.
    InReview,
    /// Here already for fewer features: a new review round covers these too.
    Extended,
}

impl MemberStatus {
    /// The status as text.
    pub const fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Added => "added",
            MemberStatus::Present => "present",
            MemberStatus::InReview => "in review",
            MemberStatus::Extended => "extended",
        }
    }
}

/// One member of an imported closure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClosureMember {
    /// The crate.
    #[serde(rename = "crate")]
    pub krate: String,
    /// The version.
    pub version: String,
    /// Its licence expression.
    pub license: Option<String>,
    /// Whether it has a build script.
    pub build_script: bool,
    /// Whether it is a procedural macro.
    pub proc_macro: bool,
    /// The features a dependent's build turns on in it.
    pub features: FeatureSet,
    /// What the import did with it.
    pub status: MemberStatus,
}

/// What a closure import resolved and did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImportPlan {
    /// The crate asked for, as resolved (`NAME@VERSION`).
    pub root: String,
    /// The upstream index.
    pub upstream: String,
    /// Whether nothing was imported (a dry run).
    pub dry_run: bool,
    /// Every member, the root included.
    pub members: Vec<ClosureMember>,
}

/// The advisory database's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AdvisoryStatus {
    /// Where it is.
    pub path: String,
    /// Its revision.
    pub revision: String,
    /// How many advisories it holds.
    pub advisories: usize,
    /// The newest advisory's date.
    pub newest: String,
    /// The policy's staleness limit in days.
    pub max_age_days: u32,
    /// Where a sync fetches from by default.
    pub source: Option<String>,
}

/// A sync of the advisory database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SyncRequest {
    /// A directory or git URL (default: the server's configured source).
    #[serde(default)]
    pub from: Option<String>,
}

/// The advisory database before and after a sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SyncOutcome {
    /// The revision before, if there was a database.
    pub before: Option<String>,
    /// The revision after.
    pub after: String,
    /// How many advisories it holds now.
    pub advisories: usize,
    /// The newest advisory's date.
    pub newest: String,
}

impl SyncOutcome {
    /// Whether the database changed.
    pub fn changed(&self) -> bool {
        self.before.as_deref() != Some(self.after.as_str())
    }
}

/// One approved version that a new advisory affects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Affected {
    /// The crate.
    #[serde(rename = "crate")]
    pub krate: String,
    /// The version.
    pub version: String,
    /// The new advisories, with the package each is about.
    pub advisories: Vec<String>,
    /// Whether the version was revoked.
    pub revoked: bool,
}

/// What a re-audit found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReauditOutcome {
    /// Approved versions re-audited.
    pub checked: usize,
    /// Approved versions without a kiln audit report to re-audit.
    pub without_report: Vec<String>,
    /// Versions newly affected.
    pub affected: Vec<Affected>,
}

/// What a sync did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SyncResponse {
    /// The database before and after.
    pub sync: SyncOutcome,
    /// The re-audit of approved versions (when the database changed).
    pub reaudit: Option<ReauditOutcome>,
}

/// A sweep of orphan blobs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SweepRequest {
    /// Only blobs older than this many seconds go (default: an hour).
    #[serde(default)]
    pub older_than_secs: Option<u64>,
    /// Count the orphans without deleting them.
    #[serde(default)]
    pub dry_run: bool,
}

/// What a sweep found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Swept {
    /// Blobs in the store.
    pub blobs: usize,
    /// Blobs no row names, old enough to go.
    pub orphans: usize,
    /// Blobs deleted (none in a dry run).
    pub deleted: usize,
    /// Bytes freed.
    pub bytes: u64,
}
