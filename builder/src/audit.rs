//! The audit job: for one submission, fetch its `.crate`, unpack it, resolve its dependency
//! graph with `cargo metadata` against the registry's own index only (crates.io is replaced by
//! the registry, so an unapproved dependency does not resolve), run every check of the policy,
//! sign the report into an audit statement with the builder key, and report the verdict.
//!
//! A kernel is resolved as the root of its own build (with the lockfile it was published with).
//! A library is resolved as a dependent sees it ([`crate::dependent`]): with the features its
//! review round covers, optional dependencies only when those turn them on, never its
//! dev-dependencies. A member of an imported closure resolves through its closure's index, which
//! also serves the closure's other members in review. Every resolved package must be curated
//! here for the features the resolution turns on in it; otherwise the audit waits, naming them.
//!
//! `cargo metadata` reads manifests and downloads `.crate` files; it runs no build scripts and
//! no proc-macros, so it needs no sandbox (the build does). It runs only when the packaged
//! `Cargo.toml` declares nothing but this registry's crates: a git, path, patched or foreign
//! dependency is denied from the manifest alone, before anything is fetched.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use kiln_crate_archive::CrateArchive;
use kiln_policy::audit::{
    AuditInput, AuditReport, AuditSubject, Auditor, LockedPackage, declared_sources, lockfile_of,
};
use kiln_policy::checks::advisories::{AdvisoryDb, parse_lockfile};
use kiln_policy::checks::crates;
use kiln_policy::policy_file::Policy;
use kiln_policy::{SigningKey, sign_statement};
use kiln_wire::worker::{ArtifactRecord, Completion};
use kiln_wire::{ArtifactKind, FeatureSet, JobKind};

use crate::client::{Client, Job};
use crate::curated::CuratedIndex;
use crate::worker::JobError;

/// What an audit worker needs besides its connection.
#[derive(Debug)]
pub struct AuditSettings {
    /// The policy.
    pub policy: Policy,
    /// The advisory database directory (read at every job, so a sync takes effect at once).
    pub advisory_db: PathBuf,
    /// Signs audit statements.
    pub key: std::sync::Arc<SigningKey>,
}

/// Claims and audits jobs until `stop` resolves; idles `poll` between empty claims.
pub async fn run(
    client: Client,
    settings: AuditSettings,
    poll: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    let settings = std::sync::Arc::new(settings);
    crate::worker::run(client, JobKind::Audit, poll, stop, move |client, job| {
        let settings = settings.clone();
        async move { audit_job(&client, &settings, &job).await.map(str::to_owned) }
    })
    .await;
}

async fn audit_job(
    client: &Client,
    settings: &std::sync::Arc<AuditSettings>,
    job: &Job,
) -> Result<&'static str, JobError> {
    let crate::worker::SubmittedCrate {
        name,
        version,
        checksum,
        bytes,
    } = crate::worker::submitted_crate(client, job).await?;
    let approved = client
        .approved_names()
        .await
        .map_err(|err| JobError::retry(err.to_string()))?;
    let index = client
        .curated_index(job.payload.closure.as_deref())
        .await
        .map_err(|err| JobError::retry(err.to_string()))?;
    let settings = settings.clone();
    let features = job.payload.features.clone();
    let subject = AuditSubject {
        name,
        version,
        checksum,
    };
    let audited = tokio::task::spawn_blocking(move || {
        let report = audit_crate(&settings, &subject, &bytes, &index, &approved, &features)?;
        let statement = report
            .statement()
            .map_err(|err| JobError::retry(err.to_string()))?;
        let bundle = sign_statement(&settings.key, &statement)
            .map_err(|err| JobError::retry(err.to_string()))?;
        Ok::<_, JobError>((report, bundle.to_json()))
    })
    .await
    .map_err(|err| JobError::retry(err.to_string()))?;
    let audited = match audited {
        Ok((report, bundle)) => match uncurated(client, &report, job).await? {
            Some(message) => Err(JobError::waiting(message)),
            None => Ok((report, bundle)),
        },
        Err(err) => Err(err),
    };
    let (report, bundle) = audited?;
    let bundle_digest = client
        .upload(bundle.into_bytes())
        .await
        .map_err(|err| JobError::retry(err.to_string()))?;
    let verdict = report.verdict.as_str();
    client
        .complete(
            job.id,
            Completion::Audit {
                report: Box::new(report),
                statement: ArtifactRecord {
                    digest: bundle_digest,
                    kind: ArtifactKind::Audit,
                },
            },
        )
        .await
        .map_err(|err| JobError::retry(err.to_string()))?;
    Ok(verdict)
}

