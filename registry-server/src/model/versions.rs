//! Versions and their review state. Every state change is one function here: it updates the
//! row only from the states it may leave (`WHERE state IN (…)`), in the caller's transaction,
//! together with the event it appends, and otherwise answers a conflict naming the state the
//! version is in.
//!
//! ```text
//! submitted ──audit──► audited ──build──► built ──approve──► approved
//!     │                   │                 │
//!     └── audit denies, or a job fails ─► failed
//!  submitted, audited, built, failed ──reject──► rejected
//! ```

use kiln_policy::Digest;
use kiln_policy::audit::AuditReport;
use kiln_policy::codes::FindingCode;
use kiln_policy::findings::Severity;
use kiln_wire::submissions::{BuildReport, Submission};
use kiln_wire::worker::{ArtifactRecord, JobPayload};
use kiln_wire::{FeatureSet, JobKind, Verdict, VersionState};
use sqlx::Row as _;

use super::{
    ModelError, ModelResult, Tx, artifacts, closures, corrupt, crates, events, jobs, reports,
    reviews, wrong_state,
};
use crate::db::{Db, now_ms};
use crate::names;
use crate::publish::NewCrate;
use crate::tokens::Authenticated;

/// A version, as the model works with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRow {
    /// Its id.
    pub id: i64,
    /// Its crate's id.
    pub crate_id: i64,
    /// Its crate's name.
    pub krate: String,
    /// The version.
    pub version: String,
    /// The `.crate`'s SHA-256.
    pub checksum: Digest,
    /// Where it is in review.
    pub state: VersionState,
    /// Whether it is yanked.
    pub yanked: bool,
    /// The features its current review round covers.
    pub features: FeatureSet,
    /// The features approved so far (`None` until its first approval): it is in the index
    /// while it has some.
    pub approved_features: Option<FeatureSet>,
    /// The upstream index it was imported from; `None` when it was published here.
    pub origin: Option<String>,
}

impl VersionRow {
    /// `NAME@VERSION`.
    pub fn subject(&self) -> String {
        format!("{}@{}", self.krate, self.version)
    }

    /// The payload of a job about this version's round for `features`, resolving through
    /// `closure` (its token).
    fn job(&self, features: FeatureSet, closure: Option<String>) -> JobPayload {
        JobPayload {
            version_id: self.id,
            krate: self.krate.clone(),
            version: self.version.clone(),
            checksum: self.checksum,
            features,
            closure,
            origin: self.origin.clone(),
        }
    }
}

const VERSION_COLUMNS: &str = "v.id, v.crate_id, c.name, v.version, v.checksum, v.state, v.yanked, \
     v.features, v.approved_features, v.origin FROM versions v JOIN crates c ON c.id = v.crate_id";

fn state(text: &str) -> ModelResult<VersionState> {
    text.parse()
        .map_err(|err| corrupt("a version's state", err))
}

fn features(text: &str) -> ModelResult<FeatureSet> {
    serde_json::from_str(text).map_err(|err| corrupt("a version's features", err))
}

fn approved_features(row: &sqlx::any::AnyRow) -> ModelResult<Option<FeatureSet>> {
    row.get::<Option<String>, _>("approved_features")
        .as_deref()
        .map(features)
        .transpose()
}

fn checksum(text: &str) -> ModelResult<Digest> {
    Digest::from_hex(text).map_err(|err| corrupt("a version's checksum", err))
}

fn version_row(row: &sqlx::any::AnyRow) -> ModelResult<VersionRow> {
    Ok(VersionRow {
        id: row.get("id"),
        crate_id: row.get("crate_id"),
        krate: row.get("name"),
        version: row.get("version"),
        checksum: checksum(&row.get::<String, _>("checksum"))?,
        state: state(&row.get::<String, _>("state"))?,
        yanked: row.get::<i64, _>("yanked") != 0,
        features: features(&row.get::<String, _>("features"))?,
        approved_features: approved_features(row)?,
        origin: row.get("origin"),
    })
}

