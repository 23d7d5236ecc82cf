//! The executor under clients that misbehave: clients that go away while their cells spin, and
//! streaming clients that never read. Each must cost no more than its own run: a normal run
//! right after gets a slot at once.

use std::io::Write as _;
use std::time::{Duration, Instant};

use kiln_tests::cargo::{CargoWorld, stderr};
use kiln_tests::server::{KilnServer, ServerOptions};
use kiln_tests::workspace_root;
use serde_json::{Value, json};

/// A server whose executor has two slots, with the SDK and the hostile kernel approved; a run
/// token and the notebook lock of the hostile kernel.
fn executor_with_two_slots(fixtures: &std::path::Path) -> (KilnServer, String, Value) {
    let options = ServerOptions::building(
        fixtures,
        &["--executor-slots", "2", "--stream-write-timeout", "2s"],
    );
    // Enough fuel per cell that a spinning cell runs into its wall-clock limit (30 s).
    std::fs::write(
        fixtures.join("policy.toml"),
        "[advisories]\nmax_db_age_days = 100000\n\n[execution]\nmax_fuel = 10000000000000\n",
    )
    .unwrap();
    let server = KilnServer::start_with(options);
    let author = server.token("ada", &["publish"]);
    let reviewer = server.token("rita", &["review"]);
    let runner = server.token("dana", &["run"]);
    let world = CargoWorld::new(&server);
    world.publish_sdk(&server, &author, &reviewer);
    let out = world.publish(
        &workspace_root().join("tests/kernels/hostile"),
        Some(&author),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let detail = server.settled("kernel-hostile", "0.1.0");
    assert_eq!(detail["state"], "built", "{detail}");
    let (status, body) = server.approve(&reviewer, "kernel-hostile", "0.1.0");
    assert_eq!(status, 200, "{body}");
    let detail = server.get_json("/api/kiln/v1/submissions/kernel-hostile/0.1.0", None);
    let (wasm, _) = server.artifact(&detail, "wasm");
    let (cwasm, _) = server.artifact(&detail, "cwasm");
    let lock = json!({"crate": "kernel-hostile", "version": "0.1.0",
                      "wasm": wasm.to_string(), "cwasm": cwasm.to_string()});
    (server, runner, lock)
}

/// A notebook of `cells` cells calling `entry` of the hostile kernel on `input`.
fn notebook_of(lock: &Value, entry: &str, input: &str, cells: usize) -> Vec<u8> {
    let cells: Vec<Value> = (0..cells)
        .map(|n| {
            json!({"type": "kernel", "id": format!("c{n}"), "kernel": "bad", "entry": entry,
                   "input": {"text": input}, "grants": ["wasi_snapshot_preview1.*"],
                   "limits": {"fuel": 10_000_000_000_000u64, "memory_bytes": 64 << 20, "wall_ms": 30_000,
                              "output_bytes": 8 << 20}})
        })
        .collect();
    serde_json::to_vec(&json!({"kiln_notebook": 1, "kernels": {"bad": lock}, "cells": cells}))
        .unwrap()
}

fn notebook(lock: &Value, entry: &str) -> Vec<u8> {
    notebook_of(lock, entry, "hello", 1)
}

/// A normal run, timed: its status, answer and how long it took.
fn normal_run(server: &KilnServer, runner: &str, lock: &Value) -> (u16, Value, Duration) {
    let started = Instant::now();
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/v1/runs", server.url))
        .header("Authorization", runner)
        .body(notebook(lock, "echo"))
        .timeout(Duration::from_secs(60))
        .send()
        .unwrap();
    let status = response.status().as_u16();
    let answer: Value = response.json().unwrap();
    (status, answer, started.elapsed())
}

#[test]
fn clients_that_go_away_or_stop_reading_cost_only_their_own_run() {
    let fixtures = tempfile::tempdir().unwrap();
    let (server, runner, lock) = executor_with_two_slots(fixtures.path());

    // Six clients ask for spinning cells (30 s each) and give up after a second.
    let spinning = notebook(&lock, "spin");
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let (url, runner, body) = (server.url.clone(), runner.clone(), spinning.clone());
            std::thread::spawn(move || {
                reqwest::blocking::Client::new()
                    .post(format!("{url}/v1/runs"))
                    .header("Authorization", runner)
                    .body(body)
                    .timeout(Duration::from_secs(1))
                    .send()
                    .map(|r| (r.status().as_u16(), r.text().unwrap_or_default()))
            })
        })
        .collect();
    for client in clients {
        let answered = client.join().unwrap();
        assert!(answered.is_err(), "the client gave up first: {answered:?}");
    }
    // Their runs stopped with them: a normal run gets a slot and runs at once.
    let (status, answer, took) = normal_run(&server, &runner, &lock);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["record"]["cells"][0]["status"], "ok", "{answer}");
    assert!(
        took < Duration::from_secs(5),
        "a normal run waited {took:?} behind abandoned ones"
    );

    // Two streaming clients that never read, of cells that answer 4 MiB each: each is cut off
    // after the write timeout (2 s), and its slot is free again.
    let address = server.url.trim_start_matches("http://").to_owned();
    let flooding = notebook_of(&lock, "amplify", &(4 << 20).to_string(), 16);
    let silent: Vec<std::net::TcpStream> = (0..2)
        .map(|_| {
            let mut stream = std::net::TcpStream::connect(&address).unwrap();
            let head = format!(
                "POST /v1/runs HTTP/1.1\r\nHost: {address}\r\nAuthorization: {runner}\r\n\
                 Accept: application/x-ndjson\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\n\r\n",
                flooding.len()
            );
            stream.write_all(head.as_bytes()).unwrap();
            stream.write_all(&flooding).unwrap();
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let (status, answer, took) = normal_run(&server, &runner, &lock);
    assert_eq!(status, 200, "{answer}");
    assert!(
        took < Duration::from_secs(8),
        "a normal run waited {took:?} behind clients that never read"
    );
    drop(silent);
}
