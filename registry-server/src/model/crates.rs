//! Crates and their owners. Names collide when they are equal ignoring case and `-`/`_`
//! (their canonical form, [`crate::names::canonical`]).

use sqlx::Row as _;

use super::{ModelError, ModelResult, Tx, events, users};
use crate::db::{Db, now_ms};
use crate::names;
use crate::tokens::Authenticated;

/// A crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrateRow {
    /// Its id.
    pub id: i64,
    /// Its name as first published.
    pub name: String,
}

/// The crate whose name collides with `name`.
pub async fn find<'e, E>(executor: E, name: &str) -> ModelResult<Option<CrateRow>>
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

/// The crate called exactly `name` (ignoring case).
pub async fn named(db: &Db, name: &str) -> ModelResult<CrateRow> {
    match find(db.pool(), name).await? {
        Some(row) if row.name.eq_ignore_ascii_case(name) => Ok(row),
        _ => Err(ModelError::NotFound(format!("no crate `{name}`"))),
    }
}

/// Creates crate `name` owned by `owner`; returns its id.
pub async fn create(
    tx: &mut Tx,
    name: &str,
    description: Option<&str>,
    owner: i64,
) -> ModelResult<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO crates (name, canonical_name, description, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(name)
    .bind(names::canonical(name))
    .bind(description)
    .bind(now_ms())
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query("INSERT INTO owners (crate_id, user_id) VALUES ($1, $2)")
        .bind(id)
        .bind(owner)
        .execute(&mut **tx)
        .await?;
    Ok(id)
}

/// Refuses unless `auth` owns crate `krate` (an admin owns every crate).
pub async fn require_owner(
    conn: &mut sqlx::AnyConnection,
    krate: &CrateRow,
    auth: &Authenticated,
) -> ModelResult<()> {
    if auth.is_admin() {
        return Ok(());
    }
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM owners WHERE crate_id = $1 AND user_id = $2")
            .bind(krate.id)
            .bind(auth.user_id)
            .fetch_one(&mut *conn)
            .await?;
    if n == 0 {
        return Err(ModelError::Forbidden(format!(
            "`{}` is not an owner of crate `{}`",
            auth.login, krate.name
        )));
    }
    Ok(())
}

/// The owners of `krate`: id and login.
pub async fn owners(db: &Db, krate: &CrateRow) -> ModelResult<Vec<(i64, String)>> {
    let rows = sqlx::query(
        "SELECT u.id, u.login FROM owners o JOIN users u ON u.id = o.user_id WHERE o.crate_id = $1 ORDER BY u.login",
    )
    .bind(krate.id)
    .fetch_all(db.pool())
    .await?;
    Ok(rows.iter().map(|r| (r.get("id"), r.get("login"))).collect())
}

/// Adds (or removes) `logins` as owners of `krate`, as `auth`; a crate keeps at least one owner.
pub async fn change_owners(
    tx: &mut Tx,
    krate: &CrateRow,
    auth: &Authenticated,
    logins: &[String],
    add: bool,
) -> ModelResult<()> {
    require_owner(tx, krate, auth).await?;
    for login in logins {
        let user_id = users::id_of(tx, login)
            .await?
            .ok_or_else(|| ModelError::NotFound(format!("no user `{login}`")))?;
        let sql = if add {
            "INSERT INTO owners (crate_id, user_id) SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM owners WHERE crate_id = $1 AND user_id = $2)"
        } else {
            "DELETE FROM owners WHERE crate_id = $1 AND user_id = $2"
        };
        sqlx::query(sql)
            .bind(krate.id)
            .bind(user_id)
            .execute(&mut **tx)
            .await?;
    }
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM owners WHERE crate_id = $1")
        .bind(krate.id)
        .fetch_one(&mut **tx)
        .await?;
    if left == 0 {
        return Err(ModelError::Invalid(format!(
            "crate `{}` must keep at least one owner",
            krate.name
        )));
    }
    let kind = if add { "owner-add" } else { "owner-remove" };
    events::append(
        tx,
        kind,
        &krate.name,
        &auth.login,
        serde_json::json!({"users": logins}),
    )
    .await?;
    Ok(())
}
