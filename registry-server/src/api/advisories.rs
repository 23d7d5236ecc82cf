//! The server's advisory database: its status, and syncing it (admin), which re-audits every
//! approved version against the new database.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use kiln_policy::checks::advisories::AdvisoryDb;
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiResult, AppState, require, require_read};
use crate::advisory_db::{self, SyncOutcome};
use crate::reaudit::{self, ReauditOutcome};
use crate::tokens::Scope;

/// The advisory database's status.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Status {
    /// Where it is.
    pub path: String,
    /// Its revision.
    pub revision: String,
    /// How many advisories it holds.
    pub advisories: usize,
    /// The newest advisory's date.
    pub newest: String,
    /// The policy's staleness limit in days.
    pub max_age_days: u32,
    /// Where a sync fetches from by default.
    pub source: Option<String>,
}

fn configured(app: &AppState) -> ApiResult<std::path::PathBuf> {
    app.config.advisory_db.clone().ok_or_else(|| {
        ApiError::unprocessable(
            "this server has no advisory database configured (kiln serve --advisory-db DIR)",
        )
    })
}

/// `GET /api/kiln/v1/advisories`.
#[utoipa::path(get, path = "/api/kiln/v1/advisories", responses((status = 200, body = Status), (status = 422)))]
pub(crate) async fn status(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<Status>> {
    require_read(&app, &headers).await?;
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

/// A sync.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct SyncRequest {
    /// A directory or git URL (default: the server's configured source).
    #[serde(default)]
    pub from: Option<String>,
}

/// What a sync did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SyncResponse {
    /// The database before and after.
    #[schema(value_type = Object)]
    pub sync: SyncOutcome,
    /// The re-audit of approved versions (when the database changed).
    pub reaudit: Option<ReauditOutcome>,
}

/// `POST /api/kiln/v1/advisories/sync` (admin).
#[utoipa::path(post, path = "/api/kiln/v1/advisories/sync", request_body = SyncRequest, responses((status = 200, body = SyncResponse), (status = 422)))]
pub(crate) async fn sync(
    State(app): State<AppState>,
    headers: HeaderMap,
    Json(request): Json<SyncRequest>,
) -> ApiResult<Json<SyncResponse>> {
    let auth = require(&app, &headers, Scope::Admin).await?;
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
