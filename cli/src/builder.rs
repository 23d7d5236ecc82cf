//! `kiln builder --registry URL --token TOKEN --key KEY`: a worker process for the scale-out
//! shape. It claims build jobs (and, with `--advisory-db`, audit jobs) from the registry's queue
//! over the worker API, exactly as the workers inside `kiln serve` do, until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Args;
use kiln_builder::audit::AuditSettings;
use kiln_builder::build_job::BuildSettings;
use kiln_builder::client::Client;
use kiln_builder::sandbox::Limits;
use kiln_policy::SigningKey;
use kiln_policy::policy_file::Policy;

use crate::password;

#[derive(Debug, Args)]
pub(crate) struct BuilderArgs {
    /// The kiln server; several (its replicas, comma-separated or the flag repeated) are tried in
    /// order, and a replica that cannot be reached is passed over for the next.
    #[arg(
        long,
        value_name = "URL",
        env = "KILN_REGISTRY",
        value_delimiter = ',',
        required = true
    )]
    registry: Vec<String>,
    /// A worker token (`kiln` tokens with the `worker` scope); give it in the environment
    /// (`KILN_TOKEN`) so that it does not show in the process list.
    #[arg(long, value_name = "TOKEN", env = "KILN_TOKEN", hide_env_values = true)]
    token: String,
    /// The builder key that signs provenance and audit statements (its public key must be in
    /// the executors' trust file with the builder role).
    #[arg(long, value_name = "KEY")]
    key: PathBuf,
    /// The policy (default: kiln's built-in defaults).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Where earlier builds are kept by their inputs.
    #[arg(long, value_name = "DIR", default_value = "./kiln-build-cache")]
    cache: PathBuf,
    /// Also audit submissions and build code cells, against this advisory database directory.
    #[arg(long, value_name = "DIR")]
    advisory_db: Option<PathBuf>,
    /// This worker's name in the queue (default: builder-HOST-ID, the ID made once and kept in
    /// the cache directory, so that a restarted builder resumes its own abandoned job at once).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Build without the bubblewrap sandbox; the provenance records it.
    #[arg(long)]
    insecure_no_sandbox: bool,
    #[command(flatten)]
    limits: BuildLimits,
}

/// The resource limits of one sandboxed build (recorded in its provenance).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct BuildLimits {
    /// Wall-clock seconds a build may take before the whole sandbox is killed.
    #[arg(long, value_name = "SECS", default_value_t = Limits::default().wall.as_secs())]
    build_timeout: u64,
    /// CPU seconds per build process.
    #[arg(long, value_name = "SECS", default_value_t = Limits::default().cpu_secs)]
    build_cpu: u64,
    /// Address space per build process, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = Limits::default().address_space >> 20)]
    build_memory_mib: u64,
    /// Processes and threads a build may run at once; it is stopped when it tries for more.
    #[arg(long, value_name = "N", default_value_t = Limits::default().processes)]
    build_processes: u64,
}

impl BuildLimits {
    /// The sandbox's limits.
    pub(crate) fn limits(&self) -> Limits {
        Limits {
            wall: Duration::from_secs(self.build_timeout),
            cpu_secs: self.build_cpu,
            address_space: self.build_memory_mib << 20,
            processes: self.build_processes,
            ..Limits::default()
        }
    }
}

/// A worker's name in the queue that stays the same across restarts of a worker keeping its
/// state in `dir`, and differs between workers with different directories: `PREFIX-ID`, the ID
/// made once and kept in `dir/worker-id`. The queue gives a worker that claims again under the
/// same name the job it abandoned, without waiting for the job's lease to run out.
pub(crate) fn worker_name(dir: &std::path::Path, prefix: &str) -> Result<String> {
    let path = dir.join("worker-id");
    let id = match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => id.trim().to_owned(),
        _ => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let id = format!("{:08x}", rand::random::<u32>());
            std::fs::write(&path, format!("{id}\n"))
                .with_context(|| format!("writing {}", path.display()))?;
            id
        }
    };
    Ok(format!("{prefix}-{id}"))
}

pub(crate) fn run(args: BuilderArgs) -> Result<()> {
    crate::process::init_tracing();
    let pem =
        std::fs::read(&args.key).with_context(|| format!("reading {}", args.key.display()))?;
    let password = password::read(
        password::KILN_KEY_PASSWORD,
        &args.key.display().to_string(),
        false,
    )?;
    let key = Arc::new(
        SigningKey::from_pem(&pem, &password)
            .with_context(|| format!("reading {}", args.key.display()))?,
    );
    let policy = match &args.policy {
        Some(path) => Policy::load(path)?,
        None => Policy::parse("", "built-in defaults")?,
    };
    let mut build = BuildSettings::new(
        policy.clone(),
        key.clone(),
        args.cache.clone(),
        args.insecure_no_sandbox,
    )
    .map_err(anyhow::Error::msg)?;
    build.limits = args.limits.limits();
    let name = match args.name.clone() {
        Some(name) => name,
        None => {
            let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
            worker_name(&args.cache, &format!("builder-{}", host.trim()))?
        }
    };
    let client = Client::with_replicas(&args.registry, &args.token, &name);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let mut workers = vec![tokio::spawn(kiln_builder::build_job::run(
            client.clone(),
            build,
            Duration::from_millis(500),
            wait(stopped.clone()),
        ))];
        if let Some(advisory_db) = args.advisory_db {
            let mut code_build = BuildSettings::new(
                policy.clone(),
                key.clone(),
                args.cache.clone(),
                args.insecure_no_sandbox,
            )
            .map_err(anyhow::Error::msg)?;
            code_build.limits = args.limits.limits();
            workers.push(tokio::spawn(kiln_builder::code_cell::run(
                client.clone(),
                kiln_builder::code_cell::CodeSettings {
                    build: code_build,
                    advisory_db: advisory_db.clone(),
                },
                Duration::from_millis(250),
                wait(stopped.clone()),
            )));
            workers.push(tokio::spawn(kiln_builder::audit::run(
                client.clone(),
                AuditSettings {
                    policy,
                    advisory_db,
                    key,
                },
                Duration::from_millis(500),
                wait(stopped.clone()),
            )));
        }
        println!(
            "kiln builder {name} working for {}",
            args.registry.join(", ")
        );
        crate::process::shutdown_signal().await;
        let _ = stop.send(true);
        for worker in workers {
            let _ = worker.await;
        }
        Ok(())
    })
}
