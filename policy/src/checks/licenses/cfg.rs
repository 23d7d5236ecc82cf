//! The `[licenses]` section of a policy file.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use toml::Spanned;

use crate::config::{Action, At, PolicyError};

/// The licences allowed when a policy does not say: permissive licences common on crates.io.
pub const DEFAULT_ALLOWED_LICENSES: &[&str] = &[
    "Apache-2.0",
    "MIT",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "ISC",
    "Zlib",
    "Unicode-3.0",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawLicenses {
    allow: Vec<Spanned<String>>,
    unlicensed: Action,
    clarify: Vec<RawClarify>,
}

impl Default for RawLicenses {
    fn default() -> Self {
        Self {
            allow: DEFAULT_ALLOWED_LICENSES
                .iter()
                .map(|id| Spanned::new(0..0, (*id).to_owned()))
                .collect(),
            unlicensed: Action::Deny,
            clarify: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClarify {
    #[serde(rename = "crate")]
    krate: String,
    expression: Spanned<String>,
}

/// The licence rules.
#[derive(Debug, Clone, PartialEq)]
pub struct LicensePolicy {
    /// SPDX identifiers accepted.
    pub allow: BTreeSet<String>,
    /// Crates without a licence expression.
    pub unlicensed: Action,
    /// Licence expressions that replace what a crate declares, by crate name.
    pub clarify: BTreeMap<String, String>,
}

impl RawLicenses {
    /// Checks every identifier and expression against SPDX.
    pub(crate) fn validate(self, at: &At<'_>) -> Result<LicensePolicy, PolicyError> {
        let mut allow = BTreeSet::new();
        for id in &self.allow {
            if spdx::license_id(id.get_ref()).is_none() {
                return Err(at(
                    id.span(),
                    format!("`{}` is not an SPDX licence identifier", id.get_ref()),
                ));
            }
            allow.insert(id.get_ref().clone());
        }
        let mut clarify = BTreeMap::new();
        for entry in &self.clarify {
            spdx::Expression::parse(entry.expression.get_ref()).map_err(|err| {
                at(
                    entry.expression.span(),
                    format!(
                        "`{}` is not an SPDX expression: {err}",
                        entry.expression.get_ref()
                    ),
                )
            })?;
            clarify.insert(entry.krate.clone(), entry.expression.get_ref().clone());
        }
        Ok(LicensePolicy {
            allow,
            unlicensed: self.unlicensed,
            clarify,
        })
    }
}
