//! The `[sources]` section of a policy file.

use std::collections::BTreeSet;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawSources {
    allow_registries: Vec<String>,
}

/// Where dependencies may come from besides this registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourcesPolicy {
    /// Other registries' index URLs that dependencies may come from.
    pub allow_registries: BTreeSet<String>,
}

impl From<RawSources> for SourcesPolicy {
    fn from(raw: RawSources) -> Self {
        Self {
            allow_registries: raw.allow_registries.into_iter().collect(),
        }
    }
}
