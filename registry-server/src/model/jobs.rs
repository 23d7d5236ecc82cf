//! The job queue, in the database: audit and build jobs that workers claim with a lease, keep
//! alive with heartbeats, and complete or fail. Failures are retried with exponential backoff
//! and dead-lettered after the job's attempt limit; a job whose worker died is claimed again
//! when its lease runs out. On PostgreSQL, claims use `FOR UPDATE SKIP LOCKED`, so any number of
//! builder processes can share the queue.

use std::time::Duration;

use kiln_wire::JobKind;
use kiln_wire::worker::{Job, JobPayload};
use sqlx::Row as _;

use super::{ModelError, ModelResult, Tx, corrupt};
use crate::db::{Backend, Db, now_ms};

/// The delay before the first retry; it doubles with each failed attempt.
pub const RETRY_BASE: Duration = Duration::from_secs(5);
/// The longest delay between retries.
pub const RETRY_MAX: Duration = Duration::from_secs(600);

/// Queues a job of `kind` about `payload` inside `tx`.
pub async fn enqueue(
    tx: &mut Tx,
    kind: JobKind,
    payload: &JobPayload,
    max_attempts: i64,
) -> ModelResult<i64> {
    let now = now_ms();
    let payload = serde_json::to_string(payload).map_err(|err| corrupt("a job payload", err))?;
    Ok(sqlx::query_scalar(
        "INSERT INTO jobs (kind, payload, state, attempts, max_attempts, run_at, created_at, updated_at) \
         VALUES ($1, $2, 'queued', 0, $3, $4, $4, $4) RETURNING id",
    )
    .bind(kind.as_str())
    .bind(payload)
    .bind(max_attempts)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?)
}

fn job(row: &sqlx::any::AnyRow) -> ModelResult<Job> {
    let kind: String = row.get("kind");
    let payload: String = row.get("payload");
    Ok(Job {
        id: row.get("id"),
        kind: kind.parse().map_err(|err| corrupt("a job's kind", err))?,
        payload: serde_json::from_str(&payload).map_err(|err| corrupt("a job's payload", err))?,
        attempts: row.get("attempts"),
        max_attempts: row.get("max_attempts"),
        lease_until: row.get::<Option<i64>, _>("lease_until").unwrap_or_default(),
    })
}

/// Claims the next ready job of `kind` for `worker`, for `lease`. Jobs whose lease expired count
/// as a failed attempt: they are claimed again, or dead-lettered when out of attempts.
///
/// A worker name runs one job of a kind at a time, so a worker that claims holds nothing of
/// that kind: a job of that kind still leased to its name was abandoned (the worker restarted
/// under the same name mid-job) and is claimable at once, as if its lease had run out.
pub async fn claim(
    db: &Db,
    kind: JobKind,
    worker: &str,
    lease: Duration,
) -> ModelResult<Option<Job>> {
    let now = now_ms();
    let mut w = db.begin_write().await?;
    sqlx::query(
        "UPDATE jobs SET state = 'dead', last_error = 'the worker stopped heartbeating (lease expired)', \
         lease_until = NULL, updated_at = $1 \
         WHERE state = 'running' AND (lease_until < $1 OR (kind = $2 AND worker = $3)) \
           AND attempts >= max_attempts",
    )
    .bind(now)
    .bind(kind.as_str())
    .bind(worker)
    .execute(&mut *w.tx)
    .await?;
    let lock = match db.backend() {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, worker = $1, lease_until = $2, updated_at = $3 \
         WHERE id = (SELECT id FROM jobs WHERE kind = $4 AND \
           ((state = 'queued' AND run_at <= $3) \
            OR (state = 'running' AND (lease_until < $3 OR worker = $1))) \
           ORDER BY run_at, id LIMIT 1 {lock}) \
         RETURNING id, kind, payload, attempts, max_attempts, lease_until"
    );
    let row = sqlx::query(&sql)
        .bind(worker)
        .bind(now + lease.as_millis() as i64)
        .bind(now)
        .bind(kind.as_str())
        .fetch_optional(&mut *w.tx)
        .await?;
    w.commit().await?;
    row.as_ref().map(job).transpose()
}

