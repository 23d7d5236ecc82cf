//! The `[build]` section of a policy file.

use serde::Deserialize;
use toml::Spanned;

use crate::config::{Action, At, PolicyError};
use crate::digest::Digest;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawBuild {
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

impl RawBuild {
    /// Checks every bypass's version and checksum.
    pub(crate) fn validate(self, at: &At<'_>) -> Result<BuildPolicy, PolicyError> {
        let mut bypass = Vec::new();
        for entry in &self.bypass {
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
        Ok(BuildPolicy {
            build_scripts: self.build_scripts,
            proc_macros: self.proc_macros,
            native_links: self.native_links,
            bypass,
            toolchain: self.toolchain,
        })
    }
}
