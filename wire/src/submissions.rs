//! Submissions: a version of a crate in review, as listed and as a reviewer reads it.

use kiln_policy::Digest;
use kiln_policy::audit::AuditReport;
use kiln_policy::checks::wasm::{Entry, Import};
use serde::{Deserialize, Serialize};

use crate::features::FeatureSet;
use crate::review::Decision;
use crate::states::{ArtifactKind, DependencyKind, VersionState};

/// A submission (one version of a crate) as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Submission {
    /// The crate.
    #[serde(rename = "crate")]
    pub krate: String,
    /// The version.
    pub version: String,
    /// Where it is in review.
    pub state: VersionState,
    /// Why it is rejected or failed, or what it waits for.
    pub state_reason: Option<String>,
    /// The SHA-256 of the `.crate`, in hex (as Cargo writes checksums).
    #[serde(with = "crate::hex_digest")]
    #[schema(value_type = String)]
    pub checksum: Digest,
    /// Whether it is yanked.
    pub yanked: bool,
    /// Who published it.
    pub published_by: String,
    /// Where it came from when imported from another registry.
    pub origin: Option<String>,
    /// When it was published (Unix milliseconds).
    pub created_at: i64,
    /// When its state last changed (Unix milliseconds).
    pub updated_at: i64,
    /// The features its current review round covers.
    #[serde(default)]
    pub features: FeatureSet,
    /// The features approved so far; `None` until its first approval. A version is in the
    /// index while it has approved features.
    #[serde(default)]
    pub approved_features: Option<FeatureSet>,
}

impl Submission {
    /// `NAME@VERSION`.
    pub fn subject(&self) -> String {
        format!("{}@{}", self.krate, self.version)
    }
}

/// A dependency of a submission and whether an approved version satisfies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DependencyStatus {
    /// The crate depended on.
    pub name: String,
    /// The requirement.
    pub req: String,
    /// How it is depended on.
    pub kind: DependencyKind,
    /// Another registry's index, when the dependency is not from this one.
    pub registry: Option<String>,
    /// The newest approved version that satisfies the requirement, if any.
    pub approved: Option<String>,
}

/// An artifact built from a submission (or a statement about it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ArtifactInfo {
    /// Its digest.
    #[schema(value_type = String)]
    pub digest: Digest,
    /// What it is.
    pub kind: ArtifactKind,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was recorded (Unix milliseconds).
    #[serde(default)]
    pub created_at: i64,
}

/// A reviewer's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReviewRecord {
    /// Approve or reject.
    pub decision: Decision,
    /// Who decided.
    pub reviewer: String,
    /// Why (a rejection's reason).
    pub reason: Option<String>,
    /// What an approval vouches for.
    pub criteria: Option<String>,
    /// When (Unix milliseconds).
    pub created_at: i64,
}

/// A kernel's build: its module, what it imports and exports, its entry points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KernelBuild {
    /// The WebAssembly module.
    #[schema(value_type = String)]
    pub wasm: Digest,
    /// The module precompiled by wasmtime.
    #[schema(value_type = Option<String>)]
    pub cwasm: Option<Digest>,
    /// The module's size in bytes.
    pub wasm_size: u64,
    /// Its imports.
    #[schema(value_type = Vec<Object>)]
    pub imports: Vec<Import>,
    /// Its exports.
    pub exports: Vec<String>,
    /// The kernel's entry points and their media types.
    #[schema(value_type = Vec<Object>)]
    pub entries: Vec<Entry>,
    /// The wasmtime version that precompiled it.
    pub wasmtime_version: String,
    /// The engine compatibility hash of the `.cwasm`.
    pub compatibility_hash: String,
}

/// What a build made of a submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BuildReport {
    /// The target it was compiled for.
    pub target: String,
    /// How the build was isolated (`bubblewrap`, or `none` when insecure).
    pub isolation: String,
    /// Whether the result came from the builder's cache.
    #[serde(default)]
    pub cached: bool,
    /// The kernel's module; `None` for a library (a crate kernels depend on compiles for the
    /// kernel target and has no module of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<KernelBuild>,
}

/// The reports kept with a submission.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reports {
    /// Its audit report (the predicate of its signed audit statement).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub audit: Option<AuditReport>,
    /// Its build report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildReport>,
    /// Re-audits that found new advisories after its approval.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub reaudits: Vec<serde_json::Value>,
}

/// A submission with everything a reviewer needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SubmissionDetail {
    /// The submission.
    #[serde(flatten)]
    pub submission: Submission,
    /// Its dependencies and their approval.
    pub dependencies: Vec<DependencyStatus>,
    /// Its audit and build reports.
    pub reports: Reports,
    /// Artifacts built from it and statements about it.
    pub artifacts: Vec<ArtifactInfo>,
    /// Review decisions.
    pub reviews: Vec<ReviewRecord>,
}

impl SubmissionDetail {
    /// The artifact of `kind`, when there is one.
    pub fn artifact(&self, kind: ArtifactKind) -> Option<&ArtifactInfo> {
        self.artifacts.iter().find(|a| a.kind == kind)
    }
}
