//! Artifacts of a version (modules, manifest, provenance, logs) and statements about it
//! (audit, review), each a blob named by its digest.

use kiln_policy::Digest;
use kiln_wire::ArtifactKind;
use kiln_wire::submissions::ArtifactInfo;
use kiln_wire::worker::ArtifactRecord;
use sqlx::Row as _;

use super::{ModelResult, Tx, corrupt};
use crate::db::{Db, now_ms};

/// Records an artifact of version `version_id` (once per version and digest: two versions may
/// share an identical artifact).
pub async fn insert(
    tx: &mut Tx,
    version_id: i64,
    artifact: &ArtifactRecord,
    size: u64,
) -> ModelResult<()> {
    sqlx::query(
        "INSERT INTO artifacts (digest, version_id, kind, media_type, size, created_at) \
         SELECT $1, $2, $3, $4, $5, $6 \
         WHERE NOT EXISTS (SELECT 1 FROM artifacts WHERE version_id = $2 AND digest = $1)",
    )
    .bind(artifact.digest.to_string())
    .bind(version_id)
    .bind(artifact.kind.as_str())
    .bind(artifact.kind.media_type())
    .bind(size as i64)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn info(row: &sqlx::any::AnyRow) -> ModelResult<ArtifactInfo> {
    Ok(ArtifactInfo {
        digest: row
            .get::<String, _>("digest")
            .parse()
            .map_err(|err| corrupt("an artifact's digest", err))?,
        kind: row
            .get::<String, _>("kind")
            .parse()
            .map_err(|err| corrupt("an artifact's kind", err))?,
        media_type: row.get("media_type"),
        size: row.get::<i64, _>("size").max(0) as u64,
        created_at: row.get("created_at"),
    })
}

/// The artifacts of version `version_id`, by kind.
pub async fn for_version(db: &Db, version_id: i64) -> ModelResult<Vec<ArtifactInfo>> {
    sqlx::query(
        "SELECT digest, kind, media_type, size, created_at FROM artifacts WHERE version_id = $1 \
         ORDER BY kind",
    )
    .bind(version_id)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(info)
    .collect()
}

/// The artifact with `digest`, if one is recorded.
pub async fn find(db: &Db, digest: &Digest) -> ModelResult<Option<ArtifactInfo>> {
    sqlx::query("SELECT digest, kind, media_type, size, created_at FROM artifacts WHERE digest = $1 LIMIT 1")
        .bind(digest.to_string())
        .fetch_optional(db.pool())
        .await?
        .as_ref()
        .map(info)
        .transpose()
}

/// The modules (`.wasm`, `.cwasm`) of version `version_id`.
pub async fn modules(db: &Db, version_id: i64) -> ModelResult<Vec<(ArtifactKind, Digest)>> {
    Ok(for_version(db, version_id)
        .await?
        .into_iter()
        .filter(|a| matches!(a.kind, ArtifactKind::Wasm | ArtifactKind::Cwasm))
        .map(|a| (a.kind, a.digest))
        .collect())
}

/// Every blob digest the database refers to: `.crate` checksums and artifacts. A blob outside
/// this set is an orphan.
pub async fn referenced(db: &Db) -> ModelResult<std::collections::BTreeSet<Digest>> {
    let mut out = std::collections::BTreeSet::new();
    for hex in sqlx::query_scalar::<_, String>("SELECT checksum FROM versions")
        .fetch_all(db.pool())
        .await?
    {
        out.insert(Digest::from_hex(&hex).map_err(|err| corrupt("a checksum", err))?);
    }
    for text in sqlx::query_scalar::<_, String>("SELECT digest FROM artifacts")
        .fetch_all(db.pool())
        .await?
    {
        out.insert(
            text.parse()
                .map_err(|err| corrupt("an artifact digest", err))?,
        );
    }
    Ok(out)
}
