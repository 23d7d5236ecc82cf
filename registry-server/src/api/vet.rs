//! `GET /vet/audits.toml`: the approvals as a cargo-vet feed ([`crate::vet`]), readable as the
//! index is (by anyone, unless the registry requires a token for reads).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::extract::Reader;
use super::{ApiResult, AppState};

/// `GET /vet/audits.toml`.
#[utoipa::path(get, path = "/vet/audits.toml", responses((status = 200, content_type = "text/plain", description = "cargo-vet's audits.toml")))]
pub(crate) async fn audits(State(app): State<AppState>, _: Reader) -> ApiResult<impl IntoResponse> {
    let audits = crate::vet::approvals(&app.db).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        crate::vet::render(&audits),
    ))
}
