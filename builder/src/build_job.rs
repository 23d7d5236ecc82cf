//! The build job: for one audited submission, fetch its `.crate`, build it hermetically
//! ([`crate::build`]), or take the result from the cache when the same inputs were built before,
//! upload the artifacts (`.wasm`, `.cwasm`, manifest, signed provenance, build log) and report
//! the submission built; a crate that does not build fails with the reason.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kiln_policy::SigningKey;
use kiln_policy::policy_file::Policy;
use kiln_wire::submissions::{BuildReport, KernelBuild};
use kiln_wire::worker::{ArtifactRecord, Completion};
use kiln_wire::{ArtifactKind, JobKind};

use crate::build::{self, BuildError, Settings, Toolchain};
use crate::cache::Cache;
use crate::client::{Client, Job};
use crate::sandbox::{Isolation, Limits};
use crate::target_cache::TargetCache;
use crate::worker::JobError;

/// What a build worker needs besides its connection.
#[derive(Debug)]
pub struct BuildSettings {
    /// The policy (its wasm checks).
    pub policy: Policy,
    /// Signs provenance.
    pub key: Arc<SigningKey>,
    /// How builds are isolated.
    pub isolation: Isolation,
    /// Resource limits.
    pub limits: Limits,
    /// The toolchain.
    pub toolchain: Toolchain,
    /// Earlier results by their inputs.
    pub cache: Cache,
    /// Compiled dependencies of earlier library builds.
    pub targets: TargetCache,
}

impl BuildSettings {
    /// Settings with the detected toolchain and a cache in `cache_dir`; `insecure` builds
    /// without the sandbox (otherwise bubblewrap must work here).
    pub fn new(
        policy: Policy,
        key: Arc<SigningKey>,
        cache_dir: PathBuf,
        insecure: bool,
    ) -> Result<Self, String> {
        let isolation = if insecure {
            Isolation::Insecure
        } else {
            Isolation::detect()?
        };
        if isolation == Isolation::Bubblewrap && !crate::pids::PidsCgroup::available() {
            tracing::warn!(
                "no writable pids cgroup: a build's processes are capped only by RLIMIT_NPROC, which binds a builder that does not run as root"
            );
        }
        let toolchain = Toolchain::detect().map_err(|err| err.to_string())?;
        toolchain
            .check_pin(policy.build.toolchain.as_deref())
            .map_err(|err| err.to_string())?;
        Ok(Self {
            policy,
            key,
            isolation,
            limits: Limits::default(),
            toolchain,
            targets: TargetCache::new(cache_dir.join("targets")),
            cache: Cache::new(cache_dir),
        })
    }
}

/// What compiled dependencies depend on besides the lockfile: the builder's version, its
/// compiler flags, the toolchain and the isolation (the key of [`TargetCache`] snapshots).
pub fn target_context(settings: &BuildSettings) -> String {
    format!(
        "{}\n{}\n{}\n{}\n{}",
        env!("CARGO_PKG_VERSION"),
        build::KERNEL_RUSTFLAGS.join(" "),
        settings.toolchain.rustc,
        settings.toolchain.cargo,
        settings.isolation.as_str()
    )
}

/// What one build job produced.
enum Outcome {
    /// A library: its build log.
    Library(String),
    /// A kernel's artifacts, and whether they came from the cache.
    Kernel(Box<build::Artifacts>, bool),
}

/// Claims and builds jobs until `stop` resolves.
pub async fn run(
    client: Client,
    settings: BuildSettings,
    poll: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    let settings = Arc::new(settings);
    crate::worker::run(client, JobKind::Build, poll, stop, move |client, job| {
        let settings = settings.clone();
        async move { build_job(&client, &settings, &job).await }
    })
    .await;
}

fn job_error(err: BuildError) -> JobError {
    match err {
        BuildError::Submission(message) => JobError::terminal(message),
        BuildError::Builder(message) => JobError::retry(message),
    }
}

