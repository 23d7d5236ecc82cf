//! `POST /api/kiln/v1/imports` (admin): a crate's closure from an upstream registry into
//! quarantine.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kiln_wire::admin::{ImportPlan, ImportRequest};

use super::extract::{Body, Need, scope};
use super::{ApiError, ApiResult, AppState};
use crate::import::{self, ImportError};

impl From<ImportError> for ApiError {
    fn from(err: ImportError) -> Self {
        match err {
            ImportError::NotFound(_) => ApiError::not_found(err.to_string()),
            ImportError::Upstream { .. } => ApiError::new(StatusCode::BAD_GATEWAY, err.to_string()),
            ImportError::ChecksumMismatch { .. }
            | ImportError::BadLine(..)
            | ImportError::Resolve { .. }
            | ImportError::Refused { .. } => ApiError::unprocessable(err.to_string()),
            ImportError::Model(err) => err.into(),
            ImportError::Internal(detail) => ApiError::internal(detail),
        }
    }
}

/// `POST /api/kiln/v1/imports` (admin): resolves the closure a dependent's build would pull in
/// for the crate (with the features asked for) against the upstream index, and brings in every
/// member not here yet, byte for byte, all or nothing; `dry_run` only lists the closure.
#[utoipa::path(post, path = "/api/kiln/v1/imports", request_body = ImportRequest, responses((status = 200, body = ImportPlan), (status = 404), (status = 422), (status = 502)))]
pub(crate) async fn import(
    State(app): State<AppState>,
    Need(auth, _): Need<scope::Admin>,
    Body(request): Body<ImportRequest>,
) -> ApiResult<Json<ImportPlan>> {
    Ok(Json(import::import(&app, &auth, &request).await?))
}
