//! Replicas of one deployment on one PostgreSQL database share one key set: a second replica
//! with no keys is refused at start (and makes none), one with other keys is refused, and one
//! given the first replica's keys starts, and what it signs (an approval, the revocation list)
//! verifies with the first replica's trust file. And the whole scale-out shape: two replicas on
//! one database and one blob store, a separate builder working for both, a kernel published on
//! one and approved on the other, run by a separate executor with the deployment's one trust
//! file.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kiln_policy::revocation::RevocationList;
use kiln_policy::{Expectation, Keyring, StatementKind, Verifier};
use kiln_tests::kiln_binary;
use kiln_tests::postgres::TestDatabase;
use kiln_tests::server::{KilnServer, ServerOptions};

/// Starts `kiln serve` on `data` and `database` expecting it to refuse; answers its stderr.
fn refused_start(data: &Path, database: &str) -> String {
    let mut child = Command::new(kiln_binary())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--no-builder",
            "--no-executor",
        ])
        .arg("--data")
        .arg(data)
        .args(["--database-url", database])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(!status.success(), "the replica started");
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            return err;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the replica started instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn replicas_share_one_key_set_and_other_keys_are_refused_at_start() {
    let database = TestDatabase::create();
    let first = KilnServer::start_with(ServerOptions {
        database_url: Some(database.url.clone()),
        ..ServerOptions::default()
    });

    // A second replica with a fresh data directory: refused, and no keys are made.
    let bare = tempfile::tempdir().unwrap();
    let said = refused_start(bare.path(), &database.url);
    assert!(
        said.contains("no signing key") && said.contains("copy that replica's keys/"),
        "{said}"
    );
    assert!(!bare.path().join("keys/builder.key").exists());

    // One with keys of its own: refused, naming the role and both key ids.
    let stranger = tempfile::tempdir().unwrap();
    let theirs = kiln_registry::keys::load_or_create(stranger.path(), true).unwrap();
    let said = refused_start(stranger.path(), &database.url);
    assert!(
        said.contains("is not the deployment's") && said.contains(&theirs.builder.id().to_string()),
        "{said}"
    );

    // One given the first replica's keys starts; what it signs verifies with the first's trust.
    let second = KilnServer::start_with(ServerOptions {
        database_url: Some(database.url.clone()),
        keys_from: Some(first.data_dir().to_owned()),
        ..ServerOptions::default()
    });
    assert!(second.banner.contains("none here"), "{}", second.banner);
    let keyring = Keyring::load(&first.data_dir().join("trust.toml")).unwrap();
    let list = second
        .request(reqwest::Method::GET, "/api/kiln/v1/revocations", None)
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    RevocationList::verify(&Verifier::new(&keyring), &list).unwrap();

    // Published on the first, approved on the second.
    let author = first.token("ada", &["publish"]);
    let worker = first.token("builders", &["worker"]);
    let reviewer = first.token("rita", &["review"]);
    let (status, body) = first.publish_file(&author, "replicated", "1.0.0");
    assert_eq!(status, 200, "{body}");
    first.pass_audit_and_build(&worker, "replicated", "1.0.0");
    let (status, body) = second.approve(&reviewer, "replicated", "1.0.0");
    assert_eq!(status, 200, "{body}");
    // (Each replica here keeps blobs in its own directory; a deployment shares one bucket.)
    let detail = second.get_json("/api/kiln/v1/submissions/replicated/1.0.0", None);
    let (_, bundle) = second.artifact(&detail, "review");
    let verified = Verifier::new(&keyring)
        .verify_json(
            &bundle,
            Expectation {
                kind: Some(StatementKind::Review),
                subject: None,
            },
        )
        .unwrap();
    assert_eq!(verified.key_name, "kiln reviewer");
}

/// An echo kernel on the SDK.
const ECHO: &str = r#"
use kiln_kernel::{Error, Input, Output};

fn echo(input: Input<'_>, out: &mut Output) -> Result<(), Error> {
    out.write_bytes(input.bytes())
}

kiln_kernel::kernel! {
    entry echo(input: "text/plain", output: "text/plain") => echo;
}
"#;

