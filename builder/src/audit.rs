//! The audit job: for one submission, fetch its `.crate`, unpack it, resolve its dependency
//! graph with `cargo metadata` against the registry's own index only (crates.io is replaced by
//! the registry, so an unapproved dependency does not resolve), run every check of the policy,
//! sign the report into an audit statement with the builder key, and report the verdict.
//!
//! `cargo metadata` reads manifests and downloads `.crate` files; it runs no build scripts and
//! no proc-macros, so it needs no sandbox (the build does). It runs only when the packaged
//! `Cargo.toml` declares nothing but this registry's crates: a git, path, patched or foreign
//! dependency is denied from the manifest alone, before anything is fetched.

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
use kiln_wire::{ArtifactKind, JobKind};

use crate::client::{Client, Job};
use crate::curated::{CRATES_IO, CuratedIndex};
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
        .curated_index()
        .await
        .map_err(|err| JobError::retry(err.to_string()))?;
    let settings = settings.clone();
    let subject = AuditSubject {
        name,
        version,
        checksum,
    };
    let (name, version) = (subject.name.clone(), subject.version.clone());
    let audited = tokio::task::spawn_blocking(move || {
        let report = audit_crate(&settings, &subject, &bytes, &index, &approved)?;
        let statement = report
            .statement()
            .map_err(|err| JobError::retry(err.to_string()))?;
        let bundle = sign_statement(&settings.key, &statement)
            .map_err(|err| JobError::retry(err.to_string()))?;
        Ok::<_, JobError>((report, bundle.to_json()))
    })
    .await
    .map_err(|err| JobError::retry(err.to_string()))?;
    let (report, bundle) = match audited {
        Err(err) if err.is_waiting() => {
            // Name what the submission waits for: its dependencies without an approved version.
            let missing: Vec<String> = match client.submission(&name, &version).await {
                Ok(detail) => detail
                    .unmet_dependencies()
                    .filter(|d| {
                        // From this registry: no registry named, or crates.io (replaced by it).
                        d.registry.as_deref().is_none_or(|r| {
                            CRATES_IO
                                .iter()
                                .any(|c| c.trim_end_matches('/').ends_with(r.trim_end_matches('/')))
                        })
                    })
                    .map(|d| format!("{} {}", d.name, d.req))
                    .collect(),
                Err(_) => Vec::new(),
            };
            let message = if missing.is_empty() {
                err.message
            } else {
                format!(
                    "needs {} approved first; {}",
                    missing.join(", "),
                    err.message
                )
            };
            return Err(JobError::waiting(message));
        }
        other => other?,
    };
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

/// Audits one `.crate` (blocking: unpacks, runs `cargo metadata`, reads the database).
fn audit_crate(
    settings: &AuditSettings,
    subject: &AuditSubject,
    bytes: &[u8],
    index: &CuratedIndex,
    approved: &[String],
) -> Result<AuditReport, JobError> {
    let work = tempfile::tempdir().map_err(|err| JobError::retry(err.to_string()))?;
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
    let (lockfile, crate_infos) = if unresolvable {
        let lockfile = lockfile_of(&[LockedPackage {
            name: subject.name.clone(),
            version: subject.version.clone(),
            source: None,
            checksum: None,
        }])
        .map_err(|err| JobError::terminal(err.to_string()))?;
        (lockfile, None)
    } else {
        let home = work.path().join("cargo-home");
        std::fs::create_dir_all(&home)
            .and_then(|()| std::fs::write(home.join("config.toml"), index.cargo_config()))
            .map_err(|err| JobError::retry(err.to_string()))?;
        let metadata = metadata(&root, &home)?;
        let lock_text = std::fs::read_to_string(root.join("Cargo.lock"))
            .map_err(|err| JobError::retry(format!("no Cargo.lock after resolution: {err}")))?;
        let lockfile =
            parse_lockfile(&lock_text).map_err(|err| JobError::terminal(err.to_string()))?;
        let crate_infos = crates::from_metadata(&metadata, &crates::checksums(&lockfile));
        (lockfile, Some(crate_infos))
    };
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
    })
    .map_err(|err| JobError::terminal(err.to_string()))
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
        JobError::waiting(format!(
            "resolving the dependencies against this registry failed (every dependency must be approved here): {}",
            detail.join(" ")
        ))
    })
}
