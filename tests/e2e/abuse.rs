//! The executor under clients that misbehave: clients that go away while their cells spin,
//! streaming clients that never read, a small notebook that asks for a huge answer, and many
//! identical new notebooks at once. Each must cost no more than its own run, within the run's
//! budget: a normal run right after gets a slot at once, and nothing is lost.

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
        &[
            "--executor-slots",
            "2",
            "--executor-queue",
            "512",
            "--stream-write-timeout",
            "2s",
        ],
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

/// A one-cell notebook of `entry` with small limits, so that it is a small run: called on the
/// async worker that takes the request (docs/executor.md, "Limits and backpressure").
fn small_notebook(lock: &Value, entry: &str) -> Vec<u8> {
    let cell = json!({"type": "kernel", "id": "small", "kernel": "bad", "entry": entry,
                      "input": {"text": "hello"}, "grants": ["wasi_snapshot_preview1.*"],
                      "limits": {"fuel": 1_000_000, "memory_bytes": 16 << 20, "wall_ms": 10,
                                 "output_bytes": 4096}});
    serde_json::to_vec(&json!({"kiln_notebook": 1, "kernels": {"bad": lock}, "cells": [cell]}))
        .unwrap()
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
fn the_executor_holds_under_abusive_clients() {
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

    // 1000 cells of 1 MB each ask for 1 GB; the run stops at its budget (64 MiB of output by
    // default) with `run-budget`, and the server's memory stays bounded.
    let amplifier = notebook_of(&lock, "amplify", "1000000", 1000);
    assert!(amplifier.len() < 1 << 20, "{} bytes", amplifier.len());
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/v1/runs", server.url))
        .header("Authorization", &runner)
        .body(amplifier)
        .timeout(Duration::from_secs(120))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.bytes().unwrap();
    assert!(body.len() < 70 << 20, "a {} byte answer", body.len());
    let answer: Value = serde_json::from_slice(&body).unwrap();
    let cells = answer["record"]["cells"].as_array().unwrap();
    let ok = cells.iter().filter(|c| c["status"] == "ok").count();
    assert!((60..=67).contains(&ok), "{ok} cells ran");
    assert_eq!(cells[999]["error"]["code"], "run-budget", "{}", cells[999]);
    let peak = server.peak_memory();
    assert!(peak < 1 << 30, "the server peaked at {peak} bytes");
    eprintln!(
        "amplifier: {ok} of 1000 cells ran, a {} byte answer, the server peaked at {} MiB",
        body.len(),
        peak >> 20
    );

    // A notebook of 3 MiB, within the format's 4 MiB, is accepted as the docs say.
    let large = notebook_of(&lock, "echo", &"x".repeat(3 << 20), 1);
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/v1/runs", server.url))
        .header("Authorization", &runner)
        .body(large)
        .timeout(Duration::from_secs(60))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().unwrap());

    // Small runs of hostile cells, 64 at a time and a normal run among them: each ends by one of
    // its limits with its error named (on an async worker, wasm traps and stack overflows on the
    // call's fiber included; `grow` fills each megabyte with a loop, so its million fuel may run
    // out before its 16 MiB), or by its 10 ms wall-clock limit when the machine is too busy to
    // reach the other first, and the server goes on answering.
    let hostile: [(&str, &[&str]); 5] = [
        ("spin", &["out-of-fuel"]),
        ("grow", &["memory-limit", "out-of-fuel"]),
        ("recurse", &["stack-overflow"]),
        ("flood", &["output-limit"]),
        ("crash", &["trap"]),
    ];
    let runs: Vec<_> = (0..64)
        .map(|n| {
            let (entry, expected) = hostile[n % hostile.len()];
            let (url, runner, body) = (
                server.url.clone(),
                runner.clone(),
                small_notebook(&lock, entry),
            );
            std::thread::spawn(move || {
                let response = reqwest::blocking::Client::new()
                    .post(format!("{url}/v1/runs"))
                    .header("Authorization", runner)
                    .body(body)
                    .timeout(Duration::from_secs(60))
                    .send()
                    .unwrap();
                let status = response.status().as_u16();
                let answer: Value = response.json().unwrap();
                (entry, expected, status, answer)
            })
        })
        .collect();
    let (status, answer, _) = normal_run(&server, &runner, &lock);
    assert_eq!(status, 200, "{answer}");
    for run in runs {
        let (entry, expected, status, answer) = run.join().unwrap();
        assert_eq!(status, 200, "{entry}: {answer}");
        let cell = &answer["record"]["cells"][0];
        let code = if cell["status"] == "ok" {
            "ok"
        } else {
            cell["error"]["code"].as_str().unwrap_or_default()
        };
        assert!(
            expected.contains(&code) || code == "deadline",
            "{entry} ended with {code}, not one of {expected:?}: {cell}"
        );
    }

    // 400 identical new notebooks at once: every run is stored and answered.
    let fresh = notebook_of(&lock, "echo", "the same new notebook, 400 times", 1);
    let runs: Vec<_> = (0..400)
        .map(|_| {
            let (url, runner, body) = (server.url.clone(), runner.clone(), fresh.clone());
            std::thread::spawn(move || {
                reqwest::blocking::Client::new()
                    .post(format!("{url}/v1/runs"))
                    .header("Authorization", runner)
                    .body(body)
                    .timeout(Duration::from_secs(120))
                    .send()
                    .map(|r| r.status().as_u16())
            })
        })
        .collect();
    let statuses: Vec<u16> = runs
        .into_iter()
        .map(|t| t.join().unwrap().unwrap())
        .collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
}

