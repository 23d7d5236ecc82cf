//! `kiln serve`: the registry on embedded defaults (SQLite and a blob directory in the data
//! directory), or on PostgreSQL and an S3-compatible store.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Args;
use kiln_registry::RegistryConfig;

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The data directory: database, blobs, keys and the admin token.
    #[arg(long, value_name = "DIR", default_value = "./kiln-data")]
    data: PathBuf,
    /// The address to listen on (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7878")]
    listen: SocketAddr,
    /// The URL clients reach this server at (default: http://LISTEN).
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// PostgreSQL instead of SQLite in the data directory (postgres://…).
    #[arg(long, value_name = "URL", env = "KILN_DATABASE_URL")]
    database_url: Option<String>,
    /// Where blobs go: a directory (file://DIR) or an S3-compatible bucket (s3://BUCKET, set up
    /// with the AWS_* variables). Default: DATA/blobs.
    #[arg(long, value_name = "SPEC")]
    blob_store: Option<String>,
    /// Require a token for every request, index reads included.
    #[arg(long)]
    auth_required: bool,
    /// How many versions one user may publish per minute (then 429 with Retry-After).
    #[arg(long, value_name = "N", default_value_t = 120)]
    publish_per_minute: u32,
    /// The largest .crate a publish may carry, in bytes (at most the default: every reader of
    /// .crate files in kiln shares that limit).
    #[arg(long, value_name = "BYTES", default_value_t = kiln_registry::config::DEFAULT_MAX_PUBLISH_BYTES)]
    max_publish_bytes: usize,
    /// The audit policy (default: kiln's built-in defaults, as in policies/default.toml).
    #[arg(long, value_name = "FILE", env = "KILN_POLICY")]
    policy: Option<PathBuf>,
    /// The advisory database audits read and `kiln advisories sync` replaces
    /// (default: DATA/advisory-db).
    #[arg(long, value_name = "DIR")]
    advisory_db: Option<PathBuf>,
    /// Where the advisory database is synced from: a directory (a snapshot) or a git URL
    /// (<https://github.com/rustsec/advisory-db.git>). Synced on start when the database is missing.
    #[arg(long, value_name = "SOURCE", env = "KILN_ADVISORY_SOURCE")]
    advisory_source: Option<String>,
    /// Run no workers in this process (they run as separate processes instead).
    #[arg(long)]
    no_builder: bool,
    /// Run no executor in this process (`kiln executor` runs elsewhere instead).
    #[arg(long)]
    no_executor: bool,
    #[command(flatten)]
    executor: crate::executor::ExecutorTuning,
    #[command(flatten)]
    connections: crate::connections::ConnectionArgs,
    /// Build without the bubblewrap sandbox (build scripts can then reach the network and the
    /// host); the provenance records it. Without this flag, kiln refuses to start its builder
    /// where bubblewrap does not work.
    #[arg(long)]
    insecure_no_sandbox: bool,
    #[command(flatten)]
    build_limits: crate::builder::BuildLimits,
}

