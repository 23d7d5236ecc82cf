//! The deployment's signing keys as the database records them: per role, the key id every
//! replica on this database signs with. The first replica records its keys; a later one with
//! other keys is refused at start (see [`crate::open`]).

use std::collections::BTreeMap;

use sqlx::Row as _;

use super::ModelResult;
use crate::db::{Db, now_ms};

/// The recorded key id of each role (by role name); empty before the first replica starts.
pub async fn recorded(db: &Db) -> ModelResult<BTreeMap<String, String>> {
    let rows = sqlx::query("SELECT role, key_id FROM deployment_keys")
        .fetch_all(db.pool())
        .await?;
    Ok(rows
        .iter()
        .map(|row| (row.get("role"), row.get("key_id")))
        .collect())
}

/// Records `key_id` as the key of `role` (a first start, or a rotation).
pub async fn record(db: &Db, role: &str, key_id: &str) -> ModelResult<()> {
    let mut w = db.begin_write().await?;
    sqlx::query("DELETE FROM deployment_keys WHERE role = $1")
        .bind(role)
        .execute(&mut *w.tx)
        .await?;
    sqlx::query("INSERT INTO deployment_keys (role, key_id, recorded_at) VALUES ($1, $2, $3)")
        .bind(role)
        .bind(key_id)
        .bind(now_ms())
        .execute(&mut *w.tx)
        .await?;
    w.commit().await?;
    Ok(())
}
