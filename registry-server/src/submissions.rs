//! A submission as a reviewer reads it: the version, its dependencies and whether each has an
//! approved version here, its reports, its artifacts and the decisions about it.

use kiln_wire::submissions::{DependencyStatus, SubmissionDetail};

use crate::app::App;
use crate::model::{ModelResult, artifacts, reports, reviews, versions};
use crate::publish::NewCrate;

/// The dependencies of `meta`, each with the newest approved version that satisfies it.
pub async fn dependency_status(app: &App, meta: &NewCrate) -> ModelResult<Vec<DependencyStatus>> {
    let mut out = Vec::new();
    for dep in &meta.deps {
        let approved = match (&dep.registry, semver::VersionReq::parse(&dep.version_req)) {
            (None, Ok(req)) => versions::approved_versions(&app.db, &dep.name)
                .await?
                .into_iter()
                .filter(|v| req.matches(v))
                .max()
                .map(|v| v.to_string()),
            _ => None,
        };
        out.push(DependencyStatus {
            name: dep.name.clone(),
            req: dep.version_req.clone(),
            kind: dep.kind,
            registry: dep.registry.clone(),
            approved,
        });
    }
    Ok(out)
}

/// Everything about `name@version`.
pub async fn detail(app: &App, name: &str, version: &str) -> ModelResult<SubmissionDetail> {
    let row = versions::find(&app.db, name, version).await?;
    let meta = versions::metadata(&app.db, row.id).await?;
    Ok(SubmissionDetail {
        submission: versions::submission_of(&app.db, row.id).await?,
        dependencies: dependency_status(app, &meta).await?,
        reports: reports::for_version(&app.db, row.id).await?,
        artifacts: artifacts::for_version(&app.db, row.id).await?,
        reviews: reviews::for_version(&app.db, row.id).await?,
    })
}
