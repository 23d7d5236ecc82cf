//! Re-auditing approved versions when the advisory database changes: each approved version's
//! locked packages (from its signed audit report) are checked against the new database, and an
//! advisory that now denies a version which its audit did not know about is recorded as an
//! `advisory-affected` event, and the version revoked when the policy says so
//! (`advisories.revoke_affected`).

use kiln_policy::audit::{AuditReport, lockfile_of};
use kiln_policy::checks::advisories::{self, AdvisoryDb};
use kiln_policy::checks::exceptions;
use kiln_policy::findings::Severity;
pub use kiln_wire::admin::{Affected, ReauditOutcome};

use crate::app::App;
use crate::model::{ModelError, ModelResult, events, reports, versions};

/// Re-audits every approved version against `db`, acting as `actor` (user `user_id`).
pub async fn reaudit(
    app: &App,
    db: &AdvisoryDb,
    actor: &str,
    user_id: i64,
    today: &str,
) -> ModelResult<ReauditOutcome> {
    let policy = &app.config.policy;
    let mut outcome = ReauditOutcome::default();
    for (version, report) in versions::approved_with_audit(&app.db).await? {
        let subject = version.subject();
        let Some(report): Option<AuditReport> = report else {
            outcome.without_report.push(subject);
            continue;
        };
        outcome.checked += 1;
        let lockfile = lockfile_of(&report.packages)
            .map_err(|err| ModelError::Corrupt(format!("{subject}'s audit report: {err}")))?;
        let (matches, findings) = advisories::check(&lockfile, db, &policy.advisories, today);
        let findings = exceptions::apply(findings, &policy.exceptions, today);
        let known: std::collections::BTreeSet<&str> =
            report.advisories.iter().map(|m| m.id.as_str()).collect();
        let new: Vec<String> = matches
            .iter()
            .filter(|m| !known.contains(m.id.as_str()))
            .filter(|m| {
                findings.iter().any(|f| {
                    f.severity == Severity::Deny
                        && f.message.starts_with(&m.id)
                        && f.subject.as_deref() == Some(&format!("{}@{}", m.package, m.version))
                })
            })
            .map(|m| format!("{} ({}@{})", m.id, m.package, m.version))
            .collect();
        if new.is_empty() {
            continue;
        }
        let revoke = policy.advisories.revoke_affected;
        let digests = if revoke {
            crate::revocation::version_digests(app, &version).await?
        } else {
            Vec::new()
        };
        let mut w = app.db.begin_write().await?;
        let data =
            serde_json::json!({"advisories": new, "revision": db.revision, "revoked": revoke});
        events::append(&mut w.tx, "advisory-affected", &subject, actor, data).await?;
        let body = serde_json::json!({"advisory_db": db.revision, "new_advisories": new, "matches": matches});
        reports::insert(&mut w.tx, version.id, "reaudit", &body.to_string()).await?;
        if revoke {
            let reason = format!("new advisories: {}", new.join(", "));
            crate::revocation::record(
                &mut w.tx,
                &subject,
                &digests,
                Some(&version),
                &reason,
                user_id,
                actor,
            )
            .await?;
        }
        w.commit().await?;
        if revoke {
            app.extensions.revoked();
            app.index_changed(&version.krate);
        }
        outcome.affected.push(Affected {
            krate: version.krate.clone(),
            version: version.version.clone(),
            advisories: new,
            revoked: revoke,
        });
    }
    Ok(outcome)
}
