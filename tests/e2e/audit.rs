//! The in-process audit worker and the advisory database's lifecycle, end to end: real
//! `cargo publish`, the worker's `cargo metadata` against the registry's own index, signed
//! audit statements, and a database sync that re-audits approved versions and revokes the ones
//! a new advisory affects.

use std::path::Path;
use std::time::{Duration, Instant};

use kiln_policy::checks::advisories::AdvisoryDb;
use kiln_policy::{Expectation, Keyring, StatementKind, Verifier};
use kiln_tests::cargo::{CargoWorld, stderr};
use kiln_tests::crate_file::{self, CrateFile, publish_body};
use kiln_tests::kiln_binary;
use kiln_tests::server::{KilnServer, ServerOptions};
use serde_json::Value;

fn show(server: &KilnServer, name: &str, version: &str) -> Value {
    server.get_json(&format!("/api/kiln/v1/submissions/{name}/{version}"), None)
}

/// Waits until the in-process worker has audited `name@version`.
fn audited(server: &KilnServer, name: &str, version: &str) -> Value {
    let start = Instant::now();
    loop {
        let detail = show(server, name, version);
        if detail["state"] != "submitted" {
            return detail;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{name}@{version} was not audited: {detail}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits for the in-process builder to build `name@version` (a library: compiled for the
/// kernel target), then approves it.
fn build_and_approve(server: &KilnServer, reviewer: &str, name: &str, version: &str) {
    let start = Instant::now();
    loop {
        let detail = show(server, name, version);
        if detail["state"] == "built" {
            break;
        }
        assert!(
            detail["state"] == "audited" && start.elapsed() < Duration::from_secs(120),
            "{name}@{version} was not built: {detail}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, body) = server.approve(reviewer, name, version);
    assert_eq!(status, 200, "{body}");
}

/// Runs `kiln ARGS [PATH] --registry URL --token ADMIN` against `server` with its admin token.
fn admin_kiln(server: &KilnServer, args: &[&str], path: Option<&Path>) -> std::process::Output {
    let mut command = std::process::Command::new(kiln_binary());
    command.args(args);
    if let Some(path) = path {
        command.arg(path);
    }
    command
        .args(["--registry", &server.url, "--token", &server.admin_token])
        .output()
        .unwrap()
}

#[test]
fn submissions_are_audited_and_a_database_sync_revokes_newly_affected_versions() {
    let fixtures = tempfile::tempdir().unwrap();
    let first = fixtures.path().join("db-1");
    kiln_tests::advisories::write(&first, "RUSTSEC-2099-0001", "someone-else", ">= 1.0.0");
    let policy = fixtures.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[advisories]\nmax_db_age_days = 100000\nrevoke_affected = true\n",
    )
    .unwrap();
    let server = KilnServer::start_with(ServerOptions {
        workers: true,
        args: vec![
            "--advisory-source".into(),
            first.display().to_string(),
            "--policy".into(),
            policy.display().to_string(),
        ],
        ..ServerOptions::default()
    });
    let author = server.token("ada", &["publish"]);
    let reviewer = server.token("rita", &["review"]);
    let world = CargoWorld::new(&server);

    // A library with no dependencies: audited, passes, with a signed audit statement.
    let base = world.library("audit-base", "1.0.0", "", "pub fn one() -> u32 { 1 }\n");
    let out = world.publish(&base, Some(&author));
    assert!(out.status.success(), "{}", stderr(&out));
    let detail = audited(&server, "audit-base", "1.0.0");
    assert!(
        matches!(detail["state"].as_str(), Some("audited" | "built")),
        "{detail}"
    );
    let report = &detail["reports"]["audit"];
    assert_eq!(report["schema"], "https://kiln.dev/schemas/audit-report/v1");
    assert_eq!(report["verdict"], "pass", "{report}");
    assert_eq!(report["subject"]["name"], "audit-base");
    let bundle_digest = detail["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "audit")
        .expect("an audit statement")["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let bundle = server
        .request(
            reqwest::Method::GET,
            &format!("/api/kiln/v1/artifacts/{bundle_digest}"),
            None,
        )
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    let keyring = Keyring::load(&server.data_dir().join("trust.toml")).unwrap();
    let checksum: kiln_policy::Digest = report["subject"]["checksum"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let verified = Verifier::new(&keyring)
        .verify_json(
            &bundle,
            Expectation {
                kind: Some(StatementKind::Audit),
                subject: Some(checksum),
            },
        )
        .unwrap();
    assert_eq!(verified.statement.predicate["verdict"], "pass");
    build_and_approve(&server, &reviewer, "audit-base", "1.0.0");

    // A crate depending on it: resolved against this registry, the dependency in the report.
    let app = world.library(
        "audit-app",
        "1.0.0",
        "audit-base = { version = \"1.0.0\", registry = \"kiln\" }",
        "pub fn two() -> u32 { audit_base::one() + 1 }\n",
    );
    let out = world.publish(&app, Some(&author));
    assert!(out.status.success(), "{}", stderr(&out));
    let detail = audited(&server, "audit-app", "1.0.0");
    let report = &detail["reports"]["audit"];
    assert_eq!(report["verdict"], "pass", "{report}");
    let packages: Vec<&str> = report["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(packages.contains(&"audit-base"), "{packages:?}");
    build_and_approve(&server, &reviewer, "audit-app", "1.0.0");

    // A name one edit from an approved crate needs review.
    let imitation = world.library("audit-bass", "1.0.0", "", "pub fn f() {}\n");
    let out = world.publish(&imitation, Some(&author));
    assert!(out.status.success(), "{}", stderr(&out));
    let detail = audited(&server, "audit-bass", "1.0.0");
    let report = &detail["reports"]["audit"];
    assert_eq!(report["verdict"], "needs-review", "{report}");
    assert_eq!(report["findings"][0]["code"], "typosquat", "{report}");

    // The database gains an advisory against audit-base 1.0.0: the sync re-audits both approved
    // versions, records them as affected and (by this policy) revokes them.
    let second = fixtures.path().join("db-2");
    kiln_tests::advisories::write(&second, "RUSTSEC-2099-0001", "someone-else", ">= 1.0.0");
    kiln_tests::advisories::write(&second, "RUSTSEC-2099-0002", "audit-base", ">= 1.0.1");
    let out = admin_kiln(
        &server,
        &["advisories", "sync", "--json", "--from"],
        Some(&second),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let synced: Value = serde_json::from_slice(&out.stdout).unwrap();
    let affected: Vec<String> = synced["reaudit"]["affected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{}@{} {}",
                a["crate"].as_str().unwrap(),
                a["version"].as_str().unwrap(),
                a["revoked"]
            )
        })
        .collect();
    assert_eq!(
        affected,
        ["audit-base@1.0.0 true", "audit-app@1.0.0 true"],
        "{synced}"
    );
    assert_eq!(synced["reaudit"]["checked"], 2, "{synced}");
    assert_eq!(
        AdvisoryDb::open(&server.data_dir().join("advisory-db"))
            .unwrap()
            .count,
        2
    );
    let download = server
        .request(
            reqwest::Method::GET,
            "/api/v1/crates/audit-base/1.0.0/download",
            None,
        )
        .send()
        .unwrap();
    assert_eq!(download.status(), 451, "a revoked crate is not served");
    let events = server.get_json("/api/kiln/v1/events?limit=1000", Some(&server.admin_token));
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"advisory-affected"), "{kinds:?}");
    let out = admin_kiln(&server, &["events", "--verify"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The same source again changes nothing; a corrupt source is refused and keeps the database.
    let out = admin_kiln(&server, &["advisories", "sync", "--from"], Some(&second));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("unchanged"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let corrupt = fixtures.path().join("db-3");
    kiln_tests::advisories::write(&corrupt, "RUSTSEC-2099-0001", "someone-else", ">= 1.0.0");
    std::fs::write(
        corrupt.join("crates/someone-else/RUSTSEC-2099-0009.md"),
        "```toml\n[advisory]\nid = 7\n```\n",
    )
    .unwrap();
    let out = admin_kiln(&server, &["advisories", "sync", "--from"], Some(&corrupt));
    assert_eq!(out.status.code(), Some(1));
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(
        message.contains("not a usable advisory database"),
        "{message}"
    );
    assert_eq!(message.trim().lines().count(), 1, "one line: {message}");
    assert_eq!(
        AdvisoryDb::open(&server.data_dir().join("advisory-db"))
            .unwrap()
            .count,
        2
    );
}

/// Publishes a hand-made `.crate` (`Cargo.toml` as given, one source file) through the HTTP
/// API, with the publish metadata Cargo would send for `deps`.
fn publish_hand_made(
    server: &KilnServer,
    token: &str,
    name: &str,
    cargo_toml: &str,
    deps: Value,
) -> (u16, String) {
    let version = "1.0.0";
    let mut file = CrateFile::new();
    file.file(
        &format!("{name}-{version}/Cargo.toml"),
        cargo_toml.as_bytes(),
    );
    file.file(&format!("{name}-{version}/src/lib.rs"), b"pub fn f() {}\n");
    let mut meta = crate_file::metadata(name, version);
    meta["deps"] = deps;
    let response = server
        .request(reqwest::Method::PUT, "/api/v1/crates/new", Some(token))
        .body(publish_body(meta.to_string().as_bytes(), &file.gzip()))
        .send()
        .unwrap();
    (response.status().as_u16(), response.text().unwrap())
}

#[test]
fn hand_made_sources_are_denied_unfetched_and_an_unapproved_dependency_waits_for_approval() {
    let fixtures = tempfile::tempdir().unwrap();
    let server = KilnServer::start_with(ServerOptions::building(fixtures.path(), &[]));
    let author = server.token("ada", &["publish"]);
    let reviewer = server.token("rita", &["review"]);
    let world = CargoWorld::new(&server);

    // A manifest declaring a git repository and a foreign index on a loopback listener, and a
    // host path: denied from what it declares; nothing is fetched and nothing is built.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let hostile = format!(
        "[package]\nname = \"sources-hostile\"\nversion = \"1.0.0\"\nedition = \"2021\"\nlicense = \"MIT\"\n\n\
         [dependencies]\n\
         payload = {{ git = \"http://127.0.0.1:{port}/payload.git\" }}\n\
         host = {{ path = \"/etc\", version = \"1\" }}\n\
         mirror = {{ version = \"1\", registry-index = \"sparse+http://127.0.0.1:{port}/index/\" }}\n"
    );
    let (status, body) = publish_hand_made(
        &server,
        &author,
        "sources-hostile",
        &hostile,
        serde_json::json!([]),
    );
    assert_eq!(status, 200, "{body}");
    let detail = server.settled("sources-hostile", "1.0.0");
    assert_eq!(detail["state"], "failed", "{detail}");
    let report = &detail["reports"]["audit"];
    assert_eq!(report["verdict"], "deny", "{report}");
    let findings: Vec<(String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_owned(),
                f["subject"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    for expected in [
        ("source-git", "payload"),
        ("source-path", "host"),
        ("source-registry", "mirror"),
    ] {
        assert!(
            findings.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} in {findings:?}"
        );
    }
    assert!(
        report["findings"]
            .to_string()
            .contains(&format!("127.0.0.1:{port}/payload.git")),
        "the git URL is named: {report}"
    );
    assert!(
        listener.accept().is_err(),
        "the auditor connected to the declared git repository or index"
    );
    let kinds: Vec<&str> = detail["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["audit"],
        "only the signed audit statement: {detail}"
    );

    // A dependency that is built but not approved: the dependent waits, saying for what, and
    // the approval wakes it.
    let base = world.library("wait-base", "1.0.0", "", "pub fn one() -> u32 { 1 }\n");
    let out = world.publish(&base, Some(&author));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(server.settled("wait-base", "1.0.0")["state"], "built");
    let index = server.index_url();
    let dependent = format!(
        "[package]\nname = \"wait-app\"\nversion = \"1.0.0\"\nedition = \"2021\"\nlicense = \"MIT\"\n\n\
         [dependencies.wait-base]\nversion = \"^1.0.0\"\nregistry-index = \"{index}\"\n"
    );
    let deps = serde_json::json!([{
        "name": "wait-base", "version_req": "^1.0.0", "features": [], "optional": false,
        "default_features": true, "target": null, "kind": "normal", "registry": null,
    }]);
    let (status, body) = publish_hand_made(&server, &author, "wait-app", &dependent, deps);
    assert_eq!(status, 200, "{body}");
    let start = Instant::now();
    let waiting = loop {
        let detail = show(&server, "wait-app", "1.0.0");
        assert_eq!(detail["state"], "submitted", "{detail}");
        if let Some(reason) = detail["state_reason"].as_str() {
            break reason.to_owned();
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no waiting reason: {detail}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        waiting.contains("needs `wait-base` approved first"),
        "{waiting}"
    );
    let (status, body) = server.approve(&reviewer, "wait-base", "1.0.0");
    assert_eq!(status, 200, "{body}");
    let woken = Instant::now();
    let detail = server.settled("wait-app", "1.0.0");
    assert_eq!(detail["state"], "built", "{detail}");
    assert!(
        woken.elapsed() < Duration::from_secs(50),
        "the approval woke the waiting job rather than its {} s retry",
        60
    );
    assert!(detail["state_reason"].is_null(), "{detail}");

    // A dependency declared the crates.io way (no registry): the worker's Cargo replaces
    // crates.io with this registry, so it resolves to the approved crate here and passes.
    let plain = "[package]\nname = \"plain-app\"\nversion = \"1.0.0\"\nedition = \"2021\"\nlicense = \"MIT\"\n\n\
         [dependencies]\nwait-base = \"1.0.0\"\n";
    let deps = serde_json::json!([{
        "name": "wait-base", "version_req": "^1.0.0", "features": [], "optional": false,
        "default_features": true, "target": null, "kind": "normal",
        "registry": "https://github.com/rust-lang/crates.io-index",
    }]);
    let (status, body) = publish_hand_made(&server, &author, "plain-app", plain, deps);
    assert_eq!(status, 200, "{body}");
    let detail = server.settled("plain-app", "1.0.0");
    assert_eq!(detail["state"], "built", "{detail}");
    assert_eq!(detail["reports"]["audit"]["verdict"], "pass", "{detail}");
}

#[test]
fn crates_named_by_the_public_url_resolve_here_when_workers_reach_the_server_elsewhere() {
    let fixtures = tempfile::tempdir().unwrap();
    let server = KilnServer::start_with(ServerOptions {
        public_host: Some("localhost".into()),
        ..ServerOptions::building(fixtures.path(), &[])
    });
    assert!(
        server.url.starts_with("http://localhost:"),
        "{}",
        server.url
    );
    let author = server.token("ada", &["publish"]);
    let reviewer = server.token("rita", &["review"]);
    let world = CargoWorld::new(&server);

    // Cargo packs the dependency with `registry-index = "sparse+http://localhost:PORT/index/"`;
    // the in-process workers reach the server at 127.0.0.1 and resolve it there all the same.
    let base = world.library("alias-base", "1.0.0", "", "pub fn one() -> u32 { 1 }\n");
    let out = world.publish(&base, Some(&author));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(server.settled("alias-base", "1.0.0")["state"], "built");
    let (status, body) = server.approve(&reviewer, "alias-base", "1.0.0");
    assert_eq!(status, 200, "{body}");
    let app = world.library(
        "alias-app",
        "1.0.0",
        "alias-base = { version = \"1.0.0\", registry = \"kiln\" }",
        "pub fn two() -> u32 { alias_base::one() + 1 }\n",
    );
    let out = world.publish(&app, Some(&author));
    assert!(out.status.success(), "{}", stderr(&out));
    let detail = server.settled("alias-app", "1.0.0");
    assert_eq!(detail["state"], "built", "{detail}");
    let report = &detail["reports"]["audit"];
    assert_eq!(report["verdict"], "pass", "{report}");
    assert!(
        report["packages"]
            .to_string()
            .contains("sparse+http://localhost:"),
        "the lockfile names the public URL: {report}"
    );
}

#[test]
fn a_version_failed_by_a_stale_database_is_retried_after_a_sync_and_one_failed_by_its_content_is_not()
 {
    let fixtures = tempfile::tempdir().unwrap();
    // A database whose newest advisory is from 2000: older than the policy's ten years.
    let stale = fixtures.path().join("db-stale");
    kiln_tests::advisories::write_dated(
        &stale,
        "RUSTSEC-2000-0001",
        "someone-else",
        ">= 1.0.0",
        "2000-01-01",
    );
    let policy = fixtures.path().join("policy.toml");
    std::fs::write(&policy, "[advisories]\nmax_db_age_days = 3650\n").unwrap();
    let server = KilnServer::start_with(ServerOptions {
        workers: true,
        args: vec![
            "--advisory-source".into(),
            stale.display().to_string(),
            "--policy".into(),
            policy.display().to_string(),
        ],
        ..ServerOptions::default()
    });
    // Said at start, not at the first publish.
    assert!(
        server.banner.contains("warning:")
            && server.banner.contains("older than the policy's 3650 days"),
        "{}",
        server.banner
    );
    let author = server.token("ada", &["publish"]);
    let reviewer = server.token("rita", &["review"]);
    let toml = |name: &str, license: &str| {
        format!(
            "[package]\nname = \"{name}\"\nversion = \"1.0.0\"\nedition = \"2021\"\nlicense = \"{license}\"\n"
        )
    };
    let (status, body) = publish_hand_made(
        &server,
        &author,
        "retry-me",
        &toml("retry-me", "MIT"),
        Value::Array(vec![]),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = publish_hand_made(
        &server,
        &author,
        "retry-closed",
        &toml("retry-closed", "LicenseRef-Proprietary"),
        Value::Array(vec![]),
    );
    assert_eq!(status, 200, "{body}");
    for name in ["retry-me", "retry-closed"] {
        let detail = audited(&server, name, "1.0.0");
        assert_eq!(detail["state"], "failed", "{detail}");
        assert!(
            detail["reports"]["audit"]
                .to_string()
                .contains("advisory-db-stale"),
            "{detail}"
        );
    }

    // Only an admin retries.
    let refused = server
        .request(
            reqwest::Method::POST,
            "/api/kiln/v1/submissions/retry-me/1.0.0/retry",
            Some(&reviewer),
        )
        .send()
        .unwrap()
        .status();
    assert_eq!(refused, 403);

    // After a sync, the version the stale database failed passes with the same bytes.
    let fresh = fixtures.path().join("db-fresh");
    kiln_tests::advisories::write(&fresh, "RUSTSEC-2099-0001", "someone-else", ">= 1.0.0");
    let out = admin_kiln(&server, &["advisories", "sync", "--from"], Some(&fresh));
    assert!(out.status.success(), "{}", stderr(&out));
    let before = show(&server, "retry-me", "1.0.0")["checksum"].clone();
    let out = admin_kiln(&server, &["review", "retry", "retry-me@1.0.0"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("submitted again"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The author follows it with `kiln status --wait` until the reviewer decides.
    let follow = std::process::Command::new(kiln_binary())
        .args(["status", "retry-me@1.0.0", "--wait", "--timeout", "5m"])
        .args(["--registry", &server.url, "--token", &author])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let detail = audited(&server, "retry-me", "1.0.0");
    assert!(
        matches!(detail["state"].as_str(), Some("audited" | "built")),
        "{detail}"
    );
    assert_eq!(detail["reports"]["audit"]["verdict"], "pass", "{detail}");
    assert_eq!(detail["checksum"], before, "the same bytes");
    build_and_approve(&server, &reviewer, "retry-me", "1.0.0");
    // The build's log, as the compiler wrote it in the sandbox.
    let out = admin_kiln(
        &server,
        &["review", "show", "retry-me@1.0.0", "--build-log"],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(log.contains("retry-me"), "{log}");
    let followed = follow.wait_with_output().unwrap();
    assert!(followed.status.success(), "{}", stderr(&followed));
    let said = String::from_utf8_lossy(&followed.stdout);
    assert!(
        said.contains("retry-me@1.0.0: approved")
            && said.contains("audit: pass")
            && said.contains("approved by rita"),
        "{said}"
    );

    // A version its content failed cannot be retried into approval, before or after the sync.
    let out = admin_kiln(&server, &["review", "retry", "retry-closed@1.0.0"], None);
    assert!(!out.status.success());
    let said = stderr(&out);
    assert!(
        said.contains("cannot be retried") && said.contains("license-denied"),
        "{said}"
    );
    assert_eq!(show(&server, "retry-closed", "1.0.0")["state"], "failed");
    // It has no build log; its author sees why it failed, and `kiln status` exits 1.
    let out = admin_kiln(
        &server,
        &["review", "show", "retry-closed@1.0.0", "--build-log"],
        None,
    );
    assert!(
        !out.status.success() && stderr(&out).contains("has no build log yet"),
        "{}",
        stderr(&out)
    );
    let out = admin_kiln(&server, &["status", "retry-closed@1.0.0"], None);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("retry-closed@1.0.0: failed") && said.contains("license-denied"),
        "{said}"
    );
    // Nor can a version that did not fail.
    let out = admin_kiln(&server, &["review", "retry", "retry-me@1.0.0"], None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not failed"), "{}", stderr(&out));
}
