//! The code-build queue through its API, with the test as the builder, on SQLite and on
//! PostgreSQL: a request is queued once and answered from the cache after; of two builders
//! claiming at once one gets it; stages and results are recorded only from the builder holding
//! the build; a builder's own failure is tried again until its last attempt; a signed build
//! serves its artifacts; other tokens are refused.

use kiln_tests::cargo::{CargoWorld, stderr};
use kiln_tests::postgres::TestDatabase;
use kiln_tests::server::{KilnServer, ServerOptions};
use serde_json::{Value, json};

fn request(source: &str) -> Value {
    json!({"source": source, "input_type": "text/plain", "output_type": "text/plain"})
}

fn claim(server: &KilnServer, worker_token: &str, worker: &str) -> (u16, Value) {
    server.post_json(
        "/api/kiln/v1/code-builds/claim",
        Some(worker_token),
        &json!({"worker": worker, "lease_secs": 60}),
    )
}

fn report(server: &KilnServer, token: &str, key: &Value, report: &Value) -> (u16, Value) {
    server.post_json(
        &format!("/api/kiln/v1/code-builds/{}/report", key.as_str().unwrap()),
        Some(token),
        report,
    )
}

fn status(server: &KilnServer, token: &str, key: &Value) -> Value {
    server.get_json(
        &format!("/api/kiln/v1/code-builds/{}", key.as_str().unwrap()),
        Some(token),
    )
}

fn queue(server: &KilnServer) {
    let author = server.token("ada", &["publish"]);
    let worker = server.token("builders", &["worker"]);
    let reviewer = server.token("rita", &["review"]);
    let runner = server.token("dana", &["run"]);

    // Every code cell is built with the SDK, which must be approved first.
    let world = CargoWorld::new(server);
    let sdk = world.library("kiln-kernel", "0.1.0", "", "pub fn sdk() {}\n");
    let out = world.publish(&sdk, Some(&author));
    assert!(out.status.success(), "{}", stderr(&out));
    server.pass_audit_and_build(&worker, "kiln-kernel", "0.1.0");
    let (code, body) = server.approve(&reviewer, "kiln-kernel", "0.1.0");
    assert_eq!(code, 200, "{body}");

    // Only the deployment's services (worker scope) may ask.
    let (code, _) = server.post_json(
        "/api/kiln/v1/code-builds",
        Some(&runner),
        &request("out.write_str(\"a\")"),
    );
    assert_eq!(code, 403);

    // Queued once, then answered from the record.
    let (code, first) = server.post_json(
        "/api/kiln/v1/code-builds",
        Some(&worker),
        &request("out.write_str(\"a\")"),
    );
    assert_eq!(code, 200, "{first}");
    assert_eq!(
        (&first["stage"], &first["cached"]),
        (&json!("queued"), &json!(false))
    );
    assert_eq!(
        first["request"]["dependencies"]["kiln-kernel"]["version"],
        "0.1.0"
    );
    let (_, again) = server.post_json(
        "/api/kiln/v1/code-builds",
        Some(&worker),
        &request("out.write_str(\"a\")"),
    );
    assert_eq!(
        (&again["key"], &again["cached"]),
        (&first["key"], &json!(true))
    );
    let key = &first["key"];

    // Two builders claim at once: one gets it, the other finds nothing.
    let claims: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = ["b1", "b2"]
            .map(|name| {
                let worker = &worker;
                scope.spawn(move || claim(server, worker, name))
            })
            .into_iter()
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let won: Vec<&Value> = claims
        .iter()
        .filter(|(code, _)| *code == 200)
        .map(|(_, job)| job)
        .collect();
    assert_eq!(won.len(), 1, "{claims:?}");
    assert!(claims.iter().any(|(code, _)| *code == 204), "{claims:?}");
    assert_eq!(&won[0]["key"], key);
    let holder = if claims[0].0 == 200 { "b1" } else { "b2" };
    let other = if holder == "b1" { "b2" } else { "b1" };
    assert_eq!(status(server, &worker, key)["stage"], "compiling");

    // Only the holder moves it on.
    let (code, _) = report(
        server,
        &worker,
        key,
        &json!({"outcome": "stage", "worker": other, "stage": "checking"}),
    );
    assert_eq!(code, 409);
    assert_eq!(status(server, &worker, key)["stage"], "compiling");
    let (code, body) = report(
        server,
        &worker,
        key,
        &json!({"outcome": "stage", "worker": holder, "stage": "checking"}),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(status(server, &worker, key)["stage"], "checking");

    // A builder's own failure is queued again, until the last attempt fails the build.
    for attempt in 1..=3 {
        if attempt > 1 {
            let (code, job) = claim(server, &worker, holder);
            assert_eq!((code, &job["key"]), (200, key), "attempt {attempt}: {job}");
        }
        let (code, body) = report(
            server,
            &worker,
            key,
            &json!({"outcome": "failed", "worker": holder, "error": "the sandbox died", "retry": true}),
        );
        assert_eq!(code, 200, "{body}");
        let expected = if attempt < 3 { "queued" } else { "failed" };
        assert_eq!(
            status(server, &worker, key)["stage"],
            expected,
            "attempt {attempt}"
        );
    }
    assert_eq!(
        claim(server, &worker, holder).0,
        204,
        "a failed build is not tried again"
    );
    let failed = status(server, &worker, key);
    assert_eq!(failed["error"], "the sandbox died", "{failed}");

    // Another source builds and is signed; asking again answers the signed build.
    let (_, second) = server.post_json(
        "/api/kiln/v1/code-builds",
        Some(&worker),
        &request("out.write_str(\"b\")"),
    );
    assert_ne!(&second["key"], key);
    let (code, job) = claim(server, &worker, "b1");
    assert_eq!((code, &job["key"]), (200, &second["key"]), "{job}");
    let blobs: Vec<String> = ["manifest", "wasm", "cwasm", "provenance", "audit", "log"]
        .iter()
        .map(|kind| server.upload(&worker, format!("{kind} of a code cell").into_bytes()))
        .collect();
    let artifacts = json!({
        "manifest": blobs[0], "wasm": blobs[1], "cwasm": blobs[2],
        "provenance": blobs[3], "audit": blobs[4], "log": blobs[5],
    });
    let (code, body) = report(
        server,
        &worker,
        &second["key"],
        &json!({"outcome": "signed", "worker": "b1", "artifacts": artifacts}),
    );
    assert_eq!(code, 200, "{body}");
    let (_, signed) = server.post_json(
        "/api/kiln/v1/code-builds",
        Some(&worker),
        &request("out.write_str(\"b\")"),
    );
    assert_eq!(
        (&signed["stage"], &signed["cached"]),
        (&json!("signed"), &json!(true))
    );
    assert_eq!(signed["artifacts"], artifacts, "{signed}");
    // A late report of a build that is done changes nothing.
    let (code, _) = report(
        server,
        &worker,
        &second["key"],
        &json!({"outcome": "failed", "worker": "b1", "error": "late"}),
    );
    assert_eq!(code, 409);
    assert_eq!(status(server, &worker, &second["key"])["stage"], "signed");
}

#[test]
fn the_code_build_queue_on_sqlite() {
    let server = KilnServer::start();
    queue(&server);
}

#[test]
fn the_code_build_queue_on_postgres() {
    let db = TestDatabase::create();
    let server = KilnServer::start_with(ServerOptions {
        database_url: Some(db.url.clone()),
        ..ServerOptions::default()
    });
    queue(&server);
}
