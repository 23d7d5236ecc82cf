//! What the sparse index and search serve: approved versions, and in the index the versions
//! published here that are still in review, marked so that nothing resolves them
//! ([`kiln_wire::index`]).

use sqlx::Row as _;

use super::{ModelResult, corrupt};
use crate::db::Db;
use crate::names;

/// A crate's index file: one line per approved version, in publish order, each with its
/// current `yanked` flag, and one per version published here that is still in review, marked
/// as awaiting approval; `None` when the crate has neither (or is known by another spelling of
/// its name).
pub async fn file_content(db: &Db, lowercase_name: &str) -> ModelResult<Option<String>> {
    let rows = sqlx::query(
        "SELECT c.name, v.index_line, v.yanked, v.approved_features FROM versions v \
         JOIN crates c ON c.id = v.crate_id \
         WHERE c.canonical_name = $1 AND (v.approved_features IS NOT NULL OR \
           (v.origin IS NULL AND v.state IN ('submitted', 'audited', 'built'))) \
         ORDER BY v.id",
    )
    .bind(names::canonical(lowercase_name))
    .fetch_all(db.pool())
    .await?;
    lines(&rows, lowercase_name, Awaiting::Marked)
}

/// How an index file lists versions still in review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaiting {
    /// As Cargo cannot resolve them (the public index).
    Marked,
    /// As any other version (a closure's view for its workers, who build against them).
    Plain,
}

/// A crate's index file as the workers of closure `closure_id` see it: its approved versions and
/// the closure's members in review.
pub async fn closure_file_content(
    db: &Db,
    closure_id: i64,
    lowercase_name: &str,
) -> ModelResult<Option<String>> {
    let rows = sqlx::query(
        "SELECT c.name, v.index_line, v.yanked FROM versions v JOIN crates c ON c.id = v.crate_id \
         WHERE c.canonical_name = $1 AND (v.approved_features IS NOT NULL OR \
           (v.state NOT IN ('failed', 'rejected') AND EXISTS \
             (SELECT 1 FROM closure_members m WHERE m.closure_id = $2 AND m.version_id = v.id))) \
         ORDER BY v.id",
    )
    .bind(names::canonical(lowercase_name))
    .bind(closure_id)
    .fetch_all(db.pool())
    .await?;
    lines(&rows, lowercase_name, Awaiting::Plain)
}

/// Index lines of `rows` (name, line, yanked, and for [`Awaiting::Marked`] approved features),
/// each with its current `yanked` flag.
fn lines(
    rows: &[sqlx::any::AnyRow],
    lowercase_name: &str,
    awaiting: Awaiting,
) -> ModelResult<Option<String>> {
    let mut body = String::new();
    for row in rows {
        let name: String = row.get("name");
        if name.to_ascii_lowercase() != lowercase_name {
            return Ok(None);
        }
        let line: String = row.get("index_line");
        let mut line: serde_json::Value =
            serde_json::from_str(&line).map_err(|err| corrupt("an index line", err))?;
        line["yanked"] = (row.get::<i64, _>("yanked") != 0).into();
        if awaiting == Awaiting::Marked
            && row.get::<Option<String>, _>("approved_features").is_none()
        {
            match line["deps"].as_array_mut() {
                Some(deps) => deps.push(kiln_wire::index::awaiting_dependency()),
                None => line["deps"] = vec![kiln_wire::index::awaiting_dependency()].into(),
            }
        }
        body.push_str(&line.to_string());
        body.push('\n');
    }
    Ok((!body.is_empty()).then_some(body))
}

/// A crate found by search: its name, description and newest unyanked approved version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The crate.
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// Its newest unyanked approved version.
    pub max_version: Option<semver::Version>,
}

/// Crates with approved versions whose name or description contains `needle` (lower case).
pub async fn search(db: &Db, needle: &str) -> ModelResult<Vec<Found>> {
    let rows = sqlx::query(
        "SELECT c.name, c.description, v.version, v.yanked FROM crates c JOIN versions v ON v.crate_id = c.id \
         WHERE v.approved_features IS NOT NULL ORDER BY c.name",
    )
    .fetch_all(db.pool())
    .await?;
    let mut found: Vec<Found> = Vec::new();
    for row in &rows {
        let name: String = row.get("name");
        let description: Option<String> = row.get("description");
        let matches = needle.is_empty()
            || names::canonical(&name).contains(&names::canonical(needle))
            || description
                .as_deref()
                .is_some_and(|d| d.to_ascii_lowercase().contains(needle));
        if !matches {
            continue;
        }
        let version = semver::Version::parse(&row.get::<String, _>("version"))
            .ok()
            .filter(|_| row.get::<i64, _>("yanked") == 0);
        match found.last_mut() {
            Some(last) if last.name == name => {
                if version > last.max_version {
                    last.max_version = version;
                }
            }
            _ => found.push(Found {
                name,
                description,
                max_version: version,
            }),
        }
    }
    Ok(found)
}
