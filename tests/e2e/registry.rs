//! The registry with the real client: unmodified `cargo` publishes into quarantine and returns
//! at once, nobody can resolve or download a version until it is approved, then builds against
//! it; search, yank and unyank,
//! owners; wrong tokens change nothing. The same flow runs on SQLite and on PostgreSQL.

use kiln_tests::cargo::{CargoWorld, stderr};
use kiln_tests::postgres::TestDatabase;
use kiln_tests::server::{KilnServer, ServerOptions};
use serde_json::Value;

fn submissions(server: &KilnServer) -> Value {
    server.get_json("/api/kiln/v1/submissions", None)
}

/// `demo-stats`'s index line for `version`, asserted to be listed as awaiting approval.
fn awaiting_line(server: &KilnServer, version: &str) -> Value {
    let index = server
        .request(reqwest::Method::GET, "/index/de/mo/demo-stats", None)
        .send()
        .unwrap();
    assert_eq!(index.status(), 200);
    let text = index.text().unwrap();
    let line: Value = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["vers"] == version)
        .unwrap_or_else(|| panic!("{version} is not listed: {text}"));
    assert!(kiln_wire::index::is_awaiting(&line), "{line}");
    line
}

fn cargo_flow(server: &KilnServer) {
    let alice = server.token("alice", &["publish", "yank"]);
    let bob = server.token("bob", &["publish"]);
    let worker = server.token("builder", &["worker"]);
    let reviewer = server.token("rita", &["review"]);
    let world = CargoWorld::new(server);

    // Publish: accepted into quarantine. Cargo's wait for the index ends at once ("Published",
    // not "timed out waiting"), because the index lists the version as awaiting approval.
    let lib = world.library(
        "demo-stats",
        "0.1.0",
        "",
        "pub fn mean(xs: &[f64]) -> f64 { xs.iter().sum::<f64>() / xs.len() as f64 }\n",
    );
    let started = std::time::Instant::now();
    let out = world.publish(&lib, Some(&alice));
    println!("cargo publish returned after {:?}", started.elapsed());
    assert!(out.status.success(), "publish failed: {}", stderr(&out));
    for said in ["is in review", "Published demo-stats v0.1.0"] {
        assert!(stderr(&out).contains(said), "{said}: {}", stderr(&out));
    }
    assert!(!stderr(&out).contains("timed out"), "{}", stderr(&out));
    let listed = submissions(server);
    assert_eq!(listed[0]["crate"], "demo-stats");
    assert_eq!(listed[0]["state"], "submitted");
    let line = awaiting_line(server, "0.1.0");
    assert_eq!(line["yanked"], false, "{line}");

    // Neither another user nor the publisher can resolve or download it yet.
    let app = world.library(
        "demo-app",
        "0.1.0",
        "demo-stats = { version = \"0.1\", registry = \"kiln\" }",
        "pub fn go() -> f64 { demo_stats::mean(&[1.0, 2.0]) }\n",
    );
    for token in [&alice, &bob] {
        let out = world.cargo(&app, &["generate-lockfile"], Some(token));
        assert!(
            !out.status.success(),
            "resolution must fail before approval"
        );
        assert!(
            stderr(&out).contains("no matching package named `awaiting-kiln-approval`")
                && stderr(&out).contains("demo-stats v0.1.0"),
            "{}",
            stderr(&out)
        );
        let download = server
            .request(
                reqwest::Method::GET,
                "/api/v1/crates/demo-stats/0.1.0/download",
                Some(token),
            )
            .send()
            .unwrap();
        assert_eq!(download.status(), 404, "no download before approval");
    }

    // Approval needs a built version.
    let (status, body) = server.approve(&reviewer, "demo-stats", "0.1.0");
    assert_eq!(status, 409, "{body}");
    assert!(
        body["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("only built versions"),
        "{body}"
    );
    server.pass_audit_and_build(&worker, "demo-stats", "0.1.0");
    let (status, body) = server.approve(&reviewer, "demo-stats", "0.1.0");
    assert_eq!(status, 200, "{body}");

    // Now the index has the line, and the consumer builds against it.
    let index = server
        .request(reqwest::Method::GET, "/index/de/mo/demo-stats", None)
        .send()
        .unwrap();
    assert_eq!(index.status(), 200);
    let etag = index.headers()["etag"].to_str().unwrap().to_owned();
    let line: Value = serde_json::from_str(index.text().unwrap().trim_end()).unwrap();
    assert_eq!(line["vers"], "0.1.0");
    assert_eq!(line["yanked"], false);
    assert!(!kiln_wire::index::is_awaiting(&line), "{line}");
    let again = server
        .request(reqwest::Method::GET, "/index/de/mo/demo-stats", None)
        .header("If-None-Match", &etag)
        .send()
        .unwrap();
    assert_eq!(again.status(), 304);
    let out = world.cargo(&app, &["build"], None);
    assert!(
        out.status.success(),
        "the consumer must build after approval: {}",
        stderr(&out)
    );

    // Search.
    let out = world.cargo(&app, &["search", "--registry", "kiln", "stats"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("demo-stats = \"0.1.0\""),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Yank and unyank.
    let out = world.cargo(
        &app,
        &["yank", "--registry", "kiln", "demo-stats@0.1.0"],
        Some(&alice),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let index = server
        .request(reqwest::Method::GET, "/index/de/mo/demo-stats", None)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(index.contains("\"yanked\":true"), "{index}");
    let out = world.cargo(
        &app,
        &["yank", "--undo", "--registry", "kiln", "demo-stats@0.1.0"],
        Some(&alice),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let index = server
        .request(reqwest::Method::GET, "/index/de/mo/demo-stats", None)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(index.contains("\"yanked\":false"), "{index}");

    // Owners: bob cannot publish a new version until alice adds him.
    let v2 = world.library("demo-stats", "0.2.0", "", "pub fn mean() {}\n");
    let out = world.publish(&v2, Some(&bob));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not an owner"), "{}", stderr(&out));
    for args in [
        &["owner", "--registry", "kiln", "--add", "bob", "demo-stats"][..],
        &["owner", "--registry", "kiln", "--list", "demo-stats"][..],
    ] {
        let out = world.cargo(&app, args, Some(&alice));
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    let out = world.cargo(
        &app,
        &["owner", "--registry", "kiln", "--list", "demo-stats"],
        Some(&alice),
    );
    let owners = String::from_utf8_lossy(&out.stdout);
    assert!(
        owners.contains("alice") && owners.contains("bob"),
        "{owners}"
    );
    let out = world.publish(&v2, Some(&bob));
    assert!(out.status.success(), "{}", stderr(&out));

    // 0.2.0 awaits approval: a requirement 0.1.0 also meets resolves to 0.1.0.
    awaiting_line(server, "0.2.0");
    let open = world.library(
        "demo-open",
        "0.1.0",
        "demo-stats = { version = \">=0.1\", registry = \"kiln\" }",
        "\n",
    );
    let out = world.cargo(&open, &["generate-lockfile"], Some(&bob));
    assert!(out.status.success(), "{}", stderr(&out));
    let lock = std::fs::read_to_string(open.join("Cargo.lock")).unwrap();
    assert!(
        lock.contains("name = \"demo-stats\"\nversion = \"0.1.0\""),
        "{lock}"
    );
    let out = world.cargo(
        &app,
        &[
            "owner",
            "--registry",
            "kiln",
            "--remove",
            "bob",
            "demo-stats",
        ],
        Some(&alice),
    );
    assert!(out.status.success(), "{}", stderr(&out));

    // A wrong token is refused and changes nothing.
    let before = submissions(server);
    let v3 = world.library("demo-stats", "0.3.0", "", "\n");
    let out = world.publish(&v3, Some("kiln_0000"));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not valid"), "{}", stderr(&out));
    assert_eq!(submissions(server), before);

    // The event log holds every step and verifies.
    let out = std::process::Command::new(kiln_tests::kiln_binary())
        .args([
            "events",
            "--verify",
            "--registry",
            &server.url,
            "--token",
            &reviewer,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = server.get_json("/api/kiln/v1/events?limit=1000", Some(&reviewer));
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "publish",
        "audit",
        "build",
        "approve",
        "yank",
        "unyank",
        "owner-add",
        "owner-remove",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
}

#[test]
fn cargo_against_kiln_on_sqlite() {
    let server = KilnServer::start();
    cargo_flow(&server);
    assert!(server.stop().success(), "kiln serve stops cleanly");
}

#[test]
fn cargo_against_kiln_on_postgres() {
    let db = TestDatabase::create();
    let server = KilnServer::start_with(ServerOptions {
        database_url: Some(db.url.clone()),
        ..ServerOptions::default()
    });
    cargo_flow(&server);
    assert!(server.stop().success(), "kiln serve stops cleanly");
}
