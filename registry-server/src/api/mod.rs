//! The HTTP interface: every route in one table ([`router`]), the shared state, and
//! authentication.

pub mod advisories;
mod cargo;
pub mod error;
mod index;
pub mod kiln;
mod meta;
pub mod revocations;
pub mod workers;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderMap;
use axum::routing::{delete, get, post, put};

pub use error::{ApiError, ApiResult};

use crate::blobs::BlobStore;
use crate::config::RegistryConfig;
use crate::db::Db;
use crate::metrics::Metrics;
use crate::tokens::{self, Authenticated, Scope};

/// What every handler shares.
#[derive(Debug)]
pub struct App {
    /// The database.
    pub db: Db,
    /// The blob store.
    pub blobs: Arc<dyn BlobStore>,
    /// The settings.
    pub config: RegistryConfig,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
    /// Index files in memory.
    pub index_cache: crate::index_cache::IndexCache,
    /// The server's signing keys.
    pub keys: crate::keys::ServerKeys,
    /// Publishes per user and minute.
    pub publish_limiter: crate::rate_limit::RateLimiter,
    /// What other services in the same process add to `/metrics` and `/openapi.json`.
    pub extensions: Extensions,
}

/// Metrics text made on demand by another service in the process.
pub type MetricsSource = Box<dyn Fn() -> String + Send + Sync>;

/// What another service in the same process (the executor under `kiln serve`) adds to the
/// registry's operations endpoints. Each is set at most once, before serving.
#[derive(Default)]
pub struct Extensions {
    /// More `/metrics` text.
    pub metrics: std::sync::OnceLock<MetricsSource>,
    /// More API description, merged into `/openapi.json`.
    pub openapi: std::sync::OnceLock<utoipa::openapi::OpenApi>,
    /// Told after every revocation is committed (the executor then refreshes its list before
    /// its next preflight).
    pub on_revocation: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl Extensions {
    /// Tells whoever listens that the revocation list changed.
    pub fn revoked(&self) {
        if let Some(listener) = self.on_revocation.get() {
            listener();
        }
    }
}

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extensions")
            .field("metrics", &self.metrics.get().is_some())
            .field("openapi", &self.openapi.get().is_some())
            .field("on_revocation", &self.on_revocation.get().is_some())
            .finish()
    }
}

/// The state handlers receive.
pub type AppState = Arc<App>;

/// The registry's routes.
pub fn router(app: AppState) -> Router {
    let publish_limit = app.config.max_publish_bytes + 8;
    Router::new()
        // Cargo's sparse index.
        .route("/index/config.json", get(index::config))
        .route("/index/{*path}", get(index::file))
        // Cargo's web API.
        .route(
            "/api/v1/crates/new",
            put(cargo::publish).layer(DefaultBodyLimit::max(publish_limit)),
        )
        .route("/api/v1/crates", get(cargo::search))
        .route(
            "/api/v1/crates/{name}/{version}/download",
            get(cargo::download),
        )
        .route("/api/v1/crates/{name}/{version}/yank", delete(cargo::yank))
        .route("/api/v1/crates/{name}/{version}/unyank", put(cargo::unyank))
        .route(
            "/api/v1/crates/{name}/owners",
            get(cargo::owners)
                .put(cargo::add_owners)
                .delete(cargo::remove_owners),
        )
        // kiln's own API.
        .route("/api/kiln/v1/submissions", get(kiln::list_submissions))
        .route(
            "/api/kiln/v1/submissions/{name}/{version}",
            get(kiln::show_submission),
        )
        .route(
            "/api/kiln/v1/submissions/{name}/{version}/crate",
            get(kiln::submission_crate),
        )
        .route(
            "/api/kiln/v1/submissions/{name}/{version}/approve",
            post(kiln::approve),
        )
        .route(
            "/api/kiln/v1/submissions/{name}/{version}/reject",
            post(kiln::reject),
        )
        .route("/api/kiln/v1/artifacts/{digest}", get(kiln::artifact))
        .route("/api/kiln/v1/imports", post(kiln::import))
        .route(
            "/api/kiln/v1/revocations",
            get(revocations::list).post(revocations::revoke),
        )
        .route(
            "/api/kiln/v1/tokens",
            get(kiln::list_tokens).post(kiln::create_token),
        )
        .route("/api/kiln/v1/tokens/{id}", delete(kiln::revoke_token))
        .route("/api/kiln/v1/whoami", get(kiln::whoami))
        .route("/api/kiln/v1/events", get(kiln::events))
        .route("/api/kiln/v1/events/verify", get(kiln::verify_events))
        // Workers (audit, build) claim jobs and report results.
        .route("/api/kiln/v1/jobs/claim", post(workers::claim))
        .route("/api/kiln/v1/jobs/{id}/heartbeat", post(workers::heartbeat))
        .route("/api/kiln/v1/jobs/{id}/complete", post(workers::complete))
        .route("/api/kiln/v1/jobs/{id}/fail", post(workers::fail))
        .route(
            "/api/kiln/v1/blobs",
            post(workers::upload_blob).layer(DefaultBodyLimit::max(256 * 1024 * 1024)),
        )
        .route("/api/kiln/v1/blobs/{digest}", get(workers::download_blob))
        .route("/api/kiln/v1/approved-names", get(workers::approved_names))
        .route("/api/kiln/v1/advisories", get(advisories::status))
        .route("/api/kiln/v1/advisories/sync", post(advisories::sync))
        // Operations.
        .route("/healthz", get(meta::healthz))
        .route("/metrics", get(meta::metrics))
        .route("/openapi.json", get(meta::openapi))
        .with_state(app)
}

/// The token in the request, checked; `None` when no token was sent.
pub async fn authenticate(app: &App, headers: &HeaderMap) -> ApiResult<Option<Authenticated>> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| {
        ApiError::unauthorized(
            "the Authorization header is not text",
            &app.config.login_url(),
        )
    })?;
    tokens::authenticate(&app.db, tokens::token_from_header(value))
        .await
        .map(Some)
        .map_err(|err| ApiError::from_auth(err, &app.config.login_url()))
}

/// The checked token, which must be present and hold `scope`.
pub async fn require(app: &App, headers: &HeaderMap, scope: Scope) -> ApiResult<Authenticated> {
    let auth = authenticate(app, headers)
        .await?
        .ok_or_else(|| ApiError::from_auth(tokens::AuthError::Missing, &app.config.login_url()))?;
    if !auth.has_scope(scope) {
        return Err(ApiError::forbidden(format!(
            "this token does not have the `{scope}` scope"
        )));
    }
    Ok(auth)
}

/// Refuses anonymous reads when the registry requires authentication.
pub async fn require_read(app: &App, headers: &HeaderMap) -> ApiResult<Option<Authenticated>> {
    let auth = authenticate(app, headers).await?;
    if app.config.auth_required && auth.is_none() {
        return Err(ApiError::from_auth(
            tokens::AuthError::Missing,
            &app.config.login_url(),
        ));
    }
    Ok(auth)
}
