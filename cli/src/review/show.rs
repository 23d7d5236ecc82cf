//! `kiln review show NAME@VERSION`: audit report, build, imports and exports, dependencies and
//! their approval, artifacts and decisions; with `--closure`, every package of the version's
//! closure ([`super::closure`]).

use anyhow::Result;
use clap::Args;
use kiln_wire::submissions::SubmissionDetail;

use super::split_target;
use crate::client::{Client, Connection};
use crate::style::Style;

#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// The version, as NAME@VERSION.
    #[arg(value_name = "NAME@VERSION")]
    pub(crate) target: String,
    #[command(flatten)]
    pub(crate) connection: Connection,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Every package a dependent's build of the version resolves: state, verdict, findings,
    /// licence, build-time code, advisories, and what is new against the approved set.
    #[arg(long)]
    pub(crate) closure: bool,
    /// Print the build's log (what the compiler said in the sandbox) instead.
    #[arg(long, conflicts_with_all = ["closure", "json"])]
    pub(crate) build_log: bool,
}

pub(crate) async fn show(args: ShowArgs) -> Result<()> {
    let (name, version) = split_target(&args.target)?;
    let client = Client::new(&args.connection)?;
    if args.closure {
        return super::closure::show(&client, name, version, args.json).await;
    }
    let detail: SubmissionDetail = client
        .get_json(&format!("/api/kiln/v1/submissions/{name}/{version}"))
        .await?;
    if args.build_log {
        let Some(log) = detail
            .artifacts
            .iter()
            .rfind(|a| a.kind == kiln_wire::ArtifactKind::Log)
        else {
            anyhow::bail!(
                "{name}@{version} has no build log yet (it is {})",
                detail.submission.state
            );
        };
        let bytes = client
            .get_bytes(&format!("/api/kiln/v1/artifacts/{}", log.digest))
            .await?;
        print!("{}", String::from_utf8_lossy(&bytes));
        return Ok(());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&detail)?);
        return Ok(());
    }
    let style = Style::detect();
    let s = &detail.submission;
    println!(
        "{} {}  {}",
        style.bold(&s.subject()),
        style.state(s.state.as_str(), s.state.as_str()),
        s.state_reason.as_deref().unwrap_or_default()
    );
    println!(
        "published by {}; checksum {}",
        s.published_by,
        s.checksum.hex()
    );
    match &s.approved_features {
        Some(approved) if *approved != s.features => println!(
            "features: approved for {}; in review for {}",
            approved.describe(),
            s.features.describe()
        ),
        _ => println!("features: {}", s.features.describe()),
    }
    if let Some(audit) = &detail.reports.audit {
        println!(
            "\n{} {} ({} packages; advisory database {})",
            style.bold("audit:"),
            audit.verdict.as_str(),
            audit.packages.len(),
            audit.advisory_db.revision
        );
        for f in &audit.findings {
            println!("  {:<6} [{}] {}", f.severity.as_str(), f.code, f.message);
        }
    }
    if let Some(build) = &detail.reports.build {
        println!("\n{}", style.bold("build:"));
        match &build.kernel {
            None => println!("  a library: compiles for {}", build.target),
            Some(kernel) => {
                println!(
                    "  {} ({} bytes), wasmtime {}, in {}",
                    kernel.wasm, kernel.wasm_size, kernel.wasmtime_version, build.isolation
                );
                if let Some(cwasm) = kernel.cwasm {
                    println!("  cwasm: {cwasm}");
                }
                let imports: Vec<String> = kernel
                    .imports
                    .iter()
                    .map(|i| format!("{}.{}", i.module, i.name))
                    .collect();
                println!("  imports: {}", imports.join(", "));
                println!("  exports: {}", kernel.exports.join(", "));
                for entry in &kernel.entries {
                    println!(
                        "  entry {}: {} -> {}",
                        entry.name, entry.input, entry.output
                    );
                }
            }
        }
    }
    println!("\n{}", style.bold("dependencies:"));
    for d in &detail.dependencies {
        println!(
            "  {:<24} {:<10} {}",
            d.name,
            d.req,
            d.approved
                .as_deref()
                .map_or_else(|| "NOT APPROVED".to_owned(), |v| format!("approved {v}"))
        );
    }
    println!("\n{}", style.bold("artifacts:"));
    for a in &detail.artifacts {
        println!("  {:<11} {}", a.kind, a.digest);
    }
    for r in &detail.reviews {
        println!(
            "\n{} {} by {} {}",
            style.bold("review:"),
            r.decision.as_str(),
            r.reviewer,
            r.reason
                .as_deref()
                .or(r.criteria.as_deref())
                .unwrap_or_default()
        );
    }
    Ok(())
}
