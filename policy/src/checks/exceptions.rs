//! Exceptions: a policy accepts a finding for one crate, with a reason and an expiry date. A
//! live exception turns the matching finding into an info finding that says why it was accepted;
//! an expired one accepts nothing and is itself a finding; one that matches nothing is reported
//! as stale, so that exceptions do not outlive their reason unnoticed.

pub mod cfg;

pub use self::cfg::Exception;
use crate::findings::{Finding, FindingCode, Severity};

fn matches(exception: &Exception, finding: &Finding) -> bool {
    exception.code == finding.code
        && finding.subject.as_deref().is_some_and(|subject| {
            subject == exception.krate
                || subject
                    .split_once('@')
                    .is_some_and(|(name, _)| name == exception.krate)
        })
}

/// Applies `exceptions` to `findings` on `today` (YYYY-MM-DD).
pub fn apply(mut findings: Vec<Finding>, exceptions: &[Exception], today: &str) -> Vec<Finding> {
    let mut extra = Vec::new();
    for exception in exceptions {
        let expired = exception.until.as_str() < today;
        let mut matched = false;
        for finding in findings.iter_mut().filter(|f| matches(exception, f)) {
            matched = true;
            if !expired {
                finding.severity = Severity::Info;
                finding.message = format!(
                    "{} (accepted until {}: {})",
                    finding.message, exception.until, exception.reason
                );
            }
        }
        let what = format!(
            "the exception for `{}` on `{}`",
            exception.code, exception.krate
        );
        if expired {
            extra.push(Finding::review(
                FindingCode::ExceptionExpired,
                format!(
                    "{what} expired on {}; renew it with a reason or fix the finding",
                    exception.until
                ),
            ));
        } else if !matched {
            extra.push(Finding::info(
                FindingCode::ExceptionStale,
                format!("{what} matches no finding; remove it"),
            ));
        }
    }
    findings.extend(extra);
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::Verdict;

    fn exception(code: &str, krate: &str, until: &str) -> Exception {
        Exception {
            code: code.into(),
            krate: krate.into(),
            reason: "tracked in OPS-1".into(),
            until: until.into(),
        }
    }

    #[test]
    fn live_expired_and_stale_exceptions() {
        let findings = vec![
            Finding::review(
                FindingCode::AdvisoryUnmaintained,
                "RUSTSEC-X instant@0.1.12: unmaintained",
            )
            .about("instant", "0.1.12"),
            Finding::deny(FindingCode::Banned, "time@0.1.43 is banned").about("time", "0.1.43"),
        ];
        let exceptions = [
            exception("advisory-unmaintained", "instant@0.1.12", "2027-01-31"),
            exception("banned", "time", "2026-01-01"),
            exception("license-denied", "nothing", "2027-01-31"),
        ];
        let out = apply(findings, &exceptions, "2026-11-23");
        assert_eq!(out[0].severity, Severity::Info);
        assert!(
            out[0]
                .message
                .contains("accepted until 2027-01-31: tracked in OPS-1"),
            "{}",
            out[0].message
        );
        assert_eq!(
            out[1].severity,
            Severity::Deny,
            "an expired exception accepts nothing"
        );
        assert_eq!(out[2].code, "exception-expired");
        assert_eq!(out[3].code, "exception-stale");
        assert_eq!(Verdict::of(&out), Verdict::Deny);
    }

    #[test]
    fn an_exception_for_one_version_does_not_cover_another() {
        let findings = vec![Finding::deny(FindingCode::Banned, "x").about("time", "0.1.44")];
        let out = apply(
            findings,
            &[exception("banned", "time@0.1.43", "2030-01-01")],
            "2026-11-23",
        );
        assert_eq!(out[0].severity, Severity::Deny);
        assert_eq!(out[1].code, "exception-stale");
    }
}
