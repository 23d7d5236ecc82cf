//! Users: a login, made the first time a token is created for it.

use sqlx::Row as _;

use super::{ModelResult, Tx};
use crate::db::{Db, now_ms};

/// How many users there are.
pub async fn count(tx: &mut Tx) -> ModelResult<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&mut **tx)
        .await?)
}

/// Finds or creates the user `login`; returns its id.
pub async fn ensure(tx: &mut Tx, login: &str) -> ModelResult<i64> {
    if let Some(id) = sqlx::query_scalar::<_, i64>("SELECT id FROM users WHERE login = $1")
        .bind(login)
        .fetch_optional(&mut **tx)
        .await?
    {
        return Ok(id);
    }
    Ok(
        sqlx::query_scalar("INSERT INTO users (login, created_at) VALUES ($1, $2) RETURNING id")
            .bind(login)
            .bind(now_ms())
            .fetch_one(&mut **tx)
            .await?,
    )
}

/// The id of the user `login`, if there is one.
pub async fn id_of(tx: &mut Tx, login: &str) -> ModelResult<Option<i64>> {
    Ok(sqlx::query_scalar("SELECT id FROM users WHERE login = $1")
        .bind(login)
        .fetch_optional(&mut **tx)
        .await?)
}

/// The login of user `id`.
pub async fn login_of(db: &Db, id: i64) -> ModelResult<Option<String>> {
    Ok(sqlx::query("SELECT login FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .map(|row| row.get("login")))
}
