//! Policy files: what an audit denies, what needs a person, and what an execution may use.
//!
//! A file is parsed into raw types that reject unknown keys (a misspelt key must not silently
//! drop a check), then validated into [`Policy`]: SPDX identifiers and expressions, semver
//! requirements, dates, checksums and statement kinds are all checked, and an error names the
//! line and column. `policies/default.toml` documents every key. Each section's raw form, its
//! validated form and its defaults live beside the check that uses them (`checks/*/cfg.rs`,
//! `preflight/cfg.rs`, `rules/cfg.rs`), in the manner of cargo-deny.

use std::path::Path;

use serde::Deserialize;

pub use crate::config::{Action, AdvisorySeverity, PolicyError, valid_date};

pub use crate::checks::advisories::cfg::AdvisoryPolicy;
use crate::checks::advisories::cfg::RawAdvisories;
pub use crate::checks::bans::cfg::Ban;
use crate::checks::bans::cfg::RawBans;
pub use crate::checks::build::cfg::BuildPolicy;
use crate::checks::build::cfg::RawBuild;
pub use crate::checks::exceptions::cfg::Exception;
use crate::checks::exceptions::cfg::RawException;
use crate::checks::licenses::cfg::RawLicenses;
pub use crate::checks::licenses::cfg::{DEFAULT_ALLOWED_LICENSES, LicensePolicy};
use crate::checks::sources::cfg::RawSources;
pub use crate::checks::sources::cfg::SourcesPolicy;
use crate::checks::typosquat::cfg::RawTyposquat;
pub use crate::checks::typosquat::cfg::TyposquatPolicy;
use crate::checks::wasm::WasmPolicy;
use crate::checks::wasm::cfg::RawWasm;
use crate::digest::Digest;
pub use crate::preflight::cfg::ExecutionPolicy;
use crate::preflight::cfg::RawExecution;
use crate::rules::Rules;
use crate::rules::cfg::RawRules;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    advisories: RawAdvisories,
    #[serde(default)]
    licenses: RawLicenses,
    #[serde(default)]
    sources: RawSources,
    #[serde(default)]
    build: RawBuild,
    #[serde(default)]
    bans: RawBans,
    #[serde(default)]
    typosquat: RawTyposquat,
    #[serde(default)]
    wasm: RawWasm,
    #[serde(default)]
    execution: RawExecution,
    #[serde(default)]
    exceptions: Vec<RawException>,
    #[serde(default)]
    rules: RawRules,
}

/// A validated policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The SHA-256 of the file's bytes, recorded in audit statements.
    pub digest: Digest,
    /// Advisories.
    pub advisories: AdvisoryPolicy,
    /// Licences.
    pub licenses: LicensePolicy,
    /// Where dependencies may come from.
    pub sources: SourcesPolicy,
    /// Build-time code.
    pub build: BuildPolicy,
    /// Banned crates.
    pub bans: Vec<Ban>,
    /// Names that imitate approved ones.
    pub typosquat: TyposquatPolicy,
    /// The wasm check.
    pub wasm: WasmPolicy,
    /// Execution limits and required statements.
    pub execution: ExecutionPolicy,
    /// Exceptions.
    pub exceptions: Vec<Exception>,
    /// Custom Rego rules.
    pub rules: Rules,
}

impl Policy {
    /// Reads and validates the policy file at `path`.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|err| PolicyError {
            path: path.display().to_string(),
            line: 0,
            column: 0,
            message: format!("cannot read the policy: {err}"),
        })?;
        Self::parse_in(&text, &path.display().to_string(), path.parent())
    }

    /// Parses and validates policy text; `name` names it in errors. Rule files cannot be named
    /// here (there is no directory to find them in): use [`Policy::load`] or
    /// [`Policy::parse_in`].
    pub fn parse(text: &str, name: &str) -> Result<Self, PolicyError> {
        Self::parse_in(text, name, None)
    }

    /// Parses and validates policy text whose rule files are relative to `dir`.
    pub fn parse_in(text: &str, name: &str, dir: Option<&Path>) -> Result<Self, PolicyError> {
        let at = |span: std::ops::Range<usize>, message: String| {
            let before = &text[..span.start.min(text.len())];
            PolicyError {
                path: name.to_owned(),
                line: before.matches('\n').count() + 1,
                column: before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1,
                message,
            }
        };
        let raw: RawPolicy = toml::from_str(text).map_err(|err| {
            at(
                err.span().unwrap_or(0..0),
                err.message().trim().replace('\n', " "),
            )
        })?;

        let exceptions = raw
            .exceptions
            .into_iter()
            .map(|exception| exception.validate(&at))
            .collect::<Result<_, _>>()?;
        Ok(Policy {
            digest: Digest::of(text.as_bytes()),
            advisories: raw.advisories.into(),
            licenses: raw.licenses.validate(&at)?,
            sources: raw.sources.into(),
            build: raw.build.validate(&at)?,
            bans: raw.bans.validate(&at)?,
            typosquat: raw.typosquat.into(),
            wasm: raw.wasm.validate(&at)?,
            execution: raw.execution.validate(&at)?,
            exceptions,
            rules: raw.rules.validate(dir, &at)?,
        })
    }
}

#[cfg(test)]
mod tests;
