//! `kiln run NOTEBOOK.json --registry URL --trust trust.toml`: fetches each locked kernel's
//! artifacts from the registry (into `~/.cache/kiln` or `--cache DIR`), decides the preflight of
//! every cell (trusted signatures, pinned digests, not revoked, imports ⊆ grants ⊆ policy,
//! limits), and runs the notebook in this process only when every cell passes. Then a table of
//! cells with their status, fuel, wall time, memory and a preview of each output (`--json`: the
//! run record). A blocked notebook runs nothing, lists every reason per cell, and exits 1.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use kiln_executor::fetch::{FetchError, Fetcher, KernelArtifacts};
use kiln_executor::notebook::Notebook;
use kiln_executor::run::{self, LoadedKernel};
use kiln_executor::runtime::{Runtime, VerifiedBytes};
use kiln_policy::policy_file::Policy;
use kiln_policy::preflight::{Attestation, CellContract, Pins, Preflight, PreflightInput, Reason};
use kiln_policy::revocation::RevocationList;
use kiln_policy::{Digest, Keyring, Verifier};

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The notebook (JSON, format version 1; see docs/notebook.md).
    #[arg(value_name = "NOTEBOOK")]
    notebook: PathBuf,
    #[command(flatten)]
    connection: crate::client::Connection,
    /// The trust file: the keys whose statements this executor accepts, by role.
    #[arg(long, value_name = "FILE")]
    trust: PathBuf,
    /// The execution policy (default: kiln's built-in defaults).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Where fetched artifacts are kept by digest (default: ~/.cache/kiln).
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Run deterministically (fixed clocks, randomness seeded with this), for replay.
    #[arg(long, value_name = "SEED")]
    seed: Option<u64>,
    /// Print the run record as JSON.
    #[arg(long)]
    json: bool,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(crate) fn run(args: RunArgs) -> Result<()> {
    let bytes = std::fs::read(&args.notebook)
        .with_context(|| format!("reading {}", args.notebook.display()))?;
    let notebook =
        Notebook::parse(&bytes).with_context(|| format!("{}", args.notebook.display()))?;
    let policy = match &args.policy {
        Some(path) => Policy::load(path)?,
        None => Policy::parse("", "built-in defaults")?,
    };
    let keyring = Keyring::load(&args.trust)?;
    let cache = args.cache.clone().unwrap_or_else(|| {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(".cache/kiln")
    });
    let token = crate::client::Client::new(&args.connection)?
        .token()
        .map(str::to_owned);
    let fetcher = Fetcher::new(&args.connection.registry, token, cache);
    let tokio = tokio::runtime::Runtime::new()?;
    let (fetched, revocations) = tokio.block_on(async {
        let mut fetched: BTreeMap<String, Result<KernelArtifacts, FetchError>> = BTreeMap::new();
        for (name, lock) in &notebook.kernels {
            fetched.insert(
                name.clone(),
                fetcher.kernel(&lock.krate, &lock.version).await,
            );
        }
        let revocations = fetcher.revocations().await;
        (fetched, revocations)
    });
    let revocations = RevocationList::verify(&Verifier::new(&keyring), &revocations?)
        .context("the registry's revocation list")?;
    let runtime = Runtime::new(8).map_err(|err| anyhow::anyhow!("{err:#}"))?;
    let compatibility = kiln_executor::engine::compatibility_hash(runtime.engine());
    let preflight = Preflight::new(keyring, policy.execution.clone(), policy.wasm.clone());
    let now = now_ms();

    // Every cell's preflight, before anything runs.
    let mut blocked: Vec<(String, Vec<Reason>)> = Vec::new();
    let mut precompiled: BTreeMap<String, bool> = BTreeMap::new();
    for cell in notebook.kernel_cells() {
        let lock = &notebook.kernels[&cell.kernel];
        let reasons = match &fetched[&cell.kernel] {
            Err(FetchError::Revoked(message)) => vec![Reason {
                code: "revoked".into(),
                message: format!("{}@{}: {message}", lock.krate, lock.version),
            }],
            Err(err) => vec![Reason {
                code: "unavailable".into(),
                message: format!("{}@{}: {err}", lock.krate, lock.version),
            }],
            Ok(artifacts) => {
                let attestations: Vec<Attestation<'_>> = artifacts
                    .statements
                    .iter()
                    .map(|(digest, json)| Attestation {
                        digest: *digest,
                        json,
                    })
                    .collect();
                let decision = preflight.decide(&PreflightInput {
                    cell: &CellContract {
                        entry: cell.entry.clone(),
                        grants: cell.grants.clone(),
                        limits: cell.limits(),
                    },
                    manifest: &artifacts.manifest,
                    manifest_digest: artifacts.manifest_digest,
                    pins: &Pins {
                        wasm: lock.wasm,
                        cwasm: lock.cwasm,
                    },
                    attestations: &attestations,
                    revocations: &revocations,
                    now_ms: now,
                    engine_compatibility: &compatibility,
                });
                precompiled.insert(cell.kernel.clone(), decision.use_precompiled);
                decision.reasons
            }
        };
        if !reasons.is_empty() {
            blocked.push((cell.id.clone(), reasons));
        }
    }
    if !blocked.is_empty() {
        if args.json {
            let value: Vec<_> = blocked
                .iter()
                .map(|(id, reasons)| serde_json::json!({"cell": id, "reasons": reasons}))
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({"blocked": value}))?
            );
        } else {
            println!("{} is blocked; nothing ran:", args.notebook.display());
            for (id, reasons) in &blocked {
                for reason in reasons {
                    println!("  {id:<20} [{}] {}", reason.code, reason.message);
                }
            }
        }
        bail!(
            "{} of {} kernel cells failed preflight",
            blocked.len(),
            notebook.kernel_cells().count()
        );
    }

    // Every cell passed: load each kernel once (precompiled when the engine matches) and run.
    let mut kernels = BTreeMap::new();
    for (name, artifacts) in fetched {
        let artifacts = artifacts.expect("preflight passed, so the artifacts were fetched");
        let verified_cwasm = match (&artifacts.cwasm, artifacts.manifest.cwasm) {
            (Some(bytes), Some(digest)) if precompiled.get(&name) == Some(&true) => {
                VerifiedBytes::new(bytes, &digest)
            }
            _ => None,
        };
        let kernel = match verified_cwasm {
            Some(verified) => runtime.load_cwasm(&verified),
            None => runtime.load_wasm(&artifacts.wasm),
        }
        .map_err(|err| anyhow::anyhow!("loading {name}: {err:#}"))?;
        kernels.insert(
            name,
            LoadedKernel {
                kernel,
                wasm: artifacts.manifest.wasm,
            },
        );
    }
    let result = run::run(&runtime, &notebook, Digest::of(&bytes), &kernels, args.seed)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result.record)?);
    } else {
        println!(
            "{:<20} {:<7} {:>14} {:>10} {:>10}  output",
            "CELL", "STATUS", "FUEL", "WALL", "MEMORY"
        );
        for cell in &result.record.cells {
            let preview = match (&cell.output, &cell.error) {
                (Some(digest), _) => preview(&result.outputs[digest]),
                (None, Some(error)) => format!("[{}] {}", error.code, error.message),
                _ => String::new(),
            };
            println!(
                "{:<20} {:<7} {:>14} {:>8}µs {:>8}KiB  {preview}",
                cell.id,
                cell.status,
                cell.metrics.fuel,
                cell.metrics.wall_us,
                cell.metrics.peak_memory_bytes / 1024,
            );
        }
    }
    if result.record.cells.iter().any(|c| c.status != "ok") {
        bail!("some cells did not succeed");
    }
    Ok(())
}

/// The first 60 characters of an output, on one line.
fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = flat.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 60 {
        format!("{}…", flat.chars().take(60).collect::<String>())
    } else {
        flat
    }
}
