//! Code cells' builds ([`kiln_wire::code_builds`]): one row per build key, queued once however
//! many executors ask, claimed by builders with a lease (a build whose builder stopped is
//! claimed again, at most [`MAX_ATTEMPTS`] times), and kept once signed or failed, so an unchanged
//! cell is never built twice. On PostgreSQL claims use `FOR UPDATE SKIP LOCKED`.

use std::time::Duration;

use kiln_policy::Digest;
use kiln_wire::ArtifactKind;
use kiln_wire::code_builds::{
    CodeArtifacts, CodeBuildRequest, CodeBuildStage, CodeBuildStatus, CodeJob, CodeReport,
};
use sqlx::Row as _;

use super::{ModelError, ModelResult, corrupt};
use crate::db::{Backend, Db, now_ms};

/// How many times a build is tried when its builder stops or fails on its own account.
pub const MAX_ATTEMPTS: i64 = 3;

const COLUMNS: &str = "build_key, request, source, stage, error, diagnostics, artifacts";

fn status(row: &sqlx::any::AnyRow, cached: bool) -> ModelResult<CodeBuildStatus> {
    let parse_json = |column: &str| -> ModelResult<Option<serde_json::Value>> {
        row.get::<Option<String>, _>(column)
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|err| corrupt("a code build", err))
    };
    Ok(CodeBuildStatus {
        key: row
            .get::<String, _>("build_key")
            .parse()
            .map_err(|err| corrupt("a code build's key", err))?,
        stage: row
            .get::<String, _>("stage")
            .parse()
            .map_err(|err| corrupt("a code build's stage", err))?,
        cached,
        source: row
            .get::<String, _>("source")
            .parse()
            .map_err(|err| corrupt("a code build's source digest", err))?,
        request: serde_json::from_str(&row.get::<String, _>("request"))
            .map_err(|err| corrupt("a code build's request", err))?,
        error: row.get("error"),
        diagnostics: parse_json("diagnostics")?
            .map(serde_json::from_value)
            .transpose()
            .map_err(|err| corrupt("a code build's diagnostics", err))?
            .unwrap_or_default(),
        artifacts: parse_json("artifacts")?
            .map(serde_json::from_value)
            .transpose()
            .map_err(|err| corrupt("a code build's artifacts", err))?,
    })
}

/// Queues the build `key` of `request` unless it is known; answers its status, `cached` when
/// it was known (made, failed or under way for an earlier request).
pub async fn request(
    db: &Db,
    key: Digest,
    request: &CodeBuildRequest,
) -> ModelResult<CodeBuildStatus> {
    let now = now_ms();
    let text = String::from_utf8(request.canonical()).expect("JSON is UTF-8");
    let mut w = db.begin_write().await?;
    let inserted = sqlx::query(
        "INSERT INTO code_builds (build_key, request, source, stage, attempts, created_at, updated_at) \
         VALUES ($1, $2, $3, 'queued', 0, $4, $4) ON CONFLICT (build_key) DO NOTHING",
    )
    .bind(key.to_string())
    .bind(text)
    .bind(request.source_digest().to_string())
    .bind(now)
    .execute(&mut *w.tx)
    .await?
    .rows_affected();
    w.commit().await?;
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM code_builds WHERE build_key = $1"
    ))
    .bind(key.to_string())
    .fetch_one(db.pool())
    .await?;
    status(&row, inserted == 0)
}

/// The build `key`.
pub async fn get(db: &Db, key: &Digest) -> ModelResult<CodeBuildStatus> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM code_builds WHERE build_key = $1"
    ))
    .bind(key.to_string())
    .fetch_optional(db.pool())
    .await?
    .ok_or_else(|| ModelError::NotFound(format!("no code build {key}")))?;
    status(&row, true)
}

