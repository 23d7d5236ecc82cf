//! The HTTP interface: every route in one table ([`router`]), the extractors that check tokens
//! before bodies are read ([`extract`]), and the error type ([`error`]). Handlers are thin:
//! they extract, call the model or a service, and answer.

pub mod advisories;
mod artifacts;
mod cargo;
mod catalogue;
mod closures;
pub mod code_builds;
pub mod error;
mod events;
pub mod extract;
mod gc;
mod imports;
mod index;
mod meta;
mod revocations;
mod submissions;
mod tokens;
mod vet;
pub mod workers;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderMap;
use axum::routing::{delete, get, post, put};

pub use crate::app::{App, AppState, Extensions};
pub use error::{ApiError, ApiResult};

use crate::tokens::Authenticated;

/// The largest body a worker may upload (a module or a log).
pub const MAX_UPLOAD_BYTES: usize = 256 * 1024 * 1024;

/// The registry's routes.
pub fn router(app: AppState) -> Router {
    // The frame's two lengths and what they announce; the metadata counts against it too.
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
        .route("/api/kiln/v1/submissions", get(submissions::list))
        .route(
            "/api/kiln/v1/submissions/{name}/{version}",
            get(submissions::show),
        )
        .route(
            "/api/kiln/v1/submissions/{name}/{version}/crate",
            get(submissions::crate_file),
        )
        .route(
            "/api/kiln/v1/submissions/{name}/{version}/diff",
            get(submissions::diff),
        )
        .route(
            "/api/kiln/v1/submissions/{name}/{version}/approve",
            post(submissions::approve),
        )
        .route(
            "/api/kiln/v1/submissions/{name}/{version}/reject",
            post(submissions::reject),
        )
        .route(
            "/api/kiln/v1/submissions/{name}/{version}/retry",
            post(submissions::retry),
        )
        .route(
            "/api/kiln/v1/submissions/{name}/{version}/closure",
            get(submissions::closure),
        )
        .route(
            "/api/kiln/v1/submissions/{name}/{version}/approve-closure",
            post(submissions::approve_closure),
        )
        .route(
            "/api/kiln/v1/submissions/{name}/{version}/curate",
            post(submissions::curate),
        )
        .route("/api/kiln/v1/artifacts/{digest}", get(artifacts::artifact))
        .route("/api/kiln/v1/catalogue", get(catalogue::list))
        .route("/vet/audits.toml", get(vet::audits))
        .route("/api/kiln/v1/imports", post(imports::import))
        .route(
            "/api/kiln/v1/revocations",
            get(revocations::list).post(revocations::revoke),
        )
        .route(
            "/api/kiln/v1/tokens",
            get(tokens::list).post(tokens::create),
        )
        .route("/api/kiln/v1/tokens/{id}", delete(tokens::revoke))
        .route("/api/kiln/v1/whoami", get(tokens::whoami))
        .route("/api/kiln/v1/events", get(events::list))
        .route("/api/kiln/v1/events/verify", get(events::verify))
        .route("/api/kiln/v1/gc", post(gc::sweep))
        // Workers (audit, build) claim jobs and report results.
        .route("/api/kiln/v1/code-builds", post(code_builds::request))
        .route("/api/kiln/v1/code-builds/claim", post(code_builds::claim))
        .route("/api/kiln/v1/code-builds/{key}", get(code_builds::show))
        .route(
            "/api/kiln/v1/code-builds/{key}/report",
            post(code_builds::report),
        )
        .route("/api/kiln/v1/jobs/claim", post(workers::claim))
        .route("/api/kiln/v1/jobs/{id}/heartbeat", post(workers::heartbeat))
        .route("/api/kiln/v1/jobs/{id}/complete", post(workers::complete))
        .route("/api/kiln/v1/jobs/{id}/fail", post(workers::fail))
        .route(
            "/api/kiln/v1/blobs",
            post(workers::upload_blob).layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES)),
        )
        .route("/api/kiln/v1/blobs/{digest}", get(workers::download_blob))
        .route("/api/kiln/v1/approved-names", get(workers::approved_names))
        .route("/api/kiln/v1/curations/lookup", post(workers::curations))
        // A closure's index: the approved crates and the closure's members in review, for the
        // workers that hold its token.
        .route(
            "/api/kiln/v1/closures/{token}/index/config.json",
            get(closures::config),
        )
        .route(
            "/api/kiln/v1/closures/{token}/index/{*path}",
            get(closures::file),
        )
        .route(
            "/api/kiln/v1/closures/{token}/dl/{name}/{version}/download",
            get(closures::download),
        )
        .route("/api/kiln/v1/advisories", get(advisories::status))
        .route("/api/kiln/v1/advisories/sync", post(advisories::sync))
        // Operations.
        .route("/healthz", get(meta::healthz))
        .route("/metrics", get(meta::metrics))
        .route("/openapi.json", get(meta::openapi))
        .with_state(app)
        .layer(axum::middleware::from_fn_with_state(
            kiln_http::ErrorForm {
                internal: error::internal_body,
                other: error::other_body,
            },
            kiln_http::request_ids,
        ))
}

/// The answer to a path no route serves, in the registry's error form.
pub async fn no_route(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route {}", uri.path()))
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
    tokens_check(app, value).await.map(Some)
}

async fn tokens_check(app: &App, value: &str) -> ApiResult<Authenticated> {
    crate::tokens::authenticate(&app.db, crate::tokens::token_from_header(value))
        .await
        .map_err(|err| ApiError::from_auth(err, &app.config.login_url()))
}

/// Parses a digest from a path.
fn digest_param(text: &str) -> ApiResult<kiln_policy::Digest> {
    text.parse()
        .map_err(|err| ApiError::bad_request(format!("`{text}` is not a digest: {err}")))
}
