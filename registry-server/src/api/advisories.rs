//! The server's advisory database: its status, and syncing it (admin), which re-audits every
//! approved version against the new database.

use axum::Json;
use axum::extract::State;
use kiln_policy::checks::advisories::AdvisoryDb;
use kiln_wire::admin::{AdvisoryStatus as Status, SyncRequest, SyncResponse};

use super::extract::{Need, OptionalBody, Reader, scope};
use super::{ApiError, ApiResult, AppState};
use crate::advisory_db;
use crate::reaudit;

fn configured(app: &AppState) -> ApiResult<std::path::PathBuf> {
    app.config.advisory_db.clone().ok_or_else(|| {
        ApiError::unprocessable(
            "this server has no advisory database configured (kiln serve --advisory-db DIR)",
        )
    })
}

/// `GET /api/kiln/v1/advisories`.
#[utoipa::path(get, path = "/api/kiln/v1/advisories", responses((status = 200, body = Status), (status = 422)))]
pub(crate) async fn status(State(app): State<AppState>, _: Reader) -> ApiResult<Json<Status>> {
    let path = configured(&app)?;
    let db = tokio::task::spawn_blocking(move || AdvisoryDb::open(&path))
        .await
        .map_err(ApiError::internal)?
        .map_err(|err| ApiError::unprocessable(err.to_string()))?;
    Ok(Json(Status {
        path: db.path.clone(),
        revision: db.revision.clone(),
        advisories: db.count,
        newest: db.newest.clone(),
        max_age_days: app.config.policy.advisories.max_db_age_days,
        source: app.config.advisory_source.clone(),
    }))
}

/// `POST /api/kiln/v1/advisories/sync` (admin).
#[utoipa::path(post, path = "/api/kiln/v1/advisories/sync", request_body = SyncRequest, responses((status = 200, body = SyncResponse), (status = 422)))]
pub(crate) async fn sync(
    State(app): State<AppState>,
    Need(auth, _): Need<scope::Admin>,
    OptionalBody(request): OptionalBody<SyncRequest>,
) -> ApiResult<Json<SyncResponse>> {
    let path = configured(&app)?;
    let source = request
        .from
        .or_else(|| app.config.advisory_source.clone())
        .ok_or_else(|| {
            ApiError::unprocessable(
                "no source: give one (`from`) or start the server with --advisory-source",
            )
        })?;
    let (outcome, db) = tokio::task::spawn_blocking(move || advisory_db::sync(&source, &path))
        .await
        .map_err(ApiError::internal)?
        .map_err(|err| ApiError::unprocessable(err.to_string()))?;
    let reaudit = if outcome.changed() {
        let today = crate::db::today();
        Some(reaudit::reaudit(&app, &db, &auth.login, auth.user_id, &today).await?)
    } else {
        None
    };
    Ok(Json(SyncResponse {
        sync: outcome,
        reaudit,
    }))
}
