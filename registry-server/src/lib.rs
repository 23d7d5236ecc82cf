//! kiln's registry service (crate `kiln-registry`).
//!
//! A Cargo-compatible registry with a quarantine: `cargo publish` puts a version in the
//! `submitted` state, audit and build workers move it to `audited` and `built` (or `failed`), and
//! only a reviewer's approval puts it in the sparse index. Every change is recorded in a
//! hash-chained event log.
//!
//! - [`api`]: every route, in one table, the extractors that check tokens, and the HTTP error
//!   type; handlers only extract, call the layers below, and answer;
//! - [`publish`], [`review`], [`work`], [`revocation`], [`reaudit`], [`submissions`], [`gc`]:
//!   what the registry does, each built on the model;
//! - [`model`]: every SQL statement and every guarded state transition;
//! - [`db`]: SQLite or PostgreSQL through one set of queries; [`blobs`]: content-addressed
//!   storage;
//! - [`tokens`], [`names`]: who is calling, and which crate names are acceptable.

#![forbid(unsafe_code)]

pub mod advisory_db;
pub mod api;
pub mod app;
pub mod blobs;
pub mod config;
pub mod curation;
pub mod db;
pub mod gc;
pub mod import;
pub mod index_cache;
pub mod keys;
pub mod metrics;
pub mod model;
pub mod names;
pub mod publish;
pub mod rate_limit;
pub mod reaudit;
pub mod review;
pub mod revocation;
pub mod submissions;
pub mod tokens;
pub mod vet;
pub mod work;

use std::path::Path;
use std::sync::Arc;

pub use api::router;
pub use app::{App, AppState};
pub use config::RegistryConfig;

use crate::blobs::BlobStore;
use crate::db::Db;
use crate::model::{ModelError, users};
use crate::tokens::{NewToken, Scope};

