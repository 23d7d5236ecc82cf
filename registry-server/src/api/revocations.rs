//! `POST /api/kiln/v1/revocations` (admin) and `GET /api/kiln/v1/revocations`, the signed list.

use axum::Json;
use axum::extract::State;
use kiln_policy::{Bundle, Digest};
use kiln_wire::admin::{RevokeRequest, Revoked};

use super::extract::{Body, Need, Reader, scope};
use super::{ApiError, ApiResult, AppState};
use crate::model::revocations;

/// 451 when `digest` is revoked.
pub(crate) async fn refuse_revoked(app: &AppState, digest: &Digest, what: &str) -> ApiResult<()> {
    match revocations::reason_of(&app.db, digest).await? {
        Some(reason) => Err(ApiError::new(
            axum::http::StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS,
            format!("{what} is revoked: {reason}"),
        )),
        None => Ok(()),
    }
}

/// `POST /api/kiln/v1/revocations` (admin).
#[utoipa::path(post, path = "/api/kiln/v1/revocations", request_body = RevokeRequest, responses((status = 200, body = Revoked), (status = 404), (status = 409)))]
pub(crate) async fn revoke(
    State(app): State<AppState>,
    Need(auth, _): Need<scope::Admin>,
    Body(request): Body<RevokeRequest>,
) -> ApiResult<Json<Revoked>> {
    let revoked = crate::revocation::revoke(&app, &request.target, &request.reason, &auth).await?;
    Ok(Json(Revoked { revoked }))
}

/// `GET /api/kiln/v1/revocations`: the revocation list as a Sigstore bundle signed with the
/// server's revocation key.
#[utoipa::path(get, path = "/api/kiln/v1/revocations", responses((status = 200, description = "a Sigstore bundle")))]
pub(crate) async fn list(State(app): State<AppState>, _: Reader) -> ApiResult<Json<Bundle>> {
    Ok(Json(crate::revocation::signed_list(&app).await?))
}
