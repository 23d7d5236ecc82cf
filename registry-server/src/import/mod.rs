//! Closure import from an upstream registry (crates.io's sparse index by default): the closure
//! a dependent's build would resolve for the crate, with the features asked for, found by
//! Cargo's resolver ([`resolve`]); every member not already here is brought in byte for byte
//! (checked against the upstream checksum, [`upstream`]), checked like a publish, and put in
//! quarantine with its origin and the features it is curated with; a member already here but
//! reviewed for fewer features gets a new review round for the union. All of it happens, or
//! none of it: every member is fetched and checked before anything is recorded, and everything
//! is recorded in one transaction.

pub mod resolve;
pub mod upstream;

use bytes::Bytes;
use kiln_crate_archive::CrateArchive;
use kiln_wire::admin::{ClosureMember, ImportPlan, ImportRequest, MemberStatus};
use kiln_wire::{FeatureSet, VersionState};

pub use self::resolve::{ImportSpec, Member};
pub use self::upstream::{CRATES_IO_INDEX, IndexLine, Upstream, download_url};
use crate::app::App;
use crate::db::now_ms;
use crate::model::versions::{self, NewVersion, VersionRow};
use crate::model::{ModelError, closures, crates};
use crate::publish::NewCrate;
use crate::publish::submit::rfc3339;
use crate::tokens::Authenticated;

/// Why an import did not happen. Each names the crate it is about.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The upstream could not be reached or answered an error.
    #[error("upstream {url}: {message}")]
    Upstream {
        /// What was fetched.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The upstream has no such crate or version.
    #[error("the upstream index has no {0}")]
    NotFound(String),
    /// The downloaded bytes do not have the checksum the upstream index gives.
    #[error(
        "the .crate of {subject} has checksum {actual}, but the upstream index says {expected}"
    )]
    ChecksumMismatch {
        /// The version.
        subject: String,
        /// The index's checksum.
        expected: String,
        /// The download's.
        actual: String,
    },
    /// The upstream's index line is malformed.
    #[error("the upstream index line for {0} is malformed: {1}")]
    BadLine(String, String),
    /// Cargo could not resolve the closure.
    #[error("cannot resolve {what} against the upstream: {message}")]
    Resolve {
        /// What was asked for.
        what: String,
        /// Cargo's reason.
        message: String,
    },
    /// A member cannot come in.
    #[error("{subject}: {reason}")]
    Refused {
        /// The member.
        subject: String,
        /// Why.
        reason: String,
    },
    /// The registry itself.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Something on this side failed (Cargo missing, the disk).
    #[error("{0}")]
    Internal(String),
}

/// What an import request asks for, as a spec: a version becomes an exact requirement.
pub fn spec_of(request: &ImportRequest) -> ImportSpec {
    let req = match semver::Version::parse(request.req.trim()) {
        Ok(version) => format!("={version}"),
        Err(_) => request.req.trim().to_owned(),
    };
    ImportSpec {
        krate: request.krate.clone(),
        req,
        features: request.features.clone(),
        default_features: request.default_features,
    }
}

/// A member fetched and checked, ready to record.
struct Fetched {
    member: Member,
    metadata: NewCrate,
    tarball: Bytes,
}

/// What becomes of each member.
enum Plan {
    New,
    Present,
    InReview(VersionRow),
    Extend(VersionRow),
}

/// Classifies a member against what is here already; refuses a member this registry decided
/// against.
async fn classify(app: &App, member: &Member) -> Result<Plan, ImportError> {
    let existing = match versions::find(&app.db, &member.name, &member.version).await {
        Ok(existing) => existing,
        Err(ModelError::NotFound(_)) => return Ok(Plan::New),
        Err(err) => return Err(err.into()),
    };
    let covered = |features: &FeatureSet| member.features.is_covered_by(features);
    if existing.approved_features.as_ref().is_some_and(covered) {
        return Ok(Plan::Present);
    }
    match existing.state {
        VersionState::Rejected | VersionState::Failed => Err(ImportError::Refused {
            subject: existing.subject(),
            reason: format!(
                "it is {} here; a closure that needs it cannot be imported",
                existing.state
            ),
        }),
        _ if covered(&existing.features) => Ok(Plan::InReview(existing)),
        _ => Ok(Plan::Extend(existing)),
    }
}

/// Fetches `member`'s index line (refusing a yanked version), reads the `.crate` Cargo
/// downloaded, checks it against the line's checksum, and checks it as a publish would be.
async fn fetch(app: &App, upstream: &Upstream<'_>, member: Member) -> Result<Fetched, ImportError> {
    let subject = format!("{}@{}", member.name, member.version);
    let line = upstream.line(&member.name, &member.version).await?;
    if line.yanked {
        return Err(ImportError::Refused {
            subject,
            reason: "it is yanked upstream".into(),
        });
    }
    let tarball = Bytes::from(std::fs::read(&member.crate_file).map_err(|err| {
        ImportError::Internal(format!("reading the downloaded .crate of {subject}: {err}"))
    })?);
    upstream::check_checksum(&line, &tarball)?;
    let metadata = line.into_metadata();
    metadata.validate().map_err(|err| ImportError::Refused {
        subject: subject.clone(),
        reason: err.to_string(),
    })?;
    let limits = app.config.crate_limits();
    let contents = CrateArchive::new(&tarball, &member.name, &member.version, limits)
        .inspect()
        .map_err(|err| ImportError::Refused {
            subject: subject.clone(),
            reason: err.to_string(),
        })?;
    let manifest: toml::Table = contents
        .manifest
        .parse()
        .map_err(|err| ImportError::Refused {
            subject: subject.clone(),
            reason: format!("its Cargo.toml: {err}"),
        })?;
    let crates_io: std::collections::BTreeSet<String> =
        kiln_policy::checks::sources::CRATES_IO_SOURCES
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
    let declared =
        kiln_policy::checks::sources::check_manifest(&manifest, CRATES_IO_INDEX, &crates_io);
    if let Some(finding) = declared.first() {
        return Err(ImportError::Refused {
            subject,
            reason: finding.message.clone(),
        });
    }
    Ok(Fetched {
        member,
        metadata,
        tarball,
    })
}