/// Version `version` of the crate called `name`.
pub async fn find(db: &Db, name: &str, version: &str) -> ModelResult<VersionRow> {
    let krate = crates::named(db, name).await?;
    let row = sqlx::query(&format!(
        "SELECT {VERSION_COLUMNS} WHERE v.crate_id = $1 AND v.version = $2"
    ))
    .bind(krate.id)
    .bind(version)
    .fetch_optional(db.pool())
    .await?
    .ok_or_else(|| {
        ModelError::NotFound(format!("crate `{}` has no version `{version}`", krate.name))
    })?;
    version_row(&row)
}

/// Version `id`.
pub async fn by_id(db: &Db, id: i64) -> ModelResult<VersionRow> {
    let row = sqlx::query(&format!("SELECT {VERSION_COLUMNS} WHERE v.id = $1"))
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .ok_or_else(|| ModelError::NotFound(format!("no version with id {id}")))?;
    version_row(&row)
}

/// The version whose `.crate` has `checksum`, if any.
pub async fn by_checksum(db: &Db, checksum: &Digest) -> ModelResult<Option<VersionRow>> {
    sqlx::query(&format!("SELECT {VERSION_COLUMNS} WHERE v.checksum = $1"))
        .bind(checksum.hex())
        .fetch_optional(db.pool())
        .await?
        .as_ref()
        .map(version_row)
        .transpose()
}

const SUBMISSION_COLUMNS: &str = "c.name, v.version, v.state, v.state_reason, v.checksum, v.yanked, u.login, v.origin, v.created_at, v.updated_at, v.features, v.approved_features \
     FROM versions v JOIN crates c ON c.id = v.crate_id JOIN users u ON u.id = v.published_by";

fn submission(row: &sqlx::any::AnyRow) -> ModelResult<Submission> {
    Ok(Submission {
        krate: row.get("name"),
        version: row.get("version"),
        state: state(&row.get::<String, _>("state"))?,
        state_reason: row.get("state_reason"),
        checksum: checksum(&row.get::<String, _>("checksum"))?,
        yanked: row.get::<i64, _>("yanked") != 0,
        published_by: row.get("login"),
        origin: row.get("origin"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
        features: features(&row.get::<String, _>("features"))?,
        approved_features: approved_features(row)?,
    })
}

/// Every submission, or those in `state`, oldest first.
pub async fn list(db: &Db, state: Option<VersionState>) -> ModelResult<Vec<Submission>> {
    let rows = match state {
        Some(state) => {
            sqlx::query(&format!(
                "SELECT {SUBMISSION_COLUMNS} WHERE v.state = $1 ORDER BY v.id"
            ))
            .bind(state.as_str())
            .fetch_all(db.pool())
            .await?
        }
        None => {
            sqlx::query(&format!("SELECT {SUBMISSION_COLUMNS} ORDER BY v.id"))
                .fetch_all(db.pool())
                .await?
        }
    };
    rows.iter().map(submission).collect()
}

/// Version `id` as a submission.
pub async fn submission_of(db: &Db, id: i64) -> ModelResult<Submission> {
    let row = sqlx::query(&format!("SELECT {SUBMISSION_COLUMNS} WHERE v.id = $1"))
        .bind(id)
        .fetch_one(db.pool())
        .await?;
    submission(&row)
}

/// The publish metadata version `id` was submitted with.
pub async fn metadata(db: &Db, id: i64) -> ModelResult<NewCrate> {
    let text: String = sqlx::query_scalar("SELECT metadata FROM versions WHERE id = $1")
        .bind(id)
        .fetch_one(db.pool())
        .await?;
    serde_json::from_str(&text).map_err(|err| corrupt("a version's metadata", err))
}

/// The approved, unyanked versions of the crate whose canonical name is `name`'s.
pub async fn approved_versions(db: &Db, name: &str) -> ModelResult<Vec<semver::Version>> {
    let rows = sqlx::query(
        "SELECT v.version FROM versions v JOIN crates c ON c.id = v.crate_id \
         WHERE c.canonical_name = $1 AND v.approved_features IS NOT NULL AND v.yanked = 0",
    )
    .bind(names::canonical(name))
    .fetch_all(db.pool())
    .await?;
    Ok(rows
        .iter()
        .filter_map(|r| semver::Version::parse(&r.get::<String, _>("version")).ok())
        .collect())
}

/// The names of crates with an approved version.
pub async fn approved_names(db: &Db) -> ModelResult<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT c.name FROM crates c JOIN versions v ON v.crate_id = c.id WHERE v.approved_features IS NOT NULL ORDER BY c.name",
    )
    .fetch_all(db.pool())
    .await?)
}

