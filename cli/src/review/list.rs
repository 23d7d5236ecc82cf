//! `kiln review list`: the submissions, as a table (crate, version, state, verdict, findings,
//! age).

use anyhow::Result;
use clap::Args;
use kiln_wire::VersionState;
use kiln_wire::submissions::{Submission, SubmissionDetail};

use super::table::{age, now_ms, print_table};
use crate::client::{Client, Connection};
use crate::style::Style;

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only this state (submitted, audited, built, approved, rejected, failed).
    #[arg(long)]
    state: Option<VersionState>,
    #[command(flatten)]
    connection: Connection,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// The rows of `kiln review list`: crate, version, state, verdict, findings, age.
pub(crate) fn list_rows(details: &[SubmissionDetail], now: i64) -> Vec<[String; 6]> {
    details
        .iter()
        .map(|d| {
            let s = &d.submission;
            let audit = d.reports.audit.as_ref();
            [
                s.krate.clone(),
                s.version.clone(),
                s.state.to_string(),
                audit.map_or("-".to_owned(), |a| a.verdict.as_str().to_owned()),
                audit.map_or(0, |a| a.findings.len()).to_string(),
                age(now, s.created_at),
            ]
        })
        .collect()
}

pub(crate) async fn list(args: ListArgs) -> Result<()> {
    let client = Client::new(&args.connection)?;
    let path = match &args.state {
        Some(state) => format!("/api/kiln/v1/submissions?state={state}"),
        None => "/api/kiln/v1/submissions".to_owned(),
    };
    let submissions: Vec<Submission> = client.get_json(&path).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&submissions)?);
        return Ok(());
    }
    let mut details = Vec::new();
    for s in &submissions {
        details.push(
            client
                .get_json::<SubmissionDetail>(&format!(
                    "/api/kiln/v1/submissions/{}/{}",
                    s.krate, s.version
                ))
                .await?,
        );
    }
    let rows: Vec<Vec<String>> = list_rows(&details, now_ms())
        .into_iter()
        .map(Vec::from)
        .collect();
    print_table(
        Style::detect(),
        &["CRATE", "VERSION", "STATE", "VERDICT", "FINDINGS", "AGE"],
        &rows,
    );
    Ok(())
}
