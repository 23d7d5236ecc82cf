//! The worker protocol: audit and build workers (in this process or separate ones) claim jobs,
//! keep their leases alive, upload what they produce, and report the result, which moves the
//! submission along: submitted → audited → built, or failed with the reason.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kiln_policy::Digest;
use serde::Deserialize;
use sqlx::Row as _;

use super::{ApiError, ApiResult, AppState, require};
use crate::db::now_ms;
use crate::events;
use crate::jobs::{self, FailOutcome};
use crate::tokens::Scope;

/// The longest lease a worker may ask for.
const MAX_LEASE: Duration = Duration::from_secs(3600);

fn lease(secs: Option<u64>) -> Duration {
    Duration::from_secs(secs.unwrap_or(60).clamp(1, MAX_LEASE.as_secs()))
}

/// A claim.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ClaimRequest {
    /// `audit` or `build`.
    pub kind: String,
    /// The worker's name, unique among workers.
    pub worker: String,
    /// The lease in seconds (default 60).
    #[serde(default)]
    pub lease_secs: Option<u64>,
}

/// `POST /api/kiln/v1/jobs/claim`: the next ready job, or 204.
#[utoipa::path(post, path = "/api/kiln/v1/jobs/claim", request_body = ClaimRequest, responses((status = 200, body = jobs::Job), (status = 204)))]
pub(crate) async fn claim(
    State(app): State<AppState>,
    headers: HeaderMap,
    Json(request): Json<ClaimRequest>,
) -> ApiResult<Response> {
    require(&app, &headers, Scope::Worker).await?;
    if !matches!(request.kind.as_str(), "audit" | "build") {
        return Err(ApiError::unprocessable(format!(
            "unknown job kind `{}` (audit, build)",
            request.kind
        )));
    }
    match jobs::claim(
        &app.db,
        &request.kind,
        &request.worker,
        lease(request.lease_secs),
    )
    .await?
    {
        Some(job) => Ok(Json(job).into_response()),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// A heartbeat.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct HeartbeatRequest {
    /// The worker holding the job.
    pub worker: String,
    /// The new lease in seconds.
    #[serde(default)]
    pub lease_secs: Option<u64>,
}

/// `POST /api/kiln/v1/jobs/{id}/heartbeat`: 409 when the lease was lost.
#[utoipa::path(post, path = "/api/kiln/v1/jobs/{id}/heartbeat", request_body = HeartbeatRequest, responses((status = 200), (status = 409)))]
pub(crate) async fn heartbeat(
    State(app): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    Json(request): Json<HeartbeatRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    require(&app, &headers, Scope::Worker).await?;
    if jobs::heartbeat(&app.db, id, &request.worker, lease(request.lease_secs)).await? {
        Ok(Json(serde_json::json!({"ok": true})))
    } else {
        Err(ApiError::conflict(format!(
            "job {id} is no longer held by `{}`",
            request.worker
        )))
    }
}

/// A job's result.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CompleteRequest {
    /// The worker holding the job.
    pub worker: String,
    /// For audit jobs: `pass`, `needs-review` or `deny`.
    #[serde(default)]
    pub verdict: Option<String>,
    /// The report to keep with the submission.
    #[schema(value_type = Object)]
    pub report: serde_json::Value,
    /// For build jobs: what was built (uploaded first to `/api/kiln/v1/blobs`).
    #[serde(default)]
    pub artifacts: Vec<ArtifactRecord>,
}

/// A built artifact.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ArtifactRecord {
    /// Its digest (`sha256:…`).
    pub digest: String,
    /// `wasm`, `cwasm`, `manifest`, `provenance`, `audit`, `log`.
    pub kind: String,
    /// Its media type.
    pub media_type: String,
}

struct HeldJob {
    kind: String,
    version_id: i64,
    subject: String,
}

