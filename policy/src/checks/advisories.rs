//! The advisories check: every locked crate from a registry against the RustSec advisory
//! database (a directory, loaded once), by name and version. Vulnerabilities, unmaintained,
//! unsound and notice advisories each get the policy's action; vulnerabilities below the
//! severity threshold need review instead. A database whose newest advisory is older than the
//! policy allows is itself a finding, since a stale database silently misses new advisories.
//!
//! Crates are matched whatever registry they were resolved from: kiln's copies of crates.io
//! crates keep their names, and RustSec's advisories are about those names.

pub mod cfg;

use std::path::Path;

use rustsec::Database;
pub use rustsec::Lockfile;
use rustsec::advisory::Informational;
use rustsec::database::Query;
use serde::{Deserialize, Serialize};

pub use self::cfg::AdvisoryPolicy;
use crate::config::{Action, AdvisorySeverity};
use crate::findings::{Finding, FindingCode};

/// Why the database or the lockfile could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AdvisoryError {
    /// The database directory is missing or holds a malformed advisory.
    #[error("cannot load the advisory database at {path}: {message}")]
    Database {
        /// The directory.
        path: String,
        /// Why.
        message: String,
    },
    /// The lockfile is malformed.
    #[error("cannot read the lockfile: {0}")]
    Lockfile(String),
}

/// A loaded advisory database.
pub struct AdvisoryDb {
    db: Database,
    /// The newest advisory's date (YYYY-MM-DD), a measure of freshness.
    pub newest: String,
    /// How many advisories it holds.
    pub count: usize,
    /// Where it was loaded from.
    pub path: String,
    /// Its revision: the git commit checked out, the commit a snapshot's `SNAPSHOT` file names,
    /// or else a digest of its advisory files.
    pub revision: String,
}

impl std::fmt::Debug for AdvisoryDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdvisoryDb")
            .field("path", &self.path)
            .field("count", &self.count)
            .field("newest", &self.newest)
            .field("revision", &self.revision)
            .finish()
    }
}

impl AdvisoryDb {
    /// Loads the database in `path` (a clone or snapshot of rustsec/advisory-db).
    pub fn open(path: &Path) -> Result<Self, AdvisoryError> {
        let db = Database::open(path).map_err(|err| AdvisoryError::Database {
            path: path.display().to_string(),
            message: err.to_string(),
        })?;
        let newest = db
            .iter()
            .map(|a| a.date().as_str().to_owned())
            .max()
            .unwrap_or_default();
        let count = db.iter().count();
        let revision = revision(path, &db);
        Ok(Self {
            db,
            newest,
            count,
            path: path.display().to_string(),
            revision,
        })
    }
}

/// The revision of the database in `path` (see [`AdvisoryDb::revision`]).
fn revision(path: &Path, db: &Database) -> String {
    if let Some(commit) = git_head(path) {
        return commit;
    }
    if let Ok(snapshot) = std::fs::read_to_string(path.join("SNAPSHOT"))
        && let Some(commit) = snapshot
            .split(|c: char| !c.is_ascii_hexdigit())
            .find(|word| word.len() == 40)
    {
        return commit.to_owned();
    }
    // No history: name the content. Ids and modification dates change when advisories do.
    let mut ids: Vec<String> = db
        .iter()
        .map(|a| {
            format!(
                "{} {} {}",
                a.id(),
                a.metadata.date.as_str(),
                a.metadata.withdrawn.as_ref().map_or("", |d| d.as_str())
            )
        })
        .collect();
    ids.sort();
    crate::Digest::of(ids.join("\n").as_bytes()).to_string()
}

/// The commit checked out in the git repository at `path`, read from `.git` without a git
/// library: `HEAD` is a commit id or a ref, found loose or in `packed-refs`.
pub fn git_head(path: &Path) -> Option<String> {
    let git = path.join(".git");
    let head = std::fs::read_to_string(git.join("HEAD")).ok()?;
    let head = head.trim();
    let is_commit = |s: &str| s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let Some(reference) = head.strip_prefix("ref: ") else {
        return is_commit(head).then(|| head.to_owned());
    };
    if let Ok(commit) = std::fs::read_to_string(git.join(reference)) {
        let commit = commit.trim();
        return is_commit(commit).then(|| commit.to_owned());
    }
    let packed = std::fs::read_to_string(git.join("packed-refs")).ok()?;
    packed.lines().find_map(|line| {
        let (commit, name) = line.split_once(' ')?;
        (name == reference && is_commit(commit)).then(|| commit.to_owned())
    })
}

/// Parses a `Cargo.lock`.
pub fn parse_lockfile(text: &str) -> Result<Lockfile, AdvisoryError> {
    text.parse::<Lockfile>().map_err(|err| {
        // Keep the message on one line: drop the source excerpt TOML errors carry.
        let text = err.to_string();
        let message: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.contains('|'))
            .collect();
        AdvisoryError::Lockfile(message.join(": "))
    })
}

