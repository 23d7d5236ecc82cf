//! A version's closure as one review: every package a dependent's build of it resolves (from
//! its latest audit), each with its own state, verdict, findings, licence, build-time code and
//! advisories, and what is new against the approved set; and its approval in one transaction,
//! dependencies first, each version with its own signed review statement.

use std::collections::{BTreeMap, BTreeSet};

use kiln_policy::audit::AuditReport;
use kiln_wire::review::{Approval, ClosureApproved, ClosureEntry, ClosureReview, Standing};
use kiln_wire::worker::ArtifactRecord;
use kiln_wire::{ArtifactKind, FeatureSet, VersionState};

use super::rule;
use crate::app::App;
use crate::model::versions::VersionRow;
use crate::model::{ModelError, ModelResult, artifacts, closures, reports, versions};
use crate::tokens::Authenticated;

/// One member, with what the review needs besides the entry shown.
struct Member {
    entry: ClosureEntry,
    row: Option<VersionRow>,
    /// How many packages its own audit resolved (orders dependencies first).
    depth: usize,
}

/// The closure of `name@version`, dependencies first.
pub async fn view(app: &App, name: &str, version: &str) -> ModelResult<ClosureReview> {
    let (root, members) = members(app, name, version).await?;
    Ok(ClosureReview {
        root: root.subject(),
        members: members.into_iter().map(|m| m.entry).collect(),
    })
}

/// The members of `name@version`'s closure, dependencies first: the packages its latest audit
/// resolved, or, before it has one (an audit waiting for a member that failed), the versions
/// submitted together with it.
async fn members(app: &App, name: &str, version: &str) -> ModelResult<(VersionRow, Vec<Member>)> {
    let root = versions::find(&app.db, name, version).await?;
    let report = reports::for_version(&app.db, root.id).await?.audit;
    let wanted: Vec<(String, String, FeatureSet)> = match &report {
        Some(report) => rule::resolved_packages(report, &root)
            .map(|p| {
                (
                    p.name.clone(),
                    p.version.clone(),
                    FeatureSet(p.features.clone()),
                )
            })
            .chain([(
                root.krate.clone(),
                root.version.clone(),
                root.features.clone(),
            )])
            .collect(),
        None => {
            let mut wanted = Vec::new();
            for id in closures::companions(&app.db, root.id).await? {
                let row = versions::by_id(&app.db, id).await?;
                wanted.push((row.krate, row.version, row.features));
            }
            wanted
        }
    };
    let mut members = Vec::new();
    for (krate, version, features) in wanted {
        let row = match versions::find(&app.db, &krate, &version).await {
            Ok(row) => Some(row),
            Err(ModelError::NotFound(_)) => None,
            Err(err) => return Err(err),
        };
        let own = match &row {
            Some(row) => reports::for_version(&app.db, row.id).await?.audit,
            None => None,
        };
        let mut member = member(report.as_ref(), krate, version, features, row, own.as_ref());
        if let Some(row) = member
            .row
            .as_ref()
            .filter(|r| r.state != VersionState::Approved)
        {
            member.entry.state_reason =
                versions::submission_of(&app.db, row.id).await?.state_reason;
        }
        members.push(member);
    }
    members.sort_by(|a, b| {
        (a.depth, &a.entry.krate, &a.entry.version).cmp(&(
            b.depth,
            &b.entry.krate,
            &b.entry.version,
        ))
    });
    Ok((root, members))
}

fn member(
    closure: Option<&AuditReport>,
    krate: String,
    version: String,
    features: FeatureSet,
    row: Option<VersionRow>,
    own: Option<&AuditReport>,
) -> Member {
    let subject = format!("{krate}@{version}");
    // What its own audit and the closure's say of it: its own resolves it as a dependent does
    // for the kernel target, so it knows its build-time code even when the closure's audit
    // only has it in the lockfile (a dependency for another target).
    let reports: Vec<&AuditReport> = own.into_iter().chain(closure).collect();
    let package = reports.iter().find_map(|r| {
        r.packages
            .iter()
            .find(|p| p.name == krate && p.version == version)
    });
    let mut findings: Vec<kiln_wire::Finding> = Vec::new();
    for finding in reports.iter().flat_map(|r| &r.findings) {
        if finding.subject.as_deref() == Some(subject.as_str()) && !findings.contains(finding) {
            findings.push(finding.clone());
        }
    }
    let advisories: BTreeSet<String> = reports
        .iter()
        .flat_map(|r| &r.advisories)
        .filter(|m| m.package == krate && m.version == version)
        .map(|m| m.id.clone())
        .collect();
    let approved_features = row.as_ref().and_then(|r| r.approved_features.clone());
    let standing = match &approved_features {
        Some(approved) if features.is_covered_by(approved) => Standing::Approved,
        Some(_) => Standing::NewFeatures,
        None => Standing::New,
    };
    let entry = ClosureEntry {
        features,
        state: row.as_ref().map(|r| r.state),
        state_reason: None,
        verdict: own.map(|r| r.verdict),
        findings,
        license: package.and_then(|p| p.license.clone()),
        build_script: package.is_some_and(|p| p.build_script),
        proc_macro: package.is_some_and(|p| p.proc_macro),
        advisories: advisories.into_iter().collect(),
        approved_features,
        standing,
        krate,
        version,
    };
    Member {
        depth: own.map_or(usize::MAX, |r| r.packages.len()),
        entry,
        row,
    }
}

