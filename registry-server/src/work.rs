//! The worker protocol's effects: a completed job moves its submission along
//! (`submitted → audited → built`, or `failed` when the audit denies), a failed one is retried,
//! waits, or fails the submission. The job is finished and the version moved in one
//! transaction, each guarded, so of two workers completing the same job one wins.

use kiln_wire::worker::{
    ArtifactRecord, CompleteRequest, Completion, FailKind, FailRequest, JobOutcome,
};

use crate::app::App;
use crate::model::jobs::{self, FailOutcome};
use crate::model::versions::{self, Stored};
use crate::model::{ModelError, ModelResult};
use crate::tokens::Authenticated;

/// The sizes of the artifacts a worker reports, each of which it must have uploaded.
async fn stored_sizes(app: &App, records: &[&ArtifactRecord]) -> ModelResult<Vec<u64>> {
    let mut sizes = Vec::with_capacity(records.len());
    for record in records {
        let size = app.blobs.size(&record.digest).await?.ok_or_else(|| {
            ModelError::Invalid(format!("artifact {} was not uploaded", record.digest))
        })?;
        sizes.push(size);
    }
    Ok(sizes)
}

/// Records job `id`'s result, reported by `worker` (`auth`).
pub async fn complete(
    app: &App,
    id: i64,
    request: &CompleteRequest,
    auth: &Authenticated,
) -> ModelResult<JobOutcome> {
    let records = request.completion.artifacts();
    let sizes = stored_sizes(app, &records).await?;
    let mut w = app.db.begin_write().await?;
    let job = jobs::finish(&mut w.tx, id, &request.worker).await?;
    if job.kind != request.completion.kind() {
        return Err(ModelError::Invalid(format!(
            "job {id} is a {} job, not a {} job",
            job.kind,
            request.completion.kind()
        )));
    }
    let stored: Vec<Stored<'_>> = records
        .iter()
        .zip(&sizes)
        .map(|(record, size)| Stored {
            record,
            size: *size,
        })
        .collect();
    let recorded = match &request.completion {
        Completion::Audit { report, .. } => {
            versions::record_audit(
                &mut w.tx,
                &job.payload,
                report,
                stored[0],
                &auth.login,
                app.config.job_attempts,
            )
            .await
        }
        Completion::Build { report, .. } => {
            versions::record_build(&mut w.tx, &job.payload, report, &stored, &auth.login).await
        }
    };
    match recorded {
        Ok(state) => {
            w.commit().await?;
            app.index_changed(&job.payload.krate);
            Ok(JobOutcome::Moved { state })
        }
        Err(conflict @ ModelError::Conflict(_)) => {
            drop(w);
            drop_job(app, id, &request.worker).await?;
            Err(conflict)
        }
        Err(err) => Err(err),
    }
}

/// Finishes a job whose version moved on without it (a reviewer rejected it meanwhile): its
/// result is not recorded, and it is not tried again.
async fn drop_job(app: &App, id: i64, worker: &str) -> ModelResult<()> {
    let mut w = app.db.begin_write().await?;
    jobs::finish(&mut w.tx, id, worker).await?;
    w.commit().await?;
    Ok(())
}

/// Records that job `id` did not finish: it is retried later, waits for an approval, or fails
/// its submission (at once when the submission is at fault, or after its last attempt).
pub async fn fail(
    app: &App,
    id: i64,
    request: &FailRequest,
    auth: &Authenticated,
) -> ModelResult<JobOutcome> {
    let job = jobs::held(&app.db, id, &request.worker).await?;
    let mut w = app.db.begin_write().await?;
    let outcome = match request.kind {
        FailKind::Waiting => {
            jobs::wait(&mut w.tx, id, &request.worker, &request.error).await?;
            versions::set_waiting_reason(&mut w.tx, job.payload.version_id, &request.error).await?;
            JobOutcome::Waiting {
                waiting_secs: jobs::WAIT.as_secs(),
            }
        }
        FailKind::Terminal => {
            jobs::give_up(&mut w.tx, id, &request.worker, &request.error).await?;
            let reason = format!("{} failed: {}", job.kind, request.error);
            fail_version(&mut w.tx, &job.payload, &reason, &auth.login, false).await?
        }
        FailKind::Retry => {
            match jobs::fail(&mut w.tx, id, &request.worker, &request.error).await? {
                FailOutcome::Retry(delay) => {
                    let reason = format!(
                        "{} will be retried in {} s: {}",
                        job.kind,
                        delay.as_secs(),
                        request.error
                    );
                    versions::set_waiting_reason(&mut w.tx, job.payload.version_id, &reason)
                        .await?;
                    JobOutcome::Retry {
                        retry_in_secs: delay.as_secs(),
                    }
                }
                FailOutcome::Dead => {
                    let reason = format!(
                        "{} failed after its last attempt: {}",
                        job.kind, request.error
                    );
                    fail_version(&mut w.tx, &job.payload, &reason, &auth.login, true).await?
                }
            }
        }
    };
    w.commit().await?;
    app.index_changed(&job.payload.krate);
    Ok(outcome)
}

/// Fails the job's version, unless it moved on already (rejected meanwhile): the job ends either
/// way.
async fn fail_version(
    tx: &mut crate::model::Tx,
    job: &kiln_wire::worker::JobPayload,
    reason: &str,
    actor: &str,
    retryable: bool,
) -> ModelResult<JobOutcome> {
    match versions::fail(tx, job, reason, actor, retryable).await {
        Ok(state) => Ok(JobOutcome::Moved { state }),
        Err(ModelError::Conflict(_)) => {
            let state = versions::state_of(tx, job.version_id).await?;
            Ok(JobOutcome::Moved { state })
        }
        Err(err) => Err(err),
    }
}
