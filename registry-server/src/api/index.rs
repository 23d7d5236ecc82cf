//! Cargo's sparse index: `config.json` and one file per crate listing its approved versions,
//! served from memory ([`crate::index_cache`]) with an `ETag` and `If-None-Match` → 304.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::extract::Reader;
use super::{ApiError, ApiResult, AppState};
use crate::index_cache::Entry;
use crate::model;
use crate::names;

/// `GET /index/config.json`.
pub(super) async fn config(State(app): State<AppState>, _: Reader) -> ApiResult<Response> {
    let mut config = serde_json::json!({
        "dl": format!("{}/api/v1/crates", app.config.public_url),
        "api": app.config.public_url,
    });
    if app.config.auth_required {
        config["auth-required"] = true.into();
    }
    Ok(axum::Json(config).into_response())
}

/// The crate whose index file is at `path` (`3/f/foo`, `se/rd/serde`); not found for a path
/// Cargo would not ask for.
pub(super) fn crate_of_path(path: &str) -> ApiResult<&str> {
    let name = path.rsplit('/').next().unwrap_or_default();
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !plain || names::index_path(name) != path {
        return Err(ApiError::not_found(format!("no index file at `{path}`")));
    }
    Ok(name)
}

/// `GET /index/{path}`: a crate's index file.
pub(super) async fn file(
    State(app): State<AppState>,
    _: Reader,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let name = crate_of_path(&path)?;
    let key = name.to_owned();
    let entry = match app.index_cache.get(&key) {
        Some(entry) => entry,
        None => {
            let body = model::index::file_content(&app.db, name)
                .await?
                .map(Bytes::from);
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
