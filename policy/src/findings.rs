//! Findings and verdicts, shared by every check.
//!
//! A finding has a stable code ([`FindingCode`]: `wasm-import-denied`, `abi-missing-alloc`, …),
//! a severity and a message for people. The verdict of a set of findings is the worst severity in
//! it.

use serde::{Deserialize, Serialize};

pub use crate::codes::FindingCode;

/// How much a finding weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Worth knowing; changes nothing.
    Info,
    /// A person must look before approving.
    Review,
    /// Refused.
    Deny,
}

impl Severity {
    /// The severity's name (`info`, `review`, `deny`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Review => "review",
            Severity::Deny => "deny",
        }
    }
}

/// One thing a check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// A stable, machine-readable code.
    pub code: FindingCode,
    /// How much it weighs.
    pub severity: Severity,
    /// What was found, for people.
    pub message: String,
    /// The crate it is about (`NAME@VERSION`), when it is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

impl Finding {
    /// A finding with `code`, `severity` and `message`.
    pub fn new(code: FindingCode, severity: Severity, message: impl Into<String>) -> Self {
        Self {
            code,
            severity,
            message: message.into(),
            subject: None,
        }
    }

    /// The finding, about the crate `subject` (`NAME@VERSION`).
    pub fn with_subject(mut self, subject: &str) -> Self {
        self.subject = Some(subject.to_owned());
        self
    }

    /// The finding, about crate `name@version`.
    pub fn about(mut self, name: &str, version: &str) -> Self {
        self.subject = Some(format!("{name}@{version}"));
        self
    }

    /// A deny finding.
    pub fn deny(code: FindingCode, message: impl Into<String>) -> Self {
        Self::new(code, Severity::Deny, message)
    }

    /// A review finding.
    pub fn review(code: FindingCode, message: impl Into<String>) -> Self {
        Self::new(code, Severity::Review, message)
    }

    /// An info finding.
    pub fn info(code: FindingCode, message: impl Into<String>) -> Self {
        Self::new(code, Severity::Info, message)
    }
}

/// The outcome of a set of findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Nothing that needs a person or refuses.
    Pass,
    /// Something a person must look at.
    NeedsReview,
    /// Refused.
    Deny,
}

impl Verdict {
    /// The verdict of `findings`: deny if any denies, needs-review if any needs review.
    pub fn of<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> Self {
        match findings.into_iter().map(|f| f.severity).max() {
            Some(Severity::Deny) => Verdict::Deny,
            Some(Severity::Review) => Verdict::NeedsReview,
            _ => Verdict::Pass,
        }
    }

    /// The verdict's name (`pass`, `needs-review`, `deny`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::NeedsReview => "needs-review",
            Verdict::Deny => "deny",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_finding_decides() {
        assert_eq!(Verdict::of(&[]), Verdict::Pass);
        let info = Finding::info(FindingCode::WasmMemoryUnbounded, "x");
        let review = Finding::review(FindingCode::BuildScript, "x");
        let deny = Finding::deny(FindingCode::Banned, "x");
        assert_eq!(Verdict::of([&info]), Verdict::Pass);
        assert_eq!(Verdict::of([&info, &review]), Verdict::NeedsReview);
        assert_eq!(Verdict::of([&review, &deny, &info]), Verdict::Deny);
    }
}
