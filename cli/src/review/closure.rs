//! A version's closure as one review: `kiln review show NAME@VERSION --closure` (every package a
//! dependent's build resolves, dependencies first), `kiln review approve NAME@VERSION --closure`
//! (all of it in one transaction, or nothing), and `kiln review curate NAME@VERSION --features`
//! (a new round that covers more features).

use anyhow::Result;
use clap::Args;
use kiln_wire::FeatureSet;
use kiln_wire::review::{
    Approval, ClosureApproved, ClosureEntry, ClosureReview, CurateRequest, Curation, Standing,
};

use super::{print_table, split_target};
use crate::client::{Client, Connection};
use crate::style::Style;

#[derive(Debug, Args)]
pub(crate) struct CurateArgs {
    /// The version, as NAME@VERSION.
    #[arg(value_name = "NAME@VERSION")]
    target: String,
    /// The features to cover as well, comma-separated (`default` for the default ones).
    #[arg(long, value_delimiter = ',', required = true, value_name = "FEATURES")]
    features: Vec<String>,
    #[command(flatten)]
    connection: Connection,
}

pub(super) async fn show(client: &Client, name: &str, version: &str, json: bool) -> Result<()> {
    let review: ClosureReview = client
        .get_json(&format!(
            "/api/kiln/v1/submissions/{name}/{version}/closure"
        ))
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&review)?);
        return Ok(());
    }
    let style = Style::detect();
    let rows: Vec<Vec<String>> = review.members.iter().map(entry_row).collect();
    print_table(
        style,
        &[
            "crate",
            "version",
            "state",
            "verdict",
            "standing",
            "licence",
            "build-time code",
            "advisories",
            "features",
        ],
        &rows,
    );
    for entry in &review.members {
        let notes: Vec<String> = entry
            .findings
            .iter()
            .map(|f| format!("  {:<6} [{}] {}", f.severity.as_str(), f.code, f.message))
            .chain(
                entry
                    .state_reason
                    .iter()
                    .map(|r| format!("  {}", r.lines().next().unwrap_or_default())),
            )
            .collect();
        if !notes.is_empty() {
            println!("\n{}@{}:", style.bold(&entry.krate), entry.version);
            for note in notes {
                println!("{note}");
            }
        }
    }
    let new = review
        .members
        .iter()
        .filter(|e| e.standing != Standing::Approved)
        .count();
    println!(
        "\n{}: {} packages, {} not approved for what the closure needs",
        review.root,
        review.members.len(),
        new
    );
    Ok(())
}

fn entry_row(entry: &ClosureEntry) -> Vec<String> {
    let build_time = match (entry.build_script, entry.proc_macro) {
        (true, true) => "build script, proc-macro",
        (true, false) => "build script",
        (false, true) => "proc-macro",
        (false, false) => "-",
    };
    let dash = |items: &[String]| {
        if items.is_empty() {
            "-".to_owned()
        } else {
            items.join(", ")
        }
    };
    vec![
        entry.krate.clone(),
        entry.version.clone(),
        entry
            .state
            .map_or_else(|| "missing".to_owned(), |s| s.as_str().to_owned()),
        entry
            .verdict
            .map_or_else(|| "-".to_owned(), |v| v.as_str().to_owned()),
        entry.standing.as_str().to_owned(),
        entry.license.clone().unwrap_or_else(|| "-".into()),
        build_time.to_owned(),
        dash(&entry.advisories),
        entry.features.describe(),
    ]
}

pub(super) async fn approve(
    client: &Client,
    name: &str,
    version: &str,
    approval: &Approval,
) -> Result<()> {
    let approved: ClosureApproved = client
        .post_json(
            &format!("/api/kiln/v1/submissions/{name}/{version}/approve-closure"),
            approval,
        )
        .await?;
    for subject in &approved.approved {
        println!("approved {subject}");
    }
    let now = approved.approved.len();
    println!(
        "approved the closure of {name}@{version} ({}): {now} version{} now, {} approved before; all of it is in the index",
        approval.criteria.as_deref().unwrap_or("safe-to-run"),
        if now == 1 { "" } else { "s" },
        approved.present.len()
    );
    Ok(())
}

pub(super) async fn curate(args: CurateArgs) -> Result<()> {
    let (name, version) = split_target(&args.target)?;
    let client = Client::new(&args.connection)?;
    let request = CurateRequest {
        features: FeatureSet::of(args.features.iter().map(|f| f.trim().to_owned())),
    };
    let curation: Curation = client
        .post_json(
            &format!("/api/kiln/v1/submissions/{name}/{version}/curate"),
            &request,
        )
        .await?;
    if curation.started {
        println!(
            "{} is in a new review round for features {}: audit, build, then kiln review approve {}",
            curation.subject, curation.features, curation.subject
        );
    } else {
        println!(
            "{} is reviewed for features {} already",
            curation.subject, curation.features
        );
    }
    Ok(())
}
