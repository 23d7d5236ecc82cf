//! Reports kept with a version: its audit, its build, and re-audits after its approval.

use kiln_wire::submissions::Reports;
use sqlx::Row as _;

use super::{ModelResult, Tx, corrupt};
use crate::db::{Db, now_ms};

/// Keeps a report of `kind` (`audit`, `build`, `reaudit`) about version `version_id`.
pub async fn insert(tx: &mut Tx, version_id: i64, kind: &str, body: &str) -> ModelResult<()> {
    sqlx::query("INSERT INTO reports (version_id, kind, body, created_at) VALUES ($1, $2, $3, $4)")
        .bind(version_id)
        .bind(kind)
        .bind(body)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The reports about version `version_id`: the latest audit and build, every re-audit.
pub async fn for_version(db: &Db, version_id: i64) -> ModelResult<Reports> {
    let rows = sqlx::query("SELECT kind, body FROM reports WHERE version_id = $1 ORDER BY id")
        .bind(version_id)
        .fetch_all(db.pool())
        .await?;
    let mut reports = Reports::default();
    for row in rows {
        let body: String = row.get("body");
        match row.get::<String, _>("kind").as_str() {
            "audit" => {
                reports.audit =
                    Some(serde_json::from_str(&body).map_err(|e| corrupt("an audit report", e))?);
            }
            "build" => {
                reports.build =
                    Some(serde_json::from_str(&body).map_err(|e| corrupt("a build report", e))?);
            }
            _ => reports
                .reaudits
                .push(serde_json::from_str(&body).map_err(|e| corrupt("a re-audit", e))?),
        }
    }
    Ok(reports)
}
