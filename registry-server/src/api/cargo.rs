//! Cargo's web API: publish, download, yank and unyank, owners, search.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::extract::{Body, Need, RawBody, Reader, scope};
use super::{ApiError, ApiResult, AppState};
use crate::model::{self, crates, versions};
use crate::publish;
use crate::tokens::Authenticated;

/// `PUT /api/v1/crates/new`: takes a version into quarantine. The index lists it at once as
/// awaiting approval, which ends `cargo publish`'s wait, but nothing can resolve or download it
/// until it is audited, built and approved ([`kiln_wire::index`]). The token is checked before
/// the body is read.
pub(super) async fn publish(
    State(app): State<AppState>,
    Need(auth, _): Need<scope::Publish>,
    RawBody(body): RawBody,
) -> ApiResult<Json<serde_json::Value>> {
    if let Err(wait) = app
        .publish_limiter
        .check(auth.user_id, app.config.publish_per_minute)
    {
        let secs = wait.as_secs().max(1);
        return Err(ApiError::busy(
            StatusCode::TOO_MANY_REQUESTS,
            secs,
            format!(
                "`{}` published {} versions in the last minute; try again in {secs} s",
                auth.login, app.config.publish_per_minute
            ),
        ));
    }
    let started = std::time::Instant::now();
    let frame =
        publish::parse_frame(&body).map_err(|err| ApiError::bad_request(err.to_string()))?;
    let tarball = body.slice_ref(frame.tarball);
    let name = frame.metadata.name.clone();
    let subject = publish::submit(&app, &auth, frame.metadata, tarball).await?;
    app.index_changed(&name);
    app.metrics.record_publish(started.elapsed());
    Ok(Json(serde_json::json!({
        "warnings": {
            "invalid_categories": [],
            "invalid_badges": [],
            "other": [format!(
                "kiln: {subject} is in review: it can be resolved and downloaded once it is audited, built and approved (follow it with `kiln status {subject} --wait`)"
            )],
        }
    })))
}

/// `GET /api/v1/crates/{name}/{version}/download`: the `.crate` of an approved version.
pub(super) async fn download(
    State(app): State<AppState>,
    _: Reader,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Response> {
    let row = versions::find(&app.db, &name, &version).await?;
    let subject = row.subject();
    if row.approved_features.is_none() {
        return Err(ApiError::not_found(format!(
            "{subject} is not approved (it is {})",
            row.state
        )));
    }
    super::revocations::refuse_revoked(&app, &row.checksum, &subject).await?;
    let bytes = app.blobs.get(&row.checksum).await?.ok_or_else(|| {
        ApiError::internal(format!("blob {} of {subject} is missing", row.checksum))
    })?;
    app.metrics.record_download();
    Ok(([(header::CONTENT_TYPE, "application/gzip")], bytes).into_response())
}

async fn set_yanked(
    app: AppState,
    auth: Authenticated,
    name: String,
    version: String,
    yanked: bool,
) -> ApiResult<Json<serde_json::Value>> {
    if !auth.covers_crate(&name) {
        return Err(ApiError::forbidden(format!(
            "this token may not yank `{name}`"
        )));
    }
    let row = versions::find(&app.db, &name, &version).await?;
    let krate = crates::CrateRow {
        id: row.crate_id,
        name: row.krate.clone(),
    };
    let mut w = app.db.begin_write().await?;
    crates::require_owner(&mut w.tx, &krate, &auth).await?;
    versions::set_yanked(&mut w.tx, &row, yanked, &auth.login).await?;
    w.commit().await?;
    app.index_changed(&row.krate);
    Ok(Json(serde_json::json!({"ok": true})))
}

/// `DELETE /api/v1/crates/{name}/{version}/yank`.
pub(super) async fn yank(
    State(app): State<AppState>,
    Need(auth, _): Need<scope::Yank>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<serde_json::Value>> {
    set_yanked(app, auth, name, version, true).await
}

/// `PUT /api/v1/crates/{name}/{version}/unyank`.
pub(super) async fn unyank(
    State(app): State<AppState>,
    Need(auth, _): Need<scope::Yank>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<serde_json::Value>> {
    set_yanked(app, auth, name, version, false).await
}

/// `GET /api/v1/crates/{name}/owners`.
pub(super) async fn owners(
    State(app): State<AppState>,
    _: Reader,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let krate = crates::named(&app.db, &name).await?;
    let users: Vec<serde_json::Value> = crates::owners(&app.db, &krate)
        .await?
        .into_iter()
        .map(|(id, login)| serde_json::json!({"id": id, "login": login, "name": login}))
        .collect();
    Ok(Json(serde_json::json!({"users": users})))
}

/// The body of owner changes.
#[derive(Debug, Deserialize)]
pub(super) struct OwnerChange {
    users: Vec<String>,
}

async fn change_owners(
    app: AppState,
    auth: Authenticated,
    name: String,
    change: OwnerChange,
    add: bool,
) -> ApiResult<Json<serde_json::Value>> {
    if change.users.is_empty() {
        return Err(ApiError::bad_request("name at least one user"));
    }
    if !auth.covers_crate(&name) {
        return Err(ApiError::forbidden(format!(
            "this token may not change the owners of `{name}`"
        )));
    }
    let krate = crates::named(&app.db, &name).await?;
    let mut w = app.db.begin_write().await?;
    crates::change_owners(&mut w.tx, &krate, &auth, &change.users, add).await?;
    w.commit().await?;
    let verb = if add {
        "added as owners of"
    } else {
        "removed from the owners of"
    };
    Ok(Json(
        serde_json::json!({"ok": true, "msg": format!("{} {verb} `{}`", change.users.join(", "), krate.name)}),
    ))
}

/// `PUT /api/v1/crates/{name}/owners`.
pub(super) async fn add_owners(
    State(app): State<AppState>,
    Need(auth, _): Need<scope::Publish>,
    Path(name): Path<String>,
    Body(change): Body<OwnerChange>,
) -> ApiResult<Json<serde_json::Value>> {
    change_owners(app, auth, name, change, true).await
}

/// `DELETE /api/v1/crates/{name}/owners`.
pub(super) async fn remove_owners(
    State(app): State<AppState>,
    Need(auth, _): Need<scope::Publish>,
    Path(name): Path<String>,
    Body(change): Body<OwnerChange>,
) -> ApiResult<Json<serde_json::Value>> {
    change_owners(app, auth, name, change, false).await
}

/// Search parameters.
#[derive(Debug, Deserialize)]
pub(super) struct SearchQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    per_page: Option<u32>,
}

/// `GET /api/v1/crates?q=…&per_page=…`: crates with approved versions whose name or
/// description contains the query.
pub(super) async fn search(
    State(app): State<AppState>,
    _: Reader,
    Query(query): Query<SearchQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let per_page = query.per_page.unwrap_or(10).clamp(1, 100) as usize;
    let found = model::index::search(&app.db, &query.q.to_ascii_lowercase()).await?;
    let total = found.len();
    let crates: Vec<serde_json::Value> = found
        .into_iter()
        .take(per_page)
        .map(|found| {
            serde_json::json!({
                "name": found.name,
                "max_version": found.max_version.map_or_else(|| "0.0.0".to_owned(), |v| v.to_string()),
                "description": found.description,
            })
        })
        .collect();
    Ok(Json(
        serde_json::json!({"crates": crates, "meta": {"total": total}}),
    ))
}
