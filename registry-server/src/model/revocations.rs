//! Revoked digests (incident response). A revoked version is yanked too, so it leaves the
//! index.

use kiln_policy::Digest;
use serde::Serialize;
use sqlx::Row as _;

use super::{ModelResult, Tx};
use crate::db::{Db, now_ms};

/// Why `digest` is revoked, if it is.
pub async fn reason_of(db: &Db, digest: &Digest) -> ModelResult<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT reason FROM revocations WHERE digest = $1")
            .bind(digest.to_string())
            .fetch_optional(db.pool())
            .await?,
    )
}

/// Records `digests` as revoked (those not revoked already) and yanks version `version_id`;
/// returns how many were new.
pub async fn insert(
    tx: &mut Tx,
    digests: &[Digest],
    version_id: Option<i64>,
    reason: &str,
    user_id: i64,
) -> ModelResult<u64> {
    let mut added = 0;
    for digest in digests {
        let done = sqlx::query(
            "INSERT INTO revocations (digest, version_id, reason, revoked_by, created_at) \
             SELECT $1, $2, $3, $4, $5 WHERE NOT EXISTS (SELECT 1 FROM revocations WHERE digest = $1)",
        )
        .bind(digest.to_string())
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

/// One revoked digest, as the signed list carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The digest.
    pub digest: String,
    /// The crate, when a version was revoked.
    #[serde(rename = "crate")]
    pub krate: Option<String>,
    /// The version.
    pub version: Option<String>,
    /// Why.
    pub reason: String,
    /// When (Unix milliseconds).
    pub revoked_at: i64,
}

/// Every revocation, in order.
pub async fn list(db: &Db) -> ModelResult<Vec<Entry>> {
    let rows = sqlx::query(
        "SELECT r.digest, r.reason, r.created_at, c.name, v.version FROM revocations r \
         LEFT JOIN versions v ON v.id = r.version_id LEFT JOIN crates c ON c.id = v.crate_id ORDER BY r.id",
    )
    .fetch_all(db.pool())
    .await?;
    Ok(rows
        .iter()
        .map(|r| Entry {
            digest: r.get("digest"),
            krate: r.get("name"),
            version: r.get("version"),
            reason: r.get("reason"),
            revoked_at: r.get("created_at"),
        })
        .collect())
}
