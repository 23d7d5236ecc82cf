//! Cargo's web API: publish, download, yank and unyank, owners, search.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use kiln_policy::Digest;
use serde::Deserialize;
use sqlx::Row as _;

use super::{ApiError, ApiResult, AppState, require, require_read};
use crate::db::now_ms;
use crate::tokens::{Authenticated, Scope};
use crate::{events, jobs, names, publish, tarball};

/// A crate row.
pub(crate) struct CrateRow {
    pub(crate) id: i64,
    pub(crate) name: String,
}

/// The crate whose name collides with `name` (same ignoring case and `-`/`_`).
pub(crate) async fn find_crate<'e, E>(
    executor: E,
    name: &str,
) -> Result<Option<CrateRow>, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let row = sqlx::query("SELECT id, name FROM crates WHERE canonical_name = $1")
        .bind(names::canonical(name))
        .fetch_optional(executor)
        .await?;
    Ok(row.map(|r| CrateRow {
        id: r.get("id"),
        name: r.get("name"),
    }))
}

/// The crate called exactly `name` (ignoring case), or 404.
pub(crate) async fn crate_named(app: &AppState, name: &str) -> ApiResult<CrateRow> {
    match find_crate(app.db.pool(), name).await? {
        Some(row) if row.name.eq_ignore_ascii_case(name) => Ok(row),
        _ => Err(ApiError::not_found(format!(
            "crate `{name}` does not exist"
        ))),
    }
}

/// Whether `auth` may manage crate `crate_id` (an owner, or an admin).
pub(crate) async fn is_owner<'e, E>(
    executor: E,
    crate_id: i64,
    auth: &Authenticated,
) -> Result<bool, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    if auth.is_admin() {
        return Ok(true);
    }
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM owners WHERE crate_id = $1 AND user_id = $2")
            .bind(crate_id)
            .bind(auth.user_id)
            .fetch_one(executor)
            .await?;
    Ok(n > 0)
}

/// The version without build metadata, under which versions are unique.
pub(crate) fn version_key(version: &semver::Version) -> String {
    let mut key = semver::Version::new(version.major, version.minor, version.patch);
    key.pre = version.pre.clone();
    key.to_string()
}

/// `PUT /api/v1/crates/new`: takes a version into quarantine. Nothing reaches the index until
/// the version is audited, built and approved.
pub(super) async fn publish(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let auth = require(&app, &headers, Scope::Publish).await?;
    if let Err(wait) = app
        .publish_limiter
        .check(auth.user_id, app.config.publish_per_minute)
    {
        return Err(ApiError::busy(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            wait.as_secs().max(1),
            format!(
                "`{}` published {} versions in the last minute; try again in {} s",
                auth.login,
                app.config.publish_per_minute,
                wait.as_secs().max(1)
            ),
        ));
    }
    let started = std::time::Instant::now();
    let frame =
        publish::parse_frame(&body).map_err(|err| ApiError::bad_request(err.to_string()))?;
    let tarball = body.slice_ref(frame.tarball);
    let subject = submit(&app, &auth, frame.metadata, tarball, None).await?;
    app.metrics.record_publish(started.elapsed());
    Ok(Json(serde_json::json!({
        "warnings": {
            "invalid_categories": [],
            "invalid_badges": [],
            "other": [format!(
                "kiln: {subject} is queued for review: it appears in the index once it is audited, built and approved"
            )],
        }
    })))
}

