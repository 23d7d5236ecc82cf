//! `kiln executor`: the executor API alone, in front of a registry elsewhere
//! (`--registry URL`), for running notebooks on more machines than the registry's. `kiln serve`
//! runs the same executor in its own process through [`start`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Args;
use kiln_executor::api::{self, ApiLimits, ApiState};
use kiln_executor::auth::TokenCheck;
use kiln_executor::service::{Executor, ExecutorSettings};
use kiln_policy::Keyring;
use kiln_policy::policy_file::Policy;

/// The executor's tuning, shared by `kiln executor` and `kiln serve`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ExecutorTuning {
    /// How many notebooks may run at once (the wasmtime instance pool's size).
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub(crate) executor_slots: u32,
    /// How many more may wait for a slot before the executor answers 503 with Retry-After.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub(crate) executor_queue: usize,
    /// The largest notebook accepted, in bytes (at most the format's 4 MiB).
    #[arg(long, value_name = "BYTES", default_value_t = kiln_executor::notebook::MAX_NOTEBOOK_BYTES,
          value_parser = notebook_bytes)]
    pub(crate) max_notebook_bytes: usize,
    /// How often the registry's revocation list is fetched again.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub(crate) revocation_refresh: Duration,
    /// How long a streaming client may take to read an event before its run is stopped.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub(crate) stream_write_timeout: Duration,
    /// How often the trust file (and the key files it names) is read again; a change of keys
    /// applies to the next preflight. SIGHUP reads it at once.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = humantime::parse_duration)]
    pub(crate) trust_check_interval: Duration,
}

fn notebook_bytes(text: &str) -> Result<usize, String> {
    let bytes: usize = text.parse().map_err(|err| format!("{err}"))?;
    let max = kiln_executor::notebook::MAX_NOTEBOOK_BYTES;
    if bytes > max {
        return Err(format!(
            "{bytes} is more than {max}, the largest notebook the format allows"
        ));
    }
    Ok(bytes)
}

#[derive(Debug, Args)]
pub(crate) struct ExecutorArgs {
    /// The registry the kernels come from.
    #[arg(long, value_name = "URL", env = "KILN_REGISTRY")]
    registry: String,
    /// A token to read the registry with (needed when it requires one for reads).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "KILN_REGISTRY_TOKEN",
        hide_env_values = true
    )]
    registry_token: Option<String>,
    /// The trust file: the keys whose statements this executor accepts, by role.
    #[arg(long, value_name = "FILE")]
    trust: PathBuf,
    /// The execution policy (default: kiln's built-in defaults).
    #[arg(long, value_name = "FILE", env = "KILN_POLICY")]
    policy: Option<PathBuf>,
    /// Where fetched artifacts and runs are kept.
    #[arg(long, value_name = "DIR", default_value = "./kiln-executor")]
    data: PathBuf,
    /// The address to listen on (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7879")]
    listen: SocketAddr,
    #[command(flatten)]
    tuning: ExecutorTuning,
    #[command(flatten)]
    connections: crate::connections::ConnectionArgs,
}

/// Reads the trust file at `path` into `executor` every `every`, and at once on SIGHUP, until
/// `stop`: a change of keys applies to the next preflight. A file that does not load is logged
/// and the keys in use stay.
async fn watch_trust(
    executor: Arc<Executor>,
    path: PathBuf,
    every: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    #[cfg(not(unix))]
    let mut hangup: Option<tokio::sync::mpsc::Receiver<()>> = None;
    let reload = |why: &str| match Keyring::load(&path) {
        Ok(keyring) => {
            let keys = keyring.len();
            if executor.replace_keyring(keyring) {
                tracing::info!(path = %path.display(), keys, why, "trusting the trust file's new keys");
            }
        }
        Err(err) => tracing::warn!(
            path = %path.display(),
            error = %err,
            "the trust file does not load; the keys in use stay"
        ),
    };
    tokio::pin!(stop);
    loop {
        let signalled = async {
            match hangup.as_mut() {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = &mut stop => break,
            () = tokio::time::sleep(every) => reload("changed"),
            () = signalled => reload("SIGHUP"),
        }
    }
}

/// Starts an executor: its state, and the task that fetches the revocation list now and keeps
/// it fresh, and reads the trust file at `trust` again when it changes, until `stop` resolves.
pub(crate) fn start(
    settings: ExecutorSettings,
    trust: PathBuf,
    tuning: &ExecutorTuning,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(Arc<ApiState>, tokio::task::JoinHandle<()>)> {
    let registry = settings.registry.clone();
    let executor = Executor::new(settings).context("starting the executor")?;
    let (stopping, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let refresh = executor
        .clone()
        .refresh_revocations_until(until_stopped(stopped.clone()));
    let watch = watch_trust(
        executor.clone(),
        trust,
        tuning.trust_check_interval,
        until_stopped(stopped),
    );
    let refresher = tokio::spawn(async move {
        let relay = async move {
            stop.await;
            let _ = stopping.send(true);
        };
        tokio::join!(relay, refresh, watch);
    });
    let state = ApiState::new(
        executor,
        TokenCheck::new(&registry),
        ApiLimits {
            max_notebook_bytes: tuning.max_notebook_bytes,
            max_queued: tuning.executor_queue,
            write_timeout: tuning.stream_write_timeout,
            ..ApiLimits::default()
        },
    );
    Ok((state, refresher))
}

pub(crate) fn run(args: ExecutorArgs) -> Result<()> {
    crate::process::init_tracing();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: ExecutorArgs) -> Result<()> {
    let policy = match &args.policy {
        Some(path) => Policy::load(path)?,
        None => Policy::parse("", "built-in defaults")?,
    };
    let settings = ExecutorSettings {
        registry: args.registry.trim_end_matches('/').to_owned(),
        registry_token: args.registry_token.clone(),
        keyring: Keyring::load(&args.trust)?,
        policy,
        data_dir: args.data.clone(),
        slots: args.tuning.executor_slots,
        revocation_refresh: args.tuning.revocation_refresh,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let address = listener.local_addr()?;
    let (stop_refresh, refresh_stopped) = tokio::sync::watch::channel(false);
    let (state, refresher) = start(settings, args.trust.clone(), &args.tuning, async move {
        let mut stopped = refresh_stopped;
        let _ = stopped.wait_for(|stop| *stop).await;
    })?;
    {
        use std::io::Write as _;
        let mut stdout = std::io::stdout();
        let _ = writeln!(
            stdout,
            "kiln executor listening on http://{address}\nregistry: {}\ndata directory: {}",
            args.registry,
            args.data.display()
        )
        .and_then(|()| stdout.flush());
    }
    // The web app's notebooks work against this executor alone; the catalogue and the review
    // queue need the registry's API on the same origin (`kiln serve`, or a proxy in front).
    let router = api::standalone_router(state)
        .merge(kiln_web::router())
        .layer(tower_http::trace::TraceLayer::new_for_http());
    kiln_http::serve(listener, router, args.connections.limits(), async move {
        crate::process::shutdown_signal().await;
        let _ = stop_refresh.send(true);
    })
    .await?;
    let _ = refresher.await;
    tracing::info!("stopped");
    Ok(())
}
