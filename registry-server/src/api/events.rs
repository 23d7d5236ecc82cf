//! The event log: `GET /api/kiln/v1/events` and `GET /api/kiln/v1/events/verify` (review scope).

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;

use super::extract::{Need, scope};
use super::{ApiResult, AppState};
use crate::model::events::{self, Event};

/// Paging through the event log.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct EventQuery {
    /// Events after this sequence number.
    #[serde(default)]
    after: i64,
    /// At most this many (1 to 1000, default 100).
    #[serde(default)]
    limit: Option<i64>,
}

/// `GET /api/kiln/v1/events`.
#[utoipa::path(get, path = "/api/kiln/v1/events", params(EventQuery), responses((status = 200, body = [Event])))]
pub(crate) async fn list(
    State(app): State<AppState>,
    _: Need<scope::Review>,
    Query(query): Query<EventQuery>,
) -> ApiResult<Json<Vec<Event>>> {
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(events::list(&app.db, query.after, limit).await?))
}

/// `GET /api/kiln/v1/events/verify`: checks the hash chain of the whole log.
#[utoipa::path(get, path = "/api/kiln/v1/events/verify", responses((status = 200)))]
pub(crate) async fn verify(
    State(app): State<AppState>,
    _: Need<scope::Review>,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(match events::verify(&app.db).await? {
        Ok(count) => serde_json::json!({"ok": true, "events": count}),
        Err(err) => serde_json::json!({"ok": false, "error": err.to_string()}),
    }))
}
