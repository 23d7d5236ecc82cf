//! Feature sets as curated facts: which features of a version a review covers, extending them
//! (a new review round), and what a worker may count on when it checks a resolution.

use kiln_wire::review::Curation;
use kiln_wire::worker::PackageRef;
use kiln_wire::{FeatureSet, VersionState};

use crate::app::App;
use crate::model::{ModelError, ModelResult, closures, versions};
use crate::tokens::Authenticated;

/// The features curated for each of `packages`, in order, as a worker of `closure` (a job's
/// closure token) may count on: those approved, or, for a member of that closure in review,
/// those its round covers. `None` for a version that is neither.
pub async fn lookup(
    app: &App,
    closure: Option<&str>,
    packages: &[PackageRef],
) -> ModelResult<Vec<Option<FeatureSet>>> {
    let closure = match closure {
        Some(token) => Some(closures::by_token(&app.db, token).await?),
        None => None,
    };
    let mut out = Vec::with_capacity(packages.len());
    for package in packages {
        let row = match versions::find(&app.db, &package.krate, &package.version).await {
            Ok(row) => row,
            Err(ModelError::NotFound(_)) => {
                out.push(None);
                continue;
            }
            Err(err) => return Err(err),
        };
        let in_round = match &closure {
            Some(closure) => closures::serves(&app.db, closure.id, row.id).await?,
            None => false,
        };
        out.push(match (in_round, row.approved_features) {
            (true, Some(approved)) => Some(row.features.union(&approved)),
            (true, None) => Some(row.features),
            (false, approved) => approved,
        });
    }
    Ok(out)
}

/// Extends the features `name@version`'s review covers with `wanted`, as `reviewer`: a new
/// round (audit, build, review) for the union, in a closure of its own; an approved version
/// stays approved for what it was approved for while the round runs. A feature the version
/// does not have is refused.
pub async fn curate(
    app: &App,
    name: &str,
    version: &str,
    wanted: &FeatureSet,
    reviewer: &Authenticated,
) -> ModelResult<Curation> {
    let row = versions::find(&app.db, name, version).await?;
    let subject = row.subject();
    if wanted.is_empty() {
        return Err(ModelError::Invalid(format!(
            "name the features of {subject} to curate"
        )));
    }
    let meta = versions::metadata(&app.db, row.id).await?;
    let unknown = meta.unknown_features(wanted);
    if !unknown.is_empty() {
        return Err(ModelError::Invalid(format!(
            "{subject} has no feature {}",
            unknown
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    // What a dependent that turns `wanted` on activates in the crate.
    let activated = meta.activated(wanted);
    let covered = row
        .approved_features
        .as_ref()
        .unwrap_or(&row.features)
        .union(&row.features);
    if activated.is_covered_by(&covered) {
        return Ok(Curation {
            subject,
            features: row.features,
            started: false,
            state: row.state,
        });
    }
    if matches!(row.state, VersionState::Failed | VersionState::Rejected) {
        return Err(ModelError::Conflict(format!(
            "{subject} is {}; publish or import another version",
            row.state
        )));
    }
    let mut w = app.db.begin_write().await?;
    let closure = closures::create(
        &mut w.tx,
        &crate::tokens::generate_secret(),
        &format!("{subject} +{}", activated.describe()),
        reviewer.user_id,
    )
    .await?;
    versions::extend(
        &mut w.tx,
        &row,
        &activated,
        (closure.id, &closure.token),
        &reviewer.login,
        app.config.job_attempts,
    )
    .await?;
    w.commit().await?;
    tracing::info!(%subject, features = %activated, reviewer = %reviewer.login, "curation extended");
    Ok(Curation {
        subject,
        features: row.features.union(&activated),
        started: true,
        state: VersionState::Submitted,
    })
}
