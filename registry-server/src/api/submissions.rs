//! Submissions and review decisions: `GET /api/kiln/v1/submissions[/{name}/{version}[/crate]]`,
//! `POST …/approve`, `POST …/reject`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use kiln_wire::VersionState;
use kiln_wire::review::{
    Approval, ClosureApproved, ClosureReview, CurateRequest, Curation, Decided, Rejection,
};
use kiln_wire::submissions::{Submission, SubmissionDetail};
use serde::Deserialize;

use super::extract::{Body, Need, OptionalBody, Reader, scope};
use super::{ApiError, ApiResult, AppState};
use crate::model::versions;

/// Filters for the submission list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct SubmissionQuery {
    /// Only submissions in this state.
    state: Option<VersionState>,
}

/// `GET /api/kiln/v1/submissions`.
#[utoipa::path(get, path = "/api/kiln/v1/submissions", params(SubmissionQuery), responses((status = 200, body = [Submission])))]
pub(crate) async fn list(
    State(app): State<AppState>,
    _: Reader,
    Query(query): Query<SubmissionQuery>,
) -> ApiResult<Json<Vec<Submission>>> {
    Ok(Json(versions::list(&app.db, query.state).await?))
}

/// `GET /api/kiln/v1/submissions/{name}/{version}`.
#[utoipa::path(get, path = "/api/kiln/v1/submissions/{name}/{version}", responses((status = 200, body = SubmissionDetail), (status = 404)))]
pub(crate) async fn show(
    State(app): State<AppState>,
    _: Reader,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<SubmissionDetail>> {
    Ok(Json(
        crate::submissions::detail(&app, &name, &version).await?,
    ))
}

/// `GET /api/kiln/v1/submissions/{name}/{version}/crate`: the `.crate` in any state, for
/// reviewers reading the source before they decide (review scope).
#[utoipa::path(get, path = "/api/kiln/v1/submissions/{name}/{version}/crate", responses((status = 200, content_type = "application/gzip"), (status = 401), (status = 403), (status = 404)))]
pub(crate) async fn crate_file(
    State(app): State<AppState>,
    _: Need<scope::Review>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Response> {
    let row = versions::find(&app.db, &name, &version).await?;
    let bytes = app.blobs.get(&row.checksum).await?.ok_or_else(|| {
        ApiError::internal(format!(
            "blob {} of {} is missing",
            row.checksum,
            row.subject()
        ))
    })?;
    Ok(([(header::CONTENT_TYPE, "application/gzip")], bytes).into_response())
}

/// Which version a diff compares with.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct DiffQuery {
    /// The version to compare with (default: the newest approved version before it; a first
    /// version is compared with nothing).
    against: Option<String>,
}

/// `GET /api/kiln/v1/submissions/{name}/{version}/diff`: the source diff a reviewer reads, with
/// new dependencies, imports, build scripts and `unsafe` called out (review scope).
#[utoipa::path(get, path = "/api/kiln/v1/submissions/{name}/{version}/diff", params(DiffQuery),
    responses((status = 200, body = kiln_wire::diff::SourceDiff), (status = 401), (status = 403), (status = 404)))]
pub(crate) async fn diff(
    State(app): State<AppState>,
    _: Need<scope::Review>,
    Path((name, version)): Path<(String, String)>,
    Query(query): Query<DiffQuery>,
) -> ApiResult<Json<kiln_wire::diff::SourceDiff>> {
    Ok(Json(
        crate::review::diff::source_diff(&app, &name, &version, query.against).await?,
    ))
}

