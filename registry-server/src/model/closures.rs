//! Closures: the crates imported together in one request. Their members are audited and built
//! against the approved crates and each other (still in quarantine), through an index whose
//! URL carries the closure's token, which only workers learn (from their jobs).

use kiln_wire::VersionState;
use sqlx::Row as _;

use super::{ModelError, ModelResult, Tx};
use crate::db::{Db, now_ms};

/// A closure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closure {
    /// Its id.
    pub id: i64,
    /// The token its index is reached by.
    pub token: String,
    /// What was imported (`NAME@REQ`, with its features).
    pub root: String,
}

/// Records a closure imported by `user_id`, reached by `token`.
pub async fn create(tx: &mut Tx, token: &str, root: &str, user_id: i64) -> ModelResult<Closure> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO closures (token, root, created_by, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(token)
    .bind(root)
    .bind(user_id)
    .bind(now_ms())
    .fetch_one(&mut **tx)
    .await?;
    Ok(Closure {
        id,
        token: token.to_owned(),
        root: root.to_owned(),
    })
}

/// Makes version `version_id` a member of closure `closure_id` (once).
pub async fn add_member(tx: &mut Tx, closure_id: i64, version_id: i64) -> ModelResult<()> {
    sqlx::query(
        "INSERT INTO closure_members (closure_id, version_id) SELECT $1, $2 \
         WHERE NOT EXISTS (SELECT 1 FROM closure_members WHERE closure_id = $1 AND version_id = $2)",
    )
    .bind(closure_id)
    .bind(version_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The closure reached by `token`.
pub async fn by_token(db: &Db, token: &str) -> ModelResult<Closure> {
    sqlx::query("SELECT id, token, root FROM closures WHERE token = $1")
        .bind(token)
        .fetch_optional(db.pool())
        .await?
        .map(|row| Closure {
            id: row.get("id"),
            token: row.get("token"),
            root: row.get("root"),
        })
        .ok_or_else(|| ModelError::NotFound("no such closure".into()))
}

/// Whether version `version_id` is a member of closure `closure_id` that its index serves: in
/// review or approved, not failed or rejected.
pub async fn serves(db: &Db, closure_id: i64, version_id: i64) -> ModelResult<bool> {
    let state: Option<String> = sqlx::query_scalar(
        "SELECT v.state FROM closure_members m JOIN versions v ON v.id = m.version_id \
         WHERE m.closure_id = $1 AND m.version_id = $2",
    )
    .bind(closure_id)
    .bind(version_id)
    .fetch_optional(db.pool())
    .await?;
    Ok(state.is_some_and(|s| {
        !matches!(
            s.parse::<VersionState>(),
            Ok(VersionState::Failed | VersionState::Rejected)
        )
    }))
}

/// The versions submitted together with version `version_id`: the members of every closure it
/// is a member of, itself included.
pub async fn companions(db: &Db, version_id: i64) -> ModelResult<Vec<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT m.version_id FROM closure_members m WHERE m.closure_id IN \
         (SELECT closure_id FROM closure_members WHERE version_id = $1) ORDER BY m.version_id",
    )
    .bind(version_id)
    .fetch_all(db.pool())
    .await?)
}
