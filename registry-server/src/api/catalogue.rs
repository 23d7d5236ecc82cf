//! `GET /api/kiln/v1/catalogue`: every approved kernel version with its module, entry points,
//! audit, reviews, statements and revocation.

use axum::Json;
use axum::extract::State;
use kiln_wire::VersionState;
use kiln_wire::catalogue::{AuditSummary, CatalogueEntry, SignedStatement};
use kiln_wire::states::ArtifactKind;

use super::extract::Reader;
use super::{ApiResult, AppState};
use crate::model::{revocations, versions};

/// `GET /api/kiln/v1/catalogue`: approved kernels (a library with no module of its own is not
/// listed), newest version of each crate first.
#[utoipa::path(get, path = "/api/kiln/v1/catalogue", responses((status = 200, body = [CatalogueEntry])))]
pub(crate) async fn list(
    State(app): State<AppState>,
    _: Reader,
) -> ApiResult<Json<Vec<CatalogueEntry>>> {
    let mut entries = Vec::new();
    for submission in versions::list(&app.db, Some(VersionState::Approved)).await? {
        let detail =
            crate::submissions::detail(&app, &submission.krate, &submission.version).await?;
        let Some(kernel) = detail.reports.build.as_ref().and_then(|b| b.kernel.clone()) else {
            continue;
        };
        let revoked = match revocations::reason_of(&app.db, &kernel.wasm).await? {
            Some(reason) => Some(reason),
            None => revocations::reason_of(&app.db, &submission.checksum).await?,
        };
        let audit = detail.reports.audit.as_ref().map(|audit| AuditSummary {
            date: audit.date.clone(),
            verdict: audit.verdict.as_str().to_owned(),
            advisory_db: audit.advisory_db.revision.clone(),
            advisories: audit
                .advisories
                .iter()
                .map(|m| format!("{} ({}@{}): {}", m.id, m.package, m.version, m.title))
                .collect(),
            later_advisories: detail.reports.reaudits.len(),
        });
        let mut statements = Vec::new();
        for artifact in &detail.artifacts {
            if !matches!(
                artifact.kind,
                ArtifactKind::Provenance | ArtifactKind::Audit | ArtifactKind::Review
            ) {
                continue;
            }
            let signed_by = app
                .blobs
                .get(&artifact.digest)
                .await?
                .and_then(|bytes| serde_json::from_slice::<kiln_policy::Bundle>(&bytes).ok())
                .and_then(|bundle| bundle.verification_material.public_key)
                .map(|key| key.hint);
            statements.push(SignedStatement {
                artifact: artifact.clone(),
                signed_by,
            });
        }
        entries.push(CatalogueEntry {
            krate: submission.krate.clone(),
            version: submission.version.clone(),
            published_by: submission.published_by.clone(),
            published_at: submission.created_at,
            kernel,
            audit,
            reviews: detail.reviews,
            statements,
            revoked,
        });
    }
    entries.sort_by(|a, b| {
        let key = |e: &CatalogueEntry| semver::Version::parse(&e.version).ok();
        a.krate.cmp(&b.krate).then_with(|| key(b).cmp(&key(a)))
    });
    Ok(Json(entries))
}
