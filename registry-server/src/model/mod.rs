//! The registry's domain model: every SQL statement and every state transition lives here, so
//! that handlers only extract a request, call the model (or a service built on it) and answer.
//!
//! A transition is one function: it updates the row `WHERE state = expected` in the same
//! transaction as the event it appends to the log, and answers [`ModelError::Conflict`] when
//! the row was not in the expected state, naming the state it was in. Two reviewers, or two
//! workers, racing on the same version therefore have exactly one winner.
//!
//! - [`users`], [`tokens`]: who may do what;
//! - [`crates`], [`versions`]: crates, their owners, and versions with their review state;
//! - [`closures`]: crates imported together, and the index their workers resolve them by;
//! - [`jobs`]: the audit and build queue;
//! - [`code_builds`]: code cells' builds, queued once per key and kept;
//! - [`reports`], [`artifacts`], [`reviews`]: what workers and reviewers record about a version;
//! - [`revocations`]: revoked digests;
//! - [`events`]: the hash-chained event log;
//! - [`index`]: what the sparse index serves.

pub mod artifacts;
pub mod closures;
pub mod code_builds;
pub mod crates;
pub mod deployment_keys;
pub mod events;
pub mod index;
pub mod jobs;
pub mod reports;
pub mod reviews;
pub mod revocations;
pub mod tokens;
pub mod users;
pub mod versions;

use kiln_wire::VersionState;

/// Why a model operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// What was named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The row is not in the state the operation needs (another request got there first, or
    /// the operation does not apply to it).
    #[error("{0}")]
    Conflict(String),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The request is well-formed but not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// The blob store failed.
    #[error(transparent)]
    Blob(#[from] crate::blobs::BlobError),
    /// Something kiln stored is not what kiln wrote.
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

/// What model functions return.
pub type ModelResult<T> = Result<T, ModelError>;

/// A state a transition found instead of the one it needed: "cannot approve a@1.0.0: it is
/// submitted, and only built versions can be approved".
pub(crate) fn wrong_state(
    action: &str,
    done: &str,
    subject: &str,
    actual: VersionState,
    allowed: &[VersionState],
) -> ModelError {
    let allowed: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
    ModelError::Conflict(format!(
        "cannot {action} {subject}: it is {actual}, and only {} versions can be {done}",
        allowed.join(", ")
    ))
}

/// A stored value that does not parse as what kiln wrote.
pub(crate) fn corrupt(what: &str, err: impl std::fmt::Display) -> ModelError {
    ModelError::Corrupt(format!("{what}: {err}"))
}

/// A transaction of the registry's database.
pub type Tx = sqlx::Transaction<'static, sqlx::Any>;
