//! Revocation (incident response): an admin revokes a version or a digest; downloads of it
//! answer 451, it is yanked from the index, and the signed revocation list names it, so that
//! executors refuse to run it.

use kiln_policy::intoto::ResourceDescriptor;
use kiln_policy::{Bundle, Digest, Statement, StatementKind, sign_statement};

use crate::app::App;
use crate::db::now_ms;
use crate::model::versions::VersionRow;
use crate::model::{ModelError, ModelResult, Tx, artifacts, events, revocations, versions};
use crate::tokens::Authenticated;

/// The digests revoking `version` covers: its `.crate` and everything built from or said about
/// it.
pub async fn version_digests(app: &App, version: &VersionRow) -> ModelResult<Vec<Digest>> {
    let mut digests = vec![version.checksum];
    digests.extend(
        artifacts::for_version(&app.db, version.id)
            .await?
            .into_iter()
            .map(|a| a.digest),
    );
    Ok(digests)
}

/// Records the revocation of `digests` (of `version`, when one is revoked) with its event.
pub async fn record(
    tx: &mut Tx,
    target: &str,
    digests: &[Digest],
    version: Option<&VersionRow>,
    reason: &str,
    user_id: i64,
    actor: &str,
) -> ModelResult<u64> {
    let added = revocations::insert(tx, digests, version.map(|v| v.id), reason, user_id).await?;
    if added > 0 {
        events::append(
            tx,
            "revoke",
            target,
            actor,
            serde_json::json!({"reason": reason, "digests": digests}),
        )
        .await?;
    }
    Ok(added)
}

/// Revokes `target` (`NAME@VERSION`, or a digest) for `reason`; returns the digests revoked.
pub async fn revoke(
    app: &App,
    target: &str,
    reason: &str,
    auth: &Authenticated,
) -> ModelResult<Vec<Digest>> {
    if reason.trim().is_empty() {
        return Err(ModelError::Invalid("a revocation needs a reason".into()));
    }
    let (digests, version) = match target.split_once('@') {
        Some((name, version)) => {
            let row = versions::find(&app.db, name, version).await?;
            (version_digests(app, &row).await?, Some(row))
        }
        None => {
            let digest: Digest = target.parse().map_err(|err| {
                ModelError::Invalid(format!(
                    "`{target}` is neither NAME@VERSION nor a digest: {err}"
                ))
            })?;
            (vec![digest], None)
        }
    };
    let mut w = app.db.begin_write().await?;
    let added = record(
        &mut w.tx,
        target,
        &digests,
        version.as_ref(),
        reason,
        auth.user_id,
        &auth.login,
    )
    .await?;
    if added == 0 {
        return Err(ModelError::Conflict(format!("{target} is already revoked")));
    }
    w.commit().await?;
    app.extensions.revoked();
    if let Some(version) = &version {
        app.index_changed(&version.krate);
    }
    Ok(digests)
}

/// The revocation list as a Sigstore bundle signed with the server's revocation key. Its
/// statement's subject is the digest of the entries; the predicate holds the entries, their
/// count and when the list was issued.
pub async fn signed_list(app: &App) -> ModelResult<Bundle> {
    let entries = revocations::list(&app.db).await?;
    let count = entries.len();
    let entries = serde_json::to_value(entries)
        .map_err(|err| ModelError::Corrupt(format!("the revocation entries: {err}")))?;
    let statement = Statement::new(
        vec![ResourceDescriptor::new(
            "revocation-list",
            Digest::of(entries.to_string().as_bytes()),
        )],
        StatementKind::Revocation.predicate_type(),
        serde_json::json!({"issued_at": now_ms(), "count": count, "entries": entries}),
    );
    sign_statement(&app.keys.revocation, &statement)
        .map_err(|err| ModelError::Corrupt(format!("signing the revocation list: {err}")))
}