/// Every approved version with its latest audit report, for a re-audit.
pub async fn approved_with_audit(db: &Db) -> ModelResult<Vec<(VersionRow, Option<AuditReport>)>> {
    let rows = sqlx::query(
        "SELECT v.id, v.crate_id, c.name, v.version, v.checksum, v.state, v.yanked, v.features, v.approved_features, v.origin, \
         (SELECT r.body FROM reports r WHERE r.version_id = v.id AND r.kind = 'audit' ORDER BY r.id DESC LIMIT 1) AS body \
         FROM versions v JOIN crates c ON c.id = v.crate_id WHERE v.approved_features IS NOT NULL ORDER BY v.id",
    )
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            let report = row
                .get::<Option<String>, _>("body")
                .and_then(|body| serde_json::from_str(&body).ok());
            Ok((version_row(row)?, report))
        })
        .collect()
}

/// How many versions are in each state.
pub async fn state_counts(db: &Db) -> ModelResult<Vec<(String, i64)>> {
    let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM versions GROUP BY state")
        .fetch_all(db.pool())
        .await?;
    Ok(rows.iter().map(|r| (r.get("state"), r.get("n"))).collect())
}

/// The version key (the version without build metadata, under which versions are unique).
pub fn version_key(version: &semver::Version) -> String {
    let mut key = semver::Version::new(version.major, version.minor, version.patch);
    key.pre = version.pre.clone();
    key.to_string()
}

/// A version to record.
#[derive(Debug)]
pub struct NewVersion<'a> {
    /// Its crate.
    pub crate_id: i64,
    /// The parsed version.
    pub version: &'a semver::Version,
    /// The `.crate`'s SHA-256 (stored already).
    pub checksum: Digest,
    /// The sparse-index line it will be served with once approved.
    pub index_line: &'a serde_json::Value,
    /// The publish metadata.
    pub metadata: &'a NewCrate,
    /// The upstream registry of an import.
    pub origin: Option<&'a str>,
    /// The features its first review round covers.
    pub features: &'a FeatureSet,
    /// The closure it is submitted with (an import's, or its own for a publish): id and token.
    pub closure: (i64, &'a str),
}

/// Refuses a version crate `crate_id` (`name`) has already: versions cannot be replaced.
pub async fn require_new(
    conn: &mut sqlx::AnyConnection,
    crate_id: i64,
    name: &str,
    version: &semver::Version,
) -> ModelResult<()> {
    let existing: Option<String> =
        sqlx::query_scalar("SELECT version FROM versions WHERE crate_id = $1 AND version_key = $2")
            .bind(crate_id)
            .bind(version_key(version))
            .fetch_optional(&mut *conn)
            .await?;
    match existing {
        Some(existing) => Err(ModelError::Conflict(format!(
            "crate `{name}` already has version `{existing}`; versions cannot be replaced"
        ))),
        None => Ok(()),
    }
}

