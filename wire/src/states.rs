//! The named states and kinds of kiln's APIs, each an enum that serialises as its lower-case
//! name and parses back from it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A name that is not one of an enum's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{name}` ({expected})")]
pub struct UnknownName {
    /// What was being named (`state`, `scope`, …).
    pub what: &'static str,
    /// The name given.
    pub name: String,
    /// The names accepted, comma-separated.
    pub expected: String,
}

macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            /// Every value, in order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(UnknownName {
                        what: $what,
                        name: other.to_owned(),
                        expected: [$($text),+].join(", "),
                    }),
                }
            }
        }
    };
}

named_enum! {
    /// Where a version is in review. `submitted → audited → built → approved`, or `rejected`
    /// by a reviewer, or `failed` by its audit or build. Only `approved` versions are in the
    /// index.
    VersionState, "state" {
        /// Published or imported; waiting for its audit.
        Submitted => "submitted",
        /// Audited (pass or needs-review); waiting for its build.
        Audited => "audited",
        /// Built; waiting for a reviewer.
        Built => "built",
        /// Approved by a reviewer: in the index.
        Approved => "approved",
        /// Rejected by a reviewer.
        Rejected => "rejected",
        /// Denied by its audit, or its build failed.
        Failed => "failed",
    }
}

impl VersionState {
    /// Whether nothing moves the version on from here (a decision was made).
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            VersionState::Approved | VersionState::Rejected | VersionState::Failed
        )
    }
}

named_enum! {
    /// What a worker does with a submission.
    JobKind, "job kind" {
        /// Audit it against the policy.
        Audit => "audit",
        /// Build it hermetically.
        Build => "build",
    }
}

impl JobKind {
    /// The state a version is in while it waits for a job of this kind.
    pub const fn waiting_state(self) -> VersionState {
        match self {
            JobKind::Audit => VersionState::Submitted,
            JobKind::Build => VersionState::Audited,
        }
    }
}

named_enum! {
    /// What a stored artifact of a version is.
    ArtifactKind, "artifact kind" {
        /// The WebAssembly module.
        Wasm => "wasm",
        /// The module precompiled by wasmtime.
        Cwasm => "cwasm",
        /// The artifact manifest.
        Manifest => "manifest",
        /// The signed SLSA provenance.
        Provenance => "provenance",
        /// The signed audit statement.
        Audit => "audit",
        /// The build log.
        Log => "log",
        /// A signed review statement.
        Review => "review",
    }
}

impl ArtifactKind {
    /// The media type the artifact is stored and served with.
    pub const fn media_type(self) -> &'static str {
        match self {
            ArtifactKind::Wasm => "application/wasm",
            ArtifactKind::Cwasm => "application/vnd.kiln.cwasm",
            ArtifactKind::Manifest => "application/vnd.kiln.manifest.v1+json",
            ArtifactKind::Provenance | ArtifactKind::Audit | ArtifactKind::Review => {
                kiln_policy::bundle::MEDIA_TYPE
            }
            ArtifactKind::Log => "text/plain; charset=utf-8",
        }
    }
}

named_enum! {
    /// How a crate depends on another (Cargo's kinds).
    DependencyKind, "dependency kind" {
        /// A normal dependency.
        Normal => "normal",
        /// A build dependency.
        Build => "build",
        /// A dev-dependency (never needed by a dependent).
        Dev => "dev",
    }
}

named_enum! {
    /// What a token may do.
    Scope, "scope" {
        /// Publish new crates and versions (and change owners).
        Publish => "publish",
        /// Yank and unyank.
        Yank => "yank",
        /// Review submissions: read them in any state, approve and reject.
        Review => "review",
        /// Claim and complete audit and build jobs.
        Worker => "worker",
        /// Run notebooks on an executor.
        Run => "run",
        /// Everything, and tokens, imports, revocations.
        Admin => "admin",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_say_what_is_accepted() {
        for state in VersionState::ALL {
            assert_eq!(state.as_str().parse::<VersionState>(), Ok(*state));
            assert_eq!(
                serde_json::to_string(state).unwrap(),
                format!("\"{state}\"")
            );
        }
        let err = "bogus".parse::<Scope>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown scope `bogus` (publish, yank, review, worker, run, admin)"
        );
        assert!(VersionState::Rejected.is_final());
        assert!(!VersionState::Built.is_final());
        assert_eq!(JobKind::Build.waiting_state(), VersionState::Audited);
    }
}
