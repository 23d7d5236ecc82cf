//! The worker loop shared by the audit and build workers: claim a job, keep its lease alive
//! with heartbeats while it runs, report the result or the failure, idle when the queue is
//! empty, stop when told.

use std::future::Future;
use std::time::Duration;

use kiln_wire::JobKind;
use kiln_wire::worker::FailKind;

use crate::client::{Client, Job};

/// The lease a worker asks for; it heartbeats every third of it.
pub const LEASE_SECS: u64 = 120;

/// Why one job did not finish.
#[derive(Debug)]
pub struct JobError {
    /// What went wrong.
    pub message: String,
    /// What should become of the job.
    pub kind: FailKind,
}

impl JobError {
    /// A failure worth retrying (the registry, the disk).
    pub fn retry(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            kind: FailKind::Retry,
        }
    }

    /// A failure of the submission itself.
    pub fn terminal(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            kind: FailKind::Terminal,
        }
    }

    /// Not a failure: the job waits for an approval (it is queued again, and woken by one).
    pub fn waiting(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            kind: FailKind::Waiting,
        }
    }
}

/// The submission a job is about, its `.crate` fetched and checked against its checksum.
#[derive(Debug)]
pub struct SubmittedCrate {
    /// The crate's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The `.crate` checksum.
    pub checksum: kiln_policy::Digest,
    /// The `.crate`.
    pub bytes: Vec<u8>,
}

/// Fetches the job's `.crate` from the registry.
pub async fn submitted_crate(client: &Client, job: &Job) -> Result<SubmittedCrate, JobError> {
    let checksum = job.payload.checksum;
    let bytes = client
        .blob(&checksum)
        .await
        .map_err(|err| JobError::retry(err.to_string()))?;
    if kiln_policy::Digest::of(&bytes) != checksum {
        return Err(JobError::retry(
            "the stored .crate does not match its checksum",
        ));
    }
    Ok(SubmittedCrate {
        name: job.payload.krate.clone(),
        version: job.payload.version.clone(),
        checksum,
        bytes,
    })
}

/// Claims jobs of `kind` and runs `handle` on each until `stop` resolves. `handle` returns a
/// short outcome for the log (it reports completion to the registry itself).
pub async fn run<F, Fut>(
    client: Client,
    kind: JobKind,
    poll: Duration,
    stop: impl Future<Output = ()>,
    handle: F,
) where
    F: Fn(Client, Job) -> Fut,
    Fut: Future<Output = Result<String, JobError>>,
{
    crate::workdir::sweep_abandoned();
    tokio::pin!(stop);
    loop {
        let claimed = tokio::select! {
            () = &mut stop => return,
            claimed = client.claim(kind, LEASE_SECS) => claimed,
        };
        let job = match claimed {
            Ok(Some(job)) => job,
            Ok(None) => {
                tokio::select! {
                    () = &mut stop => return,
                    () = tokio::time::sleep(poll) => {}
                }
                continue;
            }
            Err(err) => {
                tracing::warn!(error = %err, %kind, "claiming a job");
                tokio::select! {
                    () = &mut stop => return,
                    () = tokio::time::sleep(poll * 4) => {}
                }
                continue;
            }
        };
        let subject = job.payload.subject();
        let heartbeat = {
            let client = client.clone();
            let id = job.id;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(LEASE_SECS / 3)).await;
                    if let Err(err) = client.heartbeat(id, LEASE_SECS).await {
                        tracing::warn!(error = %err, id, "heartbeat");
                    }
                }
            })
        };
        let id = job.id;
        let result = handle(client.clone(), job).await;
        heartbeat.abort();
        match result {
            Ok(outcome) => tracing::info!(%subject, %kind, outcome, "job done"),
            Err(err) => {
                tracing::warn!(%subject, %kind, error = %err.message, "job failed");
                if let Err(report) = client.fail(id, &err.message, err.kind).await {
                    tracing::warn!(error = %report, "reporting the failure");
                }
            }
        }
    }
}
