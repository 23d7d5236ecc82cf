//! The approvals as a cargo-vet feed: `GET /vet/audits.toml`, in cargo-vet's canonical form
//! (what `cargo vet fmt` writes), for other projects to list under `[imports]`.
//!
//! Each approved, unrevoked version is one full audit by the reviewer who approved it, with the
//! criteria the reviewer gave (`kiln review approve --criteria`; `safe-to-run` unless they say
//! otherwise: kiln's sandbox is what makes a kernel safe to run, and only a reviewer can say a
//! crate is `safe-to-deploy` outside it). Criteria other than cargo-vet's built-in ones are
//! defined in the file so that an importer can map them.

use std::collections::BTreeMap;

use kiln_policy::Digest;
use sqlx::Row as _;

use crate::db::Db;
use crate::model::{ModelResult, corrupt};

/// cargo-vet's built-in criteria.
const BUILT_IN: [&str; 2] = ["safe-to-deploy", "safe-to-run"];

/// One approval, as the feed lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VetAudit {
    /// The crate.
    pub krate: String,
    /// The version.
    pub version: semver::Version,
    /// Who approved it (their kiln login).
    pub who: String,
    /// What the approval vouches for.
    pub criteria: String,
    /// The `.crate`'s SHA-256.
    pub checksum: Digest,
}

/// Every approved version that is not revoked, with its latest approval.
pub async fn approvals(db: &Db) -> ModelResult<Vec<VetAudit>> {
    let rows = sqlx::query(
        "SELECT c.name, v.version, v.checksum, u.login, r.criteria FROM versions v \
         JOIN crates c ON c.id = v.crate_id \
         JOIN reviews r ON r.version_id = v.id \
         JOIN users u ON u.id = r.reviewer \
         WHERE v.approved_features IS NOT NULL \
         AND r.id = (SELECT MAX(r2.id) FROM reviews r2 WHERE r2.version_id = v.id AND r2.decision = 'approve') \
         AND NOT EXISTS (SELECT 1 FROM revocations x WHERE x.version_id = v.id)",
    )
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(VetAudit {
                krate: row.get("name"),
                version: row
                    .get::<String, _>("version")
                    .parse()
                    .map_err(|err| corrupt("a version", err))?,
                who: row.get("login"),
                criteria: row
                    .get::<Option<String>, _>("criteria")
                    .unwrap_or_else(|| "safe-to-run".to_owned()),
                checksum: Digest::from_hex(&row.get::<String, _>("checksum"))
                    .map_err(|err| corrupt("a version's checksum", err))?,
            })
        })
        .collect()
}

/// A TOML basic string.
fn string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A key, bare when TOML allows it.
fn key(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        text.to_owned()
    } else {
        string(text)
    }
}

/// `audits` as cargo-vet's `audits.toml`, in its canonical order and layout: custom criteria
/// first, then each crate's audits by version, criteria, reviewer and notes.
pub fn render(audits: &[VetAudit]) -> String {
    let mut by_crate: BTreeMap<&str, Vec<(&VetAudit, String)>> = BTreeMap::new();
    for audit in audits {
        let notes = format!(
            "Approved in kiln after its audit and a sandboxed build of .crate sha256:{}",
            audit.checksum.hex()
        );
        by_crate
            .entry(audit.krate.as_str())
            .or_default()
            .push((audit, notes));
    }
    let mut out = String::from("\n# cargo-vet audits file\n");
    let custom: std::collections::BTreeSet<&str> = audits
        .iter()
        .map(|a| a.criteria.as_str())
        .filter(|c| !BUILT_IN.contains(c))
        .collect();
    for criteria in &custom {
        out.push_str(&format!(
            "\n[criteria.{}]\ndescription = {}\n",
            key(criteria),
            string(&format!(
                "Approved by a kiln reviewer as `{criteria}` (a criteria of this kiln deployment)"
            ))
        ));
    }
    if by_crate.is_empty() {
        out.push_str("\n[audits]\n");
        return out;
    }
    for (krate, mut entries) in by_crate {
        entries.sort_by(|(a, a_notes), (b, b_notes)| {
            (&a.version, &a.criteria, &a.who, a_notes).cmp(&(
                &b.version,
                &b.criteria,
                &b.who,
                b_notes,
            ))
        });
        for (audit, notes) in entries {
            out.push_str(&format!(
                "\n[[audits.{}]]\nwho = {}\ncriteria = {}\nversion = {}\nnotes = {}\n",
                key(krate),
                string(&audit.who),
                string(&audit.criteria),
                string(&audit.version.to_string()),
                string(&notes),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audit(krate: &str, version: &str, criteria: &str) -> VetAudit {
        VetAudit {
            krate: krate.into(),
            version: version.parse().unwrap(),
            who: "rita".into(),
            criteria: criteria.into(),
            checksum: Digest::of(krate.as_bytes()),
        }
    }

    #[test]
    fn crates_sort_by_name_and_versions_by_semver() {
        let text = render(&[
            audit("zeta", "1.10.0", "safe-to-run"),
            audit("alpha", "0.1.0", "safe-to-deploy"),
            audit("zeta", "1.9.0", "safe-to-run"),
        ]);
        let alpha = text.find("[[audits.alpha]]").unwrap();
        let nine = text.find("version = \"1.9.0\"").unwrap();
        let ten = text.find("version = \"1.10.0\"").unwrap();
        assert!(alpha < nine && nine < ten, "{text}");
        assert!(
            text.starts_with("\n# cargo-vet audits file\n\n[[audits.alpha]]\nwho = \"rita\"\n")
        );
        assert!(
            !text.contains("[criteria."),
            "built-in criteria need no definition"
        );
    }

    #[test]
    fn custom_criteria_are_defined_and_odd_names_quoted() {
        let text = render(&[audit("a.b", "1.0.0", "kiln-sandboxed")]);
        assert!(
            text.contains("\n[criteria.kiln-sandboxed]\ndescription = "),
            "{text}"
        );
        assert!(text.contains("[[audits.\"a.b\"]]"), "{text}");
        assert_eq!(render(&[]), "\n# cargo-vet audits file\n\n[audits]\n");
    }
}