/// What the resolution turns on in each package that is not curated here for it: `None` when
/// everything is, or the reason the submission waits.
async fn uncurated(
    client: &Client,
    report: &AuditReport,
    job: &Job,
) -> Result<Option<String>, JobError> {
    let subject = job.payload.subject();
    let wanted: Vec<(String, String, FeatureSet)> = report
        .packages
        .iter()
        .filter(|p| p.source.is_some() && format!("{}@{}", p.name, p.version) != subject)
        .map(|p| {
            (
                p.name.clone(),
                p.version.clone(),
                FeatureSet(p.features.clone()),
            )
        })
        .collect();
    if wanted.is_empty() {
        return Ok(None);
    }
    let curated = client
        .curated_features(
            job.payload.closure.as_deref(),
            wanted
                .iter()
                .map(|(n, v, _)| (n.clone(), v.clone()))
                .collect(),
        )
        .await
        .map_err(|err| JobError::retry(err.to_string()))?;
    let mut missing = Vec::new();
    for ((name, version, features), found) in wanted.iter().zip(curated) {
        let lacking = match &found {
            Some(curated) => features.missing_from(curated),
            None => continue,
        };
        if !lacking.is_empty() {
            missing.push(format!(
                "{name}@{version} with feature{} {} (kiln review curate {name}@{version} --features {})",
                if lacking.len() == 1 { "" } else { "s" },
                lacking.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", "),
                lacking.join(",")
            ));
        }
    }
    Ok((!missing.is_empty()).then(|| {
        format!(
            "needs features no review covers yet: {}",
            missing.join("; ")
        )
    }))
}

/// Audits one `.crate` (blocking: unpacks, runs `cargo metadata`, reads the database).
fn audit_crate(
    settings: &AuditSettings,
    subject: &AuditSubject,
    bytes: &[u8],
    index: &CuratedIndex,
    approved: &[String],
    curated: &FeatureSet,
) -> Result<AuditReport, JobError> {
    let work = crate::workdir::new("audit").map_err(|err| JobError::retry(err.to_string()))?;
    let root = CrateArchive::new(
        bytes,
        &subject.name,
        &subject.version,
        kiln_crate_archive::Limits::default(),
    )
    .unpack(&work.path().join("src"))
    .map_err(|err| JobError::terminal(err.to_string()))?;
    let manifest: toml::Table = std::fs::read_to_string(root.join("Cargo.toml"))
        .map_err(|err| JobError::terminal(format!("reading Cargo.toml: {err}")))?
        .parse()
        .map_err(|err| JobError::terminal(format!("Cargo.toml: {err}")))?;
    // Resolving a git, path, patched or foreign dependency would make this worker fetch or read
    // what the author chose; such a manifest is denied from what it declares, unresolved.
    let aliases = index.aliases();
    let unresolvable =
        !declared_sources(&settings.policy, &manifest, &index.index, &aliases).is_empty();
    let (lockfile, crate_infos, features) = if unresolvable {
        let lockfile = lockfile_of(&[LockedPackage {
            name: subject.name.clone(),
            version: subject.version.clone(),
            source: None,
            checksum: None,
            ..LockedPackage::default()
        }])
        .map_err(|err| JobError::terminal(err.to_string()))?;
        (lockfile, None, BTreeMap::new())
    } else {
        let home = work.path().join("cargo-home");
        std::fs::create_dir_all(&home)
            .and_then(|()| std::fs::write(home.join("config.toml"), index.cargo_config()))
            .map_err(|err| JobError::retry(err.to_string()))?;
        // A kernel is the root of its own build; a library is seen as a dependent sees it.
        let resolved_at = if crate::build::is_kernel(&root) {
            root.clone()
        } else {
            let crate_rel = root.strip_prefix(work.path().join("src")).unwrap_or(&root);
            crate::dependent::write_wrapper(
                &work.path().join("src"),
                &subject.name,
                crate::dependent::Dependency::Path(crate_rel),
                curated,
            )
            .map_err(|err| JobError::retry(err.to_string()))?
        };
        let metadata = metadata(&resolved_at, &home)?;
        let lock_text = std::fs::read_to_string(resolved_at.join("Cargo.lock"))
            .map_err(|err| JobError::retry(format!("no Cargo.lock after resolution: {err}")))?;
        let lockfile = parse_lockfile(&lock_text)
            .and_then(|lockfile| without_wrapper(&lockfile))
            .map_err(|err| JobError::terminal(err.to_string()))?;
        let crate_infos = crates::from_metadata(&metadata, &crates::checksums(&lockfile))
            .into_iter()
            .filter(|c| c.name != crate::dependent::WRAPPER)
            .collect::<Vec<_>>();
        (lockfile, Some(crate_infos), resolved_features(&metadata))
    };
    let curated_names: Vec<String> = curated.0.iter().cloned().collect();
    let db =
        AdvisoryDb::open(&settings.advisory_db).map_err(|err| JobError::retry(err.to_string()))?;
    let today = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    Auditor {
        policy: &settings.policy,
        db: &db,
    }
    .audit(&AuditInput {
        subject: Some(subject),
        lockfile: &lockfile,
        crates: crate_infos.as_deref(),
        registry_index: Some(&index.index),
        registry_aliases: &aliases,
        approved_names: approved,
        today: &today[..10],
        manifest: Some(&manifest),
        features: Some(&features),
        curated: &curated_names,
    })
    .map_err(|err| JobError::terminal(err.to_string()))
}

