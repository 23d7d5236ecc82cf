//! `GET /api/kiln/v1/artifacts/{digest}`: a built artifact or statement, or a `.crate`, by
//! digest (a signed code build's too).

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::extract::Reader;
use super::{ApiError, ApiResult, AppState, digest_param};
use crate::model::{artifacts, code_builds, versions};
use crate::tokens::Scope;

/// `GET /api/kiln/v1/artifacts/{digest}`. The `.crate` of a version that is not approved is
/// only for workers and reviewers; a revoked digest answers 451.
#[utoipa::path(get, path = "/api/kiln/v1/artifacts/{digest}", responses((status = 200, content_type = "application/octet-stream"), (status = 404), (status = 451)))]
pub(crate) async fn artifact(
    State(app): State<AppState>,
    Reader(auth): Reader,
    Path(digest): Path<String>,
) -> ApiResult<Response> {
    let digest = digest_param(&digest)?;
    super::revocations::refuse_revoked(&app, &digest, &digest.to_string()).await?;
    let media_type = match artifacts::find(&app.db, &digest).await? {
        Some(artifact) => artifact.media_type,
        None if let Some(kind) = code_builds::blob_kind(&app.db, &digest).await? => {
            kind.media_type().to_owned()
        }
        None => {
            let version = versions::by_checksum(&app.db, &digest)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("no artifact {digest}")))?;
            let privileged = auth
                .as_ref()
                .is_some_and(|a| a.has_scope(Scope::Worker) || a.has_scope(Scope::Review));
            if version.approved_features.is_none() && !privileged {
                return Err(ApiError::not_found(format!("no artifact {digest}")));
            }
            "application/gzip".to_owned()
        }
    };
    let bytes = app
        .blobs
        .get(&digest)
        .await?
        .ok_or_else(|| ApiError::internal(format!("blob {digest} is missing")))?;
    let content_type = HeaderValue::from_str(&media_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    Ok(([(header::CONTENT_TYPE, content_type)], bytes).into_response())
}