/// Checks a version (metadata, tarball, name, ownership, uniqueness), stores its `.crate`, and
/// records it as `submitted` with an audit job queued. `origin` names the upstream registry of
/// an import. Returns `NAME@VERSION`.
pub(crate) async fn submit(
    app: &AppState,
    auth: &Authenticated,
    meta: publish::NewCrate,
    tarball: Bytes,
    origin: Option<&str>,
) -> ApiResult<String> {
    let version = meta
        .validate()
        .map_err(|err| ApiError::unprocessable(err.to_string()))?;
    if !auth.covers_crate(&meta.name) {
        return Err(ApiError::forbidden(format!(
            "this token may not publish `{}`",
            meta.name
        )));
    }
    let (name, vers, limits) = (
        meta.name.clone(),
        meta.vers.clone(),
        app.config.tarball_limits,
    );
    let inspected = tokio::task::spawn_blocking({
        let tarball = tarball.clone();
        move || tarball::inspect(&tarball, &name, &vers, limits)
    })
    .await
    .map_err(ApiError::internal)?;
    inspected.map_err(|err| ApiError::unprocessable(err.to_string()))?;
    let checksum = Digest::of(&tarball);
    let subject = format!("{}@{}", meta.name, meta.vers);

    let mut w = app.db.begin_write().await?;
    let crate_id = match find_crate(&mut *w.tx, &meta.name).await? {
        Some(existing) if existing.name != meta.name => {
            return Err(ApiError::conflict(format!(
                "crate `{}` conflicts with the existing crate `{}` (names are compared ignoring case and `-`/`_`)",
                meta.name, existing.name
            )));
        }
        Some(existing) => {
            if !is_owner(&mut *w.tx, existing.id, auth).await? {
                return Err(ApiError::forbidden(format!(
                    "`{}` is not an owner of crate `{}`",
                    auth.login, existing.name
                )));
            }
            existing.id
        }
        None => {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO crates (name, canonical_name, description, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(&meta.name)
            .bind(names::canonical(&meta.name))
            .bind(&meta.description)
            .bind(now_ms())
            .fetch_one(&mut *w.tx)
            .await?;
            sqlx::query("INSERT INTO owners (crate_id, user_id) VALUES ($1, $2)")
                .bind(id)
                .bind(auth.user_id)
                .execute(&mut *w.tx)
                .await?;
            id
        }
    };
    let key = version_key(&version);
    let duplicate: Option<String> =
        sqlx::query_scalar("SELECT version FROM versions WHERE crate_id = $1 AND version_key = $2")
            .bind(crate_id)
            .bind(&key)
            .fetch_optional(&mut *w.tx)
            .await?;
    if let Some(existing) = duplicate {
        return Err(ApiError::conflict(format!(
            "crate `{}` already has version `{existing}`; versions cannot be replaced",
            meta.name
        )));
    }
    app.blobs.put(tarball).await?;
    let now = now_ms();
    let index_line = meta.index_line(&checksum.hex(), &rfc3339(now));
    let version_id: i64 = sqlx::query_scalar(
        "INSERT INTO versions (crate_id, version, version_key, checksum, state, yanked, index_line, metadata, origin, published_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'submitted', 0, $5, $6, $7, $8, $9, $9) RETURNING id",
    )
    .bind(crate_id)
    .bind(&meta.vers)
    .bind(&key)
    .bind(checksum.hex())
    .bind(index_line.to_string())
    .bind(serde_json::to_string(&meta).map_err(ApiError::internal)?)
    .bind(origin)
    .bind(auth.user_id)
    .bind(now)
    .fetch_one(&mut *w.tx)
    .await?;
    let payload = serde_json::json!({"version_id": version_id, "crate": meta.name, "version": meta.vers, "checksum": checksum.hex()});
    jobs::enqueue(&mut w.tx, "audit", &payload, app.config.job_attempts).await?;
    let (kind, data) = match origin {
        Some(upstream) => (
            "import",
            serde_json::json!({"checksum": checksum.to_string(), "origin": upstream}),
        ),
        None => (
            "publish",
            serde_json::json!({"checksum": checksum.to_string()}),
        ),
    };
    events::append(
        &mut w.tx,
        app.db.backend(),
        kind,
        &subject,
        &auth.login,
        data,
    )
    .await?;
    w.commit().await?;
    tracing::info!(%subject, user = %auth.login, origin, "version submitted for review");
    Ok(subject)
}

/// RFC 3339 UTC time, to the second, of Unix milliseconds.
pub(crate) fn rfc3339(ms: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

/// The version row of `name@version`.
pub(crate) async fn version_row(
    app: &AppState,
    name: &str,
    version: &str,
) -> ApiResult<(CrateRow, sqlx::any::AnyRow)> {
    let krate = crate_named(app, name).await?;
    let row = sqlx::query("SELECT id, version, checksum, state, yanked FROM versions WHERE crate_id = $1 AND version = $2")
        .bind(krate.id)
        .bind(version)
        .fetch_optional(app.db.pool())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("crate `{}` has no version `{version}`", krate.name)))?;
    Ok((krate, row))
}