/// A process stopped when dropped.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_scaled_out_deployment_runs_a_kernel_published_on_one_replica_and_approved_on_another() {
    let fixtures = tempfile::tempdir().unwrap();
    let database = TestDatabase::create();
    let advisories = fixtures.path().join("advisories");
    kiln_tests::advisories::write(&advisories, "RUSTSEC-2099-0001", "someone-else", ">= 1.0.0");
    let policy = fixtures.path().join("policy.toml");
    std::fs::write(&policy, "[advisories]\nmax_db_age_days = 100000\n").unwrap();
    // Two replicas on one database and one blob store, neither building.
    let shared = |keys_from: Option<std::path::PathBuf>| ServerOptions {
        database_url: Some(database.url.clone()),
        blob_store: Some(fixtures.path().join("blobs").display().to_string()),
        args: vec!["--policy".into(), policy.display().to_string()],
        keys_from,
        ..ServerOptions::default()
    };
    let a = KilnServer::start_with(shared(None));
    let b = KilnServer::start_with(shared(Some(a.data_dir().to_owned())));
    let author = a.token("ada", &["publish"]);
    let reviewer = a.token("rita", &["review"]);
    let worker = a.token("builders", &["worker"]);
    let runner = a.token("dana", &["run"]);

    // A separate builder working for both replicas, with the deployment's builder key.
    let replicas = format!("{},{}", a.url, b.url);
    let _builder = Running(
        Command::new(kiln_binary())
            .args(["builder", "--registry", &replicas, "--name", "scale-out"])
            .arg("--key")
            .arg(a.data_dir().join("keys/builder.key"))
            .arg("--advisory-db")
            .arg(&advisories)
            .arg("--policy")
            .arg(&policy)
            .arg("--cache")
            .arg(fixtures.path().join("build-cache"))
            .env("KILN_TOKEN", &worker)
            .env("KILN_KEY_PASSWORD", "")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // The SDK and a kernel published on A, built by the builder, approved on B.
    let world = kiln_tests::cargo::CargoWorld::new(&a);
    for (dir, name) in [("abi", "kiln-abi"), ("sdk", "kiln-kernel")] {
        let out = world.publish(&kiln_tests::workspace_root().join(dir), Some(&author));
        assert!(out.status.success(), "{}", kiln_tests::cargo::stderr(&out));
        assert_eq!(a.settled(name, "0.1.0")["state"], "built");
        let (status, body) = b.approve(&reviewer, name, "0.1.0");
        assert_eq!(status, 200, "{body}");
        // An approval on B reaches A's index (where the version awaited approval) within its
        // 2 s cache.
        let path = format!("/index/{}/{}/{name}", &name[..2], &name[2..4]);
        let started = Instant::now();
        let approved_on_a = || {
            let text = a
                .request(reqwest::Method::GET, &path, None)
                .send()
                .unwrap()
                .text()
                .unwrap();
            text.lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .any(|l| kiln_wire::index::is_available(&l))
        };
        while !approved_on_a() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{name} is not in A's index"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let kernel = world.kernel(
        "kernel-scaled",
        "0.1.0",
        "kiln-kernel = { version = \"0.1.0\", registry = \"kiln\" }",
        ECHO,
    );
    let out = world.publish(&kernel, Some(&author));
    assert!(out.status.success(), "{}", kiln_tests::cargo::stderr(&out));
    let detail = b.settled("kernel-scaled", "0.1.0");
    assert_eq!(detail["state"], "built", "{detail}");
    let (status, body) = b.approve(&reviewer, "kernel-scaled", "0.1.0");
    assert_eq!(status, 200, "{body}");
    let wasm = detail["reports"]["build"]["kernel"]["wasm"].clone();

    // A separate executor reading replica B with the deployment's one trust file runs it.
    let mut executor = Command::new(kiln_binary())
        .args(["executor", "--listen", "127.0.0.1:0", "--registry", &b.url])
        .arg("--trust")
        .arg(a.data_dir().join("trust.toml"))
        .arg("--data")
        .arg(fixtures.path().join("executor"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(executor.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    let executor_url = first
        .trim()
        .strip_prefix("kiln executor listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {first:?}"))
        .to_owned();
    let _executor = Running(executor);
    let notebook = serde_json::json!({
        "kiln_notebook": 1,
        "kernels": {"k": {"crate": "kernel-scaled", "version": "0.1.0", "wasm": wasm}},
        "cells": [{"type": "kernel", "id": "c", "kernel": "k", "entry": "echo",
                   "input": {"text": "scaled out"}}],
    });
    let started = Instant::now();
    let answer = loop {
        let response = reqwest::blocking::Client::new()
            .post(format!("{executor_url}/v1/runs"))
            .header("Authorization", &runner)
            .json(&notebook)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        let answer: serde_json::Value = response.json().unwrap();
        // Until its first revocation list arrives, every cell is refused.
        if status == 200 || started.elapsed() > Duration::from_secs(30) {
            assert_eq!(status, 200, "{answer}");
            break answer;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(answer["record"]["cells"][0]["status"], "ok", "{answer}");
    assert_eq!(answer["outputs"]["c"]["text"], "scaled out", "{answer}");
}
