//! The approval rule: a version may enter the index only when every package its audit resolved
//! (the closure a dependent's build pulls in, with the features it turns on) is approved here
//! for those features, or is approved together with it.

use std::collections::BTreeMap;

use kiln_policy::audit::{AuditReport, LockedPackage};
use kiln_wire::FeatureSet;

use crate::app::App;
use crate::model::versions::VersionRow;
use crate::model::{ModelError, ModelResult, reports, versions};

/// The latest audit report of `row`; a conflict when it has none.
pub(super) async fn audit_report(app: &App, row: &VersionRow) -> ModelResult<AuditReport> {
    reports::for_version(&app.db, row.id)
        .await?
        .audit
        .ok_or_else(|| ModelError::Conflict(format!("{} has not been audited", row.subject())))
}

/// The packages of `report`'s resolution other than its subject: the registry packages a
/// dependent's build of it pulls in.
pub(super) fn resolved_packages<'a>(
    report: &'a AuditReport,
    row: &VersionRow,
) -> impl Iterator<Item = &'a LockedPackage> {
    let (name, version) = (row.krate.clone(), row.version.clone());
    report
        .packages
        .iter()
        .filter(move |p| p.source.is_some() && !(p.name == name && p.version == version))
}

/// What keeps `row` from approval: each package of its resolution that is neither approved for
/// the features the resolution turns on in it nor in `approving` (`NAME@VERSION` → the features
/// approved with it) for them, described for people.
pub(super) async fn uncovered(
    app: &App,
    row: &VersionRow,
    approving: &BTreeMap<String, FeatureSet>,
) -> ModelResult<Vec<String>> {
    let report = audit_report(app, row).await?;
    let mut uncovered = Vec::new();
    for package in resolved_packages(&report, row) {
        let subject = format!("{}@{}", package.name, package.version);
        let wanted = FeatureSet(package.features.clone());
        let approved = match versions::find(&app.db, &package.name, &package.version).await {
            Ok(found) => found.approved_features,
            Err(ModelError::NotFound(_)) => {
                uncovered.push(format!("{subject} (not in this registry)"));
                continue;
            }
            Err(err) => return Err(err),
        };
        let covering = match (approved, approving.get(&subject)) {
            (Some(approved), Some(with)) => approved.union(with),
            (Some(approved), None) => approved,
            (None, Some(with)) => with.clone(),
            (None, None) => {
                uncovered.push(format!("{subject} (not approved)"));
                continue;
            }
        };
        let missing = wanted.missing_from(&covering);
        if !missing.is_empty() {
            uncovered.push(format!(
                "{subject} with feature{} {} (approved for {})",
                if missing.len() == 1 { "" } else { "s" },
                missing
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                covering.describe()
            ));
        }
    }
    Ok(uncovered)
}
