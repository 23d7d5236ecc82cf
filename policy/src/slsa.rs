//! SLSA Provenance v1, the predicate of the statement a builder signs for what it built.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::intoto::ResourceDescriptor;

/// The `predicateType` of SLSA Provenance v1.
pub use crate::intoto::PROVENANCE_PREDICATE_TYPE as PREDICATE_TYPE;

/// The name of the resolved dependency that records a code cell's source digest in the
/// provenance of its build.
pub const CELL_SOURCE: &str = "cell-source";

/// The provenance predicate: how an artifact was built and by whom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    /// The inputs of the build.
    pub build_definition: BuildDefinition,
    /// The builder and what the run produced besides the subjects.
    pub run_details: RunDetails,
}

/// The inputs of a build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildDefinition {
    /// A URI naming the build process (kiln's hermetic cargo build).
    pub build_type: String,
    /// Parameters under the control of the requester (crate, version, target, features).
    pub external_parameters: serde_json::Value,
    /// Parameters set by the builder itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_parameters: Option<serde_json::Value>,
    /// Every input fetched for the build: locked crates with their checksums, the toolchain.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved_dependencies: Vec<ResourceDescriptor>,
}

/// The builder and what the run produced besides the subjects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunDetails {
    /// The builder that ran the build.
    pub builder: Builder,
    /// Optional facts about this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BuildMetadata>,
    /// Other outputs: the build log, the module's imports and exports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub byproducts: Vec<ResourceDescriptor>,
}

impl Provenance {
    /// The source digest of the code cell this provenance is about, if it is one's.
    pub fn cell_source(&self) -> Option<crate::digest::Digest> {
        self.build_definition
            .resolved_dependencies
            .iter()
            .find(|d| d.name == CELL_SOURCE)
            .and_then(|d| d.sha256())
    }
}

/// Identifies the builder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Builder {
    /// A URI naming the builder.
    pub id: String,
    /// Versions of the builder's components.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub version: BTreeMap<String, String>,
    /// Dependencies of the builder itself.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub builder_dependencies: Vec<ResourceDescriptor>,
}

/// Facts about one build run. kiln leaves times out so that provenance is reproducible too.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildMetadata {
    /// Identifies this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocation_id: Option<String>,
    /// When the run started (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_on: Option<String>,
    /// When the run finished (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_on: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::intoto::Statement;

    #[test]
    fn provenance_round_trips_through_a_statement() {
        let provenance = Provenance {
            build_definition: BuildDefinition {
                build_type: "https://kiln.dev/build/cargo-wasm32-wasip1/v1".into(),
                external_parameters: serde_json::json!({"crate": "kernel-csv-stats", "version": "0.1.0"}),
                internal_parameters: None,
                resolved_dependencies: vec![ResourceDescriptor::new(
                    "crate:kiln-kernel@0.1.0",
                    Digest::of(b"sdk"),
                )],
            },
            run_details: RunDetails {
                builder: Builder {
                    id: "https://kiln.dev/builder/v1".into(),
                    version: BTreeMap::from([("kiln".into(), "0.1.0".into())]),
                    builder_dependencies: vec![],
                },
                metadata: None,
                byproducts: vec![],
            },
        };
        let statement = Statement::new(
            vec![ResourceDescriptor::new("kernel.wasm", Digest::of(b"wasm"))],
            PREDICATE_TYPE,
            provenance.clone(),
        )
        .into_untyped()
        .unwrap();
        let text = serde_json::to_string(&statement).unwrap();
        let back: Statement = serde_json::from_str(&text).unwrap();
        assert_eq!(back.predicate_as::<Provenance>().unwrap(), provenance);
        assert!(
            !text.contains("metadata"),
            "absent fields are not written: {text}"
        );
    }
}
