//! `kiln audit Cargo.lock`: the lockfile's crates against the RustSec advisory database, the
//! policy's bans and (with `--registry-index`) the allowed sources, under a policy (kiln's defaults unless `--policy`), with a table for people or JSON for scripts.
//! Exits 1 when the verdict is deny.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use kiln_policy::checks::advisories::{self, AdvisoryDb};
use kiln_policy::findings::{Severity, Verdict};
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

fn today() -> String {
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
    let (matches, mut findings) = advisories::check(&lockfile, &db, &policy.advisories, &today());
    findings.extend(kiln_policy::checks::bans::check(&lockfile, &policy.bans));
    if let Some(manifest) = &args.manifest_path {
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
        let crates = kiln_policy::checks::crates::from_metadata(
            &metadata,
            &kiln_policy::checks::crates::checksums(&lockfile),
        );
        findings.extend(kiln_policy::checks::licenses::check(
            &crates,
            &policy.licenses,
        ));
        findings.extend(kiln_policy::checks::build::check(&crates, &policy.build));
    }
    if let Some(index) = &args.registry_index {
        findings.extend(kiln_policy::checks::sources::check(
            &lockfile,
            index,
            &policy.allow_registries,
        ));
    }
    let findings = kiln_policy::checks::exceptions::apply(findings, &policy.exceptions, &today());
    let verdict = Verdict::of(&findings);
    if args.json {
        let report = serde_json::json!({
            "lockfile": args.lockfile.display().to_string(),
            "packages": lockfile.packages.len(),
            "policy_digest": policy.digest.to_string(),
            "advisory_db": {"path": db.path, "advisories": db.count, "newest": db.newest},
            "matches": matches,
            "findings": findings,
            "verdict": verdict.as_str(),
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{}: {} packages against {} advisories (newest {})",
            args.lockfile.display(),
            lockfile.packages.len(),
            db.count,
            db.newest
        );
        for finding in &findings {
            let severity = match finding.severity {
                Severity::Deny => "deny",
                Severity::Review => "review",
                Severity::Info => "info",
            };
            println!("  {severity:<6} [{}] {}", finding.code, finding.message);
        }
        println!("verdict: {}", verdict.as_str());
    }
    if verdict == Verdict::Deny {
        bail!("{} is denied by the audit", args.lockfile.display());
    }
    Ok(())
}