/// `POST /api/kiln/v1/submissions/{name}/{version}/approve`: puts a built version in the index.
/// Every dependency from this registry must already have an approved version.
#[utoipa::path(post, path = "/api/kiln/v1/submissions/{name}/{version}/approve", request_body = Approval, responses((status = 200, body = Decided), (status = 409)))]
pub(crate) async fn approve(
    State(app): State<AppState>,
    Need(auth, _): Need<scope::Review>,
    Path((name, version)): Path<(String, String)>,
    OptionalBody(approval): OptionalBody<Approval>,
) -> ApiResult<Json<Decided>> {
    Ok(Json(
        crate::review::approve(&app, &name, &version, &auth, &approval).await?,
    ))
}

/// `POST /api/kiln/v1/submissions/{name}/{version}/reject`. The `.crate` is kept.
#[utoipa::path(post, path = "/api/kiln/v1/submissions/{name}/{version}/reject", request_body = Rejection, responses((status = 200, body = Decided), (status = 409), (status = 422)))]
pub(crate) async fn reject(
    State(app): State<AppState>,
    Need(auth, _): Need<scope::Review>,
    Path((name, version)): Path<(String, String)>,
    Body(rejection): Body<Rejection>,
) -> ApiResult<Json<Decided>> {
    Ok(Json(
        crate::review::reject(&app, &name, &version, &auth, &rejection).await?,
    ))
}

/// `POST /api/kiln/v1/submissions/{name}/{version}/retry` (admin): audits and builds a failed
/// version again with the same bytes, when kiln's own state failed it (409 when its content
/// did).
#[utoipa::path(post, path = "/api/kiln/v1/submissions/{name}/{version}/retry", responses((status = 200, body = Decided), (status = 409)))]
pub(crate) async fn retry(
    State(app): State<AppState>,
    Need(auth, _): Need<scope::Admin>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<Decided>> {
    Ok(Json(
        crate::review::retry(&app, &name, &version, &auth).await?,
    ))
}

/// `GET /api/kiln/v1/submissions/{name}/{version}/closure`: every package a dependent's build
/// of the version resolves, dependencies first, each with its state, verdict, findings, licence,
/// build-time code and advisories, and what is new against the approved set.
#[utoipa::path(get, path = "/api/kiln/v1/submissions/{name}/{version}/closure", responses((status = 200, body = ClosureReview), (status = 404), (status = 409)))]
pub(crate) async fn closure(
    State(app): State<AppState>,
    _: Reader,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<ClosureReview>> {
    Ok(Json(
        crate::review::closure::view(&app, &name, &version).await?,
    ))
}

/// `POST /api/kiln/v1/submissions/{name}/{version}/approve-closure`: approves the version's
/// audited and built closure, dependencies first, in one transaction; nothing when a member is
/// denied, not built, or not reviewed for the features the closure needs.
#[utoipa::path(post, path = "/api/kiln/v1/submissions/{name}/{version}/approve-closure", request_body = Approval, responses((status = 200, body = ClosureApproved), (status = 409)))]
pub(crate) async fn approve_closure(
    State(app): State<AppState>,
    Need(auth, _): Need<scope::Review>,
    Path((name, version)): Path<(String, String)>,
    OptionalBody(approval): OptionalBody<Approval>,
) -> ApiResult<Json<ClosureApproved>> {
    Ok(Json(
        crate::review::closure::approve(&app, &name, &version, &auth, &approval).await?,
    ))
}

/// `POST /api/kiln/v1/submissions/{name}/{version}/curate`: extends the features the version's
/// review covers (a new round: audit, build, review); an approved version stays approved for
/// what it was approved for meanwhile.
#[utoipa::path(post, path = "/api/kiln/v1/submissions/{name}/{version}/curate", request_body = CurateRequest, responses((status = 200, body = Curation), (status = 409), (status = 422)))]
pub(crate) async fn curate(
    State(app): State<AppState>,
    Need(auth, _): Need<scope::Review>,
    Path((name, version)): Path<(String, String)>,
    Body(request): Body<CurateRequest>,
) -> ApiResult<Json<Curation>> {
    Ok(Json(
        crate::curation::curate(&app, &name, &version, &request.features, &auth).await?,
    ))
}
