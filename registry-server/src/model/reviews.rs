//! Review decisions about a version.

use kiln_wire::review::Decision;
use kiln_wire::submissions::ReviewRecord;
use sqlx::Row as _;

use super::{ModelResult, Tx};
use crate::db::{Db, now_ms};

/// Records a decision (with the reviewer's own signed statement, when they brought one).
pub async fn insert(
    tx: &mut Tx,
    version_id: i64,
    decision: Decision,
    reviewer: i64,
    reason: Option<&str>,
    criteria: Option<&str>,
    bundle: Option<&str>,
) -> ModelResult<()> {
    sqlx::query(
        "INSERT INTO reviews (version_id, decision, reviewer, reason, criteria, bundle, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(version_id)
    .bind(decision.as_str())
    .bind(reviewer)
    .bind(reason)
    .bind(criteria)
    .bind(bundle)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The decisions about version `version_id`, oldest first.
pub async fn for_version(db: &Db, version_id: i64) -> ModelResult<Vec<ReviewRecord>> {
    let rows = sqlx::query(
        "SELECT r.decision, u.login, r.reason, r.criteria, r.created_at FROM reviews r \
         JOIN users u ON u.id = r.reviewer WHERE r.version_id = $1 ORDER BY r.id",
    )
    .bind(version_id)
    .fetch_all(db.pool())
    .await?;
    Ok(rows
        .iter()
        .map(|r| ReviewRecord {
            decision: if r.get::<String, _>("decision") == "approve" {
                Decision::Approve
            } else {
                Decision::Reject
            },
            reviewer: r.get("login"),
            reason: r.get("reason"),
            criteria: r.get("criteria"),
            created_at: r.get("created_at"),
        })
        .collect())
}
