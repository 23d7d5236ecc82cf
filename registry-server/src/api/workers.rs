//! The worker protocol ([`kiln_wire::worker`]): audit and build workers (in this process or
//! separate ones) claim jobs, keep their leases alive, upload what they produce, and report the
//! result ([`crate::work`] moves the submission along).

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use kiln_wire::worker::{
    ApprovedNames, ClaimRequest, CompleteRequest, Curated, CurationLookup, FailRequest,
    HeartbeatRequest, Job, JobOutcome, Uploaded,
};

use super::extract::{Body, Need, RawBody, scope};
use super::{ApiError, ApiResult, AppState, digest_param};
use crate::model::{jobs, versions};

/// The longest lease a worker may ask for.
const MAX_LEASE: Duration = Duration::from_secs(3600);

fn lease(secs: Option<u64>) -> Duration {
    Duration::from_secs(secs.unwrap_or(60).clamp(1, MAX_LEASE.as_secs()))
}

/// `POST /api/kiln/v1/jobs/claim`: the next ready job, or 204.
#[utoipa::path(post, path = "/api/kiln/v1/jobs/claim", request_body = ClaimRequest, responses((status = 200, body = Job), (status = 204)))]
pub(crate) async fn claim(
    State(app): State<AppState>,
    _: Need<scope::Worker>,
    Body(request): Body<ClaimRequest>,
) -> ApiResult<Response> {
    match jobs::claim(
        &app.db,
        request.kind,
        &request.worker,
        lease(request.lease_secs),
    )
    .await?
    {
        Some(job) => Ok(Json(job).into_response()),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// `POST /api/kiln/v1/jobs/{id}/heartbeat`: 409 when the lease was lost.
#[utoipa::path(post, path = "/api/kiln/v1/jobs/{id}/heartbeat", request_body = HeartbeatRequest, responses((status = 200), (status = 409)))]
pub(crate) async fn heartbeat(
    State(app): State<AppState>,
    _: Need<scope::Worker>,
    Path(id): Path<i64>,
    Body(request): Body<HeartbeatRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    jobs::heartbeat(&app.db, id, &request.worker, lease(request.lease_secs)).await?;
    Ok(Json(serde_json::json!({"ok": true})))
}

/// `POST /api/kiln/v1/jobs/{id}/complete`: 409 when the worker no longer holds the job, or
/// the version moved on without it.
#[utoipa::path(post, path = "/api/kiln/v1/jobs/{id}/complete", request_body = CompleteRequest, responses((status = 200, body = JobOutcome), (status = 409), (status = 422)))]
pub(crate) async fn complete(
    State(app): State<AppState>,
    Need(auth, _): Need<scope::Worker>,
    Path(id): Path<i64>,
    Body(request): Body<CompleteRequest>,
) -> ApiResult<Json<JobOutcome>> {
    Ok(Json(
        crate::work::complete(&app, id, &request, &auth).await?,
    ))
}

/// `POST /api/kiln/v1/jobs/{id}/fail`: retry later, wait, or fail the submission.
#[utoipa::path(post, path = "/api/kiln/v1/jobs/{id}/fail", request_body = FailRequest, responses((status = 200, body = JobOutcome), (status = 409)))]
pub(crate) async fn fail(
    State(app): State<AppState>,
    Need(auth, _): Need<scope::Worker>,
    Path(id): Path<i64>,
    Body(request): Body<FailRequest>,
) -> ApiResult<Json<JobOutcome>> {
    Ok(Json(crate::work::fail(&app, id, &request, &auth).await?))
}

/// `POST /api/kiln/v1/blobs`: stores a blob a worker produced and returns its digest.
#[utoipa::path(post, path = "/api/kiln/v1/blobs", request_body(content = Vec<u8>, content_type = "application/octet-stream"), responses((status = 200, body = Uploaded)))]
pub(crate) async fn upload_blob(
    State(app): State<AppState>,
    _: Need<scope::Worker>,
    RawBody(body): RawBody,
) -> ApiResult<Json<Uploaded>> {
    let digest = app.blobs.put(body).await?;
    Ok(Json(Uploaded { digest }))
}

/// `GET /api/kiln/v1/blobs/{digest}` (worker): a stored blob, quarantined `.crate` files
/// included, for the workers that audit and build them.
#[utoipa::path(get, path = "/api/kiln/v1/blobs/{digest}", responses((status = 200, content_type = "application/octet-stream"), (status = 404)))]
pub(crate) async fn download_blob(
    State(app): State<AppState>,
    _: Need<scope::Worker>,
    Path(digest): Path<String>,
) -> ApiResult<Response> {
    let digest = digest_param(&digest)?;
    let bytes = app
        .blobs
        .get(&digest)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no blob {digest}")))?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// `GET /api/kiln/v1/approved-names` (worker): the names of crates with an approved version,
/// for the typosquat check.
#[utoipa::path(get, path = "/api/kiln/v1/approved-names", responses((status = 200, body = ApprovedNames)))]
pub(crate) async fn approved_names(
    State(app): State<AppState>,
    _: Need<scope::Worker>,
) -> ApiResult<Json<ApprovedNames>> {
    Ok(Json(ApprovedNames {
        names: versions::approved_names(&app.db).await?,
    }))
}

/// `POST /api/kiln/v1/curations/lookup` (worker): the features curated for each version asked
/// about, as a worker of the job's closure may count on.
#[utoipa::path(post, path = "/api/kiln/v1/curations/lookup", request_body = CurationLookup, responses((status = 200, body = Curated)))]
pub(crate) async fn curations(
    State(app): State<AppState>,
    _: Need<scope::Worker>,
    Body(lookup): Body<CurationLookup>,
) -> ApiResult<Json<Curated>> {
    Ok(Json(Curated {
        features: crate::curation::lookup(&app, lookup.closure.as_deref(), &lookup.packages)
            .await?,
    }))
}
