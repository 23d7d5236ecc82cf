//! Submitting a version to the quarantine.
//!
//! The `.crate` is checked by the one archive reader every part of kiln uses
//! ([`kiln_crate_archive`]) and stored under its digest *before* the database transaction that
//! records the version, so that a slow blob store (S3) never holds the database's write lock. A
//! blob whose transaction then fails is an orphan, which is harmless: nothing names it, and
//! [`crate::gc`] removes it.

use bytes::Bytes;
use kiln_crate_archive::CrateArchive;
use kiln_policy::Digest;

use super::metadata::NewCrate;
use crate::app::App;
use crate::db::now_ms;
use crate::model::versions::{self, NewVersion};
use crate::model::{ModelError, ModelResult, closures, crates};
use crate::tokens::Authenticated;

/// Checks a version (metadata, `.crate`, name, ownership, uniqueness), stores its `.crate`, and
/// records it as `submitted` with an audit job queued. Returns `NAME@VERSION`.
pub async fn submit(
    app: &App,
    auth: &Authenticated,
    meta: NewCrate,
    tarball: Bytes,
) -> ModelResult<String> {
    let version = meta
        .validate()
        .map_err(|err| ModelError::Invalid(err.to_string()))?;
    if !auth.covers_crate(&meta.name) {
        return Err(ModelError::Forbidden(format!(
            "this token may not publish `{}`",
            meta.name
        )));
    }
    let limits = app.config.crate_limits();
    let inspected = tokio::task::spawn_blocking({
        let (tarball, name, vers) = (tarball.clone(), meta.name.clone(), meta.vers.clone());
        move || CrateArchive::new(&tarball, &name, &vers, limits).inspect()
    })
    .await
    .map_err(|err| ModelError::Corrupt(format!("the .crate check stopped: {err}")))?;
    let contents = inspected.map_err(|err| ModelError::Invalid(err.to_string()))?;
    meta.check_manifest(&contents.manifest)
        .map_err(|err| ModelError::Invalid(err.to_string()))?;
    let checksum = Digest::of(&tarball);
    let subject = format!("{}@{}", meta.name, meta.vers);
    // Refuse what can be refused before the `.crate` is stored: a refused publish stores
    // nothing. The transaction checks again; only a race leaves an orphan blob.
    {
        let mut conn = app.db.pool().acquire().await?;
        check_crate(&mut conn, &meta, &version, auth).await?;
    }
    app.blobs.put(tarball).await?;

    let mut w = app.db.begin_write().await?;
    let crate_id = match check_crate(&mut w.tx, &meta, &version, auth).await? {
        Some(existing) => existing,
        None => {
            crates::create(
                &mut w.tx,
                &meta.name,
                meta.description.as_deref(),
                auth.user_id,
            )
            .await?
        }
    };
    let index_line = meta.index_line(&checksum.hex(), &rfc3339(now_ms()));
    let features = meta.default_features();
    // The version is its own closure: its workers resolve it through an index that serves the
    // approved crates and this version.
    let closure = closures::create(
        &mut w.tx,
        &crate::tokens::generate_secret(),
        &subject,
        auth.user_id,
    )
    .await?;
    let new = NewVersion {
        crate_id,
        version: &version,
        checksum,
        index_line: &index_line,
        metadata: &meta,
        origin: None,
        features: &features,
        closure: (closure.id, &closure.token),
    };
    versions::insert(&mut w.tx, &new, auth, app.config.job_attempts).await?;
    w.commit().await?;
    tracing::info!(%subject, user = %auth.login, "version submitted for review");
    Ok(subject)
}

/// The checks a new version's crate must pass: its name does not collide with another crate's,
/// the publisher owns it, and it does not have this version yet. Returns the crate's id when it
/// exists.
async fn check_crate(
    conn: &mut sqlx::AnyConnection,
    meta: &NewCrate,
    version: &semver::Version,
    auth: &Authenticated,
) -> ModelResult<Option<i64>> {
    match crates::find(&mut *conn, &meta.name).await? {
        Some(existing) if existing.name != meta.name => Err(ModelError::Conflict(format!(
            "crate `{}` conflicts with the existing crate `{}` (names are compared ignoring case and `-`/`_`)",
            meta.name, existing.name
        ))),
        Some(existing) => {
            crates::require_owner(conn, &existing, auth).await?;
            versions::require_new(conn, existing.id, &meta.name, version).await?;
            Ok(Some(existing.id))
        }
        None => Ok(None),
    }
}

/// RFC 3339 UTC time, to the second, of Unix milliseconds.
pub fn rfc3339(ms: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}