/// The file the first admin token is written to, in the data directory.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// Why the registry could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database.
    #[error(transparent)]
    Db(#[from] db::DbError),
    /// The blob store.
    #[error(transparent)]
    Blobs(#[from] blobs::BlobError),
    /// Writing the admin token.
    #[error("cannot write {path}: {source}")]
    AdminToken {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A database query during start-up.
    #[error("database error during start-up: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// The model during start-up.
    #[error("during start-up: {0}")]
    Model(#[from] ModelError),
    /// The HTTP client for upstream registries.
    #[error("the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    /// The server's signing keys.
    #[error(transparent)]
    Keys(#[from] keys::KeysError),
}

/// Opens the registry: connects the database (applying migrations) and the blob store, and on
/// first start creates the `admin` user with an admin token written to `DATA/admin.token`
/// (mode 0600).
pub async fn open(
    config: RegistryConfig,
    data_dir: &Path,
    database_url: Option<&str>,
    blob_store: Option<&str>,
) -> Result<AppState, StartError> {
    std::fs::create_dir_all(data_dir).map_err(|source| StartError::AdminToken {
        path: data_dir.to_owned(),
        source,
    })?;
    let url = database_url.map_or_else(|| Db::sqlite_url(data_dir), str::to_owned);
    let db = Db::connect(&url).await?;
    let blobs: Arc<dyn BlobStore> = match blob_store {
        Some(spec) => blobs::open(spec)?,
        None => Arc::new(blobs::FsBlobStore::new(data_dir.join("blobs"))?),
    };
    bootstrap_admin(&db, data_dir).await?;
    let keys = deployment_keys(&db, data_dir).await?;
    let index_cache = index_cache::IndexCache::new(match db.backend() {
        db::Backend::Sqlite => None,
        db::Backend::Postgres => Some(index_cache::SHARED_DATABASE_TTL),
    });
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(120))
        .build()?;
    Ok(Arc::new(App {
        db,
        blobs,
        config,
        metrics: metrics::Metrics::default(),
        index_cache,
        keys,
        publish_limiter: rate_limit::RateLimiter::default(),
        http,
        extensions: app::Extensions::default(),
    }))
}

/// This replica's signing keys, held to the deployment's: the first replica on a database makes
/// its keys (or brings them) and records their ids there; a later replica must have the same
/// keys, is never given new ones silently, and is refused at start otherwise. A replica whose
/// trust file lists the deployment's key for a role as retired rotated that key: its new key is
/// recorded, and the other replicas are refused until they have it.
async fn deployment_keys(db: &Db, data_dir: &Path) -> Result<keys::ServerKeys, StartError> {
    let recorded = model::deployment_keys::recorded(db).await?;
    let keys = keys::load_or_create(data_dir, recorded.is_empty())?;
    let trusted = kiln_policy::Keyring::load(&keys.trust_file).ok();
    for role in kiln_policy::Role::ALL {
        let ours = keys.signing_key(role).id().to_string();
        match recorded.get(role.as_str()) {
            Some(id) if *id == ours => continue,
            Some(id)
                if trusted
                    .as_ref()
                    .and_then(|keyring| keyring.get(id))
                    .is_none_or(|key| key.retired.is_none()) =>
            {
                return Err(keys::KeysError::Differ {
                    role,
                    ours,
                    deployment: id.clone(),
                }
                .into());
            }
            Some(id) => {
                tracing::info!(%role, from = %id, to = %ours, "recording this replica's rotated key as the deployment's");
            }
            None => {}
        }
        model::deployment_keys::record(db, role.as_str(), &ours).await?;
    }
    Ok(keys)
}

/// Makes a token for `login` (created if new) with `scopes`, logged as made by `kiln`, and
/// writes its secret to `path` before the transaction commits.
async fn make_token_file(
    db: &Db,
    login: &str,
    name: &str,
    scopes: &[Scope],
    path: &Path,
) -> Result<String, StartError> {
    let secret = tokens::generate_secret();
    let token = NewToken {
        name: name.into(),
        scopes: scopes.iter().copied().collect(),
        crate_pattern: None,
        expires_at: None,
    };
    let mut w = db.begin_write().await?;
    let user_id = users::ensure(&mut w.tx, login).await?;
    model::tokens::create(
        &mut w.tx,
        user_id,
        login,
        &token,
        &tokens::hash_secret(&secret),
        "kiln",
    )
    .await?;
    write_secret(path, &secret).map_err(|source| StartError::AdminToken {
        path: path.to_owned(),
        source,
    })?;
    w.commit().await?;
    Ok(secret)
}

async fn bootstrap_admin(db: &Db, data_dir: &Path) -> Result<(), StartError> {
    let mut w = db.begin_write().await?;
    let existing = users::count(&mut w.tx).await?;
    drop(w);
    if existing > 0 {
        return Ok(());
    }
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    make_token_file(db, "admin", "bootstrap admin token", &[Scope::Admin], &path).await?;
    tracing::info!(path = %path.display(), "created the admin token");
    Ok(())
}

/// Where the in-process workers' token is kept (mode 0600).
pub const WORKER_TOKEN_FILE: &str = "worker.token";

/// The token the in-process workers use: read from `DATA/worker.token`, or made (for the user
/// `kiln-worker`, worker scope only) and written there on first use.
pub async fn worker_token(app: &AppState, data_dir: &Path) -> Result<String, StartError> {
    let path = data_dir.join(WORKER_TOKEN_FILE);
    if let Ok(token) = std::fs::read_to_string(&path) {
        let token = token.trim().to_owned();
        if tokens::authenticate(&app.db, &token).await.is_ok() {
            return Ok(token);
        }
    }
    make_token_file(
        &app.db,
        "kiln-worker",
        "in-process workers",
        &[Scope::Worker],
        &path,
    )
    .await
}

pub(crate) fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(secret.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// Serves the registry on `listener` until `shutdown` resolves.
pub async fn serve(
    app: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = kiln_http::ConnectionLimits::default();
    serve_with(app, axum::Router::new(), listener, limits, shutdown).await
}

/// Serves the registry and `more` routes (another service in the same process, such as the
/// executor) on `listener`, within `limits`, until `shutdown` resolves; requests in flight
/// finish first.
pub async fn serve_with(
    app: AppState,
    more: axum::Router,
    listener: tokio::net::TcpListener,
    limits: kiln_http::ConnectionLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sweeper = app.clone();
    tokio::spawn(async move {
        if let Err(err) = gc::sweep(&sweeper, gc::DEFAULT_GRACE, false).await {
            tracing::warn!(error = %err, "sweeping orphan blobs at start");
        }
    });
    let router = router(app.clone())
        .merge(more)
        .fallback(api::no_route)
        .layer(tower_http::trace::TraceLayer::new_for_http());
    kiln_http::serve(listener, router, limits, shutdown).await?;
    app.db.close().await;
    Ok(())
}
