//! Policy files: what an audit denies, what needs a person, and what an execution may use.
//!
//! A file is parsed into raw types that reject unknown keys (a misspelt key must not silently
//! drop a check), then validated into [`Policy`]: SPDX identifiers and expressions, semver
//! requirements, dates, checksums and statement kinds are all checked, and an error names the
//! line and column. `policies/default.toml` documents every key.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::checks::wasm::{AllMarker, AllowedFunctions, WasmPolicy};
use crate::digest::Digest;
use crate::findings::Severity;
use crate::intoto::StatementKind;
use crate::rules::Rules;

/// Why a policy file is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}:{line}:{column}: {message}")]
pub struct PolicyError {
    /// The file.
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// What an audit does with one kind of finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Refuse.
    Deny,
    /// Ask a person.
    Review,
    /// Record only.
    Info,
    /// Accept without a finding.
    Allow,
}

impl Action {
    /// The severity of a finding under this action; `None` when allowed.
    pub fn severity(self) -> Option<Severity> {
        match self {
            Action::Deny => Some(Severity::Deny),
            Action::Review => Some(Severity::Review),
            Action::Info => Some(Severity::Info),
            Action::Allow => None,
        }
    }
}

/// CVSS severities, for the advisory threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdvisorySeverity {
    /// No severity given.
    None,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRules {
    files: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAdvisories {
    db: Option<PathBuf>,
    vulnerability: Action,
    unmaintained: Action,
    unsound: Action,
    notice: Action,
    yanked: Action,
    severity_threshold: AdvisorySeverity,
    max_db_age_days: u32,
    revoke_affected: bool,
}

impl Default for RawAdvisories {
    fn default() -> Self {
        Self {
            db: None,
            vulnerability: Action::Deny,
            unmaintained: Action::Review,
            unsound: Action::Review,
            notice: Action::Info,
            yanked: Action::Review,
            severity_threshold: AdvisorySeverity::None,
            max_db_age_days: 30,
            revoke_affected: false,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLicenses {
    allow: Vec<Spanned<String>>,
    unlicensed: Action,
    clarify: Vec<RawClarify>,
}

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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSources {
    allow_registries: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawBuild {
    build_scripts: Action,
    proc_macros: Action,
    native_links: Action,
    bypass: Vec<RawBypass>,
    toolchain: Option<String>,
}

impl Default for RawBuild {
    fn default() -> Self {
        Self {
            build_scripts: Action::Review,
            proc_macros: Action::Review,
            native_links: Action::Deny,
            bypass: Vec::new(),
            toolchain: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBypass {
    #[serde(rename = "crate")]
    krate: String,
    version: Spanned<String>,
    checksum: Spanned<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawBans {
    deny: Vec<RawBan>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBan {
    name: String,
    #[serde(default)]
    version: Option<Spanned<String>>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawTyposquat {
    max_distance: u8,
    action: Action,
}

impl Default for RawTyposquat {
    fn default() -> Self {
        Self {
            max_distance: 1,
            action: Action::Review,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawWasm {
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawExecution {
    max_fuel: u64,
    max_memory_bytes: u64,
    max_wall_ms: u64,
    max_output_bytes: u64,
    require: Vec<Spanned<String>>,
    revocation_max_age_secs: u64,
}

impl Default for RawExecution {
    fn default() -> Self {
        Self {
            max_fuel: 10_000_000_000,
            max_memory_bytes: 256 * 1024 * 1024,
            max_wall_ms: 30_000,
            max_output_bytes: 16 * 1024 * 1024,
            require: vec![
                Spanned::new(0..0, "provenance".into()),
                Spanned::new(0..0, "review".into()),
            ],
            revocation_max_age_secs: 3600,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawException {
    code: String,
    #[serde(rename = "crate")]
    krate: String,
    reason: Spanned<String>,
    until: Spanned<String>,
}

/// The advisory rules.
#[derive(Debug, Clone, PartialEq)]
pub struct AdvisoryPolicy {
    /// The advisory database directory, when the policy names one.
    pub db: Option<PathBuf>,
    /// Vulnerabilities at or above the threshold.
    pub vulnerability: Action,
    /// Unmaintained crates.
    pub unmaintained: Action,
    /// Unsound crates.
    pub unsound: Action,
    /// Notices.
    pub notice: Action,
    /// Yanked versions.
    pub yanked: Action,
    /// Vulnerabilities below this severity need review instead of `vulnerability`.
    pub severity_threshold: AdvisorySeverity,
    /// The oldest the database may be, in days.
    pub max_db_age_days: u32,
    /// Whether a re-audit that finds a new denying advisory in an approved version revokes it
    /// (otherwise it is recorded as an event for an admin).
    pub revoke_affected: bool,
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

/// The build-time code rules.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildPolicy {
    /// Crates with build scripts.
    pub build_scripts: Action,
    /// Proc-macro crates.
    pub proc_macros: Action,
    /// Crates that link native libraries (`links`).
    pub native_links: Action,
    /// Exact crate versions allowed to run build-time code, pinned by checksum.
    pub bypass: Vec<(String, semver::Version, Digest)>,
    /// The rustc version builds must use (`1.95.0`); builders with another refuse to build.
    pub toolchain: Option<String>,
}

/// A banned crate.
#[derive(Debug, Clone, PartialEq)]
pub struct Ban {
    /// The crate.
    pub name: String,
    /// The versions banned (all when none).
    pub version: Option<semver::VersionReq>,
    /// Why.
    pub reason: Option<String>,
}

/// What a cell may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionPolicy {
    /// Fuel per cell.
    pub max_fuel: u64,
    /// Linear memory per cell.
    pub max_memory_bytes: u64,
    /// Wall-clock time per cell.
    pub max_wall_ms: u64,
    /// Output per cell.
    pub max_output_bytes: u64,
    /// Statements an artifact must carry, each by a trusted key of its role.
    pub require: BTreeSet<StatementKind>,
    /// The oldest revocation list the executor accepts.
    pub revocation_max_age_secs: u64,
}

/// An accepted exception to a finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exception {
    /// The finding code.
    pub code: String,
    /// The crate (`NAME` or `NAME@VERSION`).
    pub krate: String,
    /// Why it is accepted.
    pub reason: String,
    /// The last day it applies (YYYY-MM-DD).
    pub until: String,
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
    /// Registries besides this one that dependencies may come from.
    pub allow_registries: BTreeSet<String>,
    /// Build-time code.
    pub build: BuildPolicy,
    /// Banned crates.
    pub bans: Vec<Ban>,
    /// The largest edit distance at which a new name is flagged as imitating an approved one.
    pub typosquat_distance: u8,
    /// What to do with a flagged name.
    pub typosquat_action: Action,
    /// The wasm check.
    pub wasm: WasmPolicy,
    /// Execution limits and required statements.
    pub execution: ExecutionPolicy,
    /// Exceptions.
    pub exceptions: Vec<Exception>,
    /// Custom Rego rules.
    pub rules: Rules,
}

/// Whether `text` is a real calendar date written YYYY-MM-DD.
pub fn valid_date(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    let [y, m, d] = parts[..] else { return false };
    if y.len() != 4
        || m.len() != 2
        || d.len() != 2
        || !text.bytes().all(|b| b.is_ascii_digit() || b == b'-')
    {
        return false;
    }
    let (Ok(year), Ok(month), Ok(day)) = (y.parse::<u32>(), m.parse::<u32>(), d.parse::<u32>())
    else {
        return false;
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
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

        let mut allow = BTreeSet::new();
        for id in &raw.licenses.allow {
            if spdx::license_id(id.get_ref()).is_none() {
                return Err(at(
                    id.span(),
                    format!("`{}` is not an SPDX licence identifier", id.get_ref()),
                ));
            }
            allow.insert(id.get_ref().clone());
        }
        let mut clarify = BTreeMap::new();
        for entry in &raw.licenses.clarify {
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
        let mut bypass = Vec::new();
        for entry in &raw.build.bypass {
            let version = semver::Version::parse(entry.version.get_ref()).map_err(|err| {
                at(
                    entry.version.span(),
                    format!("`{}` is not a version: {err}", entry.version.get_ref()),
                )
            })?;
            let checksum = Digest::from_hex(entry.checksum.get_ref().trim_start_matches("sha256:"))
                .map_err(|err| at(entry.checksum.span(), format!("bad checksum: {err}")))?;
            bypass.push((entry.krate.clone(), version, checksum));
        }
        let mut bans = Vec::new();
        for ban in &raw.bans.deny {
            let version = match &ban.version {
                Some(req) => Some(semver::VersionReq::parse(req.get_ref()).map_err(|err| {
                    at(
                        req.span(),
                        format!("`{}` is not a version requirement: {err}", req.get_ref()),
                    )
                })?),
                None => None,
            };
            bans.push(Ban {
                name: ban.name.clone(),
                version,
                reason: ban.reason.clone(),
            });
        }
        let mut allowed_imports = BTreeMap::new();
        for (module, imports) in raw.wasm.imports {
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
        let mut require = BTreeSet::new();
        for kind in &raw.execution.require {
            let parsed = StatementKind::ALL
                .into_iter()
                .find(|k| k.as_str() == kind.get_ref())
                .ok_or_else(|| {
                    at(
                        kind.span(),
                        format!(
                            "`{}` is not a statement kind (provenance, audit, review, revocation)",
                            kind.get_ref()
                        ),
                    )
                })?;
            require.insert(parsed);
        }
        let mut exceptions = Vec::new();
        for exception in raw.exceptions {
            if exception.reason.get_ref().trim().is_empty() {
                return Err(at(
                    exception.reason.span(),
                    "an exception needs a reason".into(),
                ));
            }
            if !valid_date(exception.until.get_ref()) {
                return Err(at(
                    exception.until.span(),
                    format!("`{}` is not a date (YYYY-MM-DD)", exception.until.get_ref()),
                ));
            }
            exceptions.push(Exception {
                code: exception.code,
                krate: exception.krate,
                reason: exception.reason.into_inner(),
                until: exception.until.into_inner(),
            });
        }
        let mut rule_files = Vec::new();
        for file in &raw.rules.files {
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
        let rules = Rules::from_sources(rule_files).map_err(|err| at(0..0, err.to_string()))?;
        let a = raw.advisories;
        Ok(Policy {
            digest: Digest::of(text.as_bytes()),
            advisories: AdvisoryPolicy {
                db: a.db,
                vulnerability: a.vulnerability,
                unmaintained: a.unmaintained,
                unsound: a.unsound,
                notice: a.notice,
                yanked: a.yanked,
                severity_threshold: a.severity_threshold,
                max_db_age_days: a.max_db_age_days,
                revoke_affected: a.revoke_affected,
            },
            licenses: LicensePolicy {
                allow,
                unlicensed: raw.licenses.unlicensed,
                clarify,
            },
            allow_registries: raw.sources.allow_registries.into_iter().collect(),
            build: BuildPolicy {
                build_scripts: raw.build.build_scripts,
                proc_macros: raw.build.proc_macros,
                native_links: raw.build.native_links,
                bypass,
                toolchain: raw.build.toolchain,
            },
            bans,
            typosquat_distance: raw.typosquat.max_distance,
            typosquat_action: raw.typosquat.action,
            wasm: WasmPolicy {
                max_module_bytes: raw.wasm.max_module_bytes,
                max_memory_pages: raw.wasm.max_memory_pages,
                allowed_imports,
            },
            execution: ExecutionPolicy {
                max_fuel: raw.execution.max_fuel,
                max_memory_bytes: raw.execution.max_memory_bytes,
                max_wall_ms: raw.execution.max_wall_ms,
                max_output_bytes: raw.execution.max_output_bytes,
                require,
                revocation_max_age_secs: raw.execution.revocation_max_age_secs,
            },
            exceptions,
            rules,
        })
    }
}

#[cfg(test)]
mod tests;
