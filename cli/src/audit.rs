//! `kiln audit Cargo.lock`: the lockfile's crates against the RustSec advisory database, the
//! policy's bans, (with `--registry-index`) the allowed sources, (with `--manifest-path`) the
//! licences and build-time code, and the policy's Rego rules, under a policy (kiln's defaults
//! unless `--policy`). A report for people, or the audit report's JSON (`--json`) for scripts.
//! Exits 1 when the verdict is deny.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use kiln_policy::audit::{AuditInput, Auditor};
use kiln_policy::checks::advisories::{self, AdvisoryDb};
use kiln_policy::checks::crates::{self, CrateInfo};
use kiln_policy::findings::Verdict;
use kiln_policy::policy_file::Policy;

#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    /// The lockfile.
    #[arg(value_name = "LOCKFILE")]
    lockfile: PathBuf,
    /// The advisory database directory (default: the policy's `advisories.db`).
    #[arg(long, value_name = "DIR", env = "KILN_ADVISORY_DB")]
    db: Option<PathBuf>,
    /// This registry's index URL: crates from anywhere else (and git or path dependencies) are
    /// denied. Without it the sources check is not run.
    #[arg(long, value_name = "URL", env = "KILN_REGISTRY_INDEX")]
    registry_index: Option<String>,
    /// The crate's Cargo.toml: `cargo metadata` (offline) then feeds the licence and build-time
    /// code checks.
    #[arg(long, value_name = "PATH")]
    manifest_path: Option<PathBuf>,
    /// The policy file (default: kiln's built-in defaults, as in policies/default.toml).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn today() -> String {
    let now = std::time::SystemTime::now();
    humantime::format_rfc3339_seconds(now).to_string()[..10].to_owned()
}

pub(crate) fn run(args: AuditArgs) -> Result<()> {
    let policy = match &args.policy {
        Some(path) => Policy::load(path)?,
        None => Policy::parse("", "built-in defaults")?,
    };
    let db_path = args
        .db
        .clone()
        .or_else(|| policy.advisories.db.clone())
        .context("no advisory database: pass --db DIR (a clone of rustsec/advisory-db) or set advisories.db in the policy")?;
    let db = AdvisoryDb::open(&db_path)?;
    let text = std::fs::read_to_string(&args.lockfile)
        .with_context(|| format!("reading {}", args.lockfile.display()))?;
    let lockfile = advisories::parse_lockfile(&text)
        .with_context(|| format!("{}", args.lockfile.display()))?;
    let crates = match &args.manifest_path {
        Some(manifest) => Some(crate_infos(manifest, &lockfile)?),
        None => None,
    };
    let today = today();
    let report = Auditor {
        policy: &policy,
        db: &db,
    }
    .audit(&AuditInput {
        subject: None,
        lockfile: &lockfile,
        crates: crates.as_deref(),
        registry_index: args.registry_index.as_deref(),
        approved_names: &[],
        today: &today,
        features: None,
        curated: &[],
        manifest: None,
        registry_aliases: &[],
    })?;
    let verdict = report.verdict;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render_text());
    }
    if verdict == Verdict::Deny {
        bail!("{} is denied by the audit", args.lockfile.display());
    }
    Ok(())
}

/// What `cargo metadata --offline` says about each crate of `manifest`'s build.
fn crate_infos(
    manifest: &std::path::Path,
    lockfile: &advisories::Lockfile,
) -> Result<Vec<CrateInfo>> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .manifest_path(manifest)
        .other_options(vec!["--offline".to_owned()])
        .exec()
        .map_err(|err| {
            let text = err.to_string();
            let detail: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            anyhow::anyhow!(
                "cargo metadata --offline for {} failed (its dependencies must be downloaded or vendored): {}",
                manifest.display(),
                detail.join(" ")
            )
        })?;
    Ok(crates::from_metadata(
        &metadata,
        &crates::checksums(lockfile),
    ))
}
