//! Health, metrics and the OpenAPI document.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi as _;

use super::{ApiResult, AppState};
use crate::metrics::{CONTENT_TYPE, JobLabels, StateLabels};
use crate::model::{jobs, versions};

/// `GET /healthz`: 200 when the database answers.
pub(super) async fn healthz(State(app): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    app.db.ping().await?;
    Ok(Json(serde_json::json!({"status": "ok"})))
}

/// `GET /metrics`: the registry's metrics (and the executor's, under `kiln serve`), with the
/// review states and jobs read from the database now.
pub(super) async fn metrics(State(app): State<AppState>) -> ApiResult<Response> {
    app.metrics.versions.clear();
    for (state, n) in versions::state_counts(&app.db).await? {
        app.metrics
            .versions
            .get_or_create(&StateLabels { state })
            .set(n);
    }
    app.metrics.jobs.clear();
    for (kind, state, n) in jobs::counts(&app.db).await? {
        app.metrics
            .jobs
            .get_or_create(&JobLabels { kind, state })
            .set(n);
    }
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        app.metrics.render(),
    )
        .into_response())
}

/// kiln's API, described for clients. Cargo's own protocol (`/index/`, `/api/v1/…`) is specified
/// by the Cargo book and is not repeated here.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "kiln registry API",
        description = "Submissions and review, artifacts, tokens, the event log, and the worker protocol. Cargo's sparse index and web API are served beside it at /index/ and /api/v1/."
    ),
    paths(
        super::submissions::list,
        super::submissions::show,
        super::submissions::crate_file,
        super::submissions::diff,
        super::submissions::approve,
        super::submissions::reject,
        super::submissions::retry,
        super::vet::audits,
        super::submissions::closure,
        super::submissions::approve_closure,
        super::submissions::curate,
        super::artifacts::artifact,
        super::catalogue::list,
        super::imports::import,
        super::revocations::revoke,
        super::revocations::list,
        super::tokens::create,
        super::tokens::list,
        super::tokens::revoke,
        super::tokens::whoami,
        super::events::list,
        super::events::verify,
        super::gc::sweep,
        super::code_builds::request,
        super::code_builds::show,
        super::code_builds::claim,
        super::code_builds::report,
        super::workers::claim,
        super::workers::heartbeat,
        super::workers::complete,
        super::workers::fail,
        super::workers::upload_blob,
        super::workers::download_blob,
        super::workers::approved_names,
        super::workers::curations,
        super::closures::config,
        super::closures::file,
        super::closures::download,
        super::advisories::status,
        super::advisories::sync,
    )
)]
pub(crate) struct ApiDoc;

/// `GET /openapi.json`: the registry's API, and what else this process serves.
pub(super) async fn openapi(State(app): State<AppState>) -> Json<utoipa::openapi::OpenApi> {
    let mut doc = ApiDoc::openapi();
    if let Some(more) = app.extensions.openapi.get() {
        doc.merge(more.clone());
    }
    Json(doc)
}
