//! Code cells' builds: an executor asks the registry for the build of a cell's Rust source
//! against exact approved dependencies; a builder claims it, builds it in the sandbox, and
//! reports its stages and its signed artifacts, or rustc's diagnostics mapped to the cell.
//!
//! A build is named by its key: the digest of the request in canonical form with the policy and
//! the builder key that decide the result, so an unchanged cell is built once for every executor.

use std::collections::BTreeMap;

use kiln_policy::Digest;
use serde::{Deserialize, Serialize};

/// The entry point a code cell's generated kernel exports.
pub const ENTRY: &str = "main";

/// One dependency of a code cell: an exact approved version and the features it turns on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeDependency {
    /// The exact version (`kiln notebook lock` writes it from `requirement`).
    pub version: String,
    /// Features to turn on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
    /// Whether the crate's default features are on (default: yes).
    #[serde(
        default = "default_true",
        rename = "default-features",
        skip_serializing_if = "is_true"
    )]
    pub default_features: bool,
}

fn default_true() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

/// What a code cell asks to be built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeBuildRequest {
    /// The Rust source: the body of `fn main(input: Input<'_>, out: &mut Output) ->
    /// Result<(), Error>`, or a whole module that declares its entries with `kernel!`.
    pub source: String,
    /// Dependencies by crate name, each an exact approved version.
    #[serde(default)]
    pub dependencies: BTreeMap<String, CodeDependency>,
    /// The input's media type (a body's `main` entry).
    pub input_type: String,
    /// The output's media type (a body's `main` entry).
    pub output_type: String,
}

impl CodeBuildRequest {
    /// Whether the source is a whole module (it declares its entries with `kernel!`) rather
    /// than the body of `main`.
    pub fn is_module(&self) -> bool {
        self.source.contains("kernel!")
    }

    /// The digest of the source's bytes, which the provenance names.
    pub fn source_digest(&self) -> Digest {
        Digest::of(self.source.as_bytes())
    }

    /// The request in canonical form (keys sorted, no spaces): equal requests, equal bytes.
    pub fn canonical(&self) -> Vec<u8> {
        let value = serde_json::to_value(self).expect("a request serialises");
        serde_json::to_vec(&value).expect("a value serialises")
    }
}

/// Where a build is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum CodeBuildStage {
    /// Waiting for a builder.
    Queued,
    /// A builder is vendoring and compiling it.
    Compiling,
    /// The module is being checked against the wasm policy and precompiled.
    Checking,
    /// Built and signed: its artifacts are ready.
    Signed,
    /// It does not build (see the error and diagnostics), or the builder gave up.
    Failed,
}

impl CodeBuildStage {
    /// The stage's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Compiling => "compiling",
            Self::Checking => "checking",
            Self::Signed => "signed",
            Self::Failed => "failed",
        }
    }

    /// Whether the build is over.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Signed | Self::Failed)
    }
}

impl std::str::FromStr for CodeBuildStage {
    type Err = crate::UnknownName;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text {
            "queued" => Self::Queued,
            "compiling" => Self::Compiling,
            "checking" => Self::Checking,
            "signed" => Self::Signed,
            "failed" => Self::Failed,
            _ => {
                return Err(crate::UnknownName {
                    what: "code build stage",
                    name: text.to_owned(),
                    expected: "queued, compiling, checking, signed, failed".to_owned(),
                });
            }
        })
    }
}

/// One compiler message, placed in the cell's own source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Diagnostic {
    /// `error` or `warning`.
    pub level: String,
    /// The message's first line, for example ``cannot find value `x` in this scope``.
    pub message: String,
    /// The line in the cell's source (from 1), when the message points into it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// The column (from 1), with the line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    /// rustc's whole message, with its location given in the cell.
    pub rendered: String,
}

/// The signed artifacts of a finished build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CodeArtifacts {
    /// The artifact manifest.
    #[schema(value_type = String)]
    pub manifest: Digest,
    /// The module.
    #[schema(value_type = String)]
    pub wasm: Digest,
    /// The precompiled module.
    #[schema(value_type = String)]
    pub cwasm: Digest,
    /// The signed provenance (names the source's digest and the lock).
    #[schema(value_type = String)]
    pub provenance: Digest,
    /// The signed audit of the closure.
    #[schema(value_type = String)]
    pub audit: Digest,
    /// The build log.
    #[schema(value_type = String)]
    pub log: Digest,
}

/// A build as the registry knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CodeBuildStatus {
    /// The build's key.
    #[schema(value_type = String)]
    pub key: Digest,
    /// Where it is.
    pub stage: CodeBuildStage,
    /// Whether this request found the build already made (or under way) for another: nothing
    /// was queued for it.
    #[serde(default)]
    pub cached: bool,
    /// The source's digest.
    #[schema(value_type = String)]
    pub source: Digest,
    /// The request as built, with the SDK version the registry chose when the cell named none.
    pub request: CodeBuildRequest,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The compiler's messages, placed in the cell.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<Diagnostic>,
    /// The artifacts, once signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<CodeArtifacts>,
}

/// A builder's claim for the next code build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CodeClaim {
    /// The worker's name.
    pub worker: String,
    /// The lease in seconds.
    pub lease_secs: u64,
}

/// A claimed code build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CodeJob {
    /// The build's key.
    #[schema(value_type = String)]
    pub key: Digest,
    /// What to build.
    pub request: CodeBuildRequest,
    /// The dependencies published to this registry (the others were imported): a manifest names
    /// the two differently, by this registry's URL or the crates.io way.
    #[serde(default)]
    pub published_here: Vec<String>,
}

/// A builder's report on a build it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum CodeReport {
    /// It moved on to a later stage.
    Stage {
        /// The worker holding it.
        worker: String,
        /// The new stage (`compiling` or `checking`).
        stage: CodeBuildStage,
    },
    /// It is built and signed.
    Signed {
        /// The worker holding it.
        worker: String,
        /// Its artifacts (uploaded as blobs).
        artifacts: CodeArtifacts,
    },
    /// It failed.
    Failed {
        /// The worker holding it.
        worker: String,
        /// Why.
        error: String,
        /// The compiler's messages, placed in the cell.
        #[serde(default)]
        diagnostics: Vec<Diagnostic>,
        /// Whether the builder, not the cell, was at fault: the build is queued again.
        #[serde(default)]
        retry: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canonical_form_does_not_depend_on_how_the_request_was_written() {
        let a: CodeBuildRequest = serde_json::from_str(
            r#"{"source":"x","input_type":"text/plain","output_type":"text/plain",
                "dependencies":{"b":{"version":"1.0.0"},"a":{"version":"2.0.0","features":["f"]}}}"#,
        )
        .unwrap();
        let b: CodeBuildRequest = serde_json::from_str(
            r#"{"output_type":"text/plain","dependencies":{"a":{"features":["f"],"version":"2.0.0","default-features":true},
                "b":{"version":"1.0.0"}},"input_type":"text/plain","source":"x"}"#,
        )
        .unwrap();
        assert_eq!(a.canonical(), b.canonical());
        assert!(!a.is_module());
    }
}