async fn build_job(
    client: &Client,
    settings: &Arc<BuildSettings>,
    job: &Job,
) -> Result<String, JobError> {
    let crate::worker::SubmittedCrate {
        name,
        version,
        checksum,
        bytes,
    } = crate::worker::submitted_crate(client, job).await?;
    let index = client
        .curated_index(job.payload.closure.as_deref())
        .await
        .map_err(|err| JobError::retry(err.to_string()))?;
    let isolation = settings.isolation;
    let settings = settings.clone();
    let features = job.payload.features.clone();
    let imported = job.payload.origin.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let mut prepared =
            build::unpack_registry_crate(&bytes, &name, &version, checksum).map_err(job_error)?;
        let settings_text = build::settings_text(&settings.policy.wasm, settings.key.id());
        let key = build::registry_cache_key(
            &prepared,
            &settings.toolchain,
            settings.isolation,
            &settings_text,
        );
        if prepared.is_kernel()
            && let Some(artifacts) = key
                .as_ref()
                .and_then(|key| settings.cache.get(key, settings.key.public_key()))
        {
            tracing::info!(
                elapsed_us = started.elapsed().as_micros() as u64,
                "build cache hit"
            );
            return Ok(Outcome::Kernel(Box::new(artifacts), true));
        }
        if !prepared.is_kernel() {
            // Named as its dependents name it: by the registry's public URL when it was
            // published here, the crates.io way when it was imported.
            let own_url = index.public.as_deref().unwrap_or(&index.index);
            prepared
                .as_dependent(&features, imported.is_none().then_some(own_url))
                .map_err(job_error)?;
        }
        prepared.vendor_registry(&index).map_err(job_error)?;
        let context = target_context(&settings);
        match settings
            .targets
            .seed(&prepared.lockfile, &context, &prepared.target_dir())
        {
            Ok(0) => {}
            Ok(covered) => tracing::info!(covered, "starting from compiled dependencies"),
            Err(err) => {
                tracing::warn!(error = %err, "seeding the build from compiled dependencies")
            }
        }
        let build_settings = Settings {
            toolchain: &settings.toolchain,
            isolation: settings.isolation,
            limits: settings.limits,
            wasm_policy: &settings.policy.wasm,
            key: &settings.key,
        };
        if prepared.is_dependent() {
            // A library kernels depend on: it must compile for the kernel target, as a dependent
            // that turns its curated features on builds it; it has no module of its own.
            let log = build::compile(&prepared, &build_settings).map_err(job_error)?;
            if let Err(err) =
                settings
                    .targets
                    .save(&prepared.lockfile, &context, &prepared.target_dir())
            {
                tracing::warn!(error = %err, "keeping the compiled dependencies");
            }
            return Ok(Outcome::Library(log));
        }
        let artifacts = build::build(&prepared, &build_settings).map_err(job_error)?;
        if let Some(key) = key
            && let Err(err) = settings.cache.put(&key, &artifacts)
        {
            tracing::warn!(error = %err, "storing the build in the cache");
        }
        Ok::<_, JobError>(Outcome::Kernel(Box::new(artifacts), false))
    })
    .await
    .map_err(|err| JobError::retry(err.to_string()))??;
    let (artifacts, cached) = match outcome {
        Outcome::Library(log) => {
            let digest = client
                .upload(log.into_bytes())
                .await
                .map_err(|err| JobError::retry(err.to_string()))?;
            let completion = Completion::Build {
                report: Box::new(BuildReport {
                    target: build::TARGET.to_owned(),
                    isolation: isolation.as_str().to_owned(),
                    cached: false,
                    kernel: None,
                }),
                artifacts: vec![ArtifactRecord {
                    digest,
                    kind: ArtifactKind::Log,
                }],
            };
            client
                .complete(job.id, completion)
                .await
                .map_err(|err| JobError::retry(err.to_string()))?;
            return Ok("built (a library: compiles for the kernel target)".into());
        }
        Outcome::Kernel(artifacts, cached) => (artifacts, cached),
    };
    let mut records = Vec::new();
    for (kind, bytes) in [
        (ArtifactKind::Wasm, artifacts.wasm.clone()),
        (ArtifactKind::Cwasm, artifacts.cwasm.clone()),
        (ArtifactKind::Manifest, artifacts.manifest.clone()),
        (
            ArtifactKind::Provenance,
            artifacts.provenance.clone().into_bytes(),
        ),
        (ArtifactKind::Log, artifacts.log.clone().into_bytes()),
    ] {
        let digest = client
            .upload(bytes)
            .await
            .map_err(|err| JobError::retry(err.to_string()))?;
        records.push(ArtifactRecord { digest, kind });
    }
    let manifest = &artifacts.parsed_manifest;
    let report = BuildReport {
        target: build::TARGET.to_owned(),
        isolation: isolation.as_str().to_owned(),
        cached,
        kernel: Some(KernelBuild {
            wasm: manifest.wasm,
            cwasm: manifest.cwasm,
            wasm_size: manifest.wasm_size,
            imports: manifest.imports.clone(),
            exports: manifest.exports.clone(),
            entries: manifest.entries.clone(),
            wasmtime_version: manifest.wasmtime_version.clone(),
            compatibility_hash: manifest.compatibility_hash.clone(),
        }),
    };
    client
        .complete(
            job.id,
            Completion::Build {
                report: Box::new(report),
                artifacts: records,
            },
        )
        .await
        .map_err(|err| JobError::retry(err.to_string()))?;
    Ok(if cached {
        "built (cache hit)".into()
    } else {
        "built".into()
    })
}
