//! The `[rules]` section of a policy file: Rego rule files, relative to the policy file.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::Rules;
use crate::config::{At, PolicyError};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawRules {
    files: Vec<Spanned<String>>,
}

impl RawRules {
    /// Reads and compiles every rule file, found relative to `dir`.
    pub(crate) fn validate(self, dir: Option<&Path>, at: &At<'_>) -> Result<Rules, PolicyError> {
        let mut rule_files = Vec::new();
        for file in &self.files {
            let Some(dir) = dir else {
                return Err(at(
                    file.span(),
                    "rule files need a policy file on disk to be found relative to".into(),
                ));
            };
            let path = dir.join(file.get_ref());
            let text = std::fs::read_to_string(&path).map_err(|err| {
                at(
                    file.span(),
                    format!("cannot read the rule file {}: {err}", path.display()),
                )
            })?;
            let source = (path.display().to_string(), text);
            Rules::from_sources(vec![source.clone()])
                .map_err(|err| at(file.span(), err.to_string()))?;
            rule_files.push(source);
        }
        Rules::from_sources(rule_files).map_err(|err| at(0..0, err.to_string()))
    }
}
