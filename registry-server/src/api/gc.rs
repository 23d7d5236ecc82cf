//! `POST /api/kiln/v1/gc` (admin): sweeps orphan blobs.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use kiln_wire::admin::SweepRequest;

use super::extract::{Need, OptionalBody, scope};
use super::{ApiResult, AppState};
use crate::gc::{self, Swept};

/// `POST /api/kiln/v1/gc` (admin): deletes blobs no row names that are older than the grace
/// period.
#[utoipa::path(post, path = "/api/kiln/v1/gc", request_body = SweepRequest, responses((status = 200, body = Swept)))]
pub(crate) async fn sweep(
    State(app): State<AppState>,
    _: Need<scope::Admin>,
    OptionalBody(request): OptionalBody<SweepRequest>,
) -> ApiResult<Json<Swept>> {
    let grace = request
        .older_than_secs
        .map_or(gc::DEFAULT_GRACE, Duration::from_secs);
    Ok(Json(gc::sweep(&app, grace, request.dry_run).await?))
}
