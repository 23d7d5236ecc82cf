//! `POST /api/kiln/v1/imports` (admin): a version from an upstream registry into quarantine.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kiln_policy::Digest;
use kiln_wire::admin::{ImportRequest, Imported};

use super::extract::{Body, Need, scope};
use super::{ApiError, ApiResult, AppState};
use crate::import::{self, ImportError};

impl From<ImportError> for ApiError {
    fn from(err: ImportError) -> Self {
        match err {
            ImportError::NotFound(_) => ApiError::not_found(err.to_string()),
            ImportError::Upstream { .. } => ApiError::new(StatusCode::BAD_GATEWAY, err.to_string()),
            ImportError::ChecksumMismatch { .. } | ImportError::BadLine(..) => {
                ApiError::unprocessable(err.to_string())
            }
        }
    }
}

/// `POST /api/kiln/v1/imports` (admin): fetches a version from an upstream registry, checks it
/// against the upstream checksum, and submits it to the quarantine with its origin.
#[utoipa::path(post, path = "/api/kiln/v1/imports", request_body = ImportRequest, responses((status = 200, body = Imported), (status = 404), (status = 422), (status = 502)))]
pub(crate) async fn import(
    State(app): State<AppState>,
    Need(auth, _): Need<scope::Admin>,
    Body(request): Body<ImportRequest>,
) -> ApiResult<Json<Imported>> {
    let upstream = request
        .upstream
        .as_deref()
        .unwrap_or(import::CRATES_IO_INDEX);
    let fetched = import::fetch(
        &app.http,
        upstream,
        &request.krate,
        &request.version,
        app.config.max_publish_bytes,
    )
    .await?;
    let checksum = Digest::of(&fetched.tarball);
    let subject = crate::publish::submit(
        &app,
        &auth,
        fetched.metadata,
        fetched.tarball,
        Some(&fetched.origin),
    )
    .await?;
    Ok(Json(Imported {
        subject,
        checksum,
        origin: fetched.origin,
    }))
}
