//! What every section of a policy file shares: the error that names a line and column, the
//! actions a check takes, advisory severities and calendar dates.

use serde::Deserialize;

use crate::findings::Severity;

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

/// Turns a span of the policy text and a message into a [`PolicyError`] naming its line and
/// column; each section's validation reports through it.
pub(crate) type At<'a> = dyn Fn(std::ops::Range<usize>, String) -> PolicyError + 'a;

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
