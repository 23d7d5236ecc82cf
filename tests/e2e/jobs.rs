//! The job queue on both databases: leases, reclaiming a dead worker's job, retries with
//! backoff, dead-lettering, and many workers in two processes never claiming one job twice.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use kiln_policy::Digest;
use kiln_registry::db::Db;
use kiln_registry::model::ModelError;
use kiln_registry::model::jobs::{self, FailOutcome};
use kiln_tests::postgres::TestDatabase;
use kiln_wire::JobKind;
use kiln_wire::worker::JobPayload;

const BUILD: JobKind = JobKind::Build;
const AUDIT: JobKind = JobKind::Audit;

fn payload(n: usize) -> JobPayload {
    JobPayload {
        version_id: n as i64,
        krate: format!("crate-{n}"),
        version: "1.0.0".into(),
        checksum: Digest::of(n.to_string().as_bytes()),
        features: Default::default(),
        closure: None,
        origin: None,
    }
}

/// Records a failed attempt in a transaction of its own.
async fn fail(db: &Db, id: i64, worker: &str, error: &str) -> Result<FailOutcome, ModelError> {
    let mut w = db.begin_write().await.unwrap();
    let outcome = jobs::fail(&mut w.tx, id, worker, error).await?;
    w.commit().await.unwrap();
    Ok(outcome)
}

/// Finishes a job in a transaction of its own; whether the worker held it.
async fn finish(db: &Db, id: i64, worker: &str) -> bool {
    let mut w = db.begin_write().await.unwrap();
    let held = jobs::finish(&mut w.tx, id, worker).await.is_ok();
    w.commit().await.unwrap();
    held
}

