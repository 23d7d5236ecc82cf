//! A closure's sparse index, for the workers of its review round: the approved crates and the
//! closure's members in review (not failed or rejected), with downloads of both. The token in
//! the URL is the only credential (Cargo sends no other to a source it replaces crates.io with);
//! workers learn it from their jobs, and reports never carry it.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::{ApiError, ApiResult, AppState};
use crate::model::{closures, index, versions};

/// `GET /api/kiln/v1/closures/{token}/index/config.json`.
#[utoipa::path(get, path = "/api/kiln/v1/closures/{token}/index/config.json", responses((status = 200), (status = 404)))]
pub(crate) async fn config(
    State(app): State<AppState>,
    Path(token): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let closure = closures::by_token(&app.db, &token).await?;
    Ok(Json(serde_json::json!({
        "dl": format!("{}/api/kiln/v1/closures/{}/dl", app.config.public_url, closure.token),
        "api": app.config.public_url,
    })))
}

/// `GET /api/kiln/v1/closures/{token}/index/{path}`: a crate's index file as the closure's
/// workers see it.
#[utoipa::path(get, path = "/api/kiln/v1/closures/{token}/index/{path}", responses((status = 200, content_type = "text/plain"), (status = 404)))]
pub(crate) async fn file(
    State(app): State<AppState>,
    Path((token, path)): Path<(String, String)>,
) -> ApiResult<Response> {
    let closure = closures::by_token(&app.db, &token).await?;
    let name = super::index::crate_of_path(&path)?;
    let body = index::closure_file_content(&app.db, closure.id, name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no version of `{name}` for this closure")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response())
}

/// `GET /api/kiln/v1/closures/{token}/dl/{name}/{version}/download`: the `.crate` of an
/// approved version or of a member of the closure in review.
#[utoipa::path(get, path = "/api/kiln/v1/closures/{token}/dl/{name}/{version}/download", responses((status = 200, content_type = "application/gzip"), (status = 404)))]
pub(crate) async fn download(
    State(app): State<AppState>,
    Path((token, name, version)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let closure = closures::by_token(&app.db, &token).await?;
    let row = versions::find(&app.db, &name, &version).await?;
    let subject = row.subject();
    if row.approved_features.is_none() && !closures::serves(&app.db, closure.id, row.id).await? {
        return Err(ApiError::not_found(format!(
            "{subject} is neither approved nor in review with this closure"
        )));
    }
    super::revocations::refuse_revoked(&app, &row.checksum, &subject).await?;
    let bytes = app.blobs.get(&row.checksum).await?.ok_or_else(|| {
        ApiError::internal(format!("blob {} of {subject} is missing", row.checksum))
    })?;
    Ok(([(header::CONTENT_TYPE, "application/gzip")], bytes).into_response())
}
