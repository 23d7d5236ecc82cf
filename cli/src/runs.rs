//! `kiln runs prune`: prunes an executor's run store to the retention of its policy (runs older
//! than `run_retention_days`, and the oldest beyond `run_store_max_bytes` or
//! `run_store_max_runs`), with the notebooks and outputs no kept run refers to. The executor
//! prunes as it goes; this is for doing it now, or after lowering the bounds.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use kiln_executor::store::RunStore;
use kiln_policy::policy_file::Policy;

#[derive(Debug, Subcommand)]
pub(crate) enum RunsCommand {
    /// Prune the stored runs to the policy's retention now.
    Prune(PruneArgs),
}

#[derive(Debug, Args)]
pub(crate) struct PruneArgs {
    /// The executor's data directory (`kiln executor --data`, or `DATA/executor` of
    /// `kiln serve --data DATA`).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// The policy whose retention applies (default: kiln's built-in defaults).
    #[arg(long, value_name = "FILE", env = "KILN_POLICY")]
    policy: Option<PathBuf>,
}

pub(crate) fn run(command: RunsCommand) -> Result<()> {
    match command {
        RunsCommand::Prune(args) => prune(args),
    }
}

fn prune(args: PruneArgs) -> Result<()> {
    let policy = match &args.policy {
        Some(path) => Policy::load(path)?,
        None => Policy::parse("", "built-in defaults")?,
    };
    let retention = policy.execution.retention;
    let dir = args.data.join("runs");
    anyhow::ensure!(
        dir.join("runs.jsonl").is_file(),
        "{} holds no run store",
        args.data.display()
    );
    let store = RunStore::open(&dir, retention)
        .with_context(|| format!("opening the run store in {}", dir.display()))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let pruned = store.prune(now).context("pruning the run store")?;
    println!(
        "pruned {} runs and {} notebooks and outputs ({} bytes); {} runs kept (retention: {} days, {} bytes, {} runs)",
        pruned.runs,
        pruned.blobs,
        pruned.bytes,
        pruned.kept,
        retention.max_age_days,
        retention.max_bytes,
        retention.max_runs
    );
    Ok(())
}
