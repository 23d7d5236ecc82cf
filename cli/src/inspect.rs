//! `kiln inspect MODULE.wasm`: what a kernel module imports and exports, whether it keeps the
//! kernel contract, and the wasm check's verdict under kiln's default policy or a policy file.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use kiln_policy::checks::wasm::{self, WasmPolicy};
use kiln_policy::findings::{Severity, Verdict};

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// The module (`.wasm`).
    #[arg(value_name = "MODULE.wasm")]
    module: PathBuf,
    /// Check against this policy file instead of kiln's defaults.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: InspectArgs) -> Result<()> {
    let bytes = std::fs::read(&args.module)
        .with_context(|| format!("reading {}", args.module.display()))?;
    let policy = match &args.policy {
        Some(path) => kiln_policy::policy_file::Policy::load(path)?.wasm,
        None => WasmPolicy::default(),
    };
    let report = wasm::check(&bytes, &policy);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("module:  {} ({} bytes)", args.module.display(), report.size);
        if let Some(metadata) = &report.metadata {
            println!(
                "kernel:  {} {} (ABI v{})",
                metadata.krate, metadata.version, metadata.abi
            );
            for entry in &metadata.entries {
                println!(
                    "  entry {:<16} {} -> {}",
                    entry.name, entry.input, entry.output
                );
            }
        }
        match report.memory_max_pages {
            Some(pages) => println!("memory:  at most {pages} pages ({} MiB)", pages / 16),
            None => println!("memory:  no declared maximum"),
        }
        println!("imports:");
        for import in &report.imports {
            println!("  {}.{} ({})", import.module, import.name, import.kind);
        }
        println!("exports: {}", report.exports.join(", "));
        if !report.findings.is_empty() {
            println!("findings:");
            for finding in &report.findings {
                let severity = match finding.severity {
                    Severity::Deny => "deny",
                    Severity::Review => "review",
                    Severity::Info => "info",
                };
                println!("  {severity:<6} [{}] {}", finding.code, finding.message);
            }
        }
        println!("verdict: {}", report.verdict.as_str());
    }
    if report.verdict == Verdict::Deny {
        let first = report
            .findings
            .iter()
            .find(|f| f.severity == Severity::Deny)
            .map_or_else(String::new, |f| format!(": [{}] {}", f.code, f.message));
        bail!("{} is denied{first}", args.module.display());
    }
    Ok(())
}
