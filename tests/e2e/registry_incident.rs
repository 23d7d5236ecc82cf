//! Incident response and backpressure: revoking a version (451 on download, yanked in the
//! index, named in the signed revocation list), and the publish rate limit (429 with
//! Retry-After, nothing stored).

use std::process::Command;

use kiln_tests::crate_file::{CrateFile, metadata, publish_body};
use kiln_tests::server::{KilnServer, ServerOptions};
use reqwest::Method;

fn publish(
    server: &KilnServer,
    token: &str,
    name: &str,
    version: &str,
) -> reqwest::blocking::Response {
    let body = publish_body(
        metadata(name, version).to_string().as_bytes(),
        &CrateFile::valid(name, version).gzip(),
    );
    server
        .request(Method::PUT, "/api/v1/crates/new", Some(token))
        .body(body)
        .send()
        .unwrap()
}

#[test]
fn a_revoked_version_is_refused_and_listed_in_the_signed_list() {
    let server = KilnServer::start();
    let alice = server.token("alice", &["publish"]);
    let worker = server.token("builder", &["worker"]);
    assert_eq!(publish(&server, &alice, "risky", "1.0.0").status(), 200);
    server.pass_audit_and_build(&worker, "risky", "1.0.0");
    assert_eq!(server.approve(&server.admin_token, "risky", "1.0.0").0, 200);
    let download = "/api/v1/crates/risky/1.0.0/download";
    assert_eq!(
        server
            .request(Method::GET, download, None)
            .send()
            .unwrap()
            .status(),
        200
    );

    let revoke = serde_json::json!({"target": "risky@1.0.0", "reason": "CVE-2026-0001: exfiltrates notebook data"});
    let (status, body) = server.post_json("/api/kiln/v1/revocations", Some(&alice), &revoke);
    assert_eq!(status, 403, "{body}");
    let (status, body) = server.post_json(
        "/api/kiln/v1/revocations",
        Some(&server.admin_token),
        &revoke,
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.post_json(
        "/api/kiln/v1/revocations",
        Some(&server.admin_token),
        &revoke,
    );
    assert_eq!(status, 409, "revoking twice: {body}");
    let (status, _) = server.post_json(
        "/api/kiln/v1/revocations",
        Some(&server.admin_token),
        &serde_json::json!({"target": "risky@9.9.9", "reason": "x"}),
    );
    assert_eq!(status, 404);

    let response = server.request(Method::GET, download, None).send().unwrap();
    assert_eq!(response.status(), 451);
    assert!(response.text().unwrap().contains("CVE-2026-0001"));
    let index = server
        .request(Method::GET, "/index/ri/sk/risky", None)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(index.contains("\"yanked\":true"), "{index}");

    // The list is a bundle the server's revocation key signed; the trust file it wrote on first
    // start verifies it with the real CLI.
    let list = server.get_json("/api/kiln/v1/revocations", None);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("revocations.json");
    std::fs::write(&path, list.to_string()).unwrap();
    let out = Command::new(kiln_tests::kiln_binary())
        .args([
            "attest",
            "verify",
            "--kind",
            "revocation",
            "--json",
            "--bundle",
        ])
        .arg(&path)
        .arg("--trust")
        .arg(server.data_dir().join("trust.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let statement: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries = statement["predicate"]["entries"].as_array().unwrap();
    assert_eq!(
        entries.len(),
        4,
        "the .crate, the (test worker's) audit statement and build log, and the review statement signed at approval: {entries:?}"
    );
    assert_eq!(entries[0]["crate"], "risky");
    assert!(
        entries[0]["digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    let events = server.get_json("/api/kiln/v1/events?limit=1000", Some(&server.admin_token));
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "revoke")
    );
}

#[test]
fn publishing_too_fast_is_answered_with_429_and_retry_after() {
    let server = KilnServer::start_with(ServerOptions {
        args: vec!["--publish-per-minute".into(), "2".into()],
        ..ServerOptions::default()
    });
    let alice = server.token("alice", &["publish"]);
    assert_eq!(publish(&server, &alice, "fast", "0.1.0").status(), 200);
    assert_eq!(publish(&server, &alice, "fast", "0.2.0").status(), 200);
    let response = publish(&server, &alice, "fast", "0.3.0");
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert!(response.text().unwrap().contains("try again in"));
    let listed = server.get_json("/api/kiln/v1/submissions", None);
    assert_eq!(
        listed.as_array().unwrap().len(),
        2,
        "the refused publish stored nothing"
    );
    // Other users are not held back.
    let bob = server.token("bob", &["publish"]);
    assert_eq!(publish(&server, &bob, "other", "0.1.0").status(), 200);
}

#[test]
fn operators_get_health_metrics_and_the_api_description() {
    let server = KilnServer::start();
    let alice = server.token("alice", &["publish"]);
    assert_eq!(publish(&server, &alice, "counted", "0.1.0").status(), 200);
    assert_eq!(server.get_json("/healthz", None)["status"], "ok");
    let metrics = server
        .request(Method::GET, "/metrics", None)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(metrics.contains("kiln_publish_total 1"), "{metrics}");
    assert!(
        metrics.contains("kiln_versions{state=\"submitted\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("kiln_jobs{kind=\"audit\",state=\"queued\"} 1"),
        "{metrics}"
    );
    let openapi = server.get_json("/openapi.json", None);
    assert!(openapi["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/kiln/v1/submissions",
        "/api/kiln/v1/submissions/{name}/{version}/approve",
        "/api/kiln/v1/jobs/claim",
        "/api/kiln/v1/revocations",
        "/api/kiln/v1/imports",
    ] {
        assert!(
            openapi["paths"].get(path).is_some(),
            "{path} missing from /openapi.json"
        );
    }
}
