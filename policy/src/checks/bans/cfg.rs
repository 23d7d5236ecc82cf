//! The `[bans]` section of a policy file.

use serde::Deserialize;
use toml::Spanned;

use crate::config::{At, PolicyError};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawBans {
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

impl RawBans {
    /// Checks every ban's version requirement.
    pub(crate) fn validate(self, at: &At<'_>) -> Result<Vec<Ban>, PolicyError> {
        let mut bans = Vec::new();
        for ban in self.deny {
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
                name: ban.name,
                version,
                reason: ban.reason,
            });
        }
        Ok(bans)
    }
}