/// Records a new version as `submitted`, queues its audit and logs its publish (or import);
/// a conflict when the crate has that version already (versions cannot be replaced).
pub async fn insert(
    tx: &mut Tx,
    new: &NewVersion<'_>,
    auth: &Authenticated,
    job_attempts: i64,
) -> ModelResult<i64> {
    let key = version_key(new.version);
    require_new(tx, new.crate_id, &new.metadata.name, new.version).await?;
    let now = now_ms();
    let metadata =
        serde_json::to_string(new.metadata).map_err(|err| corrupt("the publish metadata", err))?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO versions (crate_id, version, version_key, checksum, state, yanked, index_line, metadata, origin, published_by, created_at, updated_at, features) \
         VALUES ($1, $2, $3, $4, 'submitted', 0, $5, $6, $7, $8, $9, $9, $10) RETURNING id",
    )
    .bind(new.crate_id)
    .bind(&new.metadata.vers)
    .bind(&key)
    .bind(new.checksum.hex())
    .bind(new.index_line.to_string())
    .bind(metadata)
    .bind(new.origin)
    .bind(auth.user_id)
    .bind(now)
    .bind(json(new.features)?)
    .fetch_one(&mut **tx)
    .await?;
    closures::add_member(tx, new.closure.0, id).await?;
    let payload = JobPayload {
        version_id: id,
        krate: new.metadata.name.clone(),
        version: new.metadata.vers.clone(),
        checksum: new.checksum,
        features: new.features.clone(),
        closure: Some(new.closure.1.to_owned()),
        origin: new.origin.map(str::to_owned),
    };
    jobs::enqueue(tx, JobKind::Audit, &payload, job_attempts).await?;
    let (kind, data) = match new.origin {
        Some(upstream) => (
            "import",
            serde_json::json!({"checksum": new.checksum.to_string(), "origin": upstream}),
        ),
        None => (
            "publish",
            serde_json::json!({"checksum": new.checksum.to_string()}),
        ),
    };
    events::append(tx, kind, &payload.subject(), &auth.login, data).await?;
    Ok(id)
}

/// The state version `id` is in now.
pub async fn state_of(tx: &mut Tx, id: i64) -> ModelResult<VersionState> {
    let text: String = sqlx::query_scalar("SELECT state FROM versions WHERE id = $1")
        .bind(id)
        .fetch_one(&mut **tx)
        .await?;
    state(&text)
}

