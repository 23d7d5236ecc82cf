//! Tokens as stored: the SHA-256 of the secret, the scopes, an optional crate pattern and
//! expiry, and when they were revoked.

use std::collections::BTreeSet;

use kiln_wire::Scope;
use kiln_wire::tokens::{NewToken, TokenInfo};
use sqlx::Row as _;

use super::{ModelError, ModelResult, Tx, events};
use crate::db::{Db, now_ms};

/// A stored token and its user.
#[derive(Debug, Clone)]
pub struct StoredToken {
    /// The token's id.
    pub id: i64,
    /// Its user.
    pub user_id: i64,
    /// The user's login.
    pub login: String,
    /// Its scopes.
    pub scopes: BTreeSet<Scope>,
    /// The crate pattern it is limited to.
    pub crate_pattern: Option<String>,
    /// When it expires (Unix milliseconds).
    pub expires_at: Option<i64>,
    /// When it was revoked (Unix milliseconds).
    pub revoked_at: Option<i64>,
}

fn scopes(text: &str) -> BTreeSet<Scope> {
    text.split(',').filter_map(|s| s.parse().ok()).collect()
}

/// The token whose secret hashes to `hash`.
pub async fn by_hash(db: &Db, hash: &str) -> ModelResult<Option<StoredToken>> {
    let row = sqlx::query(
        "SELECT t.id, t.user_id, u.login, t.scopes, t.crate_pattern, t.expires_at, t.revoked_at \
         FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = $1",
    )
    .bind(hash)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.map(|row| StoredToken {
        id: row.get("id"),
        user_id: row.get("user_id"),
        login: row.get("login"),
        scopes: scopes(&row.get::<String, _>("scopes")),
        crate_pattern: row.get("crate_pattern"),
        expires_at: row.get("expires_at"),
        revoked_at: row.get("revoked_at"),
    }))
}

/// Creates a token for `user_id` whose secret hashes to `hash`, and logs it as done by `actor`
/// for `login`; returns its id.
pub async fn create(
    tx: &mut Tx,
    user_id: i64,
    login: &str,
    token: &NewToken,
    hash: &str,
    actor: &str,
) -> ModelResult<i64> {
    let names: Vec<&str> = token.scopes.iter().map(|s| s.as_str()).collect();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO tokens (user_id, name, hash, scopes, crate_pattern, expires_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(user_id)
    .bind(&token.name)
    .bind(hash)
    .bind(names.join(","))
    .bind(&token.crate_pattern)
    .bind(token.expires_at)
    .bind(now_ms())
    .fetch_one(&mut **tx)
    .await?;
    events::append(
        tx,
        "token-create",
        &format!("token:{id}"),
        actor,
        serde_json::json!({"login": login, "scopes": names}),
    )
    .await?;
    Ok(id)
}

/// Every token, or only `user_id`'s.
pub async fn list(db: &Db, user_id: Option<i64>) -> ModelResult<Vec<TokenInfo>> {
    let rows = sqlx::query(
        "SELECT t.id, u.login, t.name, t.scopes, t.crate_pattern, t.expires_at, t.revoked_at \
         FROM tokens t JOIN users u ON u.id = t.user_id \
         WHERE $1 IS NULL OR t.user_id = $1 ORDER BY t.id",
    )
    .bind(user_id)
    .fetch_all(db.pool())
    .await?;
    Ok(rows
        .iter()
        .map(|r| TokenInfo {
            id: r.get("id"),
            login: r.get("login"),
            name: r.get("name"),
            scopes: scopes(&r.get::<String, _>("scopes")),
            crate_pattern: r.get("crate_pattern"),
            expires_at: r.get("expires_at"),
            revoked_at: r.get("revoked_at"),
        })
        .collect())
}

/// The user a token belongs to.
pub async fn owner(db: &Db, id: i64) -> ModelResult<i64> {
    sqlx::query_scalar("SELECT user_id FROM tokens WHERE id = $1")
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .ok_or_else(|| ModelError::NotFound(format!("no token {id}")))
}

/// Revokes token `id` (a no-op when it is revoked already) and logs it as done by `actor`.
pub async fn revoke(tx: &mut Tx, id: i64, actor: &str) -> ModelResult<()> {
    sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now_ms())
        .bind(id)
        .execute(&mut **tx)
        .await?;
    events::append(
        tx,
        "token-revoke",
        &format!("token:{id}"),
        actor,
        serde_json::json!({}),
    )
    .await?;
    Ok(())
}
