//! Review decisions. Both are guarded transitions ([`crate::model::versions`]): of an approval
//! and a rejection racing on the same version, one wins and the other gets a conflict.
//!
//! An approval without a reviewer's own statement gets one signed with the server's reviewer
//! key: executors require it (the default policy), and its subjects are what was approved. It is
//! signed only *after* the version moved to `approved` in the open transaction, so a losing
//! approval signs nothing; the statement's blob is written before the row that names it, and
//! the transaction commits last.

use std::collections::BTreeMap;

use kiln_policy::intoto::ResourceDescriptor;
use kiln_policy::{Digest, Statement, StatementKind, sign_statement};
use kiln_wire::ArtifactKind;
use kiln_wire::VersionState;
use kiln_wire::review::{Approval, Decided, Rejection};
use kiln_wire::worker::ArtifactRecord;

use crate::app::App;
use crate::db::now_ms;
use crate::model::versions::VersionRow;
use crate::model::{ModelError, ModelResult, artifacts, versions};
use crate::publish::submit::rfc3339;
use crate::tokens::Authenticated;

pub mod closure;
pub mod diff;
mod rule;

/// Approves built `name@version`: it enters the index, for the features its round covers.
/// Every package its audit resolved must be approved here for the features the resolution
/// turns on in it.
pub async fn approve(
    app: &App,
    name: &str,
    version: &str,
    reviewer: &Authenticated,
    approval: &Approval,
) -> ModelResult<Decided> {
    let row = versions::find(&app.db, name, version).await?;
    let subject = row.subject();
    // A version that is not built is refused by the transition itself, naming its state.
    let uncovered = if row.state == VersionState::Built {
        rule::uncovered(app, &row, &BTreeMap::new()).await?
    } else {
        Vec::new()
    };
    if !uncovered.is_empty() {
        return Err(ModelError::Conflict(format!(
            "cannot approve {subject}: its resolution needs what is not approved here yet: {}; \
             approve those first, or the whole closure (kiln review approve {subject} --closure)",
            uncovered.join("; ")
        )));
    }
    let criteria = approval.criteria.as_deref();
    let bundle = approval.bundle.as_ref().map(|b| b.to_string());
    let mut w = app.db.begin_write().await?;
    versions::approve(&mut w.tx, &row, reviewer, criteria, bundle.as_deref()).await?;
    if approval.bundle.is_none() {
        // Won: sign what was approved.
        let (digest, size) = review_statement(app, &row, &reviewer.login, criteria).await?;
        let record = ArtifactRecord {
            digest,
            kind: ArtifactKind::Review,
        };
        artifacts::insert(&mut w.tx, row.id, &record, size).await?;
    }
    w.commit().await?;
    app.index_changed(&row.krate);
    tracing::info!(%subject, reviewer = %reviewer.login, "approved");
    Ok(Decided {
        state: VersionState::Approved,
    })
}

/// Rejects `name@version`, which has not been decided on, with the reason the author sees.
pub async fn reject(
    app: &App,
    name: &str,
    version: &str,
    reviewer: &Authenticated,
    rejection: &Rejection,
) -> ModelResult<Decided> {
    if rejection.reason.trim().is_empty() {
        return Err(ModelError::Invalid("a rejection needs a reason".into()));
    }
    let row = versions::find(&app.db, name, version).await?;
    let mut w = app.db.begin_write().await?;
    versions::reject(&mut w.tx, &row, reviewer, &rejection.reason).await?;
    w.commit().await?;
    app.index_changed(&row.krate);
    Ok(Decided {
        state: VersionState::Rejected,
    })
}

/// Audits and builds a failed version again with the same bytes (an admin's decision), when it
/// failed by kiln's own state (a stale advisory database, a job out of attempts) and not by its
/// content.
pub async fn retry(
    app: &App,
    name: &str,
    version: &str,
    admin: &Authenticated,
) -> ModelResult<Decided> {
    let row = versions::find(&app.db, name, version).await?;
    let mut w = app.db.begin_write().await?;
    versions::retry(&mut w.tx, &row, &admin.login, app.config.job_attempts).await?;
    w.commit().await?;
    app.index_changed(&row.krate);
    Ok(Decided {
        state: VersionState::Submitted,
    })
}

/// Signs a review statement for `version` with the server's reviewer key and stores it as a
/// blob: its subjects are the `.crate` and every built module, its predicate names the features
/// approved; returns its digest and size.
async fn review_statement(
    app: &App,
    version: &VersionRow,
    reviewer: &str,
    criteria: Option<&str>,
) -> ModelResult<(Digest, u64)> {
    let name = &version.krate;
    let mut subjects = vec![ResourceDescriptor::new(
        format!("{name}-{}.crate", version.version),
        version.checksum,
    )];
    for (kind, digest) in artifacts::modules(&app.db, version.id).await? {
        subjects.push(ResourceDescriptor::new(format!("{name}.{kind}"), digest));
    }
    let statement = Statement::new(
        subjects,
        StatementKind::Review.predicate_type(),
        serde_json::json!({
            "decision": "approved",
            "crate": name,
            "version": version.version,
            "features": version.features,
            "reviewer": reviewer,
            "criteria": criteria.unwrap_or("safe-to-run"),
            "approved_at": rfc3339(now_ms()),
        }),
    );
    let bundle = sign_statement(&app.keys.reviewer, &statement)
        .map_err(|err| ModelError::Corrupt(format!("signing the review statement: {err}")))?;
    let bytes = bundle.to_json().into_bytes();
    let size = bytes.len() as u64;
    let digest = app.blobs.put(bytes.into()).await?;
    Ok((digest, size))
}
