//! The executor API end to end: kernels published with real `cargo publish`, audited and built
//! in the sandbox by `kiln serve`'s workers and approved; then notebooks through `/v1/preflight`
//! and `/v1/runs` (JSON and NDJSON), stored runs and replay, hostile kernels that each end in
//! their named error while the server keeps serving, and the refusals: no token, the wrong
//! scope, an ungranted import, limits beyond policy, a digest other than the pinned one, a
//! revoked kernel; then separate `kiln executor` processes for an unknown signer, a tampered
//! `.cwasm` in the artifact cache, and a revocation list gone stale when the registry stops.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kiln_policy::Digest;
use kiln_policy::manifest::ArtifactManifest;
use kiln_tests::cargo::{CargoWorld, stderr};
use kiln_tests::server::{KilnServer, ServerOptions};
use kiln_tests::{kiln_binary, workspace_root};
use serde_json::{Value, json};

/// The digests a notebook pins for `name@0.1.0`: its manifest's `.wasm` and `.cwasm`.
fn pins(server: &KilnServer, name: &str) -> (Digest, Digest) {
    let detail = server.get_json(&format!("/api/kiln/v1/submissions/{name}/0.1.0"), None);
    let (_, bytes) = server.artifact(&detail, "manifest");
    let manifest: ArtifactManifest = serde_json::from_slice(&bytes).unwrap();
    (manifest.wasm, manifest.cwasm.unwrap())
}

const WASI: &str = "wasi_snapshot_preview1.*";

/// A notebook of `cells` over the two kernels.
fn notebook(kernels: &Value, cells: Value) -> Value {
    json!({"kiln_notebook": 1, "kernels": kernels, "cells": cells})
}

fn cell(id: &str, kernel: &str, entry: &str, input: Value) -> Value {
    json!({"type": "kernel", "id": id, "kernel": kernel, "entry": entry, "input": input,
           "grants": [WASI]})
}

/// An internal failure (the run store cannot be written: its blob directory is replaced by a
/// file) answers a bare 500 with a request id, and the NDJSON stream an `error` event the same
/// way; no path, OS error or library message reaches the client. The store is put back after.
fn internal_failures_carry_no_internal_text(
    server: &KilnServer,
    api: &Api,
    runner: &str,
    kernels: &Value,
) {
    let blobs = server.data_dir().join("executor/runs/blobs/sha256");
    let aside = blobs.with_extension("aside");
    std::fs::rename(&blobs, &aside).unwrap();
    std::fs::write(&blobs, b"not a directory").unwrap();
    let fresh = |text: &str| {
        notebook(
            kernels,
            json!([cell("raw", "bad", "echo", json!({"text": text}))]),
        )
    };
    let leaks = |text: &str| {
        [
            "executor/runs",
            "/tmp",
            "os error",
            "Not a directory",
            "run store",
            "blobs",
        ]
        .iter()
        .any(|needle| text.contains(needle))
    };
    let (status, answer) = api.run(runner, &fresh("an internal failure, as JSON"));
    assert_eq!(status, 500, "{answer}");
    assert_eq!(answer["error"], "internal", "{answer}");
    let id = answer["request_id"]
        .as_str()
        .expect("a request id")
        .to_owned();
    assert!(
        answer["message"].as_str().unwrap().contains(&id),
        "{answer}"
    );
    assert!(!leaks(&answer.to_string()), "internal text in {answer}");

    let response = api
        .http
        .post(format!("{}/v1/runs", api.base))
        .header("Authorization", runner)
        .header("Accept", "application/x-ndjson")
        .json(&fresh("an internal failure, streamed"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "error", "{text}");
    assert_eq!(last["error"], "internal", "{text}");
    assert!(last["request_id"].is_string(), "{text}");
    assert!(!leaks(&text), "internal text in {text}");

    std::fs::remove_file(&blobs).unwrap();
    std::fs::rename(&aside, &blobs).unwrap();
    let (status, answer) = api.run(runner, &fresh("served again"));
    assert_eq!(status, 200, "{answer}");
}

/// An HTTP client for an executor at `base`.
struct Api {
    base: String,
    http: reqwest::blocking::Client,
}

impl Api {
    fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap(),
        }
    }

    fn post(&self, path: &str, token: Option<&str>, body: Vec<u8>) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/json")
            .body(body);
        if let Some(token) = token {
            request = request.header("Authorization", token);
        }
        let response = request.send().unwrap();
        let status = response.status().as_u16();
        let text = response.text().unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn run(&self, token: &str, notebook: &Value) -> (u16, Value) {
        self.post(
            "/v1/runs?seed=7",
            Some(token),
            serde_json::to_vec(notebook).unwrap(),
        )
    }

    fn preflight(&self, token: &str, notebook: &Value) -> (u16, Value) {
        self.post(
            "/v1/preflight",
            Some(token),
            serde_json::to_vec(notebook).unwrap(),
        )
    }

    fn get(&self, path: &str, token: &str) -> (u16, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("Authorization", token)
            .send()
            .unwrap();
        (response.status().as_u16(), response.text().unwrap())
    }
}