/// Moves version `id` (`subject`) to `to` from one of `from`, with `reason`; a conflict naming
/// its state when it is in none of them.
async fn transition(
    tx: &mut Tx,
    id: i64,
    subject: &str,
    (action, done): (&str, &str),
    from: &[VersionState],
    to: VersionState,
    reason: Option<&str>,
) -> ModelResult<()> {
    let placeholders: Vec<String> = (0..from.len()).map(|i| format!("${}", i + 5)).collect();
    let sql = format!(
        "UPDATE versions SET state = $1, state_reason = $2, updated_at = $3 WHERE id = $4 AND state IN ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(&sql)
        .bind(to.as_str())
        .bind(reason)
        .bind(now_ms())
        .bind(id);
    for state in from {
        query = query.bind(state.as_str());
    }
    if query.execute(&mut **tx).await?.rows_affected() == 1 {
        return Ok(());
    }
    let actual: Option<String> = sqlx::query_scalar("SELECT state FROM versions WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    match actual {
        Some(actual) => Err(wrong_state(action, done, subject, state(&actual)?, from)),
        None => Err(ModelError::NotFound(format!("no version {subject}"))),
    }
}

/// Approves a built version: it enters the index. Records the decision and wakes what waited
/// for it.
pub async fn approve(
    tx: &mut Tx,
    version: &VersionRow,
    reviewer: &Authenticated,
    criteria: Option<&str>,
    bundle: Option<&str>,
) -> ModelResult<()> {
    let subject = version.subject();
    transition(
        tx,
        version.id,
        &subject,
        ("approve", "approved"),
        &[VersionState::Built],
        VersionState::Approved,
        None,
    )
    .await?;
    sqlx::query("UPDATE versions SET approved_features = features WHERE id = $1")
        .bind(version.id)
        .execute(&mut **tx)
        .await?;
    reviews::insert(
        tx,
        version.id,
        kiln_wire::review::Decision::Approve,
        reviewer.user_id,
        None,
        criteria,
        bundle,
    )
    .await?;
    // Whatever waited for this approval (a dependant's audit) may go on now.
    jobs::wake(tx).await?;
    events::append(
        tx,
        "approve",
        &subject,
        &reviewer.login,
        serde_json::json!({"reason": null, "criteria": criteria}),
    )
    .await?;
    Ok(())
}

async fn set_features(tx: &mut Tx, id: i64, features: &FeatureSet) -> ModelResult<()> {
    sqlx::query("UPDATE versions SET features = $1 WHERE id = $2")
        .bind(json(features)?)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn json(features: &FeatureSet) -> ModelResult<String> {
    serde_json::to_string(features).map_err(|err| corrupt("a feature set", err))
}

/// The state a round that did not pass ends in: `failed`, or, for a round that would have
/// extended an approved version's features, `approved` again with the features approved
/// before (the version stays usable as it was).
async fn end_round(
    tx: &mut Tx,
    job: &JobPayload,
    (action, done): (&str, &str),
    from: &[VersionState],
    reason: &str,
) -> ModelResult<VersionState> {
    let subject = job.subject();
    let approved: Option<String> =
        sqlx::query_scalar("SELECT approved_features FROM versions WHERE id = $1")
            .bind(job.version_id)
            .fetch_one(&mut **tx)
            .await?;
    let (to, reason) = match approved {
        Some(approved) => {
            set_features(tx, job.version_id, &features(&approved)?).await?;
            (
                VersionState::Approved,
                format!(
                    "the extension to features {} did not pass: {reason}",
                    job.features
                ),
            )
        }
        None => (VersionState::Failed, reason.to_owned()),
    };
    transition(
        tx,
        job.version_id,
        &subject,
        (action, done),
        from,
        to,
        Some(&reason),
    )
    .await?;
    Ok(to)
}

/// Extends the features version `version`'s review covers to include `wanted`, as `actor`: a
/// new round (audit, build, review) for the union. A version in review starts its round
/// again (its queued or running jobs are dropped); an approved version stays approved, for the
/// features approved before, while the round runs. Returns whether anything changed.
pub async fn extend(
    tx: &mut Tx,
    version: &VersionRow,
    wanted: &FeatureSet,
    closure: (i64, &str),
    actor: &str,
    job_attempts: i64,
) -> ModelResult<bool> {
    let subject = version.subject();
    let union = version.features.union(wanted);
    if union == version.features {
        return Ok(false);
    }
    transition(
        tx,
        version.id,
        &subject,
        ("extend the features of", "extended"),
        &[
            VersionState::Submitted,
            VersionState::Audited,
            VersionState::Built,
            VersionState::Approved,
        ],
        VersionState::Submitted,
        None,
    )
    .await?;
    set_features(tx, version.id, &union).await?;
    jobs::drop_for_version(tx, version.id).await?;
    closures::add_member(tx, closure.0, version.id).await?;
    let payload = version.job(union.clone(), Some(closure.1.to_owned()));
    jobs::enqueue(tx, JobKind::Audit, &payload, job_attempts).await?;
    events::append(
        tx,
        "curate",
        &subject,
        actor,
        serde_json::json!({"features": union, "added": wanted.missing_from(&version.features)}),
    )
    .await?;
    Ok(true)
}

/// The states a reviewer may reject a version from (a decision is final).
pub const REJECTABLE: [VersionState; 4] = [
    VersionState::Submitted,
    VersionState::Audited,
    VersionState::Built,
    VersionState::Failed,
];

/// Rejects a version that has not been decided on, with the reason the author sees.
pub async fn reject(
    tx: &mut Tx,
    version: &VersionRow,
    reviewer: &Authenticated,
    reason: &str,
) -> ModelResult<()> {
    let subject = version.subject();
    match &version.approved_features {
        // A round that would extend an approved version's features ends with the version still
        // approved, for the features approved before.
        Some(approved) => {
            let why = format!(
                "the extension to features {} was rejected: {reason}",
                version.features
            );
            transition(
                tx,
                version.id,
                &subject,
                ("reject", "rejected"),
                &REJECTABLE,
                VersionState::Approved,
                Some(&why),
            )
            .await?;
            set_features(tx, version.id, approved).await?;
        }
        None => {
            transition(
                tx,
                version.id,
                &subject,
                ("reject", "rejected"),
                &REJECTABLE,
                VersionState::Rejected,
                Some(reason),
            )
            .await?;
        }
    }
    reviews::insert(
        tx,
        version.id,
        kiln_wire::review::Decision::Reject,
        reviewer.user_id,
        Some(reason),
        None,
        None,
    )
    .await?;
    events::append(
        tx,
        "reject",
        &subject,
        &reviewer.login,
        serde_json::json!({"reason": reason, "criteria": null}),
    )
    .await?;
    Ok(())
}

/// An artifact a worker uploaded, with its size in the blob store.
#[derive(Debug, Clone, Copy)]
pub struct Stored<'a> {
    /// The worker's record of it.
    pub record: &'a ArtifactRecord,
    /// Its size in bytes.
    pub size: u64,
}

/// Records an audit of a submitted version: `audited` when its verdict passes (and its build is
/// queued), `failed` when it denies. Returns the new state.
pub async fn record_audit(
    tx: &mut Tx,
    job: &JobPayload,
    report: &AuditReport,
    statement: Stored<'_>,
    actor: &str,
    job_attempts: i64,
) -> ModelResult<VersionState> {
    let subject = job.subject();
    let to = match report.verdict {
        Verdict::Pass | Verdict::NeedsReview => {
            transition(
                tx,
                job.version_id,
                &subject,
                ("record the audit of", "audited"),
                &[VersionState::Submitted],
                VersionState::Audited,
                None,
            )
            .await?;
            VersionState::Audited
        }
        Verdict::Deny => {
            end_round(
                tx,
                job,
                ("record the audit of", "audited"),
                &[VersionState::Submitted],
                "the audit denied this version; see the audit report",
            )
            .await?
        }
    };
    let body = serde_json::to_string(report).map_err(|err| corrupt("an audit report", err))?;
    reports::insert(tx, job.version_id, "audit", &body).await?;
    artifacts::insert(tx, job.version_id, statement.record, statement.size).await?;
    if to == VersionState::Audited {
        jobs::enqueue(tx, JobKind::Build, job, job_attempts).await?;
    }
    events::append(
        tx,
        "audit",
        &subject,
        actor,
        serde_json::json!({
            "verdict": report.verdict.as_str(), "state": to,
            "artifacts": [{"digest": statement.record.digest, "kind": statement.record.kind}],
        }),
    )
    .await?;
    Ok(to)
}

/// Records a build of an audited version: it is `built`, with its artifacts.
pub async fn record_build(
    tx: &mut Tx,
    job: &JobPayload,
    report: &BuildReport,
    stored: &[Stored<'_>],
    actor: &str,
) -> ModelResult<VersionState> {
    let subject = job.subject();
    transition(
        tx,
        job.version_id,
        &subject,
        ("record the build of", "built"),
        &[VersionState::Audited],
        VersionState::Built,
        None,
    )
    .await?;
    let body = serde_json::to_string(report).map_err(|err| corrupt("a build report", err))?;
    reports::insert(tx, job.version_id, "build", &body).await?;
    for artifact in stored {
        artifacts::insert(tx, job.version_id, artifact.record, artifact.size).await?;
    }
    let listed: Vec<serde_json::Value> = stored
        .iter()
        .map(|a| serde_json::json!({"digest": a.record.digest, "kind": a.record.kind}))
        .collect();
    events::append(
        tx,
        "build",
        &subject,
        actor,
        serde_json::json!({"verdict": null, "state": VersionState::Built, "artifacts": listed}),
    )
    .await?;
    Ok(VersionState::Built)
}

/// Fails a version still in its audit or build, with the reason. `retryable` says whether the
/// failure was kiln's own (a job whose attempts ran out on errors a worker called transient, a
/// worker that died, a timeout), so that an admin may run the round again with the same bytes
/// ([`retry`]).
pub async fn fail(
    tx: &mut Tx,
    job: &JobPayload,
    reason: &str,
    actor: &str,
    retryable: bool,
) -> ModelResult<VersionState> {
    let subject = job.subject();
    let state = end_round(
        tx,
        job,
        ("fail", "failed"),
        &[VersionState::Submitted, VersionState::Audited],
        reason,
    )
    .await?;
    events::append(
        tx,
        "fail",
        &subject,
        actor,
        serde_json::json!({"reason": reason, "retryable": retryable}),
    )
    .await?;
    Ok(state)
}

/// Why `version` (failed) may not be audited and built again with the same bytes: `None` when
/// its failure was kiln's own state (an advisory database older than the policy allows, the
/// only thing its audit denied; or a job that failed as retryable), else the reason.
async fn not_retryable(tx: &mut Tx, version: &VersionRow) -> ModelResult<Option<String>> {
    let last = sqlx::query(
        "SELECT kind, data FROM events WHERE subject = $1 AND kind IN ('audit', 'fail') \
         ORDER BY seq DESC LIMIT 1",
    )
    .bind(version.subject())
    .fetch_optional(&mut **tx)
    .await?;
    let Some(last) = last else {
        return Ok(Some("nothing failed it".into()));
    };
    let data: serde_json::Value = serde_json::from_str(&last.get::<String, _>("data"))
        .map_err(|err| corrupt("an event's data", err))?;
    if last.get::<String, _>("kind") == "fail" {
        let reason = data["reason"].as_str().unwrap_or("a job failed");
        return Ok(
            (data["retryable"] != true).then(|| format!("it failed by its content: {reason}"))
        );
    }
    let body: Option<String> = sqlx::query_scalar(
        "SELECT body FROM reports WHERE version_id = $1 AND kind = 'audit' ORDER BY id DESC LIMIT 1",
    )
    .bind(version.id)
    .fetch_optional(&mut **tx)
    .await?;
    let report: AuditReport = match body {
        Some(body) => serde_json::from_str(&body).map_err(|err| corrupt("an audit report", err))?,
        None => return Ok(Some("its audit report is missing".into())),
    };
    let content: Vec<String> = report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Deny && f.code != FindingCode::AdvisoryDbStale)
        .map(|f| format!("{} ({})", f.message, f.code))
        .collect();
    Ok((!content.is_empty()).then(|| {
        format!(
            "its audit denied it for its content: {}",
            content.join("; ")
        )
    }))
}

/// Runs the audit and build of a failed version again, with the same bytes, as `actor` (an
/// admin): only when its failure was kiln's own state, not its content (a version's bytes can
/// never be replaced, and content that failed fails again).
pub async fn retry(
    tx: &mut Tx,
    version: &VersionRow,
    actor: &str,
    job_attempts: i64,
) -> ModelResult<()> {
    let subject = version.subject();
    if version.state != VersionState::Failed {
        return Err(ModelError::Conflict(format!(
            "{subject} is {}, not failed: only a failed version can be retried",
            version.state
        )));
    }
    if let Some(why) = not_retryable(tx, version).await? {
        return Err(ModelError::Conflict(format!(
            "{subject} cannot be retried: {why}; publish a new version instead"
        )));
    }
    transition(
        tx,
        version.id,
        &subject,
        ("retry", "retried"),
        &[VersionState::Failed],
        VersionState::Submitted,
        None,
    )
    .await?;
    // The closure it was submitted with, for its audit and build to resolve through.
    let closure: Option<String> = sqlx::query_scalar(
        "SELECT c.token FROM closures c JOIN closure_members m ON m.closure_id = c.id \
         WHERE m.version_id = $1 ORDER BY c.id DESC LIMIT 1",
    )
    .bind(version.id)
    .fetch_optional(&mut **tx)
    .await?;
    let payload = version.job(version.features.clone(), closure);
    jobs::drop_for_version(tx, version.id).await?;
    jobs::enqueue(tx, JobKind::Audit, &payload, job_attempts).await?;
    events::append(tx, "retry", &subject, actor, serde_json::json!({})).await?;
    Ok(())
}

/// Shows why a version in its audit or build is not moving (it keeps its state; the next
/// transition clears the reason).
pub async fn set_waiting_reason(tx: &mut Tx, version_id: i64, reason: &str) -> ModelResult<()> {
    sqlx::query("UPDATE versions SET state_reason = $1, updated_at = $2 WHERE id = $3 AND state IN ('submitted', 'audited')")
        .bind(reason)
        .bind(now_ms())
        .bind(version_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Yanks or unyanks a version, as `actor`.
pub async fn set_yanked(
    tx: &mut Tx,
    version: &VersionRow,
    yanked: bool,
    actor: &str,
) -> ModelResult<()> {
    sqlx::query("UPDATE versions SET yanked = $1, updated_at = $2 WHERE id = $3")
        .bind(i64::from(yanked))
        .bind(now_ms())
        .bind(version.id)
        .execute(&mut **tx)
        .await?;
    let kind = if yanked { "yank" } else { "unyank" };
    events::append(tx, kind, &version.subject(), actor, serde_json::json!({})).await?;
    Ok(())
}