pub(crate) fn run(args: ServeArgs) -> Result<()> {
    crate::process::init_tracing();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: ServeArgs) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let address = listener.local_addr()?;
    let public_url = args
        .public_url
        .unwrap_or_else(|| format!("http://{address}"));
    let mut config = RegistryConfig::new(public_url);
    config.auth_required = args.auth_required;
    if args.max_publish_bytes > kiln_registry::config::DEFAULT_MAX_PUBLISH_BYTES {
        anyhow::bail!(
            "--max-publish-bytes {} is over {} bytes, the largest .crate kiln's builders and reviewers read",
            args.max_publish_bytes,
            kiln_registry::config::DEFAULT_MAX_PUBLISH_BYTES
        );
    }
    config.max_publish_bytes = args.max_publish_bytes;
    config.publish_per_minute = args.publish_per_minute;
    // Closure imports keep Cargo's downloads from the upstream here, across imports.
    config.import_cache = Some(args.data.join("import-cache"));
    if let Some(path) = &args.policy {
        config.policy = kiln_policy::policy_file::Policy::load(path)?;
    }
    let advisory_db = args
        .advisory_db
        .clone()
        .unwrap_or_else(|| args.data.join("advisory-db"));
    config.advisory_db = Some(advisory_db.clone());
    config.advisory_source = args.advisory_source.clone();
    if !advisory_db.join("crates").is_dir() {
        match &args.advisory_source {
            Some(source) => {
                let source = source.clone();
                let into = advisory_db.clone();
                let (outcome, _) = tokio::task::spawn_blocking(move || {
                    kiln_registry::advisory_db::sync(&source, &into)
                })
                .await??;
                tracing::info!(revision = %outcome.after, advisories = outcome.advisories, "synced the advisory database");
            }
            None => tracing::warn!(
                path = %advisory_db.display(),
                "no advisory database: audits wait until one is synced (kiln serve --advisory-source, or kiln advisories sync)"
            ),
        }
    }
    // A database older than the policy allows denies every audit: say so now, not at the first
    // publish.
    let stale_database = if advisory_db.join("crates").is_dir() {
        let db_path = advisory_db.clone();
        let db = tokio::task::spawn_blocking(move || {
            kiln_policy::checks::advisories::AdvisoryDb::open(&db_path)
        })
        .await?;
        match db {
            Ok(db) => kiln_policy::checks::advisories::staleness(
                &db,
                &config.policy.advisories,
                &kiln_registry::db::today(),
            ),
            Err(err) => Some(format!("the advisory database cannot be read: {err}")),
        }
    } else {
        None
    };
    if let Some(problem) = &stale_database {
        tracing::warn!(path = %advisory_db.display(), "{problem}; until then every audit is denied (kiln advisories sync, then kiln review retry)");
    }
    let app = kiln_registry::open(
        config.clone(),
        &args.data,
        args.database_url.as_deref(),
        args.blob_store.as_deref(),
    )
    .await
    .context("opening the registry")?;
    // The first line names the address (port 0 picks one); scripts and tests read it.
    let warning = stale_database
        .map(|problem| format!("warning:        {problem}\n"))
        .unwrap_or_default();
    let banner = format!(
        "kiln listening on {url}\ndata directory: {data}\nadmin token:    {token}\n{warning}\n\
         Authors add this to .cargo/config.toml:\n\n    [registries.kiln]\n    index = \"{index}\"\n    \
         credential-provider = \"cargo:token\"\n",
        url = config.public_url,
        data = args.data.display(),
        token = match args.data.join(kiln_registry::ADMIN_TOKEN_FILE) {
            path if path.exists() => path.display().to_string(),
            // A replica on a database another replica started first.
            _ => "none here: the first replica on this database wrote it".to_owned(),
        },
        index = config.index_url(),
    );
    // Nobody may be reading standard output any more; that must not stop the server.
    use std::io::Write as _;
    let mut stdout = std::io::stdout();
    let _ = stdout
        .write_all(banner.as_bytes())
        .and_then(|()| stdout.flush());
    let (stop_workers, workers_stopped) = tokio::sync::watch::channel(false);
    let mut workers = Vec::new();
    let mut more_routes = axum::Router::new();
    if !args.no_executor {
        let token = kiln_registry::worker_token(&app, &args.data).await?;
        let settings = kiln_executor::service::ExecutorSettings {
            registry: format!("http://{address}"),
            registry_token: Some(token),
            keyring: kiln_policy::Keyring::load(&app.keys.trust_file)?,
            policy: app.config.policy.clone(),
            data_dir: args.data.join("executor"),
            slots: args.executor.executor_slots,
            revocation_refresh: args.executor.revocation_refresh,
        };
        let mut stopped = workers_stopped.clone();
        // The executor reads this registry over loopback: its first fetch of the revocation
        // list waits on the bound listener until the server below starts answering.
        let trust = app.keys.trust_file.clone();
        let (state, refresher) =
            crate::executor::start(settings, trust, &args.executor, async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            })?;
        let executor = state.executor.clone();
        let _ = app
            .extensions
            .on_revocation
            .set(Box::new(move || executor.revocations_changed()));
        app.metrics
            .register(|registry| state.executor.metrics.register(registry));
        let _ = app
            .extensions
            .openapi
            .set(<kiln_executor::api::ExecutorApi as utoipa::OpenApi>::openapi());
        more_routes = kiln_executor::api::router(state);
        workers.push(refresher);
    }
    if !args.no_builder {
        let token = kiln_registry::worker_token(&app, &args.data).await?;
        let mut build_settings = kiln_builder::build_job::BuildSettings::new(
            app.config.policy.clone(),
            app.keys.builder.clone(),
            args.data.join("build-cache"),
            args.insecure_no_sandbox,
        )
        .map_err(anyhow::Error::msg)
        .context("starting the builder (or run kiln serve --no-builder)")?;
        build_settings.limits = args.build_limits.limits();
        let client = kiln_builder::client::Client::new(
            &format!("http://{address}"),
            &token,
            &crate::builder::worker_name(&args.data, "in-process")?,
        );
        let mut stopped = workers_stopped.clone();
        workers.push(tokio::spawn(kiln_builder::build_job::run(
            client.clone(),
            build_settings,
            std::time::Duration::from_millis(250),
            async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            },
        )));
        // Code cells: built by the same builder, audited against the same database.
        let mut code_build = kiln_builder::build_job::BuildSettings::new(
            app.config.policy.clone(),
            app.keys.builder.clone(),
            args.data.join("build-cache"),
            args.insecure_no_sandbox,
        )
        .map_err(anyhow::Error::msg)?;
        code_build.limits = args.build_limits.limits();
        let mut stopped = workers_stopped.clone();
        workers.push(tokio::spawn(kiln_builder::code_cell::run(
            client.clone(),
            kiln_builder::code_cell::CodeSettings {
                build: code_build,
                advisory_db: advisory_db.clone(),
            },
            std::time::Duration::from_millis(100),
            async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            },
        )));
        let settings = kiln_builder::audit::AuditSettings {
            policy: app.config.policy.clone(),
            advisory_db,
            key: app.keys.builder.clone(),
        };
        let mut stopped = workers_stopped.clone();
        workers.push(tokio::spawn(kiln_builder::audit::run(
            client,
            settings,
            std::time::Duration::from_millis(250),
            async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            },
        )));
    }
    // The web app, on the same port as the APIs.
    let more_routes = more_routes.merge(kiln_web::router());
    let limits = args.connections.limits();
    kiln_registry::serve_with(app, more_routes, listener, limits, async move {
        crate::process::shutdown_signal().await;
        let _ = stop_workers.send(true);
    })
    .await?;
    for worker in workers {
        let _ = worker.await;
    }
    tracing::info!("stopped");
    Ok(())
}
