//! The licences check: every crate's SPDX expression (or the policy's clarification of it) must
//! be satisfiable with the allowed licences alone. Old `MIT/Apache-2.0` syntax is read leniently.

pub mod cfg;

pub use self::cfg::LicensePolicy;
use crate::checks::crates::CrateInfo;
use crate::findings::{Finding, FindingCode};

/// Licence findings for `crates`.
pub fn check(crates: &[CrateInfo], policy: &LicensePolicy) -> Vec<Finding> {
    let mut findings = Vec::new();
    for krate in crates {
        let subject = format!("{}@{}", krate.name, krate.version);
        let declared = policy.clarify.get(&krate.name).or(krate.license.as_ref());
        let Some(text) = declared else {
            if let Some(severity) = policy.unlicensed.severity() {
                let file = krate.license_file.as_deref().map_or_else(String::new, |f| {
                    format!(" (only a licence file, {f}; clarify it in the policy)")
                });
                findings.push(
                    Finding::new(
                        FindingCode::LicenseMissing,
                        severity,
                        format!("{subject} declares no licence expression{file}"),
                    )
                    .with_subject(&subject),
                );
            }
            continue;
        };
        let expression = match spdx::Expression::parse_mode(text, spdx::ParseMode::LAX) {
            Ok(expression) => expression,
            Err(err) => {
                findings.push(
                    Finding::deny(
                        FindingCode::LicenseInvalid,
                        format!("{subject}: `{text}` is not an SPDX expression: {err}"),
                    )
                    .with_subject(&subject),
                );
                continue;
            }
        };
        let allowed = expression.evaluate(|req| {
            req.addition.is_none()
                && matches!(&req.license, spdx::LicenseItem::Spdx { id, .. } if policy.allow.contains(id.name))
        });
        if !allowed {
            findings.push(
                Finding::deny(
                    FindingCode::LicenseDenied,
                    format!(
                        "{subject} is licensed `{text}`, which the allowed licences do not satisfy"
                    ),
                )
                .with_subject(&subject),
            );
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn krate(name: &str, license: Option<&str>) -> CrateInfo {
        CrateInfo {
            name: name.into(),
            version: "1.0.0".into(),
            license: license.map(str::to_owned),
            license_file: None,
            build_script: false,
            proc_macro: false,
            links: None,
            checksum: None,
        }
    }

    #[test]
    fn expressions_are_evaluated_against_the_allow_list() {
        let policy = LicensePolicy {
            allow: ["MIT".to_owned(), "Apache-2.0".to_owned()].into(),
            unlicensed: crate::config::Action::Deny,
            clarify: [("ring".to_owned(), "MIT".to_owned())].into(),
        };
        let crates = [
            krate("a", Some("MIT OR Apache-2.0")),
            krate("b", Some("MIT/Apache-2.0")),
            krate("c", Some("GPL-3.0-only")),
            krate("d", Some("MIT AND GPL-2.0-only")),
            krate("e", None),
            krate("ring", Some("LicenseRef-ring")),
            krate("f", Some("not ( a licence")),
        ];
        let codes: Vec<(String, String)> = check(&crates, &policy)
            .into_iter()
            .map(|f| {
                (
                    f.code.to_string(),
                    f.message.split('@').next().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            codes,
            [
                ("license-denied".to_owned(), "c".to_owned()),
                ("license-denied".to_owned(), "d".to_owned()),
                ("license-missing".to_owned(), "e".to_owned()),
                ("license-invalid".to_owned(), "f".to_owned()),
            ]
        );
    }
}