/// One advisory matched to a locked crate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Match {
    /// The advisory id (`RUSTSEC-YYYY-NNNN`).
    pub id: String,
    /// The crate.
    pub package: String,
    /// The locked version.
    pub version: String,
    /// `vulnerability`, `unmaintained`, `unsound`, `notice` or another informational kind.
    pub kind: String,
    /// The advisory's title.
    pub title: String,
}

/// Days since 1970-01-01 of a YYYY-MM-DD date.
fn days(date: &str) -> Option<i64> {
    let mut parts = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (parts.next()??, parts.next()??, parts.next()??);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// The finding code of an advisory of this kind (a vulnerability, or informational).
fn advisory_code(informational: Option<&Informational>) -> FindingCode {
    match informational {
        None => FindingCode::AdvisoryVulnerability,
        Some(Informational::Unmaintained) => FindingCode::AdvisoryUnmaintained,
        Some(Informational::Unsound) => FindingCode::AdvisoryUnsound,
        Some(Informational::Notice) => FindingCode::AdvisoryNotice,
        Some(_) => FindingCode::AdvisoryInformational,
    }
}

/// Why `db` is too old for `policy` on `today` (YYYY-MM-DD), when it is: every audit then
/// denies with `advisory-db-stale`.
pub fn staleness(db: &AdvisoryDb, policy: &AdvisoryPolicy, today: &str) -> Option<String> {
    let (now, newest) = (days(today)?, days(&db.newest)?);
    (now - newest > i64::from(policy.max_db_age_days)).then(|| {
        format!(
            "the advisory database's newest advisory is from {} ({} days ago), older than the policy's {} days: sync it",
            db.newest,
            now - newest,
            policy.max_db_age_days
        )
    })
}

/// Checks every registry package of `lockfile` against `db`. `today` is YYYY-MM-DD.
pub fn check(
    lockfile: &Lockfile,
    db: &AdvisoryDb,
    policy: &AdvisoryPolicy,
    today: &str,
) -> (Vec<Match>, Vec<Finding>) {
    let mut findings = Vec::new();
    if let Some(message) = staleness(db, policy, today) {
        findings.push(Finding::deny(FindingCode::AdvisoryDbStale, message));
    }
    let mut matches = Vec::new();
    for package in &lockfile.packages {
        if !package
            .source
            .as_ref()
            .is_some_and(|s| s.is_registry() || s.is_remote_registry() || s.is_default_registry())
        {
            continue;
        }
        let query = Query::new()
            .collection(rustsec::Collection::Crates)
            .withdrawn(false)
            .package_name(package.name.clone())
            .package_version(package.version.clone());
        for advisory in db.db.query(&query) {
            let kind = match &advisory.metadata.informational {
                None => "vulnerability".to_owned(),
                Some(info) => info.as_str().to_owned(),
            };
            let action = match &advisory.metadata.informational {
                None => {
                    let severity = match advisory.severity() {
                        Some(s) => match s {
                            rustsec::advisory::Severity::None => AdvisorySeverity::None,
                            rustsec::advisory::Severity::Low => AdvisorySeverity::Low,
                            rustsec::advisory::Severity::Medium => AdvisorySeverity::Medium,
                            rustsec::advisory::Severity::High => AdvisorySeverity::High,
                            rustsec::advisory::Severity::Critical => AdvisorySeverity::Critical,
                        },
                        None => AdvisorySeverity::None,
                    };
                    if severity < policy.severity_threshold && policy.vulnerability == Action::Deny
                    {
                        Action::Review
                    } else {
                        policy.vulnerability
                    }
                }
                Some(Informational::Unmaintained) => policy.unmaintained,
                Some(Informational::Unsound) => policy.unsound,
                Some(Informational::Notice) => policy.notice,
                Some(_) => policy.notice,
            };
            let m = Match {
                id: advisory.id().as_str().to_owned(),
                package: package.name.as_str().to_owned(),
                version: package.version.to_string(),
                kind: kind.clone(),
                title: advisory.title().to_owned(),
            };
            if let Some(severity) = action.severity() {
                findings.push(
                    Finding::new(
                        advisory_code(advisory.metadata.informational.as_ref()),
                        severity,
                        format!("{} {}@{}: {}", m.id, m.package, m.version, m.title),
                    )
                    .about(&m.package, &m.version),
                );
            }
            matches.push(m);
        }
    }
    (matches, findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days_are_right() {
        assert_eq!(days("1970-01-01"), Some(0));
        assert_eq!(days("2000-03-01"), Some(11_017));
        assert_eq!(
            days("2026-11-23").unwrap() - days("2026-08-21").unwrap(),
            94
        );
        assert_eq!(days("garbage"), None);
    }
}