/// Extends the lease of a job `worker` holds; a conflict when the lease was lost (it ran out
/// and another worker claimed the job, or the job was finished).
pub async fn heartbeat(db: &Db, id: i64, worker: &str, lease: Duration) -> ModelResult<()> {
    let now = now_ms();
    let mut w = db.begin_write().await?;
    let done = sqlx::query(
        "UPDATE jobs SET lease_until = $1, updated_at = $2 \
         WHERE id = $3 AND worker = $4 AND state = 'running' AND lease_until >= $2",
    )
    .bind(now + lease.as_millis() as i64)
    .bind(now)
    .bind(id)
    .bind(worker)
    .execute(&mut *w.tx)
    .await?;
    if done.rows_affected() != 1 {
        return Err(not_held(&mut w.tx, id, worker).await);
    }
    w.commit().await?;
    Ok(())
}

/// Marks job `id` done inside `tx`, if `worker` holds it, and returns it; a conflict when the
/// worker no longer holds it (its lease ran out and another worker claimed it, or it was
/// finished). One statement decides, so of two workers completing the same job one wins.
pub async fn finish(tx: &mut Tx, id: i64, worker: &str) -> ModelResult<Job> {
    let row = sqlx::query(
        "UPDATE jobs SET state = 'done', lease_until = NULL, updated_at = $1 \
         WHERE id = $2 AND worker = $3 AND state = 'running' \
         RETURNING id, kind, payload, attempts, max_attempts, lease_until",
    )
    .bind(now_ms())
    .bind(id)
    .bind(worker)
    .fetch_optional(&mut **tx)
    .await?;
    match row {
        Some(row) => job(&row),
        None => Err(not_held(tx, id, worker).await),
    }
}

/// Why `worker` cannot act on job `id`: it does not exist, or another holds it.
async fn not_held(tx: &mut Tx, id: i64, worker: &str) -> ModelError {
    let exists = sqlx::query_scalar::<_, i64>("SELECT id FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await;
    match exists {
        Ok(None) => ModelError::NotFound(format!("no job {id}")),
        Ok(Some(_)) => ModelError::Conflict(format!("job {id} is not held by `{worker}`")),
        Err(err) => err.into(),
    }
}

/// Job `id`, if `worker` holds it.
pub async fn held(db: &Db, id: i64, worker: &str) -> ModelResult<Job> {
    let row = sqlx::query(
        "SELECT id, kind, payload, attempts, max_attempts, lease_until FROM jobs \
         WHERE id = $1 AND worker = $2 AND state = 'running'",
    )
    .bind(id)
    .bind(worker)
    .fetch_optional(db.pool())
    .await?;
    match row {
        Some(row) => job(&row),
        None => {
            let mut w = db.begin_write().await?;
            Err(not_held(&mut w.tx, id, worker).await)
        }
    }
}

/// What became of a failed job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// It will run again after the delay.
    Retry(Duration),
    /// It is out of attempts and dead-lettered.
    Dead,
}

/// The delay before retrying after `attempts` failed attempts.
pub fn backoff(attempts: i64) -> Duration {
    let exponent = attempts.saturating_sub(1).clamp(0, 20) as u32;
    RETRY_BASE
        .saturating_mul(2u32.saturating_pow(exponent))
        .min(RETRY_MAX)
}

/// Records a failed attempt of a job `worker` holds, inside `tx`: retry later, or dead-letter
/// it.
pub async fn fail(tx: &mut Tx, id: i64, worker: &str, error: &str) -> ModelResult<FailOutcome> {
    let now = now_ms();
    let row = sqlx::query("SELECT attempts, max_attempts FROM jobs WHERE id = $1 AND worker = $2 AND state = 'running'")
        .bind(id)
        .bind(worker)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(row) = row else {
        return Err(not_held(tx, id, worker).await);
    };
    let attempts: i64 = row.get("attempts");
    let max_attempts: i64 = row.get("max_attempts");
    let outcome = if attempts >= max_attempts {
        FailOutcome::Dead
    } else {
        FailOutcome::Retry(backoff(attempts))
    };
    let (state, run_at) = match outcome {
        FailOutcome::Retry(delay) => ("queued", now + delay.as_millis() as i64),
        _ => ("dead", now),
    };
    sqlx::query(
        "UPDATE jobs SET state = $1, run_at = $2, last_error = $3, lease_until = NULL, updated_at = $4 WHERE id = $5",
    )
    .bind(state)
    .bind(run_at)
    .bind(error)
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(outcome)
}

