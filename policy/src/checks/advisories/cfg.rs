//! The `[advisories]` section of a policy file.

use std::path::PathBuf;

use serde::Deserialize;

use crate::config::{Action, AdvisorySeverity};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawAdvisories {
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

impl From<RawAdvisories> for AdvisoryPolicy {
    fn from(a: RawAdvisories) -> Self {
        Self {
            db: a.db,
            vulnerability: a.vulnerability,
            unmaintained: a.unmaintained,
            unsound: a.unsound,
            notice: a.notice,
            yanked: a.yanked,
            severity_threshold: a.severity_threshold,
            max_db_age_days: a.max_db_age_days,
            revoke_affected: a.revoke_affected,
        }
    }
}