/// Approves the audited and built closure of `name@version` as `reviewer`, dependencies first,
/// in one transaction, each version with its own review statement signed with the server's
/// reviewer key (`approval`'s criteria for all). Approves nothing, naming the members, when a
/// member is not built, was denied, or is not reviewed for the features the closure needs.
pub async fn approve(
    app: &App,
    name: &str,
    version: &str,
    reviewer: &Authenticated,
    approval: &Approval,
) -> ModelResult<ClosureApproved> {
    if approval.bundle.is_some() {
        return Err(ModelError::Invalid(
            "a closure is approved with the registry's reviewer signature on each member; approve versions one at a time to give your own statements".into(),
        ));
    }
    let (root, members) = members(app, name, version).await?;
    let mut problems = Vec::new();
    let mut present = Vec::new();
    let mut approving: Vec<VersionRow> = Vec::new();
    for member in members {
        let entry = &member.entry;
        let subject = format!("{}@{}", entry.krate, entry.version);
        let Some(row) = member.row else {
            problems.push(format!("{subject} is not in this registry"));
            continue;
        };
        if entry.standing == Standing::Approved {
            present.push(subject);
            continue;
        }
        let reviewed = row
            .approved_features
            .as_ref()
            .map_or_else(|| row.features.clone(), |a| a.union(&row.features));
        let missing = entry.features.missing_from(&reviewed);
        let denials: Vec<&str> = entry
            .findings
            .iter()
            .filter(|f| f.severity == kiln_wire::Severity::Deny)
            .map(|f| f.message.as_str())
            .collect();
        if entry.verdict == Some(kiln_wire::Verdict::Deny) {
            problems.push(format!(
                "{subject} is denied by its audit ({})",
                if denials.is_empty() {
                    "see its audit report".to_owned()
                } else {
                    denials.join("; ")
                }
            ));
        } else if row.state != VersionState::Built {
            let reason = entry
                .state_reason
                .as_deref()
                .map(|r| format!(": {}", first_line(r)))
                .unwrap_or_default();
            problems.push(format!("{subject} is {}{reason}", row.state));
        } else if !missing.is_empty() {
            problems.push(format!(
                "{subject} is reviewed for {}, not for {} (kiln review curate {subject} --features {})",
                row.features.describe(),
                missing.join(", "),
                missing.join(",")
            ));
        } else {
            approving.push(row);
        }
    }
    let with: BTreeMap<String, FeatureSet> = approving
        .iter()
        .map(|r| (r.subject(), r.features.clone()))
        .collect();
    for row in &approving {
        let uncovered = rule::uncovered(app, row, &with).await?;
        if !uncovered.is_empty() {
            problems.push(format!(
                "{} also needs {}",
                row.subject(),
                uncovered.join(", ")
            ));
        }
    }
    if !problems.is_empty() {
        return Err(ModelError::Conflict(format!(
            "cannot approve the closure of {}; nothing was approved: {}",
            root.subject(),
            problems.join("; ")
        )));
    }
    let criteria = approval.criteria.as_deref();
    let mut w = app.db.begin_write().await?;
    for row in &approving {
        versions::approve(&mut w.tx, row, reviewer, criteria, None).await?;
        let (digest, size) = super::review_statement(app, row, &reviewer.login, criteria).await?;
        let record = ArtifactRecord {
            digest,
            kind: ArtifactKind::Review,
        };
        artifacts::insert(&mut w.tx, row.id, &record, size).await?;
    }
    w.commit().await?;
    for row in &approving {
        app.index_changed(&row.krate);
    }
    let approved: Vec<String> = approving.iter().map(VersionRow::subject).collect();
    tracing::info!(root = %root.subject(), reviewer = %reviewer.login, approved = approved.len(), "closure approved");
    Ok(ClosureApproved { approved, present })
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}