/// How long a job waiting for something outside it (a dependency's approval) sleeps before it
/// is tried again; an approval wakes waiting jobs at once.
pub const WAIT: Duration = Duration::from_secs(60);

/// Puts a held job back in the queue for [`WAIT`] inside `tx`, without counting the attempt: it
/// is waiting for something outside it (a dependency's approval), not failing.
pub async fn wait(tx: &mut Tx, id: i64, worker: &str, reason: &str) -> ModelResult<()> {
    let now = now_ms();
    let done = sqlx::query(
        "UPDATE jobs SET state = 'queued', attempts = attempts - 1, run_at = $1, last_error = $2, \
         lease_until = NULL, worker = NULL, updated_at = $3 WHERE id = $4 AND worker = $5 AND state = 'running'",
    )
    .bind(now + WAIT.as_millis() as i64)
    .bind(reason)
    .bind(now)
    .bind(id)
    .bind(worker)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() != 1 {
        return Err(not_held(tx, id, worker).await);
    }
    Ok(())
}

/// Finishes job `id` now without another attempt, inside `tx` (the submission itself is at
/// fault).
pub async fn give_up(tx: &mut Tx, id: i64, worker: &str, error: &str) -> ModelResult<()> {
    let done = sqlx::query(
        "UPDATE jobs SET state = 'dead', last_error = $1, lease_until = NULL, updated_at = $2 \
         WHERE id = $3 AND worker = $4 AND state = 'running'",
    )
    .bind(error)
    .bind(now_ms())
    .bind(id)
    .bind(worker)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() != 1 {
        return Err(not_held(tx, id, worker).await);
    }
    Ok(())
}

/// Drops the queued and running jobs of version `version_id` inside `tx` (a new review round
/// replaces them); a worker still running one loses its lease and its result is refused.
pub async fn drop_for_version(tx: &mut Tx, version_id: i64) -> ModelResult<()> {
    let now = now_ms();
    let jobs: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, payload FROM jobs WHERE state IN ('queued', 'running')")
            .fetch_all(&mut **tx)
            .await?;
    for (id, payload) in jobs {
        let payload: JobPayload =
            serde_json::from_str(&payload).map_err(|err| corrupt("a job's payload", err))?;
        if payload.version_id == version_id {
            sqlx::query(
                "UPDATE jobs SET state = 'dead', last_error = 'superseded by a new review round', \
                 lease_until = NULL, updated_at = $1 WHERE id = $2",
            )
            .bind(now)
            .bind(id)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

/// Wakes every queued job that is waiting: after an approval, what waited for it may go on.
pub async fn wake(tx: &mut Tx) -> ModelResult<()> {
    sqlx::query("UPDATE jobs SET run_at = $1 WHERE state = 'queued' AND run_at > $1")
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Counts of jobs by kind and state, for metrics and the CLI.
pub async fn counts(db: &Db) -> ModelResult<Vec<(String, String, i64)>> {
    let rows = sqlx::query(
        "SELECT kind, state, COUNT(*) AS n FROM jobs GROUP BY kind, state ORDER BY kind, state",
    )
    .fetch_all(db.pool())
    .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get("kind"), r.get("state"), r.get("n")))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(1), Duration::from_secs(5));
        assert_eq!(backoff(2), Duration::from_secs(10));
        assert_eq!(backoff(3), Duration::from_secs(20));
        assert_eq!(backoff(100), RETRY_MAX);
    }
}
