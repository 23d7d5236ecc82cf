//! Cargo's sparse index: `config.json` and one file per crate listing its approved versions.
//! Files carry an `ETag` and answer `If-None-Match` with 304.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sqlx::Row as _;

use super::{ApiError, ApiResult, AppState, require_read};
use crate::index_cache::Entry;
use crate::names;

/// `GET /index/config.json`.
pub(super) async fn config(State(app): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    require_read(&app, &headers).await?;
    let mut config = serde_json::json!({
        "dl": format!("{}/api/v1/crates", app.config.public_url),
        "api": app.config.public_url,
    });
    if app.config.auth_required {
        config["auth-required"] = true.into();
    }
    Ok(axum::Json(config).into_response())
}

/// The content of a crate's index file: one line per approved version, in publish order, each
/// with its current `yanked` flag.
pub(crate) async fn index_file_content(
    app: &AppState,
    lowercase_name: &str,
) -> ApiResult<Option<String>> {
    let rows = sqlx::query(
        "SELECT c.name, v.index_line, v.yanked FROM versions v JOIN crates c ON c.id = v.crate_id \
         WHERE c.canonical_name = $1 AND v.state = 'approved' ORDER BY v.id",
    )
    .bind(names::canonical(lowercase_name))
    .fetch_all(app.db.pool())
    .await?;
    let mut body = String::new();
    for row in &rows {
        let name: String = row.get("name");
        if name.to_ascii_lowercase() != lowercase_name {
            return Ok(None);
        }
        let line: String = row.get("index_line");
        let mut line: serde_json::Value =
            serde_json::from_str(&line).map_err(ApiError::internal)?;
        line["yanked"] = (row.get::<i64, _>("yanked") != 0).into();
        body.push_str(&line.to_string());
        body.push('\n');
    }
    Ok((!body.is_empty()).then_some(body))
}

/// `GET /index/{path}`: a crate's index file.
pub(super) async fn file(
    State(app): State<AppState>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    require_read(&app, &headers).await?;
    let name = path.rsplit('/').next().unwrap_or_default();
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !plain || names::index_path(name) != path {
        return Err(ApiError::not_found(format!("no index file at `{path}`")));
    }
    let key = name.to_owned();
    let entry = match app.index_cache.get(&key) {
        Some(entry) => entry,
        None => {
            let body = index_file_content(&app, name).await?.map(Bytes::from);
            let entry = Arc::new(Entry::new(body));
            app.index_cache.put(key, entry.clone());
            entry
        }
    };
    let Some(body) = &entry.body else {
        return Err(ApiError::not_found(format!(
            "crate `{name}` has no approved versions"
        )));
    };
    let etag = HeaderValue::from_str(&entry.etag).map_err(ApiError::internal)?;
    let cache = HeaderValue::from_static("no-cache");
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == entry.etag))
    {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag), (header::CACHE_CONTROL, cache)],
        )
            .into_response());
    }
    Ok((
        [
            (header::ETAG, etag),
            (header::CACHE_CONTROL, cache),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
        ],
        body.clone(),
    )
        .into_response())
}