async fn held_job(app: &AppState, id: i64, worker: &str) -> ApiResult<HeldJob> {
    let row = sqlx::query("SELECT kind, payload, worker, state FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_optional(app.db.pool())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
    if row.get::<String, _>("state") != "running"
        || row.get::<Option<String>, _>("worker").as_deref() != Some(worker)
    {
        return Err(ApiError::conflict(format!(
            "job {id} is not held by `{worker}`"
        )));
    }
    let payload: serde_json::Value =
        serde_json::from_str(&row.get::<String, _>("payload")).map_err(ApiError::internal)?;
    Ok(HeldJob {
        kind: row.get("kind"),
        version_id: payload["version_id"]
            .as_i64()
            .ok_or_else(|| ApiError::internal("job without version_id"))?,
        subject: format!(
            "{}@{}",
            payload["crate"].as_str().unwrap_or("?"),
            payload["version"].as_str().unwrap_or("?")
        ),
    })
}

/// Moves a version from `from` to `to` inside `tx`; false when it was not in `from`.
async fn transition(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    version_id: i64,
    from: &str,
    to: &str,
    reason: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE versions SET state = $1, state_reason = $2, updated_at = $3 WHERE id = $4 AND state = $5")
        .bind(to)
        .bind(reason)
        .bind(now_ms())
        .bind(version_id)
        .bind(from)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// `POST /api/kiln/v1/jobs/{id}/complete`.
#[utoipa::path(post, path = "/api/kiln/v1/jobs/{id}/complete", request_body = CompleteRequest, responses((status = 200), (status = 409), (status = 422)))]
pub(crate) async fn complete(
    State(app): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    Json(request): Json<CompleteRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    let auth = require(&app, &headers, Scope::Worker).await?;
    let job = held_job(&app, id, &request.worker).await?;
    let mut artifacts = Vec::new();
    for artifact in &request.artifacts {
        let digest: Digest = artifact.digest.parse().map_err(|err| {
            ApiError::unprocessable(format!("artifact digest `{}`: {err}", artifact.digest))
        })?;
        let size = app
            .blobs
            .get(&digest)
            .await?
            .ok_or_else(|| ApiError::unprocessable(format!("artifact {digest} was not uploaded")))?
            .len();
        artifacts.push((digest, artifact, size as i64));
    }
    let mut w = app.db.begin_write().await?;
    let (next_state, event) = match job.kind.as_str() {
        "audit" => {
            let verdict = request
                .verdict
                .as_deref()
                .ok_or_else(|| ApiError::unprocessable("an audit result needs a verdict"))?;
            match verdict {
                "pass" | "needs-review" => ("audited", "audit"),
                "deny" => ("failed", "audit"),
                other => {
                    return Err(ApiError::unprocessable(format!(
                        "unknown verdict `{other}` (pass, needs-review, deny)"
                    )));
                }
            }
        }
        _ => ("built", "build"),
    };
    let from = if job.kind == "audit" {
        "submitted"
    } else {
        "audited"
    };
    let reason =
        (next_state == "failed").then_some("the audit denied this version; see the audit report");
    if !transition(&mut w.tx, job.version_id, from, next_state, reason).await? {
        return Err(ApiError::conflict(format!(
            "{} is no longer {from}",
            job.subject
        )));
    }
    if !jobs::complete(&mut w.tx, id, &request.worker).await? {
        return Err(ApiError::conflict(format!(
            "job {id} is not held by `{}`",
            request.worker
        )));
    }
    sqlx::query("INSERT INTO reports (version_id, kind, body, created_at) VALUES ($1, $2, $3, $4)")
        .bind(job.version_id)
        .bind(&job.kind)
        .bind(request.report.to_string())
        .bind(now_ms())
        .execute(&mut *w.tx)
        .await?;
    for (digest, artifact, size) in &artifacts {
        sqlx::query("INSERT INTO artifacts (digest, version_id, kind, media_type, size, created_at) SELECT $1, $2, $3, $4, $5, $6 WHERE NOT EXISTS (SELECT 1 FROM artifacts WHERE digest = $1)")
            .bind(digest.to_string())
            .bind(job.version_id)
            .bind(&artifact.kind)
            .bind(&artifact.media_type)
            .bind(size)
            .bind(now_ms())
            .execute(&mut *w.tx)
            .await?;
    }
    if next_state == "audited" {
        let payload = sqlx::query("SELECT payload FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *w.tx)
            .await?;
        let payload: serde_json::Value = serde_json::from_str(&payload.get::<String, _>("payload"))
            .map_err(ApiError::internal)?;
        jobs::enqueue(&mut w.tx, "build", &payload, app.config.job_attempts).await?;
    }
    let data = serde_json::json!({"verdict": request.verdict, "state": next_state, "artifacts": artifacts.iter().map(|(d, a, _)| serde_json::json!({"digest": d.to_string(), "kind": a.kind})).collect::<Vec<_>>()});
    events::append(
        &mut w.tx,
        app.db.backend(),
        event,
        &job.subject,
        &auth.login,
        data,
    )
    .await?;
    w.commit().await?;
    Ok(Json(serde_json::json!({"ok": true, "state": next_state})))
}

/// A failed attempt.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct FailRequest {
    /// The worker holding the job.
    pub worker: String,
    /// What went wrong.
    pub error: String,
    /// The submission itself is at fault (it does not build, say): fail it now instead of
    /// retrying.
    #[serde(default)]
    pub terminal: bool,
    /// The job waits for something outside it (a dependency's approval): queue it again
    /// without counting the attempt; the error is shown as the submission's state reason.
    #[serde(default)]
    pub waiting: bool,
}

/// Shows why a submission is not moving (it keeps its state; the next transition clears it).
async fn set_waiting_reason(app: &AppState, version_id: i64, reason: &str) -> ApiResult<()> {
    let mut w = app.db.begin_write().await?;
    sqlx::query("UPDATE versions SET state_reason = $1, updated_at = $2 WHERE id = $3 AND state IN ('submitted', 'audited')")
        .bind(reason)
        .bind(now_ms())
        .bind(version_id)
        .execute(&mut *w.tx)
        .await?;
    w.commit().await?;
    Ok(())
}

/// `POST /api/kiln/v1/jobs/{id}/fail`: retry later, wait, or fail the submission.
#[utoipa::path(post, path = "/api/kiln/v1/jobs/{id}/fail", request_body = FailRequest, responses((status = 200), (status = 409)))]
pub(crate) async fn fail(
    State(app): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    Json(request): Json<FailRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    let auth = require(&app, &headers, Scope::Worker).await?;
    let job = held_job(&app, id, &request.worker).await?;
    if request.waiting {
        if !jobs::wait(&app.db, id, &request.worker, &request.error).await? {
            return Err(ApiError::conflict(format!(
                "job {id} is not held by `{}`",
                request.worker
            )));
        }
        set_waiting_reason(&app, job.version_id, &request.error).await?;
        return Ok(Json(
            serde_json::json!({"ok": true, "waiting_secs": jobs::WAIT.as_secs()}),
        ));
    }
    let outcome = if request.terminal {
        let mut w = app.db.begin_write().await?;
        jobs::complete(&mut w.tx, id, &request.worker).await?;
        w.commit().await?;
        FailOutcome::Dead
    } else {
        jobs::fail(&app.db, id, &request.worker, &request.error).await?
    };
    match outcome {
        FailOutcome::Retry(delay) => {
            set_waiting_reason(
                &app,
                job.version_id,
                &format!(
                    "{} will be retried in {} s: {}",
                    job.kind,
                    delay.as_secs(),
                    request.error
                ),
            )
            .await?;
            Ok(Json(
                serde_json::json!({"ok": true, "retry_in_secs": delay.as_secs()}),
            ))
        }
        FailOutcome::NotHeld => Err(ApiError::conflict(format!(
            "job {id} is not held by `{}`",
            request.worker
        ))),
        FailOutcome::Dead => {
            let reason = format!("{} failed: {}", job.kind, request.error);
            let mut w = app.db.begin_write().await?;
            sqlx::query("UPDATE versions SET state = 'failed', state_reason = $1, updated_at = $2 WHERE id = $3 AND state IN ('submitted', 'audited')")
                .bind(&reason)
                .bind(now_ms())
                .bind(job.version_id)
                .execute(&mut *w.tx)
                .await?;
            events::append(
                &mut w.tx,
                app.db.backend(),
                "fail",
                &job.subject,
                &auth.login,
                serde_json::json!({"reason": reason}),
            )
            .await?;
            w.commit().await?;
            Ok(Json(serde_json::json!({"ok": true, "state": "failed"})))
        }
    }
}

/// `POST /api/kiln/v1/blobs`: stores a blob a worker produced and returns its digest.
#[utoipa::path(post, path = "/api/kiln/v1/blobs", request_body(content = Vec<u8>, content_type = "application/octet-stream"), responses((status = 200)))]
pub(crate) async fn upload_blob(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    require(&app, &headers, Scope::Worker).await?;
    let digest = app.blobs.put(body).await?;
    Ok(Json(serde_json::json!({"digest": digest.to_string()})))
}

/// `GET /api/kiln/v1/blobs/{digest}` (worker): a stored blob, quarantined `.crate` files
/// included, for the workers that audit and build them.
#[utoipa::path(get, path = "/api/kiln/v1/blobs/{digest}", responses((status = 200, content_type = "application/octet-stream"), (status = 404)))]
pub(crate) async fn download_blob(
    State(app): State<AppState>,
    Path(digest): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    require(&app, &headers, Scope::Worker).await?;
    let digest: Digest = digest
        .parse()
        .map_err(|err| ApiError::bad_request(format!("`{digest}`: {err}")))?;
    let bytes = app
        .blobs
        .get(&digest)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no blob {digest}")))?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
        bytes,
    )
        .into_response())
}

/// `GET /api/kiln/v1/approved-names` (worker): the names of crates with an approved version,
/// for the typosquat check.
#[utoipa::path(get, path = "/api/kiln/v1/approved-names", responses((status = 200)))]
pub(crate) async fn approved_names(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    require(&app, &headers, Scope::Worker).await?;
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT c.name FROM crates c JOIN versions v ON v.crate_id = c.id WHERE v.state = 'approved' ORDER BY c.name",
    )
    .fetch_all(app.db.pool())
    .await?;
    Ok(Json(serde_json::json!({ "names": names })))
}
