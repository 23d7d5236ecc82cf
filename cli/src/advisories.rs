//! `kiln advisories status|sync`: the RustSec advisory database, either a local directory
//! (`--db DIR`) or the kiln server's own (without `--db`). Syncing the server's database
//! re-audits every approved version against it and reports the ones newly affected.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use kiln_policy::checks::advisories::AdvisoryDb;

use crate::client::{Client, Connection};

#[derive(Debug, Subcommand)]
pub(crate) enum AdvisoriesCommand {
    /// Show the database's revision, size and age.
    Status {
        /// A local database directory (without it: the server's).
        #[arg(long, value_name = "DIR", env = "KILN_ADVISORY_DB")]
        db: Option<PathBuf>,
        #[command(flatten)]
        connection: Connection,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Replace the database with a newer one from a directory or a git URL.
    Sync {
        /// A directory (a snapshot) or a git URL (https://github.com/rustsec/advisory-db.git);
        /// for the server, default: its --advisory-source.
        #[arg(long, value_name = "SOURCE")]
        from: Option<String>,
        /// A local database directory to replace (without it: the server's).
        #[arg(long, value_name = "DIR")]
        db: Option<PathBuf>,
        #[command(flatten)]
        connection: Connection,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(command: AdvisoriesCommand) -> Result<()> {
    match command {
        AdvisoriesCommand::Status {
            db: Some(path),
            json,
            ..
        } => {
            let db = AdvisoryDb::open(&path)?;
            let status = serde_json::json!({
                "path": db.path, "revision": db.revision, "advisories": db.count, "newest": db.newest,
            });
            print_status(&status, json)
        }
        AdvisoriesCommand::Status {
            db: None,
            connection,
            json,
        } => {
            let status: serde_json::Value = runtime()?.block_on(async {
                Client::new(&connection)?
                    .get_json("/api/kiln/v1/advisories")
                    .await
            })?;
            print_status(&status, json)
        }
        AdvisoriesCommand::Sync {
            from,
            db: Some(path),
            json,
            ..
        } => {
            let from = from.context("a local sync needs --from SOURCE")?;
            let (outcome, _) = kiln_registry::advisory_db::sync(&from, &path)?;
            let value = serde_json::json!({ "sync": outcome });
            print_sync(&value, json)
        }
        AdvisoriesCommand::Sync {
            from,
            db: None,
            connection,
            json,
        } => {
            let value: serde_json::Value = runtime()?.block_on(async {
                Client::new(&connection)?
                    .post_json(
                        "/api/kiln/v1/advisories/sync",
                        &serde_json::json!({ "from": from }),
                    )
                    .await
            })?;
            print_sync(&value, json)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("starting the async runtime")
}

fn print_status(status: &serde_json::Value, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(status)?);
        return Ok(());
    }
    let text = |key: &str| status[key].as_str().unwrap_or("-").to_owned();
    println!("path:       {}", text("path"));
    println!("revision:   {}", text("revision"));
    println!("advisories: {}", status["advisories"]);
    println!("newest:     {}", text("newest"));
    Ok(())
}

fn print_sync(value: &serde_json::Value, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
        return Ok(());
    }
    let sync = &value["sync"];
    if sync["after"].is_null() {
        bail!("the sync answered without a revision: {value}");
    }
    let before = sync["before"].as_str().unwrap_or("(none)");
    let after = sync["after"].as_str().unwrap_or_default();
    if before == after {
        println!("unchanged at {after} ({} advisories)", sync["advisories"]);
    } else {
        println!(
            "synced {before} -> {after} ({} advisories, newest {})",
            sync["advisories"],
            sync["newest"].as_str().unwrap_or("-")
        );
    }
    if let Some(reaudit) = value.get("reaudit").filter(|r| !r.is_null()) {
        let affected = reaudit["affected"].as_array().cloned().unwrap_or_default();
        println!(
            "re-audited {} approved versions: {} newly affected",
            reaudit["checked"],
            affected.len()
        );
        for a in &affected {
            println!(
                "  {}@{}: {}{}",
                a["crate"].as_str().unwrap_or("?"),
                a["version"].as_str().unwrap_or("?"),
                a["advisories"]
                    .as_array()
                    .map(|ids| ids
                        .iter()
                        .filter_map(|i| i.as_str())
                        .collect::<Vec<_>>()
                        .join(", "))
                    .unwrap_or_default(),
                if a["revoked"].as_bool() == Some(true) {
                    " (revoked)"
                } else {
                    ""
                }
            );
        }
    }
    Ok(())
}