/// Opens a connection to `server`, sends `bytes` and waits (up to 20 s) for the server to
/// answer or close; returns how long that took and what it answered.
fn send_and_wait(server: &KilnServer, bytes: &[u8]) -> (Duration, String) {
    let mut stream =
        std::net::TcpStream::connect(server.url.trim_start_matches("http://")).unwrap();
    stream.write_all(bytes).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let _ = std::io::Read::read_to_end(&mut stream, &mut answer);
    (
        started.elapsed(),
        String::from_utf8_lossy(&answer).into_owned(),
    )
}

/// The JSON body of a raw HTTP answer.
fn json_body(answer: &str) -> Value {
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|err| panic!("{err}: not JSON: {answer}"))
}

#[test]
fn anonymous_slow_and_large_requests_cost_bounded_memory_and_time() {
    let server = KilnServer::start_with(ServerOptions {
        args: [
            "--header-read-timeout",
            "2s",
            "--body-read-timeout",
            "3s",
            "--max-connections",
            "64",
        ]
        .map(String::from)
        .to_vec(),
        ..ServerOptions::default()
    });
    let runner = server.token("dana", &["run"]);

    // A head that never ends, and a connection that never speaks, are closed at the timeout.
    let (took, answer) = send_and_wait(&server, b"GET /healthz HTTP/1.1\r\nHost: kiln\r\n");
    assert!(answer.is_empty(), "{answer}");
    assert!(
        took < Duration::from_secs(8),
        "a half-sent head stayed {took:?}"
    );
    let (took, _) = send_and_wait(&server, b"");
    assert!(
        took < Duration::from_secs(8),
        "a silent connection stayed {took:?}"
    );

    // A body that trickles in is cut off at its deadline, however steady the trickle.
    let address = server.url.trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    let body = br#"{"kiln_notebook": 1, "kernels": {}, "cells": []}"#;
    let head = format!(
        "POST /v1/preflight HTTP/1.1\r\nHost: kiln\r\nAuthorization: {runner}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len() * 10
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    for byte in body.iter().cycle().take(body.len() * 10) {
        if stream.write_all(&[*byte]).is_err() {
            break;
        }
        let mut chunk = [0u8; 4096];
        if let Ok(n @ 1..) = std::io::Read::read(&mut stream, &mut chunk) {
            answer.extend_from_slice(&chunk[..n]);
            break;
        }
    }
    let answer = String::from_utf8_lossy(&answer).into_owned();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("did not arrive within 3s"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    drop(stream);

    // 60 anonymous publishes announcing 10 MiB each are refused from their heads: 401 in the
    // registry's JSON form, and the server buffers none of them.
    let before = server.peak_memory();
    let publishes: Vec<std::net::TcpStream> = (0..60)
        .map(|_| {
            let mut stream = std::net::TcpStream::connect(&address).unwrap();
            stream
                .write_all(
                    b"PUT /api/v1/crates/new HTTP/1.1\r\nHost: kiln\r\nContent-Length: 10485760\r\n\r\n",
                )
                .unwrap();
            let _ = stream.write_all(&vec![0u8; 1 << 20]);
            stream
        })
        .collect();
    for mut stream in publishes {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut answer = vec![0u8; 4096];
        let n = std::io::Read::read(&mut stream, &mut answer).unwrap();
        let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
        assert!(
            json_body(&answer)["errors"][0]["detail"]
                .as_str()
                .unwrap()
                .contains("needs an API token"),
            "{answer}"
        );
    }
    let grew = server.peak_memory().saturating_sub(before);
    assert!(grew < 64 << 20, "the server's peak grew {grew} bytes");

    // More idle connections than the server serves at once: the one after them waits for the
    // idle ones to be closed at their timeout, then is served.
    let idle: Vec<std::net::TcpStream> = (0..80)
        .map(|_| std::net::TcpStream::connect(&address).unwrap())
        .collect();
    let (took, answer) = send_and_wait(
        &server,
        b"GET /healthz HTTP/1.1\r\nHost: kiln\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    drop(idle);

    // Errors that axum answers itself come in the documented JSON form.
    for (request, status, detail) in [
        (
            "GET /no/such/route HTTP/1.1\r\nHost: kiln\r\nConnection: close\r\n\r\n",
            "404",
            "no route /no/such/route",
        ),
        (
            "DELETE /api/kiln/v1/whoami HTTP/1.1\r\nHost: kiln\r\nConnection: close\r\n\r\n",
            "405",
            "method not allowed",
        ),
    ] {
        let (_, answer) = send_and_wait(&server, request.as_bytes());
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{answer}"
        );
        assert_eq!(
            json_body(&answer)["errors"][0]["detail"],
            detail,
            "{answer}"
        );
    }
    let (_, answer) = send_and_wait(
        &server,
        format!(
            "POST /v1/runs?seed=many HTTP/1.1\r\nHost: kiln\r\nAuthorization: {runner}\r\n\
             Content-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        )
        .as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(json_body(&answer)["error"], "invalid-request", "{answer}");
}
