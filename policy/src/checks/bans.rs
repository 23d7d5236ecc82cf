//! The bans check: crates (or some of their versions) the policy never allows.

pub mod cfg;

use rustsec::Lockfile;

pub use self::cfg::Ban;
use crate::findings::{Finding, FindingCode};

/// The banned crates in `lockfile`.
pub fn check(lockfile: &Lockfile, bans: &[Ban]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for package in &lockfile.packages {
        let start = findings.len();
        for ban in bans.iter().filter(|b| b.name == package.name.as_str()) {
            let version = semver::Version::parse(&package.version.to_string()).ok();
            let applies = match (&ban.version, &version) {
                (None, _) => true,
                (Some(req), Some(version)) => req.matches(version),
                (Some(_), None) => false,
            };
            if applies {
                let reason = ban
                    .reason
                    .as_deref()
                    .map_or_else(String::new, |r| format!(": {r}"));
                findings.push(Finding::deny(
                    FindingCode::Banned,
                    format!(
                        "{}@{} is banned by the policy{reason}",
                        package.name, package.version
                    ),
                ));
            }
        }
        for finding in &mut findings[start..] {
            finding.subject = Some(format!("{}@{}", package.name, package.version));
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bans_match_names_and_versions() {
        let lock: Lockfile = "version = 4\n[[package]]\nname = \"time\"\nversion = \"0.1.43\"\n\n[[package]]\nname = \"openssl-sys\"\nversion = \"0.9.0\"\n\n[[package]]\nname = \"serde\"\nversion = \"1.0.0\"\n"
            .parse()
            .unwrap();
        let bans = vec![
            Ban {
                name: "time".into(),
                version: Some("<0.2.23".parse().unwrap()),
                reason: Some("RUSTSEC-2020-0071".into()),
            },
            Ban {
                name: "openssl-sys".into(),
                version: None,
                reason: None,
            },
            Ban {
                name: "serde".into(),
                version: Some(">=2".parse().unwrap()),
                reason: None,
            },
        ];
        let findings = check(&lock, &bans);
        assert_eq!(findings.len(), 2);
        assert!(
            findings[0]
                .message
                .contains("time@0.1.43 is banned by the policy: RUSTSEC-2020-0071")
        );
        assert!(findings[1].message.contains("openssl-sys@0.9.0"));
    }
}
