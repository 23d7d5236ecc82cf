//! `kiln review`: what an admin does with each submission. [`list`] the queue, [`show`] one
//! (audit, build, imports and exports, its dependencies and their approval, provenance) or its
//! [`closure`] (every package a dependent's build resolves, approved in one command),
//! [`diff`] its source against the last approved version, approve (the server signs a review
//! statement with its reviewer key) or reject with a reason, and [`vet`]: the approvals as a
//! cargo-vet `audits.toml`. [`table`] lays out what they print.

mod closure;
mod diff;
mod list;
mod show;
mod source;
mod table;
mod vet;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use kiln_wire::review::{Approval, Decided, Rejection};

use crate::client::{Client, Connection};
pub(crate) use table::print_table;

#[derive(Debug, Subcommand)]
pub(crate) enum ReviewCommand {
    /// The submissions, as a table (crate, version, state, verdict, findings, age).
    List(list::ListArgs),
    /// One submission: audit report, build, imports and exports, dependencies, provenance.
    Show(show::ShowArgs),
    /// The source diff against the last approved version (or --against VERSION), with build
    /// scripts, manifests, new dependencies, new imports and new `unsafe` called out.
    Diff(diff::DiffArgs),
    /// The files of any submission (a first version, a failed one), with what to read first
    /// called out; with PATH, that file.
    Source(source::SourceArgs),
    /// Approve a built version (signs a review statement with the server's reviewer key), or
    /// with --closure its whole audited and built closure, dependencies first.
    Approve(ApproveArgs),
    /// Extend the features a version's review covers: a new round (audit, build, review); an
    /// approved version stays approved for its earlier features meanwhile.
    Curate(closure::CurateArgs),
    /// Reject a version, with the reason the author will see.
    Reject(RejectArgs),
    /// Audit and build a failed version again, with the same bytes (admin): for a version kiln's
    /// own state failed (a stale advisory database, a job out of attempts), not its content.
    Retry(RetryArgs),
    /// The approvals as a cargo-vet audits.toml, for other projects to import.
    ExportVet(vet::ExportArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ApproveArgs {
    /// The version, as NAME@VERSION.
    #[arg(value_name = "NAME@VERSION")]
    target: String,
    /// What the approval vouches for (cargo-vet criteria).
    #[arg(long, default_value = "safe-to-run")]
    criteria: String,
    /// Approve every member of the version's closure that is not approved yet, dependencies
    /// first, in one transaction, each with its own signed review statement; nothing when a
    /// member is denied or not built.
    #[arg(long)]
    closure: bool,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Debug, Args)]
pub(crate) struct RejectArgs {
    /// The version, as NAME@VERSION.
    #[arg(value_name = "NAME@VERSION")]
    target: String,
    /// Why (shown to the author).
    #[arg(long)]
    reason: String,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Debug, Args)]
pub(crate) struct RetryArgs {
    /// The version, as NAME@VERSION.
    #[arg(value_name = "NAME@VERSION")]
    target: String,
    #[command(flatten)]
    connection: Connection,
}

/// Splits `NAME@VERSION`.
pub(crate) fn split_target(target: &str) -> Result<(&str, &str)> {
    match target.split_once('@') {
        Some((name, version)) if !name.is_empty() && !version.is_empty() => Ok((name, version)),
        _ => bail!("`{target}` is not NAME@VERSION"),
    }
}

pub(crate) fn run(command: ReviewCommand) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        match command {
            ReviewCommand::List(args) => list::list(args).await,
            ReviewCommand::Show(args) => show::show(args).await,
            ReviewCommand::Diff(args) => diff::diff(args).await,
            ReviewCommand::Source(args) => source::source(args).await,
            ReviewCommand::Approve(args) => approve(args).await,
            ReviewCommand::Curate(args) => closure::curate(args).await,
            ReviewCommand::Reject(args) => reject(args).await,
            ReviewCommand::Retry(args) => retry(args).await,
            ReviewCommand::ExportVet(args) => vet::export_vet(args).await,
        }
    })
}

async fn approve(args: ApproveArgs) -> Result<()> {
    let (name, version) = split_target(&args.target)?;
    let client = Client::new(&args.connection)?;
    let approval = Approval {
        criteria: Some(args.criteria.clone()),
        bundle: None,
    };
    if args.closure {
        return closure::approve(&client, name, version, &approval).await;
    }
    let _: Decided = client
        .post_json(
            &format!("/api/kiln/v1/submissions/{name}/{version}/approve"),
            &approval,
        )
        .await?;
    println!(
        "approved {name}@{version} ({}); it is in the index now",
        args.criteria
    );
    Ok(())
}

async fn reject(args: RejectArgs) -> Result<()> {
    let (name, version) = split_target(&args.target)?;
    let client = Client::new(&args.connection)?;
    let rejection = Rejection {
        reason: args.reason.clone(),
    };
    let _: Decided = client
        .post_json(
            &format!("/api/kiln/v1/submissions/{name}/{version}/reject"),
            &rejection,
        )
        .await?;
    println!("rejected {name}@{version}: {}", args.reason);
    Ok(())
}

async fn retry(args: RetryArgs) -> Result<()> {
    let (name, version) = split_target(&args.target)?;
    let client = Client::new(&args.connection)?;
    let _: Decided = client
        .post_json(
            &format!("/api/kiln/v1/submissions/{name}/{version}/retry"),
            &serde_json::json!({}),
        )
        .await?;
    println!(
        "{name}@{version} is submitted again: its audit and build run with the same bytes \
         (kiln review show {name}@{version} follows it)"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use kiln_wire::submissions::{Reports, Submission, SubmissionDetail};

    use super::*;

    #[test]
    fn the_list_table_names_state_verdict_findings_and_age() {
        let submission: Submission = serde_json::from_value(serde_json::json!({
            "crate": "kernel-x", "version": "0.2.0", "state": "built", "state_reason": null,
            "checksum": "00".repeat(32), "yanked": false, "published_by": "ada", "origin": null,
            "created_at": 0, "updated_at": 0
        }))
        .unwrap();
        let detail = SubmissionDetail {
            submission,
            dependencies: Vec::new(),
            reports: Reports::default(),
            artifacts: Vec::new(),
            reviews: Vec::new(),
        };
        let rows = list::list_rows(&[detail], 2 * 86_400_000 + 5);
        assert_eq!(
            rows,
            [[
                "kernel-x".to_owned(),
                "0.2.0".into(),
                "built".into(),
                "-".into(),
                "0".into(),
                "2d".into()
            ]]
        );
    }

    #[test]
    fn targets_must_name_a_version() {
        assert_eq!(split_target("a@1.0.0").unwrap(), ("a", "1.0.0"));
        assert!(split_target("a").is_err());
        assert!(split_target("@1").is_err());
    }
}