/// The reason codes of every blocked cell of a 422 answer.
fn blocked_codes(answer: &Value) -> Vec<String> {
    answer["preflight"]["cells"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["reasons"].as_array().cloned().unwrap_or_default())
        .map(|r| r["code"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A separate `kiln executor` process, stopped when dropped.
struct Executor {
    url: String,
    child: Child,
}

impl Executor {
    fn start(server: &KilnServer, trust: &Path, data: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(kiln_binary())
            .args([
                "executor",
                "--listen",
                "127.0.0.1:0",
                "--registry",
                &server.url,
            ])
            .arg("--trust")
            .arg(trust)
            .arg("--data")
            .arg(data)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let url = first
            .trim()
            .strip_prefix("kiln executor listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {first:?}"))
            .to_owned();
        let executor = Self { url, child };
        // Ready once it has fetched a revocation list.
        for _ in 0..100 {
            if reqwest::blocking::get(format!("{}/healthz", executor.url)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        executor
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A kernel a reviewer rejected: built and signed by the builder, so its modules and their
/// provenance are all there.
const REFUSED: &str = r#"
use kiln_kernel::{Error, Input, Output};

fn echo(input: Input<'_>, out: &mut Output) -> Result<(), Error> {
    out.write_bytes(input.bytes())
}

kiln_kernel::kernel! {
    entry echo(input: "text/plain", output: "text/plain") => echo;
}
"#;

/// A built version that a reviewer rejects (with an approval racing it and losing) never runs:
/// the executor's preflight blocks it as not approved, since the registry holds no review
/// statement for it, and the index does not serve it.
fn rejected_kernels_never_run(
    server: &KilnServer,
    world: &CargoWorld,
    author: &str,
    reviewer: &str,
    runner: &str,
) {
    let dir = world.kernel(
        "kernel-refused",
        "0.1.0",
        "kiln-kernel = { version = \"0.1.0\", registry = \"kiln\" }",
        REFUSED,
    );
    let out = world.publish(&dir, Some(author));
    assert!(out.status.success(), "{}", stderr(&out));
    let detail = server.settled("kernel-refused", "0.1.0");
    assert_eq!(detail["state"], "built", "{detail}");
    let (wasm, cwasm) = pins(server, "kernel-refused");
    let path = "/api/kiln/v1/submissions/kernel-refused/0.1.0";
    let (status, body) = server.post_json(
        &format!("{path}/reject"),
        Some(reviewer),
        &json!({"reason": "not for this platform"}),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.approve(reviewer, "kernel-refused", "0.1.0");
    assert_eq!(status, 409, "a decision is final: {body}");
    let kernels = json!({"k": {"crate": "kernel-refused", "version": "0.1.0",
        "wasm": wasm.to_string(), "cwasm": cwasm.to_string()}});
    let rejected = notebook(
        &kernels,
        json!([{"type": "kernel", "id": "c", "kernel": "k", "entry": "echo",
                "input": {"text": "hello"}, "grants": [WASI]}]),
    );
    let api = Api::new(&server.url);
    let (status, answer) = api.run(runner, &rejected);
    assert_eq!(status, 422, "a rejected kernel ran: {answer}");
    assert_eq!(
        blocked_codes(&answer),
        ["not-approved", "missing-statement"],
        "{answer}"
    );
    assert!(
        answer.to_string().contains(
            "kernel-refused@0.1.0 is not approved in the registry: it is rejected: not for this platform"
        ),
        "{answer}"
    );
    let index = server
        .request(reqwest::Method::GET, "/index/ke/rn/kernel-refused", None)
        .send()
        .unwrap();
    assert_eq!(index.status(), 404);
}

/// What the first cell of the chained notebook echoes, for the Mandelbrot kernel to read.
const REQUEST: &str = r#"{"width":3,"height":2,"max_iter":10}"#;

#[test]
fn notebooks_run_through_the_executor_api_and_hostile_kernels_are_contained() {
    let fixtures = tempfile::tempdir().unwrap();
    let server = KilnServer::start_with(ServerOptions::building(
        fixtures.path(),
        &["--max-notebook-bytes", "65536"],
    ));
    let author = server.token("ada", &["publish"]);
    let reviewer = server.token("rita", &["review"]);
    let runner = server.token("dana", &["run"]);
    let world = CargoWorld::new(&server);
    world.publish_sdk(&server, &author, &reviewer);
    for (dir, name) in [
        ("examples/kernels/mandelbrot", "kernel-mandelbrot"),
        ("tests/kernels/hostile", "kernel-hostile"),
    ] {
        let out = world.publish(&workspace_root().join(dir), Some(&author));
        assert!(out.status.success(), "{}", stderr(&out));
        let detail = server.settled(name, "0.1.0");
        assert_eq!(detail["state"], "built", "{detail}");
        let (status, body) = server.approve(&reviewer, name, "0.1.0");
        assert_eq!(status, 200, "{body}");
    }
    rejected_kernels_never_run(&server, &world, &author, &reviewer, &runner);
    let (set_wasm, set_cwasm) = pins(&server, "kernel-mandelbrot");
    let (bad_wasm, bad_cwasm) = pins(&server, "kernel-hostile");
    let kernels = json!({
        "set": {"crate": "kernel-mandelbrot", "version": "0.1.0", "wasm": set_wasm.to_string(), "cwasm": set_cwasm.to_string()},
        "bad": {"crate": "kernel-hostile", "version": "0.1.0", "wasm": bad_wasm.to_string(), "cwasm": bad_cwasm.to_string()},
    });
    let api = Api::new(&server.url);

    // Chained cells: the hostile kernel's well-behaved `echo` feeds the Mandelbrot kernel.
    let chained = notebook(
        &kernels,
        json!([
            {"type": "markdown", "source": "# Two cells"},
            cell("raw", "bad", "echo", json!({"text": REQUEST})),
            cell("tile", "set", "tile", json!({"from": "raw"})),
        ]),
    );

    // Who may call.
    let body = serde_json::to_vec(&chained).unwrap();
    let (status, answer) = api.post("/v1/preflight", None, body.clone());
    assert_eq!(status, 401, "{answer}");
    let (status, answer) = api.post("/v1/preflight", Some(&author), body.clone());
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("`run`"),
        "{answer}"
    );

    // Preflight, then the run.
    let (status, report) = api.preflight(&runner, &chained);
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["allow"], true, "{report}");
    assert_eq!(report["cells"].as_array().unwrap().len(), 2);
    assert_eq!(report["cells"][0]["precompiled"], true, "{report}");
    let (status, run) = api.run(&runner, &chained);
    assert_eq!(status, 200, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    assert_eq!(run["outputs"]["raw"]["text"], REQUEST, "{run}");
    let tile: Value =
        serde_json::from_str(run["outputs"]["tile"]["text"].as_str().unwrap()).unwrap();
    assert_eq!(tile["rows"].as_array().unwrap().len(), 2, "{tile}");
    for cell in run["record"]["cells"].as_array().unwrap() {
        assert_eq!(cell["status"], "ok", "{cell}");
        assert!(cell["metrics"]["fuel"].as_u64().unwrap() > 0, "{cell}");
    }
    assert_eq!(
        run["record"]["notebook"],
        Digest::of(&serde_json::to_vec(&chained).unwrap()).to_string()
    );

    // Stored, fetchable, and replayable bit for bit.
    let (status, text) = api.get(&format!("/v1/runs/{id}"), &runner);
    assert_eq!(status, 200, "{text}");
    let stored: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(stored["record"], run["record"]);
    assert_eq!(stored["outputs"], run["outputs"]);
    let (status, replay) = api.post(&format!("/v1/runs/{id}/replay"), Some(&runner), Vec::new());
    assert_eq!(status, 200, "{replay}");
    assert_eq!(replay["matches"], true, "{replay}");
    let (status, _) = api.get("/v1/runs/run-000000000000000000000000", &runner);
    assert_eq!(status, 404);

    // The same run as an NDJSON event stream.
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/v1/runs", server.url))
        .header("Authorization", &runner)
        .header("Accept", "application/x-ndjson")
        .body(serde_json::to_vec(&chained).unwrap())
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let events: Vec<Value> = response
        .text()
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "preflight",
            "cell-started",
            "output",
            "cell-finished",
            "cell-started",
            "output",
            "cell-finished",
            "run-finished"
        ],
        "{events:?}"
    );
    assert_eq!(events[2]["text"], REQUEST);

    // Hostile kernels: each ends in its named error, and the cells after it still run.
    let limited = |id: &str, entry: &str, limits: Value| {
        let mut c = cell(id, "bad", entry, json!({"text": ""}));
        c["limits"] = limits;
        c
    };
    let hostile = notebook(
        &kernels,
        json!([
            limited(
                "spin-fuel",
                "spin",
                json!({"fuel": 50_000_000, "memory_bytes": 16 << 20, "wall_ms": 10_000, "output_bytes": 65536})
            ),
            limited(
                "spin-deadline",
                "spin",
                json!({"fuel": 10_000_000_000u64, "memory_bytes": 16 << 20, "wall_ms": 200, "output_bytes": 65536})
            ),
            limited(
                "grow",
                "grow",
                json!({"fuel": 1_000_000_000, "memory_bytes": 16 << 20, "wall_ms": 10_000, "output_bytes": 65536})
            ),
            cell("recurse", "bad", "recurse", json!({"text": ""})),
            limited(
                "flood",
                "flood",
                json!({"fuel": 1_000_000_000, "memory_bytes": 16 << 20, "wall_ms": 10_000, "output_bytes": 65536})
            ),
            cell("fail", "bad", "fail", json!({"text": ""})),
            cell("crash", "bad", "crash", json!({"text": ""})),
            cell("after", "bad", "echo", json!({"text": "still here"})),
        ]),
    );
    let (status, run) = api.run(&runner, &hostile);
    assert_eq!(status, 200, "{run}");
    let codes: Vec<(String, String)> = run["record"]["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["error"]["code"].as_str().unwrap_or("ok").to_owned(),
            )
        })
        .collect();
    let expected = [
        ("spin-fuel", "out-of-fuel"),
        ("spin-deadline", "deadline"),
        ("grow", "memory-limit"),
        ("recurse", "stack-overflow"),
        ("flood", "output-limit"),
        ("fail", "kernel-error"),
        ("crash", "trap"),
        ("after", "ok"),
    ];
    assert_eq!(
        codes,
        expected
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>(),
        "{run}"
    );
    assert!(
        run["record"]["cells"][5]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("this kernel always fails"),
        "{run}"
    );
    assert_eq!(run["outputs"]["after"]["text"], "still here");

    // Refusals: nothing runs, every reason is named.
    let mut ungranted = cell("clock", "bad", "clock", json!({"text": ""}));
    ungranted["grants"] = json!(["wasi_snapshot_preview1.fd_write"]);
    let (status, answer) = api.run(&runner, &notebook(&kernels, json!([ungranted])));
    assert_eq!(status, 422, "{answer}");
    assert!(
        blocked_codes(&answer).contains(&"import-not-granted".to_owned()),
        "{answer}"
    );
    assert!(answer.to_string().contains("clock_time_get"), "{answer}");

    let too_much = limited(
        "greedy",
        "echo",
        json!({"fuel": 10_000_000_000_000u64, "memory_bytes": 16 << 20, "wall_ms": 10_000, "output_bytes": 65536}),
    );
    let (status, answer) = api.run(&runner, &notebook(&kernels, json!([too_much])));
    assert_eq!(status, 422, "{answer}");
    assert_eq!(blocked_codes(&answer), ["limit-exceeded"], "{answer}");

    let mut mispinned = kernels.clone();
    mispinned["set"]["wasm"] = json!(bad_wasm.to_string());
    let (status, answer) = api.run(
        &runner,
        &notebook(
            &mispinned,
            json!([cell(
                "tile",
                "set",
                "tile",
                json!({"json": {"width": 2, "height": 1}})
            )]),
        ),
    );
    assert_eq!(status, 422, "{answer}");
    assert!(
        blocked_codes(&answer).contains(&"digest-mismatch".to_owned()),
        "{answer}"
    );

    let (status, answer) = api.post(
        "/v1/runs",
        Some(&runner),
        b"{\"kiln_notebook\": 1, \"cells\": [{}]}".to_vec(),
    );
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"], "invalid-notebook", "{answer}");
    let (status, _) = api.post("/v1/runs", Some(&runner), vec![b' '; 100_000]);
    assert_eq!(status, 413);

    // Operations: metrics and the API description.
    let metrics = server
        .request(reqwest::Method::GET, "/metrics", None)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("kiln_executor_runs_total{outcome=\"ok\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("kiln_executor_preflight_denials_total{code=\"import-not-granted\"}"),
        "{metrics}"
    );
    let openapi = server.get_json("/openapi.json", None);
    assert!(openapi["paths"]["/v1/runs"].is_object(), "{openapi}");
    assert!(openapi["paths"]["/api/kiln/v1/submissions"].is_object());

    internal_failures_carry_no_internal_text(&server, &api, &runner, &kernels);

    // A separate executor that trusts another builder key: an unknown signer.
    let other = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(other.path().join("keys")).unwrap();
    for role in ["reviewer", "revocation"] {
        std::fs::copy(
            server.data_dir().join(format!("keys/{role}.pub")),
            other.path().join(format!("keys/{role}.pub")),
        )
        .unwrap();
    }
    std::fs::write(
        other.path().join("keys/builder.pub"),
        kiln_policy::SigningKey::generate()
            .unwrap()
            .public_key()
            .to_pem(),
    )
    .unwrap();
    std::fs::copy(
        server.data_dir().join("trust.toml"),
        other.path().join("trust.toml"),
    )
    .unwrap();
    let stranger = Executor::start(
        &server,
        &other.path().join("trust.toml"),
        &other.path().join("data"),
        &[],
    );
    let (status, answer) = Api::new(&stranger.url).run(&runner, &chained);
    assert_eq!(status, 422, "{answer}");
    assert!(
        blocked_codes(&answer).contains(&"missing-statement".to_owned()),
        "{answer}"
    );
    // The trust file's builder key put right: the running executor trusts it without a restart
    // (it reads the trust file again every 2 s).
    std::fs::copy(
        server.data_dir().join("keys/builder.pub"),
        other.path().join("keys/builder.pub"),
    )
    .unwrap();
    let started = Instant::now();
    loop {
        let (status, answer) = Api::new(&stranger.url).run(&runner, &chained);
        if status == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the trust file's new key was not picked up: {answer}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // SIGHUP reads it at once, and does not stop the executor.
    let hangup = Command::new("kill")
        .args(["-HUP", &stranger.child.id().to_string()])
        .status()
        .unwrap();
    assert!(hangup.success());
    std::thread::sleep(Duration::from_millis(300));
    let (status, answer) = Api::new(&stranger.url).run(&runner, &chained);
    assert_eq!(status, 200, "the executor answers after SIGHUP: {answer}");
    drop(stranger);

    // A separate executor with the server's trust: it fills its artifact cache; a `.cwasm`
    // changed there is noticed and fetched again, and the run is the same.
    let data = fixtures.path().join("executor");
    let strict = fixtures.path().join("strict.toml");
    std::fs::write(&strict, "[execution]\nrevocation_max_age_secs = 2\n").unwrap();
    let start = || {
        Executor::start(
            &server,
            &server.data_dir().join("trust.toml"),
            &data,
            &[
                "--policy",
                strict.to_str().unwrap(),
                "--revocation-refresh",
                "500ms",
            ],
        )
    };
    let executor = start();
    let (status, first) = Api::new(&executor.url).run(&runner, &chained);
    assert_eq!(status, 200, "{first}");
    // An executor alone serves the web app's notebooks, and the registry's catalogue through
    // itself, so that its page can pick kernels.
    let page = reqwest::blocking::get(format!("{}/", executor.url)).unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().unwrap().contains("<title>kiln</title>"));
    let catalogue: Value = reqwest::blocking::Client::new()
        .get(format!("{}/v1/catalogue", executor.url))
        .header("Authorization", &runner)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(
        catalogue
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["crate"] == "kernel-mandelbrot"),
        "{catalogue}"
    );
    drop(executor);
    let cached = data.join("artifacts/sha256").join(bad_cwasm.hex());
    let mut bytes = std::fs::read(&cached).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&cached, &bytes).unwrap();
    let executor = start();
    let remote = Api::new(&executor.url);
    let (status, second) = remote.run(&runner, &chained);
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["outputs"], first["outputs"]);
    assert_eq!(Digest::of(&std::fs::read(&cached).unwrap()), bad_cwasm);

    // Backpressure and a graceful stop: one slot, no queue. A second notebook while the first
    // runs is answered 503 with Retry-After; SIGTERM lets the first finish.
    let narrow = Executor::start(
        &server,
        &server.data_dir().join("trust.toml"),
        &fixtures.path().join("narrow"),
        &["--executor-slots", "1", "--executor-queue", "0"],
    );
    let slow = notebook(
        &kernels,
        json!([limited(
            "slow",
            "spin",
            json!({"fuel": 10_000_000_000u64, "memory_bytes": 16 << 20, "wall_ms": 800, "output_bytes": 65536})
        )]),
    );
    let narrow_api = Api::new(&narrow.url);
    let first = std::thread::scope(|scope| {
        let first = scope.spawn(|| narrow_api.run(&runner, &slow));
        std::thread::sleep(Duration::from_millis(300));
        let response = reqwest::blocking::Client::new()
            .post(format!("{}/v1/runs", narrow.url))
            .header("Authorization", &runner)
            .body(serde_json::to_vec(&chained).unwrap())
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 503);
        assert_eq!(response.headers()["retry-after"], "1");
        let _ = Command::new("kill")
            .args(["-TERM", &narrow.child.id().to_string()])
            .status();
        first.join().unwrap()
    });
    assert_eq!(first.0, 200, "{}", first.1);
    // It ran to its end, whichever limit came first on this machine: the wall clock or fuel.
    let ended = &first.1["record"]["cells"][0]["error"]["code"];
    assert!(ended == "deadline" || ended == "out-of-fuel", "{}", first.1);
    let mut narrow = narrow;
    assert!(narrow.child.wait().unwrap().success());

    // The same through the command line, as the quick start does it: run, replay.
    let scratch = tempfile::tempdir().unwrap();
    let chained_path = scratch.path().join("chained.json");
    std::fs::write(&chained_path, serde_json::to_vec(&chained).unwrap()).unwrap();
    let cli = |args: &[&str]| {
        Command::new(kiln_binary())
            .args(args)
            .env("KILN_CONFIG", scratch.path().join("no-config.toml"))
            .env_remove("KILN_EXECUTOR")
            .output()
            .unwrap()
    };
    let chained_arg = chained_path.to_str().unwrap();
    let out = cli(&[
        "run",
        chained_arg,
        "--executor",
        &server.url,
        "--token",
        &runner,
        "--seed",
        "3",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(table.lines().next().unwrap().starts_with("CELL"), "{table}");
    assert!(
        table.contains("tile") && table.contains("{\"width\":3,\"height\":2"),
        "{table}"
    );
    let run_id = table
        .lines()
        .find_map(|l| l.strip_prefix("run "))
        .expect("the run id")
        .to_owned();
    let out = cli(&[
        "replay",
        &run_id,
        "--executor",
        &server.url,
        "--token",
        &runner,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .matches("matches")
            .count(),
        2
    );

    // Revoked: the server's own executor refuses at once.
    let (status, body) = server.post_json(
        "/api/kiln/v1/revocations",
        Some(&server.admin_token),
        &json!({"target": "kernel-hostile@0.1.0", "reason": "incident 9"}),
    );
    assert_eq!(status, 200, "{body}");
    let (status, answer) = api.run(&runner, &chained);
    assert_eq!(status, 422, "{answer}");
    assert!(
        blocked_codes(&answer).contains(&"revoked".to_owned()),
        "{answer}"
    );
    assert!(answer.to_string().contains("incident 9"), "{answer}");
    let out = cli(&[
        "run",
        chained_arg,
        "--executor",
        &server.url,
        "--token",
        &runner,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let blocked = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(blocked.contains("is blocked; nothing ran"), "{blocked}");
    assert!(
        blocked.contains("[revoked]") && blocked.contains("incident 9"),
        "{blocked}"
    );
    let out = cli(&[
        "events",
        "--verify",
        "--registry",
        &server.url,
        "--token",
        &server.admin_token,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("event log verified"));
    // …and keeps serving notebooks that do not use it.
    let set_only = notebook(
        &json!({"set": kernels["set"].clone()}),
        json!([cell(
            "tile",
            "set",
            "tile",
            json!({"json": {"width": 2, "height": 1}})
        )]),
    );
    let (status, run) = api.run(&runner, &set_only);
    assert_eq!(status, 200, "{run}");

    // The registry goes away: the separate executor's revocation list ages past what its
    // policy accepts (2 s) and preflight refuses every cell.
    let (status, report) = remote.preflight(&runner, &set_only);
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["allow"], true, "{report}");
    server.stop();
    std::thread::sleep(Duration::from_secs(3));
    let (status, report) = remote.preflight(&runner, &set_only);
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["allow"], false, "{report}");
    assert!(
        report.to_string().contains("revocation-list-stale"),
        "{report}"
    );
}
