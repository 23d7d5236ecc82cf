//! `kiln build CRATE_DIR --out DIR [--key KEY]`: the registry's hermetic build, run locally: the
//! crate and the path dependencies it has inside its repository are copied aside, registry
//! dependencies vendored, `cargo build` runs offline in the bubblewrap sandbox, and
//! `DIR/kernel.wasm`, `DIR/kernel.cwasm`, `DIR/manifest.json`, `DIR/provenance.sigstore.json` and
//! `DIR/build.log` are written. Without `--key` an ephemeral key signs the provenance (its public
//! key is written beside it as `DIR/builder.pub`).

use std::cell::OnceCell;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::Args;
use kiln_builder::build::{self, Settings, Toolchain};
use kiln_builder::sandbox::Isolation;
use kiln_policy::policy_file::Policy;
use kiln_policy::{PublicKey, SigningKey};

use crate::password;

#[derive(Debug, Args)]
pub(crate) struct BuildArgs {
    /// The kernel crate's directory, or with --verify a registry version (NAME@VERSION).
    #[arg(value_name = "CRATE_DIR|NAME@VERSION")]
    crate_dir: PathBuf,
    /// Where the artifacts go (default with --verify: a temporary directory).
    #[arg(long, value_name = "DIR", required_unless_present = "verify")]
    out: Option<PathBuf>,
    /// Rebuild NAME@VERSION from the registry and report whether the module's digests match
    /// its signed provenance (exit 1 when they do not).
    #[arg(long, requires = "trust")]
    verify: bool,
    /// The trust file the provenance must verify against (with --verify).
    #[arg(long, value_name = "FILE")]
    trust: Option<PathBuf>,
    #[command(flatten)]
    connection: crate::client::Connection,
    /// The builder key that signs the provenance (default: a new, ephemeral one).
    #[arg(long, value_name = "KEY")]
    key: Option<PathBuf>,
    /// The repository path dependencies may come from (default: the crate's git repository).
    #[arg(long, value_name = "DIR")]
    repository: Option<PathBuf>,
    /// The policy whose wasm checks the module must pass (default: kiln's built-in defaults).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Keep results here by their inputs, and serve a build whose inputs were built before from
    /// it instead of building again.
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Build without the bubblewrap sandbox (build scripts can then reach the network and the
    /// host). The provenance records it.
    #[arg(long)]
    insecure_no_sandbox: bool,
    #[command(flatten)]
    limits: crate::builder::BuildLimits,
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
    let key = BuildKey::open(args.key.as_deref())?;
    let toolchain = Toolchain::detect()?;
    toolchain.check_pin(policy.build.toolchain.as_deref())?;
    if args.verify {
        return verify(&args, &policy, isolation, &toolchain, key.signing()?);
    }
    let out = args
        .out
        .clone()
        .expect("clap requires --out without --verify");
    let prepared = build::prepare_local(&args.crate_dir, args.repository.as_deref())?;
    let cache = args.cache.as_ref().map(kiln_builder::cache::Cache::new);
    let inputs = prepared.cache_key(
        &toolchain,
        isolation,
        &build::settings_text(&policy.wasm, key.public().id()),
    );
    let started = std::time::Instant::now();
    let (artifacts, cached) = match cache.as_ref().and_then(|c| c.get(&inputs, key.public())) {
        Some(artifacts) => (artifacts, true),
        None => {
            let artifacts = build::build(
                &prepared,
                &Settings {
                    toolchain: &toolchain,
                    isolation,
                    limits: args.limits.limits(),
                    wasm_policy: &policy.wasm,
                    key: key.signing()?,
                },
            )?;
            if let Some(cache) = &cache {
                cache
                    .put(&inputs, &artifacts)
                    .context("storing the build in the cache")?;
            }
            (artifacts, false)
        }
    };
    build::write_artifacts(&out, &artifacts)
        .with_context(|| format!("writing {}", out.display()))?;
    if args.key.is_none() {
        std::fs::write(out.join("builder.pub"), key.public().to_pem())?;
    }
    let m = &artifacts.parsed_manifest;
    if cached {
        println!(
            "served {}@{} from the build cache in {:.1} ms (inputs {inputs})",
            m.krate,
            m.version,
            started.elapsed().as_secs_f64() * 1000.0
        );
    } else {
        println!(
            "built {}@{} ({}, {})",
            m.krate,
            m.version,
            toolchain.rustc,
            isolation.as_str()
        );
    }
    println!("  kernel.wasm   {} ({} bytes)", m.wasm, m.wasm_size);
    println!(
        "  kernel.cwasm  {} (wasmtime {})",
        m.cwasm.expect("precompiled"),
        m.wasmtime_version
    );
    println!("  provenance    signed by {}", key.public().id());
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

/// The builder key: its public half at once (for the cache key and the cache check), the
/// private half only when something is signed. With `--key K.key`, the `K.pub` that `kiln keys
/// generate` writes beside it lets a cache hit skip the password-derived decryption; without
/// one the key is opened at once.
struct BuildKey {
    path: Option<PathBuf>,
    public: PublicKey,
    signing: OnceCell<SigningKey>,
}

impl BuildKey {
    fn open(path: Option<&Path>) -> Result<Self> {
        let Some(path) = path else {
            let key = SigningKey::generate()?;
            return Ok(Self {
                path: None,
                public: key.public_key().clone(),
                signing: OnceCell::from(key),
            });
        };
        let beside = path.with_extension("pub");
        if let Ok(pem) = std::fs::read(&beside) {
            let public = PublicKey::from_pem(&pem)
                .with_context(|| format!("reading {}", beside.display()))?;
            return Ok(Self {
                path: Some(path.to_owned()),
                public,
                signing: OnceCell::new(),
            });
        }
        let key = Self::decrypt(path)?;
        Ok(Self {
            path: Some(path.to_owned()),
            public: key.public_key().clone(),
            signing: OnceCell::from(key),
        })
    }

    fn decrypt(path: &Path) -> Result<SigningKey> {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let password = password::read(
            password::KILN_KEY_PASSWORD,
            &path.display().to_string(),
            false,
        )?;
        SigningKey::from_pem(&pem, &password).with_context(|| format!("reading {}", path.display()))
    }

    fn public(&self) -> &PublicKey {
        &self.public
    }

    /// The private key, opened now if it was not yet; it must be the `.pub` file's pair.
    fn signing(&self) -> Result<&SigningKey> {
        if let Some(key) = self.signing.get() {
            return Ok(key);
        }
        let path = self
            .path
            .as_deref()
            .expect("an ephemeral key is generated at once");
        let key = Self::decrypt(path)?;
        if key.id() != self.public.id() {
            bail!(
                "{} does not belong to {} (key ids {} and {})",
                path.with_extension("pub").display(),
                path.display(),
                self.public.id(),
                key.id()
            );
        }
        Ok(self.signing.get_or_init(|| key))
    }
}

/// Rebuilds a registry version and compares the module's digests with its signed provenance.
fn verify(
    args: &BuildArgs,
    policy: &Policy,
    isolation: Isolation,
    toolchain: &Toolchain,
    key: &SigningKey,
) -> Result<()> {
    let target = args.crate_dir.display().to_string();
    let (name, version) = target
        .split_once('@')
        .context("--verify needs NAME@VERSION")?;
    let trust = args
        .trust
        .as_ref()
        .expect("clap requires --trust with --verify");
    let keyring = kiln_policy::Keyring::load(trust)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let client = crate::client::Client::new(&args.connection)?;
    let (detail, crate_bytes, provenance) = runtime.block_on(async {
        let detail: kiln_wire::submissions::SubmissionDetail = client
            .get_json(&format!("/api/kiln/v1/submissions/{name}/{version}"))
            .await?;
        let crate_bytes = client
            .get_bytes(&format!("/api/v1/crates/{name}/{version}/download"))
            .await?;
        let digest = detail
            .artifact(kiln_wire::ArtifactKind::Provenance)
            .with_context(|| {
                format!("{name}@{version} has no provenance (is it a kernel, and built?)")
            })?
            .digest;
        let provenance = client
            .get_bytes(&format!("/api/kiln/v1/artifacts/{digest}"))
            .await?;
        Ok::<_, anyhow::Error>((detail, crate_bytes, provenance))
    })?;
    let checksum = detail.submission.checksum;
    if kiln_policy::Digest::of(&crate_bytes) != checksum {
        anyhow::bail!("the downloaded .crate does not match the registry's checksum {checksum}");
    }
    let verified = kiln_policy::Verifier::new(&keyring)
        .verify_json(
            &provenance,
            kiln_policy::Expectation {
                kind: Some(kiln_policy::StatementKind::Provenance),
                subject: None,
            },
        )
        .map_err(|err| anyhow::anyhow!("the provenance does not verify [{}]: {err}", err.code()))?;
    let index = format!("sparse+{}/index/", args.connection.registry_url()?);
    let index = kiln_builder::curated::CuratedIndex::new(index, None);
    let prepared = build::prepare_registry_crate(&crate_bytes, name, version, checksum, &index)?;
    let artifacts = build::build(
        &prepared,
        &Settings {
            toolchain,
            isolation,
            limits: args.limits.limits(),
            wasm_policy: &policy.wasm,
            key,
        },
    )?;
    if let Some(out) = &args.out {
        build::write_artifacts(out, &artifacts)?;
    }
    let m = &artifacts.parsed_manifest;
    let mut mismatched = Vec::new();
    for (what, digest) in [("kernel.wasm", Some(m.wasm)), ("kernel.cwasm", m.cwasm)] {
        let digest = digest.expect("precompiled");
        let covered = verified.statement.has_subject(&digest);
        println!(
            "{what:<13} {digest} {}",
            if covered {
                "matches the signed provenance"
            } else {
                "DIFFERS from the signed provenance"
            }
        );
        if !covered {
            mismatched.push(what);
        }
    }
    if !mismatched.is_empty() {
        anyhow::bail!(
            "{name}@{version} did not rebuild to the same bytes ({}); signed by {}",
            mismatched.join(", "),
            verified.key_name
        );
    }
    println!(
        "{name}@{version}: rebuilt to the same bytes its provenance (signed by {}) names",
        verified.key_name
    );
    Ok(())
}