/// `GET /api/v1/crates/{name}/{version}/download`: the `.crate` of an approved version.
pub(super) async fn download(
    State(app): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    require_read(&app, &headers).await?;
    let (krate, row) = version_row(&app, &name, &version).await?;
    let state: String = row.get("state");
    if state != "approved" {
        return Err(ApiError::not_found(format!(
            "{}@{version} is not approved (it is {state})",
            krate.name
        )));
    }
    let checksum: String = row.get("checksum");
    let digest = Digest::from_hex(&checksum).map_err(ApiError::internal)?;
    super::revocations::refuse_revoked(&app, &digest, &format!("{}@{version}", krate.name)).await?;
    let bytes = app.blobs.get(&digest).await?.ok_or_else(|| {
        ApiError::internal(format!(
            "blob {digest} of {}@{version} is missing",
            krate.name
        ))
    })?;
    app.metrics.record_download();
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/gzip"),
        )],
        bytes,
    )
        .into_response())
}

async fn set_yanked(
    app: AppState,
    headers: HeaderMap,
    name: String,
    version: String,
    yanked: bool,
) -> ApiResult<Json<serde_json::Value>> {
    let auth = require(&app, &headers, Scope::Yank).await?;
    if !auth.covers_crate(&name) {
        return Err(ApiError::forbidden(format!(
            "this token may not yank `{name}`"
        )));
    }
    let (krate, row) = version_row(&app, &name, &version).await?;
    let mut w = app.db.begin_write().await?;
    if !is_owner(&mut *w.tx, krate.id, &auth).await? {
        return Err(ApiError::forbidden(format!(
            "`{}` is not an owner of crate `{}`",
            auth.login, krate.name
        )));
    }
    let id: i64 = row.get("id");
    sqlx::query("UPDATE versions SET yanked = $1, updated_at = $2 WHERE id = $3")
        .bind(i64::from(yanked))
        .bind(now_ms())
        .bind(id)
        .execute(&mut *w.tx)
        .await?;
    let kind = if yanked { "yank" } else { "unyank" };
    events::append(
        &mut w.tx,
        app.db.backend(),
        kind,
        &format!("{}@{version}", krate.name),
        &auth.login,
        serde_json::json!({}),
    )
    .await?;
    w.commit().await?;
    app.index_cache.invalidate(&krate.name.to_ascii_lowercase());
    Ok(Json(serde_json::json!({"ok": true})))
}

/// `DELETE /api/v1/crates/{name}/{version}/yank`.
pub(super) async fn yank(
    State(app): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    set_yanked(app, headers, name, version, true).await
}

/// `PUT /api/v1/crates/{name}/{version}/unyank`.
pub(super) async fn unyank(
    State(app): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    set_yanked(app, headers, name, version, false).await
}

