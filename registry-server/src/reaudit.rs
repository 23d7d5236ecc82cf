//! Re-auditing approved versions when the advisory database changes: each approved version's
//! locked packages (from its signed audit report) are checked against the new database, and an
//! advisory that now denies a version which its audit did not know about is recorded as an
//! `advisory-affected` event, and the version revoked when the policy says so
//! (`advisories.revoke_affected`).

use kiln_policy::audit::{AuditReport, lockfile_of};
use kiln_policy::checks::advisories::{self, AdvisoryDb};
use kiln_policy::checks::exceptions;
use kiln_policy::findings::Severity;
use serde::Serialize;
use sqlx::Row as _;

use crate::api::{ApiError, ApiResult, AppState};
use crate::db::now_ms;
use crate::events;

/// One approved version that a new advisory affects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Affected {
    /// The crate.
    #[serde(rename = "crate")]
    pub krate: String,
    /// The version.
    pub version: String,
    /// The new advisories, with the package each is about.
    pub advisories: Vec<String>,
    /// Whether the version was revoked.
    pub revoked: bool,
}

/// What a re-audit found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReauditOutcome {
    /// Approved versions re-audited.
    pub checked: usize,
    /// Approved versions without a kiln audit report to re-audit.
    pub without_report: Vec<String>,
    /// Versions newly affected.
    pub affected: Vec<Affected>,
}

/// Re-audits every approved version against `db`, acting as `actor` (user `user_id`).
pub async fn reaudit(
    app: &AppState,
    db: &AdvisoryDb,
    actor: &str,
    user_id: i64,
    today: &str,
) -> ApiResult<ReauditOutcome> {
    let policy = &app.config.policy;
    let rows = sqlx::query(
        "SELECT v.id, c.name, v.version, v.checksum, \
         (SELECT r.body FROM reports r WHERE r.version_id = v.id AND r.kind = 'audit' ORDER BY r.id DESC LIMIT 1) AS body \
         FROM versions v JOIN crates c ON c.id = v.crate_id WHERE v.state = 'approved' ORDER BY v.id",
    )
    .fetch_all(app.db.pool())
    .await?;
    let mut outcome = ReauditOutcome::default();
    for row in rows {
        let subject = format!(
            "{}@{}",
            row.get::<String, _>("name"),
            row.get::<String, _>("version")
        );
        let report = row
            .get::<Option<String>, _>("body")
            .and_then(|body| serde_json::from_str::<AuditReport>(&body).ok());
        let Some(report) = report else {
            outcome.without_report.push(subject);
            continue;
        };
        outcome.checked += 1;
        let lockfile = lockfile_of(&report.packages).map_err(ApiError::internal)?;
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
        let id: i64 = row.get("id");
        let revoke = policy.advisories.revoke_affected;
        let digests = if revoke {
            crate::api::revocations::version_digests(app, id, &row.get::<String, _>("checksum"))
                .await?
        } else {
            Vec::new()
        };
        let mut w = app.db.begin_write().await?;
        let data =
            serde_json::json!({"advisories": new, "revision": db.revision, "revoked": revoke});
        events::append(
            &mut w.tx,
            app.db.backend(),
            "advisory-affected",
            &subject,
            actor,
            data,
        )
        .await?;
        sqlx::query("INSERT INTO reports (version_id, kind, body, created_at) VALUES ($1, 'reaudit', $2, $3)")
            .bind(id)
            .bind(serde_json::json!({"advisory_db": db.revision, "new_advisories": new, "matches": matches}).to_string())
            .bind(now_ms())
            .execute(&mut *w.tx)
            .await?;
        if revoke {
            let reason = format!("new advisories: {}", new.join(", "));
            crate::api::revocations::insert_revocations(
                &mut w.tx,
                &digests,
                Some(id),
                &reason,
                user_id,
            )
            .await?;
            events::append(
                &mut w.tx,
                app.db.backend(),
                "revoke",
                &subject,
                actor,
                serde_json::json!({"reason": reason, "digests": digests}),
            )
            .await?;
        }
        w.commit().await?;
        if revoke {
            app.extensions.revoked();
        }
        if revoke {
            let name = subject.split('@').next().unwrap_or_default();
            app.index_cache.invalidate(&name.to_ascii_lowercase());
        }
        outcome.affected.push(Affected {
            krate: row.get("name"),
            version: row.get("version"),
            advisories: new,
            revoked: revoke,
        });
    }
    Ok(outcome)
}
