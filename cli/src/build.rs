//! `kiln build CRATE_DIR --out DIR [--key KEY]`: the registry's hermetic build, run locally: the
//! crate and the path dependencies it has inside its repository are copied aside, registry
//! dependencies vendored, `cargo build` runs offline in the bubblewrap sandbox, and
//! `DIR/kernel.wasm`, `DIR/kernel.cwasm`, `DIR/manifest.json`, `DIR/provenance.sigstore.json` and
//! `DIR/build.log` are written. Without `--key` an ephemeral key signs the provenance (its public
//! key is written beside it as `DIR/builder.pub`).

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Args;
use kiln_builder::build::{self, Settings, Toolchain};
use kiln_builder::sandbox::{Isolation, Limits};
use kiln_policy::SigningKey;
use kiln_policy::policy_file::Policy;

use crate::password;

#[derive(Debug, Args)]
pub(crate) struct BuildArgs {
    /// The kernel crate's directory.
    #[arg(value_name = "CRATE_DIR")]
    crate_dir: PathBuf,
    /// Where the artifacts go.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The builder key that signs the provenance (default: a new, ephemeral one).
    #[arg(long, value_name = "KEY")]
    key: Option<PathBuf>,
    /// The repository path dependencies may come from (default: the crate's git repository).
    #[arg(long, value_name = "DIR")]
    repository: Option<PathBuf>,
    /// The policy whose wasm checks the module must pass (default: kiln's built-in defaults).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Build without the bubblewrap sandbox (build scripts can then reach the network and the
    /// host). The provenance records it.
    #[arg(long)]
    insecure_no_sandbox: bool,
}

pub(crate) fn run(args: BuildArgs) -> Result<()> {
    let policy = match &args.policy {
        Some(path) => Policy::load(path)?,
        None => Policy::parse("", "built-in defaults")?,
    };
    let isolation = if args.insecure_no_sandbox {
        Isolation::Insecure
    } else {
        Isolation::detect().map_err(anyhow::Error::msg)?
    };
    let key = match &args.key {
        Some(path) => {
            let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let password = password::read(
                password::KILN_KEY_PASSWORD,
                &path.display().to_string(),
                false,
            )?;
            SigningKey::from_pem(&pem, &password)
                .with_context(|| format!("reading {}", path.display()))?
        }
        None => SigningKey::generate()?,
    };
    let toolchain = Toolchain::detect()?;
    let prepared = build::prepare_local(&args.crate_dir, args.repository.as_deref())?;
    let artifacts = build::build(
        &prepared,
        &Settings {
            toolchain: &toolchain,
            isolation,
            limits: Limits::default(),
            wasm_policy: &policy.wasm,
            key: &key,
        },
    )?;
    build::write_artifacts(&args.out, &artifacts)
        .with_context(|| format!("writing {}", args.out.display()))?;
    if args.key.is_none() {
        std::fs::write(args.out.join("builder.pub"), key.public_key().to_pem())?;
    }
    let m = &artifacts.parsed_manifest;
    println!(
        "built {}@{} ({}, {})",
        m.krate,
        m.version,
        toolchain.rustc,
        isolation.as_str()
    );
    println!("  kernel.wasm   {} ({} bytes)", m.wasm, m.wasm_size);
    println!(
        "  kernel.cwasm  {} (wasmtime {})",
        m.cwasm.expect("precompiled"),
        m.wasmtime_version
    );
    println!("  provenance    signed by {}", key.id());
    println!(
        "  imports       {}",
        m.imports
            .iter()
            .map(|i| format!("{}.{}", i.module, i.name))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  entries       {}",
        m.entries
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