/// Imports (or, for a dry run, only resolves) the closure `request` asks for, as `auth`.
pub async fn import(
    app: &App,
    auth: &Authenticated,
    request: &ImportRequest,
) -> Result<ImportPlan, ImportError> {
    let spec = spec_of(request);
    let upstream_url = request
        .upstream
        .clone()
        .unwrap_or_else(|| CRATES_IO_INDEX.to_owned());
    let work = tempfile::tempdir().map_err(|err| ImportError::Internal(err.to_string()))?;
    let home = match &app.config.import_cache {
        Some(dir) => dir.join(format!(
            "cargo-home-{}",
            &kiln_policy::Digest::of(upstream_url.as_bytes()).hex()[..16]
        )),
        None => work.path().join("cargo-home"),
    };
    let members = tokio::task::spawn_blocking({
        let (spec, upstream_url, work) =
            (spec.clone(), upstream_url.clone(), work.path().to_owned());
        move || resolve::resolve(&spec, &upstream_url, &home, &work)
    })
    .await
    .map_err(|err| ImportError::Internal(err.to_string()))??;
    let root = members
        .iter()
        .find(|m| m.name == spec.krate)
        .map(|m| format!("{}@{}", m.name, m.version))
        .ok_or_else(|| ImportError::Resolve {
            what: spec.describe(),
            message: "the crate itself is not in its resolution".into(),
        })?;
    let mut plans = Vec::new();
    for member in members {
        let plan = classify(app, &member).await?;
        plans.push((member, plan));
    }
    let listed: Vec<ClosureMember> = plans
        .iter()
        .map(|(member, plan)| ClosureMember {
            krate: member.name.clone(),
            version: member.version.clone(),
            license: member.license.clone(),
            build_script: member.build_script,
            proc_macro: member.proc_macro,
            features: member.features.clone(),
            status: match plan {
                Plan::New => MemberStatus::Added,
                Plan::Present => MemberStatus::Present,
                Plan::InReview(_) => MemberStatus::InReview,
                Plan::Extend(_) => MemberStatus::Extended,
            },
        })
        .collect();
    let answer = ImportPlan {
        root: root.clone(),
        upstream: upstream_url.clone(),
        dry_run: request.dry_run,
        members: listed,
    };
    if request.dry_run {
        return Ok(answer);
    }

    // Fetch and check every new member before anything is recorded.
    let upstream = Upstream::new(&app.http, &upstream_url);
    let mut fetched = Vec::new();
    let mut others = Vec::new();
    for (member, plan) in plans {
        match plan {
            Plan::New => fetched.push(fetch(app, &upstream, member).await?),
            other => others.push((member, other)),
        }
    }
    for item in &fetched {
        app.blobs
            .put(item.tarball.clone())
            .await
            .map_err(ModelError::from)?;
    }
    record(app, auth, &spec, &root, &upstream_url, &fetched, &others).await?;
    tracing::info!(%root, user = %auth.login, added = fetched.len(), "closure imported");
    Ok(answer)
}

/// Records the closure in one transaction: its new members as submissions, its members in review
/// as members, and new review rounds for members reviewed for fewer features.
async fn record(
    app: &App,
    auth: &Authenticated,
    spec: &ImportSpec,
    root: &str,
    upstream: &str,
    fetched: &[Fetched],
    others: &[(Member, Plan)],
) -> Result<(), ImportError> {
    let token = crate::tokens::generate_secret();
    let mut w = app.db.begin_write().await.map_err(ModelError::from)?;
    let closure = closures::create(
        &mut w.tx,
        &token,
        &format!("{root} ({})", spec.describe()),
        auth.user_id,
    )
    .await?;
    let link = (closure.id, closure.token.as_str());
    for item in fetched {
        let meta = &item.metadata;
        let version = meta.validate().map_err(|err| ImportError::Refused {
            subject: format!("{}@{}", meta.name, meta.vers),
            reason: err.to_string(),
        })?;
        let crate_id = match crates::find(&mut *w.tx, &meta.name).await? {
            Some(existing) => existing.id,
            None => {
                crates::create(
                    &mut w.tx,
                    &meta.name,
                    meta.description.as_deref(),
                    auth.user_id,
                )
                .await?
            }
        };
        let index_line = meta.index_line(&item.member.checksum.hex(), &rfc3339(now_ms()));
        let new = NewVersion {
            crate_id,
            version: &version,
            checksum: item.member.checksum,
            index_line: &index_line,
            metadata: meta,
            origin: Some(upstream),
            features: &item.member.features,
            closure: link,
        };
        versions::insert(&mut w.tx, &new, auth, app.config.job_attempts).await?;
    }
    for (member, plan) in others {
        match plan {
            Plan::InReview(row) => closures::add_member(&mut w.tx, closure.id, row.id).await?,
            Plan::Extend(row) => {
                versions::extend(
                    &mut w.tx,
                    row,
                    &member.features,
                    link,
                    &auth.login,
                    app.config.job_attempts,
                )
                .await?;
            }
            Plan::New | Plan::Present => {}
        }
    }
    w.commit().await.map_err(ModelError::from)?;
    for item in fetched {
        app.index_changed(&item.metadata.name);
    }
    Ok(())
}
