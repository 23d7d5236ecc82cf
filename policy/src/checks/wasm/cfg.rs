//! The `[wasm]` section of a policy file.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{AllMarker, AllowedFunctions, WasmPolicy};
use crate::config::{At, PolicyError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawWasm {
    max_module_bytes: usize,
    max_memory_pages: u64,
    imports: BTreeMap<String, RawImports>,
}

impl Default for RawWasm {
    fn default() -> Self {
        let defaults = WasmPolicy::default();
        Self {
            max_module_bytes: defaults.max_module_bytes,
            max_memory_pages: defaults.max_memory_pages,
            imports: defaults
                .allowed_imports
                .into_iter()
                .map(|(module, allowed)| {
                    let raw = match allowed {
                        AllowedFunctions::All(_) => RawImports::All("*".into()),
                        AllowedFunctions::Only(names) => {
                            RawImports::Only(names.into_iter().collect())
                        }
                    };
                    (module, raw)
                })
                .collect(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawImports {
    All(String),
    Only(Vec<String>),
}

impl RawWasm {
    /// Reads each module's allowed imports: a list of functions or `"*"`.
    pub(crate) fn validate(self, at: &At<'_>) -> Result<WasmPolicy, PolicyError> {
        let mut allowed_imports = BTreeMap::new();
        for (module, imports) in self.imports {
            let allowed = match imports {
                RawImports::All(star) if star == "*" => AllowedFunctions::All(AllMarker::Star),
                RawImports::All(other) => {
                    return Err(at(
                        0..0,
                        format!(
                            "[wasm.imports] `{module}` must be a list of functions or \"*\", not \"{other}\""
                        ),
                    ));
                }
                RawImports::Only(names) => AllowedFunctions::Only(names.into_iter().collect()),
            };
            allowed_imports.insert(module, allowed);
        }
        Ok(WasmPolicy {
            max_module_bytes: self.max_module_bytes,
            max_memory_pages: self.max_memory_pages,
            allowed_imports,
        })
    }
}
