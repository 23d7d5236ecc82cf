//! The worker protocol: audit and build workers claim jobs from the registry's queue, keep
//! their lease alive, upload what they make, and report the result.

use kiln_policy::Digest;
use kiln_policy::audit::AuditReport;
use serde::{Deserialize, Serialize};

use crate::features::FeatureSet;
use crate::states::{ArtifactKind, JobKind, VersionState};
use crate::submissions::BuildReport;

/// A claim for the next ready job of a kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClaimRequest {
    /// Which kind of job.
    pub kind: JobKind,
    /// The worker's name, unique among workers.
    pub worker: String,
    /// The lease in seconds (default 60).
    #[serde(default)]
    pub lease_secs: Option<u64>,
}

/// What a job is about: one submitted version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobPayload {
    /// The version's row.
    pub version_id: i64,
    /// The crate.
    #[serde(rename = "crate")]
    pub krate: String,
    /// The version.
    pub version: String,
    /// The `.crate`'s SHA-256, in hex.
    #[serde(with = "crate::hex_digest")]
    #[schema(value_type = String)]
    pub checksum: Digest,
    /// The features the review round covers: the audit resolves, and the build compiles, the
    /// version as a dependent that turns on exactly these would.
    #[serde(default)]
    pub features: FeatureSet,
    /// The token of the closure the version was submitted with (an import's, or its own for a
    /// publish): its audit and build resolve it and the closure's other members, still in
    /// quarantine, through that closure's index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closure: Option<String>,
    /// The upstream index an imported version came from; `None` for a version published here.
    /// A dependent names the two differently (the crates.io way, or by this registry's URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

impl JobPayload {
    /// `NAME@VERSION`.
    pub fn subject(&self) -> String {
        format!("{}@{}", self.krate, self.version)
    }
}

/// A job a worker holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Job {
    /// The job's id.
    pub id: i64,
    /// What to do.
    pub kind: JobKind,
    /// What to do it to.
    pub payload: JobPayload,
    /// Attempts so far, this one included.
    pub attempts: i64,
    /// The attempt limit.
    pub max_attempts: i64,
    /// When the lease runs out (Unix milliseconds) unless the worker heartbeats.
    pub lease_until: i64,
}

/// A heartbeat that extends a lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HeartbeatRequest {
    /// The worker holding the job.
    pub worker: String,
    /// The new lease in seconds.
    #[serde(default)]
    pub lease_secs: Option<u64>,
}

/// An artifact a worker uploaded (to `/api/kiln/v1/blobs`) and reports with its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ArtifactRecord {
    /// Its digest.
    #[schema(value_type = String)]
    pub digest: Digest,
    /// What it is.
    pub kind: ArtifactKind,
}

/// What a finished job produced, by kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Completion {
    /// An audit: the report carries the verdict.
    Audit {
        /// The report (the predicate of the signed audit statement).
        #[schema(value_type = Object)]
        report: Box<AuditReport>,
        /// The signed audit statement.
        statement: ArtifactRecord,
    },
    /// A build.
    Build {
        /// What was built.
        report: Box<BuildReport>,
        /// The artifacts uploaded.
        artifacts: Vec<ArtifactRecord>,
    },
}

impl Completion {
    /// The kind of job this completes.
    pub fn kind(&self) -> JobKind {
        match self {
            Completion::Audit { .. } => JobKind::Audit,
            Completion::Build { .. } => JobKind::Build,
        }
    }

    /// Every artifact it reports.
    pub fn artifacts(&self) -> Vec<&ArtifactRecord> {
        match self {
            Completion::Audit { statement, .. } => vec![statement],
            Completion::Build { artifacts, .. } => artifacts.iter().collect(),
        }
    }
}

/// A job's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CompleteRequest {
    /// The worker holding the job.
    pub worker: String,
    /// What it produced.
    #[serde(flatten)]
    pub completion: Completion,
}

/// Why a job did not finish, and what should become of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FailKind {
    /// Something outside the submission went wrong (the registry, the disk): try again later.
    Retry,
    /// The submission itself is at fault (it does not build): fail it now.
    Terminal,
    /// The job waits for something outside it (a dependency's approval): queue it again without
    /// counting the attempt; the error is shown as the submission's state reason.
    Waiting,
}

/// A failed attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FailRequest {
    /// The worker holding the job.
    pub worker: String,
    /// What went wrong.
    pub error: String,
    /// What should become of the job.
    pub kind: FailKind,
}

/// What became of a reported job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum JobOutcome {
    /// The submission moved to `state`.
    Moved {
        /// The submission's state now.
        state: VersionState,
    },
    /// The job runs again in this many seconds.
    Retry {
        /// Seconds until the next attempt.
        retry_in_secs: u64,
    },
    /// The job waits (an approval wakes it, or it is tried again in this many seconds).
    Waiting {
        /// Seconds until it is tried again without a wake-up.
        waiting_secs: u64,
    },
}

/// A stored blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Uploaded {
    /// Its digest.
    #[schema(value_type = String)]
    pub digest: Digest,
}

/// A crate version, named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PackageRef {
    /// The crate.
    #[serde(rename = "crate")]
    pub krate: String,
    /// The version.
    pub version: String,
}

/// Which features are curated for each of `packages`, as a worker auditing a member of
/// `closure` (or any submission, without one) may count on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CurationLookup {
    /// The closure token from the job, when the submission is a member of one.
    #[serde(default)]
    pub closure: Option<String>,
    /// The versions asked about.
    pub packages: Vec<PackageRef>,
}

/// The answer to a [`CurationLookup`]: for each version asked about, in order, the features
/// curated for it (approved, or, for a member of the closure in review, the features its round
/// covers); `None` for a version that is neither.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Curated {
    /// One entry per version asked about.
    pub features: Vec<Option<FeatureSet>>,
}

/// The names of crates with an approved version (for the typosquat check).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApprovedNames {
    /// The names.
    pub names: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_completion_reads_back_with_its_kind() {
        let request = CompleteRequest {
            worker: "w".into(),
            completion: Completion::Build {
                report: Box::new(BuildReport {
                    target: "wasm32-wasip1".into(),
                    isolation: "bubblewrap".into(),
                    cached: false,
                    kernel: None,
                }),
                artifacts: vec![ArtifactRecord {
                    digest: Digest::of(b"log"),
                    kind: ArtifactKind::Log,
                }],
            },
        };
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(json["kind"], "build");
        assert_eq!(json["artifacts"][0]["kind"], "log");
        let back: CompleteRequest = serde_json::from_value(json).unwrap();
        assert_eq!(back, request);
        assert_eq!(back.completion.kind(), JobKind::Build);
    }
}
