//! Health, metrics and the OpenAPI document.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sqlx::Row as _;
use utoipa::OpenApi as _;

use super::{ApiResult, AppState};
use crate::jobs;

/// `GET /healthz`: 200 when the database answers.
pub(super) async fn healthz(State(app): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    sqlx::query("SELECT 1").execute(app.db.pool()).await?;
    Ok(Json(serde_json::json!({"status": "ok"})))
}

/// `GET /metrics`.
pub(super) async fn metrics(State(app): State<AppState>) -> ApiResult<Response> {
    let versions = sqlx::query("SELECT state, COUNT(*) AS n FROM versions GROUP BY state")
        .fetch_all(app.db.pool())
        .await?
        .iter()
        .map(|r| {
            (
                vec![("state", r.get::<String, _>("state"))],
                r.get::<i64, _>("n"),
            )
        })
        .collect();
    let jobs = jobs::counts(&app.db)
        .await?
        .into_iter()
        .map(|(kind, state, n)| (vec![("kind", kind), ("state", state)], n))
        .collect();
    let mut text = app.metrics.render(&[
        ("kiln_versions", "Versions by review state.", versions),
        ("kiln_jobs", "Jobs by kind and state.", jobs),
    ]);
    if let Some(more) = app.extensions.metrics.get() {
        text.push_str(&more());
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        text,
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
        super::kiln::list_submissions,
        super::kiln::show_submission,
        super::kiln::submission_crate,
        super::kiln::approve,
        super::kiln::reject,
        super::kiln::artifact,
        super::kiln::import,
        super::revocations::revoke,
        super::revocations::list,
        super::kiln::create_token,
        super::kiln::list_tokens,
        super::kiln::revoke_token,
        super::kiln::whoami,
        super::kiln::events,
        super::kiln::verify_events,
        super::workers::claim,
        super::workers::heartbeat,
        super::workers::complete,
        super::workers::fail,
        super::workers::upload_blob,
        super::workers::download_blob,
        super::workers::approved_names,
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