/// Puts a job back to wait, in a transaction of its own; whether the worker held it.
async fn wait(db: &Db, id: i64, worker: &str, reason: &str) -> bool {
    let mut w = db.begin_write().await.unwrap();
    let held = jobs::wait(&mut w.tx, id, worker, reason).await.is_ok();
    w.commit().await.unwrap();
    held
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

async fn enqueue(db: &Db, n: usize, max_attempts: i64) -> Vec<i64> {
    let mut ids = Vec::new();
    let mut w = db.begin_write().await.unwrap();
    for i in 0..n {
        ids.push(
            jobs::enqueue(&mut w.tx, BUILD, &payload(i), max_attempts)
                .await
                .unwrap(),
        );
    }
    w.commit().await.unwrap();
    ids
}

async fn lease_reclaim_retry_and_dead_letter(db: &Db) {
    let [id] = enqueue(db, 1, 2).await[..] else {
        unreachable!()
    };
    let short = Duration::from_millis(200);
    let job = jobs::claim(db, BUILD, "w1", short)
        .await
        .unwrap()
        .expect("a ready job");
    assert_eq!((job.id, job.attempts), (id, 1));
    assert!(
        jobs::claim(db, BUILD, "w2", short).await.unwrap().is_none(),
        "a leased job is not claimed twice"
    );
    assert!(
        jobs::claim(db, AUDIT, "w2", short).await.unwrap().is_none(),
        "kinds are separate"
    );
    jobs::heartbeat(db, id, "w1", short).await.unwrap();

    // w1 dies: after the lease runs out, w2 gets the job, and w1 has lost it.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let job = jobs::claim(db, BUILD, "w2", Duration::from_secs(30))
        .await
        .unwrap()
        .expect("reclaimed");
    assert_eq!((job.id, job.attempts), (id, 2));
    assert!(
        matches!(
            jobs::heartbeat(db, id, "w1", short).await,
            Err(ModelError::Conflict(_))
        ),
        "the dead worker lost its lease"
    );
    assert!(matches!(
        fail(db, id, "w1", "late").await,
        Err(ModelError::Conflict(_))
    ));

    // Out of attempts: dead-lettered.
    assert_eq!(fail(db, id, "w2", "boom").await.unwrap(), FailOutcome::Dead);
    assert!(jobs::claim(db, BUILD, "w3", short).await.unwrap().is_none());

    // A retry waits for its backoff.
    let [retry] = enqueue(db, 1, 5).await[..] else {
        unreachable!()
    };
    jobs::claim(db, BUILD, "w1", short)
        .await
        .unwrap()
        .expect("ready");
    assert_eq!(
        fail(db, retry, "w1", "flaky").await.unwrap(),
        FailOutcome::Retry(jobs::RETRY_BASE)
    );
    assert!(
        jobs::claim(db, BUILD, "w1", short).await.unwrap().is_none(),
        "not before its backoff"
    );

    // Completing needs the lease.
    let [done] = enqueue(db, 1, 5).await[..] else {
        unreachable!()
    };
    jobs::claim(db, BUILD, "w1", short)
        .await
        .unwrap()
        .expect("ready");
    assert!(!finish(db, done, "someone-else").await);
    assert!(finish(db, done, "w1").await);
    let counts = jobs::counts(db).await.unwrap();
    assert!(
        counts.contains(&("build".into(), "dead".into(), 1)),
        "{counts:?}"
    );
    assert!(
        counts.contains(&("build".into(), "done".into(), 1)),
        "{counts:?}"
    );
}

/// Two connection pools stand for two processes; each runs four claiming workers.
async fn concurrent_claims_are_exclusive(first: Arc<Db>, second: Arc<Db>) {
    let ids = enqueue(&first, 60, 3).await;
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let db = if worker % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        tasks.push(tokio::spawn(async move {
            let name = format!("worker-{worker}");
            let mut mine = Vec::new();
            while let Some(job) = jobs::claim(&db, BUILD, &name, Duration::from_secs(60))
                .await
                .unwrap()
            {
                assert!(finish(&db, job.id, &name).await);
                mine.push(job.id);
            }
            mine
        }));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for task in tasks {
        for id in task.await.unwrap() {
            total += 1;
            assert!(seen.insert(id), "job {id} was claimed twice");
        }
    }
    assert_eq!(total, ids.len());
    assert_eq!(seen, ids.into_iter().collect());
}

/// A job that waits for an approval is queued again without using up an attempt, and an
/// approval (`jobs::wake`) makes it ready at once.
async fn waiting_costs_no_attempt_and_an_approval_wakes_it(db: &Db) {
    // An audit job, so that the build jobs the other checks leave behind stay out of the way.
    let mut w = db.begin_write().await.unwrap();
    let id = jobs::enqueue(&mut w.tx, AUDIT, &payload(0), 1)
        .await
        .unwrap();
    w.commit().await.unwrap();
    let lease = Duration::from_secs(60);
    for round in 0..3 {
        let job = jobs::claim(db, AUDIT, "w1", lease)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("round {round}: the waiting job is ready again"));
        assert_eq!((job.id, job.attempts), (id, 1), "waiting never counts");
        assert!(wait(db, id, "w1", "needs dep 1.0 approved").await);
        assert!(
            jobs::claim(db, AUDIT, "w2", lease).await.unwrap().is_none(),
            "a waiting job sleeps"
        );
        assert!(!wait(db, id, "w1", "again").await, "not held any more");
        let mut w = db.begin_write().await.unwrap();
        jobs::wake(&mut w.tx).await.unwrap();
        w.commit().await.unwrap();
    }
    let job = jobs::claim(db, AUDIT, "w1", lease).await.unwrap().unwrap();
    assert_eq!(job.id, id);
    assert_eq!(
        fail(db, job.id, "w1", "a real failure").await.unwrap(),
        FailOutcome::Dead,
        "a real failure still counts"
    );
}

#[test]
fn the_queue_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = Db::sqlite_url(dir.path());
    runtime().block_on(async {
        let db = Db::connect(&url).await.unwrap();
        lease_reclaim_retry_and_dead_letter(&db).await;
        let first = Arc::new(db);
        let second = Arc::new(Db::connect(&url).await.unwrap());
        concurrent_claims_are_exclusive(first.clone(), second).await;
        waiting_costs_no_attempt_and_an_approval_wakes_it(&first).await;
    });
}

#[test]
fn the_queue_on_postgres() {
    let database = TestDatabase::create();
    runtime().block_on(async {
        let db = Db::connect(&database.url).await.unwrap();
        lease_reclaim_retry_and_dead_letter(&db).await;
        let first = Arc::new(db);
        let second = Arc::new(Db::connect(&database.url).await.unwrap());
        concurrent_claims_are_exclusive(first.clone(), second.clone()).await;
        waiting_costs_no_attempt_and_an_approval_wakes_it(&first).await;
        first.close().await;
        second.close().await;
    });
}
