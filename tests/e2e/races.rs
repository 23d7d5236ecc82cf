//! Decisions are final and exclusive: two reviewers approving and rejecting the same built
//! version at once, and two deliveries of the same job's result, each have exactly one winner;
//! the loser gets 409, signs and stores nothing, and the event log, the index and the stored
//! state agree with the winner. On SQLite and on PostgreSQL.

use std::sync::Barrier;

use kiln_tests::postgres::TestDatabase;
use kiln_tests::server::{KilnServer, ServerOptions};
use serde_json::{Value, json};

const ROUNDS: usize = 100;

/// Runs `a` and `b` at the same moment; returns both results.
fn at_once<A: Send, B: Send>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B + Send) -> (A, B) {
    let barrier = Barrier::new(2);
    std::thread::scope(|scope| {
        let first = scope.spawn(|| {
            barrier.wait();
            a()
        });
        let second = scope.spawn(|| {
            barrier.wait();
            b()
        });
        (first.join().unwrap(), second.join().unwrap())
    })
}

fn events_about<'a>(events: &'a [Value], subject: &str) -> Vec<&'a str> {
    events
        .iter()
        .filter(|e| e["subject"] == subject)
        .map(|e| e["kind"].as_str().unwrap())
        .collect()
}

fn approve_reject_race(server: &KilnServer) {
    let publisher = server.token("ada", &["publish"]);
    let worker = server.token("kiln-worker", &["worker"]);
    let rita = server.token("rita", &["review"]);
    let remy = server.token("remy", &["review"]);
    let (mut approved, mut rejected) = (0, 0);
    for round in 0..ROUNDS {
        let version = format!("1.0.{round}");
        let subject = format!("race@{version}");
        let (status, detail) = server.publish_file(&publisher, "race", &version);
        assert_eq!(status, 200, "{detail}");
        server.pass_audit_and_build(&worker, "race", &version);
        let blobs = server.blob_count();
        let ((a_status, a_body), (r_status, r_body)) = at_once(
            || server.approve(&rita, "race", &version),
            || {
                server.post_json(
                    &format!("/api/kiln/v1/submissions/race/{version}/reject"),
                    Some(&remy),
                    &json!({"reason": "a race"}),
                )
            },
        );
        let statuses = [a_status, r_status];
        assert!(
            statuses == [200, 409] || statuses == [409, 200],
            "round {round}: exactly one wins: {a_status} {a_body} / {r_status} {r_body}"
        );
        let detail = server.get_json(&format!("/api/kiln/v1/submissions/race/{version}"), None);
        let review_statements = detail["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["kind"] == "review")
            .count();
        let events = server.events(&rita);
        let decisions: Vec<&str> = events_about(&events, &subject)
            .into_iter()
            .filter(|k| matches!(*k, "approve" | "reject"))
            .collect();
        let index = server
            .request(reqwest::Method::GET, "/index/ra/ce/race", None)
            .send()
            .unwrap()
            .text()
            .unwrap();
        if a_status == 200 {
            approved += 1;
            assert_eq!(detail["state"], "approved", "round {round}: {detail}");
            assert_eq!(decisions, ["approve"], "round {round}");
            assert_eq!(review_statements, 1, "round {round}: {detail}");
            assert_eq!(server.blob_count(), blobs + 1, "round {round}");
            assert!(
                index.contains(&format!("\"vers\":\"{version}\"")),
                "{index}"
            );
            assert!(
                !index.contains(kiln_wire::index::AWAITING_APPROVAL),
                "{index}"
            );
        } else {
            rejected += 1;
            assert_eq!(detail["state"], "rejected", "round {round}: {detail}");
            assert_eq!(decisions, ["reject"], "round {round}");
            assert_eq!(
                review_statements, 0,
                "round {round}: the loser signed: {detail}"
            );
            assert_eq!(
                server.blob_count(),
                blobs,
                "round {round}: the losing approval stored a statement"
            );
            assert!(
                !index.contains(&format!("\"vers\":\"{version}\"")),
                "{index}"
            );
            assert!(
                a_body
                    .to_string()
                    .contains("only built versions can be approved"),
                "{a_body}"
            );
        }
    }
    eprintln!("approve/reject race: {approved} approvals won, {rejected} rejections won");
    let verified = server.get_json("/api/kiln/v1/events/verify", Some(&rita));
    assert_eq!(verified["ok"], true, "{verified}");
}

fn complete_race(server: &KilnServer) {
    let publisher = server.token("cleo", &["publish"]);
    let worker = server.token("kiln-worker-2", &["worker"]);
    let reviewer = server.token("rhea", &["review"]);
    for round in 0..ROUNDS / 2 {
        let version = format!("2.0.{round}");
        let subject = format!("twice@{version}");
        let (status, detail) = server.publish_file(&publisher, "twice", &version);
        assert_eq!(status, 200, "{detail}");
        let job = server.claim(&worker, "audit", "w1");
        let id = job["id"].as_i64().unwrap();
        let path = format!("/api/kiln/v1/jobs/{id}/complete");
        let first = server.completion(&worker, "audit", "w1");
        let second = server.completion(&worker, "audit", "w1");
        let ((s1, b1), (s2, b2)) = at_once(
            || server.post_json(&path, Some(&worker), &first),
            || server.post_json(&path, Some(&worker), &second),
        );
        let statuses = [s1, s2];
        assert!(
            statuses == [200, 409] || statuses == [409, 200],
            "round {round}: exactly one delivery wins: {s1} {b1} / {s2} {b2}"
        );
        let events = server.events(&reviewer);
        assert_eq!(
            events_about(&events, &subject),
            ["publish", "audit"],
            "round {round}"
        );
        let detail = server.get_json(&format!("/api/kiln/v1/submissions/twice/{version}"), None);
        assert_eq!(detail["state"], "audited", "round {round}: {detail}");
        assert_eq!(
            detail["artifacts"].as_array().unwrap().len(),
            1,
            "one audit statement: {detail}"
        );
        // One build job was queued: a worker gets it once.
        let build = server.claim(&worker, "build", "w1");
        assert_eq!(build["payload"]["version"], version);
        let (status, body) = server.post_json(
            &format!("/api/kiln/v1/jobs/{}/complete", build["id"]),
            Some(&worker),
            &server.completion(&worker, "build", "w1"),
        );
        assert_eq!(status, 200, "{body}");
        let (status, _) = server.post_json(
            "/api/kiln/v1/jobs/claim",
            Some(&worker),
            &json!({"kind": "build", "worker": "w1"}),
        );
        assert_eq!(status, 204, "round {round}: no second build job");
    }
}

/// A worker whose lease ran out, and the worker that claimed its job after it, both report:
/// the job's holder wins, the other gets 409.
fn expired_lease_race(server: &KilnServer) {
    let publisher = server.token("dora", &["publish"]);
    let worker = server.token("kiln-worker-3", &["worker"]);
    let (status, detail) = server.publish_file(&publisher, "late", "1.0.0");
    assert_eq!(status, 200, "{detail}");
    let (status, job) = server.post_json(
        "/api/kiln/v1/jobs/claim",
        Some(&worker),
        &json!({"kind": "audit", "worker": "slow", "lease_secs": 1}),
    );
    assert_eq!(status, 200, "{job}");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let again = server.claim(&worker, "audit", "fast");
    assert_eq!(again["id"], job["id"]);
    let path = format!("/api/kiln/v1/jobs/{}/complete", job["id"]);
    let slow = server.completion(&worker, "audit", "slow");
    let fast = server.completion(&worker, "audit", "fast");
    let ((s_slow, b_slow), (s_fast, b_fast)) = at_once(
        || server.post_json(&path, Some(&worker), &slow),
        || server.post_json(&path, Some(&worker), &fast),
    );
    assert_eq!((s_slow, s_fast), (409, 200), "{b_slow} / {b_fast}");
    assert!(
        b_slow.to_string().contains("not held by `slow`"),
        "{b_slow}"
    );
}

/// A worker that restarts under the same name mid-job (a `kiln serve` killed during a build)
/// gets its abandoned job back at its first claim, instead of waiting for the dead lease.
fn restarted_worker_resumes_its_own_job(server: &KilnServer) {
    let publisher = server.token("edna", &["publish"]);
    let worker = server.token("kiln-worker-4", &["worker"]);
    let (status, detail) = server.publish_file(&publisher, "resumed", "1.0.0");
    assert_eq!(status, 200, "{detail}");
    let first = server.claim(&worker, "audit", "in-process-abc");
    let again = server.claim(&worker, "audit", "in-process-abc");
    assert_eq!(again["id"], first["id"], "{again}");
    assert_eq!(again["attempts"], 2, "{again}");
    // Another worker does not take a job whose lease is live.
    let (status, body) = server.post_json(
        "/api/kiln/v1/jobs/claim",
        Some(&worker),
        &json!({"kind": "audit", "worker": "someone-else"}),
    );
    assert_eq!(status, 204, "{body}");
    let path = format!("/api/kiln/v1/jobs/{}/complete", again["id"]);
    let (status, body) = server.post_json(
        &path,
        Some(&worker),
        &server.completion(&worker, "audit", "in-process-abc"),
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn decisions_and_job_results_have_one_winner_on_sqlite() {
    let server = KilnServer::start();
    approve_reject_race(&server);
    complete_race(&server);
    expired_lease_race(&server);
    restarted_worker_resumes_its_own_job(&server);
}

#[test]
fn decisions_and_job_results_have_one_winner_on_postgres() {
    let database = TestDatabase::create();
    let server = KilnServer::start_with(ServerOptions {
        database_url: Some(database.url.clone()),
        ..ServerOptions::default()
    });
    approve_reject_race(&server);
    complete_race(&server);
    expired_lease_race(&server);
    restarted_worker_resumes_its_own_job(&server);
}
