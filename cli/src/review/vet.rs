//! `kiln review export-vet`: the approvals as a cargo-vet `audits.toml`, for other projects to
//! import.

use anyhow::Result;
use clap::Args;
use kiln_wire::review::Decision;
use kiln_wire::submissions::{Submission, SubmissionDetail};

use crate::client::{Client, Connection};

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    connection: Connection,
}

pub(crate) async fn export_vet(args: ExportArgs) -> Result<()> {
    let client = Client::new(&args.connection)?;
    let approved: Vec<Submission> = client
        .get_json("/api/kiln/v1/submissions?state=approved")
        .await?;
    let mut out = String::from(
        "# cargo-vet audits exported by kiln: every version its reviewers approved.\n",
    );
    for s in &approved {
        let detail: SubmissionDetail = client
            .get_json(&format!(
                "/api/kiln/v1/submissions/{}/{}",
                s.krate, s.version
            ))
            .await?;
        let review = detail
            .reviews
            .iter()
            .rfind(|r| r.decision == Decision::Approve);
        let criteria = review
            .and_then(|r| r.criteria.as_deref())
            .unwrap_or("safe-to-run");
        let who = review.map_or("kiln", |r| r.reviewer.as_str());
        let mut entry = toml::Table::new();
        entry.insert("who".into(), toml::Value::String(who.to_owned()));
        entry.insert("criteria".into(), toml::Value::String(criteria.to_owned()));
        entry.insert("version".into(), toml::Value::String(s.version.clone()));
        entry.insert(
            "notes".into(),
            toml::Value::String(format!(
                "Approved in kiln after audit and a sandboxed build; .crate sha256 {}",
                s.checksum.hex()
            )),
        );
        out.push_str(&format!(
            "\n[[audits.{}]]\n{}",
            toml_key(&s.krate),
            toml::to_string(&entry)?
        ));
    }
    print!("{out}");
    Ok(())
}

/// A crate name as a TOML key (quoted when it is not a bare key).
fn toml_key(name: &str) -> String {
    if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        name.to_owned()
    } else {
        format!("{name:?}")
    }
}
