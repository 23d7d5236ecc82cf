//! Revocation (incident response): an admin revokes a version or an artifact; downloads of it
//! answer 451, it is yanked from the index, and the signed revocation list names it, so that
//! executors refuse to run it.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use kiln_policy::intoto::ResourceDescriptor;
use kiln_policy::{Digest, Statement, StatementKind, sign_statement};
use serde::Deserialize;
use sqlx::Row as _;

use super::cargo::version_row;
use super::{ApiError, ApiResult, AppState, require, require_read};
use crate::db::now_ms;
use crate::events;
use crate::tokens::Scope;

/// A revocation.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RevokeRequest {
    /// `NAME@VERSION` (its `.crate` and every artifact built from it) or a digest (`sha256:…`).
    pub target: String,
    /// Why, for the record and for the executors' refusals.
    pub reason: String,
}

/// The revocation of `digest`, if any: its reason.
pub(crate) async fn revoked(app: &AppState, digest: &Digest) -> ApiResult<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT reason FROM revocations WHERE digest = $1")
            .bind(digest.to_string())
            .fetch_optional(app.db.pool())
            .await?,
    )
}

/// 451 when `digest` is revoked.
pub(crate) async fn refuse_revoked(app: &AppState, digest: &Digest, what: &str) -> ApiResult<()> {
    match revoked(app, digest).await? {
        Some(reason) => Err(ApiError::new(
            axum::http::StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS,
            format!("{what} is revoked: {reason}"),
        )),
        None => Ok(()),
    }
}

/// Records `digests` as revoked inside `tx` (those not revoked already) and yanks the version;
/// returns how many were new.
pub(crate) async fn insert_revocations(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    digests: &[String],
    version_id: Option<i64>,
    reason: &str,
    user_id: i64,
) -> Result<u64, sqlx::Error> {
    let mut added = 0;
    for digest in digests {
        let done = sqlx::query(
            "INSERT INTO revocations (digest, version_id, reason, revoked_by, created_at) \
             SELECT $1, $2, $3, $4, $5 WHERE NOT EXISTS (SELECT 1 FROM revocations WHERE digest = $1)",
        )
        .bind(digest)
        .bind(version_id)
        .bind(reason)
        .bind(user_id)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
        added += done.rows_affected();
    }
    if let Some(id) = version_id {
        sqlx::query("UPDATE versions SET yanked = 1, updated_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(added)
}

/// The digests revoking version `id` covers: its `.crate` and every artifact built from it.
pub(crate) async fn version_digests(
    app: &AppState,
    id: i64,
    checksum: &str,
) -> ApiResult<Vec<String>> {
    let mut digests = vec![
        Digest::from_hex(checksum)
            .map_err(ApiError::internal)?
            .to_string(),
    ];
    let artifacts: Vec<String> =
        sqlx::query_scalar("SELECT digest FROM artifacts WHERE version_id = $1")
            .bind(id)
            .fetch_all(app.db.pool())
            .await?;
    digests.extend(artifacts);
    Ok(digests)
}

/// `POST /api/kiln/v1/revocations` (admin).
#[utoipa::path(post, path = "/api/kiln/v1/revocations", request_body = RevokeRequest, responses((status = 200), (status = 404), (status = 409)))]
pub(crate) async fn revoke(
    State(app): State<AppState>,
    headers: HeaderMap,
    Json(request): Json<RevokeRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    let auth = require(&app, &headers, Scope::Admin).await?;
    if request.reason.trim().is_empty() {
        return Err(ApiError::unprocessable("a revocation needs a reason"));
    }
    let (digests, version_id, crate_name) =
        if let Some((name, version)) = request.target.split_once('@') {
            let (krate, row) = version_row(&app, name, version).await?;
            let id: i64 = row.get("id");
            let checksum: String = row.get("checksum");
            let digests = version_digests(&app, id, &checksum).await?;
            (digests, Some(id), Some(krate.name))
        } else {
            let digest: Digest = request.target.parse().map_err(|err| {
                ApiError::bad_request(format!(
                    "`{}` is neither NAME@VERSION nor a digest: {err}",
                    request.target
                ))
            })?;
            (vec![digest.to_string()], None, None)
        };
    let mut w = app.db.begin_write().await?;
    let added = insert_revocations(
        &mut w.tx,
        &digests,
        version_id,
        &request.reason,
        auth.user_id,
    )
    .await?;
    if added == 0 {
        return Err(ApiError::conflict(format!(
            "{} is already revoked",
            request.target
        )));
    }
    events::append(
        &mut w.tx,
        app.db.backend(),
        "revoke",
        &request.target,
        &auth.login,
        serde_json::json!({"reason": request.reason, "digests": digests}),
    )
    .await?;
    w.commit().await?;
    app.extensions.revoked();
    if let Some(name) = crate_name {
        app.index_cache.invalidate(&name.to_ascii_lowercase());
    }
    Ok(Json(serde_json::json!({"ok": true, "revoked": digests})))
}

/// `GET /api/kiln/v1/revocations`: the revocation list as a Sigstore bundle signed with the
/// server's revocation key. Its statement's subject is the digest of the entries; the predicate
/// holds the entries, their count and when the list was issued.
#[utoipa::path(get, path = "/api/kiln/v1/revocations", responses((status = 200, description = "a Sigstore bundle")))]
pub(crate) async fn list(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    require_read(&app, &headers).await?;
    let rows = sqlx::query(
        "SELECT r.digest, r.reason, r.created_at, c.name, v.version FROM revocations r \
         LEFT JOIN versions v ON v.id = r.version_id LEFT JOIN crates c ON c.id = v.crate_id ORDER BY r.id",
    )
    .fetch_all(app.db.pool())
    .await?;
    let entries: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "digest": r.get::<String, _>("digest"),
                "crate": r.get::<Option<String>, _>("name"),
                "version": r.get::<Option<String>, _>("version"),
                "reason": r.get::<String, _>("reason"),
                "revoked_at": r.get::<i64, _>("created_at"),
            })
        })
        .collect();
    let entries = serde_json::Value::Array(entries);
    let statement = Statement::new(
        vec![ResourceDescriptor::new(
            "revocation-list",
            Digest::of(entries.to_string().as_bytes()),
        )],
        StatementKind::Revocation.predicate_type(),
        serde_json::json!({"issued_at": now_ms(), "count": rows.len(), "entries": entries}),
    );
    let bundle = sign_statement(&app.keys.revocation, &statement).map_err(ApiError::internal)?;
    Ok(Json(
        serde_json::to_value(&bundle).map_err(ApiError::internal)?,
    ))
}