/// `GET /api/v1/crates/{name}/owners`.
pub(super) async fn owners(
    State(app): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    require_read(&app, &headers).await?;
    let krate = crate_named(&app, &name).await?;
    let rows = sqlx::query("SELECT u.id, u.login FROM owners o JOIN users u ON u.id = o.user_id WHERE o.crate_id = $1 ORDER BY u.login")
        .bind(krate.id)
        .fetch_all(app.db.pool())
        .await?;
    let users: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let login: String = r.get("login");
            serde_json::json!({"id": r.get::<i64, _>("id"), "login": login, "name": login})
        })
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
    headers: HeaderMap,
    name: String,
    body: Bytes,
    add: bool,
) -> ApiResult<Json<serde_json::Value>> {
    let auth = require(&app, &headers, Scope::Publish).await?;
    let change: OwnerChange = serde_json::from_slice(&body)
        .map_err(|err| ApiError::bad_request(format!("invalid owner request: {err}")))?;
    if change.users.is_empty() {
        return Err(ApiError::bad_request("name at least one user"));
    }
    if !auth.covers_crate(&name) {
        return Err(ApiError::forbidden(format!(
            "this token may not change the owners of `{name}`"
        )));
    }
    let krate = crate_named(&app, &name).await?;
    let mut w = app.db.begin_write().await?;
    if !is_owner(&mut *w.tx, krate.id, &auth).await? {
        return Err(ApiError::forbidden(format!(
            "`{}` is not an owner of crate `{}`",
            auth.login, krate.name
        )));
    }
    for login in &change.users {
        let user_id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE login = $1")
            .bind(login)
            .fetch_optional(&mut *w.tx)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no user `{login}`")))?;
        if add {
            sqlx::query("INSERT INTO owners (crate_id, user_id) SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM owners WHERE crate_id = $1 AND user_id = $2)")
                .bind(krate.id)
                .bind(user_id)
                .execute(&mut *w.tx)
                .await?;
        } else {
            sqlx::query("DELETE FROM owners WHERE crate_id = $1 AND user_id = $2")
                .bind(krate.id)
                .bind(user_id)
                .execute(&mut *w.tx)
                .await?;
        }
    }
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM owners WHERE crate_id = $1")
        .bind(krate.id)
        .fetch_one(&mut *w.tx)
        .await?;
    if left == 0 {
        return Err(ApiError::bad_request(format!(
            "crate `{}` must keep at least one owner",
            krate.name
        )));
    }
    let kind = if add { "owner-add" } else { "owner-remove" };
    events::append(
        &mut w.tx,
        app.db.backend(),
        kind,
        &krate.name,
        &auth.login,
        serde_json::json!({"users": change.users}),
    )
    .await?;
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
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    change_owners(app, headers, name, body, true).await
}

/// `DELETE /api/v1/crates/{name}/owners`.
pub(super) async fn remove_owners(
    State(app): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    change_owners(app, headers, name, body, false).await
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
    Query(query): Query<SearchQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    require_read(&app, &headers).await?;
    let per_page = query.per_page.unwrap_or(10).clamp(1, 100) as usize;
    let needle = query.q.to_ascii_lowercase();
    let rows = sqlx::query(
        "SELECT c.name, c.description, v.version, v.yanked FROM crates c JOIN versions v ON v.crate_id = c.id \
         WHERE v.state = 'approved' ORDER BY c.name",
    )
    .fetch_all(app.db.pool())
    .await?;
    let mut found: Vec<(String, Option<String>, Option<semver::Version>)> = Vec::new();
    for row in &rows {
        let name: String = row.get("name");
        let description: Option<String> = row.get("description");
        let matches = needle.is_empty()
            || names::canonical(&name).contains(&names::canonical(&needle))
            || description
                .as_deref()
                .is_some_and(|d| d.to_ascii_lowercase().contains(&needle));
        if !matches {
            continue;
        }
        let version = semver::Version::parse(&row.get::<String, _>("version"))
            .ok()
            .filter(|_| row.get::<i64, _>("yanked") == 0);
        match found.last_mut() {
            Some(last) if last.0 == name => {
                if version > last.2 {
                    last.2 = version;
                }
            }
            _ => found.push((name, description, version)),
        }
    }
    let total = found.len();
    let crates: Vec<serde_json::Value> = found
        .into_iter()
        .take(per_page)
        .map(|(name, description, version)| {
            serde_json::json!({
                "name": name,
                "max_version": version.map_or_else(|| "0.0.0".to_owned(), |v| v.to_string()),
                "description": description,
            })
        })
        .collect();
    Ok(Json(
        serde_json::json!({"crates": crates, "meta": {"total": total}}),
    ))
}
