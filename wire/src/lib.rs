//! `kiln-wire`: the types of kiln's own HTTP APIs, in one small crate that the registry, its
//! workers, the executor and the CLI all use, so that a field is named and typed once and no
//! client indexes untyped JSON.
//!
//! - [`features`]: the feature sets a review covers;
//! - [`states`]: a version's review state, job kinds, artifact and dependency kinds, token scopes;
//! - [`submissions`]: a submission as listed and as a reviewer sees it, and the build report;
//! - [`review`]: approvals, rejections and their answers;
//! - [`worker`]: the worker protocol (claim, heartbeat, complete, fail);
//! - [`tokens`]: tokens and who is calling;
//! - [`code_builds`]: code cells' builds (request, stages, diagnostics, artifacts);
//! - [`runs`]: the executor's preflight answer, run records and replays;
//! - [`admin`]: revocations, imports, advisory syncs, sweeps;
//! - [`errors`]: the error bodies of both services.
//!
//! Digests, verdicts and findings are the trust core's own types ([`kiln_policy`]).

#![forbid(unsafe_code)]

pub mod admin;
pub mod catalogue;
pub mod code_builds;
pub mod diff;
pub mod errors;
pub mod features;
pub mod index;
pub mod review;
pub mod runs;
pub mod states;
pub mod submissions;
pub mod tokens;
pub mod worker;

pub use features::FeatureSet;
pub use kiln_policy::Digest;
pub use kiln_policy::findings::{Finding, FindingCode, Severity, Verdict};
pub use states::{ArtifactKind, DependencyKind, JobKind, Scope, UnknownName, VersionState};

/// Serialises a [`Digest`] as its bare hex (a crate checksum, as Cargo writes it).
pub mod hex_digest {
    use kiln_policy::Digest;
    use serde::{Deserialize as _, Deserializer, Serializer};

    /// Writes the hex.
    pub fn serialize<S: Serializer>(digest: &Digest, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&digest.hex())
    }

    /// Reads the hex.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
        let text = String::deserialize(deserializer)?;
        Digest::from_hex(&text).map_err(serde::de::Error::custom)
    }
}
