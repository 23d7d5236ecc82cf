//! `kiln advisories status|sync`: the RustSec advisory database, either a local directory
//! (`--db DIR`) or the kiln server's own (without `--db`). Syncing the server's database
//! re-audits every approved version against it and reports the ones newly affected.

use kiln_wire::admin::{AdvisoryStatus, SyncRequest, SyncResponse};
use std::path::PathBuf;

use anyhow::{Context as _, Result};
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
        /// A directory (a snapshot) or a git URL (<https://github.com/rustsec/advisory-db.git>);
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
            let status = AdvisoryStatus {
                path: db.path,
                revision: db.revision,
                advisories: db.count,
                newest: db.newest,
                max_age_days: kiln_policy::policy_file::Policy::parse("", "built-in defaults")?
                    .advisories
                    .max_db_age_days,
                source: None,
            };
            print_status(&status, json)
        }
        AdvisoriesCommand::Status {
            db: None,
            connection,
            json,
        } => {
            let status: AdvisoryStatus = runtime()?.block_on(async {
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
            print_sync(
                &SyncResponse {
                    sync: outcome,
                    reaudit: None,
                },
                json,
            )
        }
        AdvisoriesCommand::Sync {
            from,
            db: None,
            connection,
            json,
        } => {
            let value: SyncResponse = runtime()?.block_on(async {
                Client::new(&connection)?
                    .post_json("/api/kiln/v1/advisories/sync", &SyncRequest { from })
                    .await
            })?;
            print_sync(&value, json)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("starting the async runtime")
}

fn print_status(status: &AdvisoryStatus, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(status)?);
        return Ok(());
    }
    println!("path:       {}", status.path);
    println!("revision:   {}", status.revision);
    println!("advisories: {}", status.advisories);
    println!("newest:     {}", status.newest);
    Ok(())
}

fn print_sync(value: &SyncResponse, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
        return Ok(());
    }
    let sync = &value.sync;
    let before = sync.before.as_deref().unwrap_or("(none)");
    if !sync.changed() {
        println!(
            "unchanged at {} ({} advisories)",
            sync.after, sync.advisories
        );
    } else {
        println!(
            "synced {before} -> {} ({} advisories, newest {})",
            sync.after, sync.advisories, sync.newest
        );
    }
    if let Some(reaudit) = &value.reaudit {
        println!(
            "re-audited {} approved versions: {} newly affected",
            reaudit.checked,
            reaudit.affected.len()
        );
        for a in &reaudit.affected {
            println!(
                "  {}@{}: {}{}",
                a.krate,
                a.version,
                a.advisories.join(", "),
                if a.revoked { " (revoked)" } else { "" }
            );
        }
    }
    Ok(())
}