/// Claims the oldest queued build (or one whose builder's lease ran out) for `worker`.
pub async fn claim(db: &Db, worker: &str, lease: Duration) -> ModelResult<Option<CodeJob>> {
    let now = now_ms();
    let mut w = db.begin_write().await?;
    sqlx::query(
        "UPDATE code_builds SET stage = 'failed', error = 'the builder stopped before it finished, every attempt', \
         worker = NULL, lease_until = NULL, updated_at = $1 \
         WHERE stage IN ('compiling', 'checking') AND lease_until < $1 AND attempts >= $2",
    )
    .bind(now)
    .bind(MAX_ATTEMPTS)
    .execute(&mut *w.tx)
    .await?;
    let lock = match db.backend() {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let row = sqlx::query(&format!(
        "UPDATE code_builds SET stage = 'compiling', worker = $1, lease_until = $2, \
         attempts = attempts + 1, updated_at = $3 \
         WHERE build_key = (SELECT build_key FROM code_builds WHERE stage = 'queued' \
            OR (stage IN ('compiling', 'checking') AND lease_until < $3) \
            ORDER BY created_at LIMIT 1 {lock}) \
         RETURNING build_key, request"
    ))
    .bind(worker)
    .bind(now + lease.as_millis() as i64)
    .bind(now)
    .fetch_optional(&mut *w.tx)
    .await?;
    w.commit().await?;
    row.map(|row| {
        Ok(CodeJob {
            key: row
                .get::<String, _>("build_key")
                .parse()
                .map_err(|err| corrupt("a code build's key", err))?,
            request: serde_json::from_str(&row.get::<String, _>("request"))
                .map_err(|err| corrupt("a code build's request", err))?,
            published_here: Vec::new(),
        })
    })
    .transpose()
}

/// Records what the builder holding build `key` reports; a conflict when it no longer holds it.
pub async fn report(db: &Db, key: &Digest, report: &CodeReport) -> ModelResult<CodeBuildStage> {
    let now = now_ms();
    let mut w = db.begin_write().await?;
    let held = "build_key = $1 AND worker = $2 AND stage IN ('compiling', 'checking')";
    let (worker, done, stage) = match report {
        CodeReport::Stage { worker, stage } => {
            if !matches!(stage, CodeBuildStage::Compiling | CodeBuildStage::Checking) {
                return Err(ModelError::Invalid(format!(
                    "a builder reports the stages compiling and checking, not {}",
                    stage.as_str()
                )));
            }
            let done = sqlx::query(&format!(
                "UPDATE code_builds SET stage = $3, updated_at = $4 WHERE {held}"
            ))
            .bind(key.to_string())
            .bind(worker)
            .bind(stage.as_str())
            .bind(now)
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
            (worker, done, *stage)
        }
        CodeReport::Signed { worker, artifacts } => {
            let done = sqlx::query(&format!(
                "UPDATE code_builds SET stage = 'signed', artifacts = $3, worker = NULL, \
                 lease_until = NULL, error = NULL, updated_at = $4 WHERE {held}"
            ))
            .bind(key.to_string())
            .bind(worker)
            .bind(serde_json::to_string(artifacts).map_err(|err| corrupt("artifacts", err))?)
            .bind(now)
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
            if done == 1 {
                for (digest, kind) in blobs(artifacts) {
                    sqlx::query(
                        "INSERT INTO code_build_blobs (digest, build_key, kind) VALUES ($1, $2, $3) \
                         ON CONFLICT (digest, build_key) DO NOTHING",
                    )
                    .bind(digest.to_string())
                    .bind(key.to_string())
                    .bind(kind.as_str())
                    .execute(&mut *w.tx)
                    .await?;
                }
            }
            (worker, done, CodeBuildStage::Signed)
        }
        CodeReport::Failed {
            worker,
            error,
            diagnostics,
            retry,
        } => {
            // A builder's own failure is tried again while attempts remain.
            let again = *retry
                && sqlx::query_scalar::<_, i64>(&format!(
                    "SELECT attempts FROM code_builds WHERE {held}"
                ))
                .bind(key.to_string())
                .bind(worker)
                .fetch_optional(&mut *w.tx)
                .await?
                .is_some_and(|attempts| attempts < MAX_ATTEMPTS);
            let stage = if again {
                CodeBuildStage::Queued
            } else {
                CodeBuildStage::Failed
            };
            let done = sqlx::query(&format!(
                "UPDATE code_builds SET stage = $3, error = $4, diagnostics = $5, worker = NULL, \
                 lease_until = NULL, updated_at = $6 WHERE {held}"
            ))
            .bind(key.to_string())
            .bind(worker)
            .bind(stage.as_str())
            .bind(error)
            .bind(serde_json::to_string(diagnostics).map_err(|err| corrupt("diagnostics", err))?)
            .bind(now)
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
            (worker, done, stage)
        }
    };
    if done != 1 {
        return Err(ModelError::Conflict(format!(
            "code build {key} is not held by `{worker}`"
        )));
    }
    w.commit().await?;
    Ok(stage)
}

/// The blobs of a signed build, with their kinds.
fn blobs(artifacts: &CodeArtifacts) -> [(Digest, ArtifactKind); 6] {
    [
        (artifacts.manifest, ArtifactKind::Manifest),
        (artifacts.wasm, ArtifactKind::Wasm),
        (artifacts.cwasm, ArtifactKind::Cwasm),
        (artifacts.provenance, ArtifactKind::Provenance),
        (artifacts.audit, ArtifactKind::Audit),
        (artifacts.log, ArtifactKind::Log),
    ]
}

/// The kind of blob `digest` when a signed code build made it.
pub async fn blob_kind(db: &Db, digest: &Digest) -> ModelResult<Option<ArtifactKind>> {
    let kind: Option<String> =
        sqlx::query_scalar("SELECT kind FROM code_build_blobs WHERE digest = $1 LIMIT 1")
            .bind(digest.to_string())
            .fetch_optional(db.pool())
            .await?;
    kind.map(|k| {
        k.parse()
            .map_err(|err| corrupt("a code build blob's kind", err))
    })
    .transpose()
}