/// The features the resolution turns on in each package, by `NAME@VERSION`.
fn resolved_features(metadata: &cargo_metadata::Metadata) -> BTreeMap<String, BTreeSet<String>> {
    metadata
        .resolve
        .iter()
        .flat_map(|resolve| &resolve.nodes)
        .map(|node| {
            let package = &metadata[&node.id];
            (
                format!("{}@{}", package.name, package.version),
                node.features.iter().map(|f| f.to_string()).collect(),
            )
        })
        .collect()
}

/// `lockfile` without the dependent's wrapper package (it is not part of what is audited).
fn without_wrapper(
    lockfile: &kiln_policy::checks::advisories::Lockfile,
) -> Result<kiln_policy::checks::advisories::Lockfile, kiln_policy::checks::advisories::AdvisoryError>
{
    let packages: Vec<LockedPackage> = kiln_policy::audit::locked_packages(lockfile)
        .into_iter()
        .filter(|p| !(p.name == crate::dependent::WRAPPER && p.source.is_none()))
        .collect();
    lockfile_of(&packages)
}

/// `cargo metadata` for the wasm target, with the packaged lockfile when there is one.
fn metadata(root: &Path, home: &Path) -> Result<cargo_metadata::Metadata, JobError> {
    let mut command = cargo_metadata::MetadataCommand::new();
    command.manifest_path(root.join("Cargo.toml"));
    command.env("CARGO_HOME", home);
    command.env_remove("CARGO_TARGET_DIR");
    command.env("CARGO_TERM_COLOR", "never");
    let mut options = vec!["--filter-platform".to_owned(), "wasm32-wasip1".to_owned()];
    if root.join("Cargo.lock").is_file() {
        options.push("--locked".to_owned());
    }
    command.other_options(options);
    command.exec().map_err(|err| {
        let text = err.to_string();
        let detail: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        // A dependency that does not resolve against the curated index is not approved (yet):
        // the audit waits for an approval, which wakes it.
        let needs = unresolved_crate(&text)
            .map(|name| format!("needs `{name}` approved first: "))
            .unwrap_or_default();
        JobError::waiting(format!(
            "{needs}resolving the dependencies against this registry failed (every dependency must be approved here): {}",
            detail.join(" ")
        ))
    })
}

/// The crate Cargo could not find a version of, from its error text. A version still in review
/// is listed as depending on [`kiln_wire::index::AWAITING_APPROVAL`]; the crate that needs an
/// approval is then the one that dependency is "required by".
fn unresolved_crate(cargo_error: &str) -> Option<&str> {
    const PATTERNS: [&str; 2] = [
        "no matching package named `",
        "failed to select a version for the requirement `",
    ];
    fn after<'a>(text: &'a str, pattern: &str) -> Option<&'a str> {
        let rest = &text[text.find(pattern)? + pattern.len()..];
        let name = rest.split(['`', ' ']).next()?;
        (!name.is_empty()).then_some(name)
    }
    let name = PATTERNS
        .iter()
        .find_map(|pattern| after(cargo_error, pattern))?;
    if name == kiln_wire::index::AWAITING_APPROVAL {
        return after(cargo_error, "required by package `");
    }
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crate_cargo_could_not_resolve_is_named() {
        assert_eq!(
            unresolved_crate(
                "Updating `kiln` index\nerror: no matching package named `serde` found\nlocation searched: `kiln` index"
            ),
            Some("serde")
        );
        assert_eq!(
            unresolved_crate(
                "error: failed to select a version for the requirement `itoa = \"^1.0\"`\ncandidate versions found which didn't match: 0.4.8"
            ),
            Some("itoa")
        );
        assert_eq!(
            unresolved_crate(
                "error: no matching package named `awaiting-kiln-approval` found\nlocation searched: `kiln` index\nrequired by package `demo-stats v0.2.0 (registry `kiln`)`"
            ),
            Some("demo-stats")
        );
        assert_eq!(unresolved_crate("error: something else"), None);
    }
}
