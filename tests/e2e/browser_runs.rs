//! Browser runs in real headless Chromium: the page verifies kiln's signed kernels itself and
//! runs them in a Web Worker, against a real `kiln serve` that audited, built and signed them.
//! The page is loaded through a loopback proxy that can change what arrives: the tour notebook
//! runs in the page with the server's output digests (checked from the page, cell by cell);
//! artifacts are kept by digest (a second run fetches none; a damaged cached entry is dropped and
//! fetched again); a module with one byte changed is refused `digest-mismatch` before it is
//! instantiated; a review bundle from an unknown signer, a revoked kernel and a replayed (stale)
//! revocation list are refused with the executor's codes; an infinite loop is stopped by the wall
//! clock while the page answers; an output flood is capped; and, the proxy gone, the page loads
//! and runs from what it kept.
//!
//! Beside it, the page's verifier and the reference verifier (`@sigstore/verify` in Node) judge
//! the same good and tampered bundles alike.

use std::time::{Duration, Instant};

use base64::Engine as _;
use kiln_policy::intoto::{ResourceDescriptor, Statement, StatementKind};
use kiln_policy::{Digest, SigningKey, sign_statement};
use kiln_tests::browser::Browser;
use kiln_tests::cargo::stderr;
use kiln_tests::cli::kiln;
use kiln_tests::examples::publish_examples;
use kiln_tests::node::run_script;
use kiln_tests::proxy::Proxy;
use kiln_tests::server::{KilnServer, ServerOptions};
use kiln_tests::workspace_root;
use serde_json::{Value, json};

/// The oldest revocation list the test's policy accepts, in seconds.
const REVOCATION_MAX_AGE_SECS: u64 = 20;

/// Saves `doc` as notebook `id` on the executor (a new notebook, or on top of its head).
fn save_notebook(server: &KilnServer, token: &str, id: &str, doc: &Value) {
    let head = server
        .request(
            reqwest::Method::GET,
            &format!("/v1/notebooks/{id}"),
            Some(token),
        )
        .send()
        .unwrap();
    let parent = if head.status() == 200 {
        head.json::<Value>().unwrap()["version"]["digest"].clone()
    } else {
        Value::Null
    };
    let put = server
        .request(
            reqwest::Method::PUT,
            &format!("/v1/notebooks/{id}"),
            Some(token),
        )
        .json(&json!({"parent": parent, "notebook": doc}))
        .send()
        .unwrap();
    assert_eq!(put.status(), 200);
}

/// Opens notebook `id` in the editor, set to run in this browser, deterministic.
fn open_for_browser_runs(browser: &Browser, url: &str, id: &str) {
    browser.goto(&format!("{url}/#/notebooks/{id}"));
    browser.refresh();
    browser.wait_until("document.querySelector('#run-where')");
    browser.select("#run-where", "browser");
}

/// Clicks Run all and waits for the run to end; answers the status line.
fn run_all(browser: &Browser) -> String {
    browser.execute("delete document.body.dataset.lastRunMs;", Vec::new());
    browser.click("#run-all");
    browser.wait_until(
        "document.body.dataset.lastRunMs !== undefined || document.querySelector('#status-line .status-error')",
    );
    browser.text("#status-line")
}

/// The reason codes shown on cell `id`.
fn reason_codes(browser: &Browser, id: &str) -> Vec<String> {
    browser
        .execute(
            "return [...document.querySelectorAll(`section[data-cell='${arguments[0]}'] .cell-reasons li`)].map((li) => li.dataset.code + ' ' + li.textContent);",
            vec![json!(id)],
        )
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// Runs all (in the page) and asserts that nothing ran and cell `id` shows a reason with `code`
/// whose text contains `says`.
fn assert_refused(browser: &Browser, id: &str, code: &str, says: &str) {
    let status = run_all(browser);
    assert!(status.contains("nothing ran"), "{status}");
    let reasons = reason_codes(browser, id);
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with(code) && r.contains(says)),
        "{id}: no {code} saying {says}: {reasons:?}"
    );
}

/// How many kernel calls the page's worker was handed.
fn worker_calls(browser: &Browser) -> u64 {
    browser
        .execute_async(
            "const done = arguments[arguments.length - 1]; import('/app/browser-run.js').then((m) => done(m.stats.calls));",
            Vec::new(),
        )
        .as_u64()
        .unwrap()
}

fn kernel_cell(id: &str, kernel: &str, entry: &str, input: Value, limits: Value) -> Value {
    json!({"type": "kernel", "id": id, "kernel": kernel, "entry": entry, "input": input, "limits": limits})
}

#[test]
fn kernels_verified_and_run_in_the_page_agree_with_the_server() {
    let fixtures = tempfile::tempdir().unwrap();
    let options = ServerOptions::building(fixtures.path(), &["--revocation-refresh", "1s"]);
    std::fs::write(
        fixtures.path().join("policy.toml"),
        format!(
            "[advisories]\nmax_db_age_days = 100000\n\n[execution]\nrevocation_max_age_secs = {REVOCATION_MAX_AGE_SECS}\n"
        ),
    )
    .unwrap();
    let server = KilnServer::start_with(options);
    let author = server.token("ada", &["publish"]);
    let reviewer = server.token("rita", &["review"]);
    let runner = server.token("dana", &["run"]);
    publish_examples(&server, &author, &reviewer, true);
    // A revocation list signed now, to be replayed by the proxy once it is too old.
    let old_revocations = server
        .request(reqwest::Method::GET, "/v1/revocations", Some(&runner))
        .send()
        .unwrap()
        .bytes()
        .unwrap()
        .to_vec();
    let captured = Instant::now();

    // The tour, pinned to what this registry built.
    let tour = fixtures.path().join("tour.json");
    std::fs::copy(workspace_root().join("examples/notebooks/tour.json"), &tour).unwrap();
    let out = kiln(
        &server.url,
        &reviewer,
        &["notebook", "lock", tour.to_str().unwrap(), "--update"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let tour_doc: Value = serde_json::from_slice(&std::fs::read(&tour).unwrap()).unwrap();
    save_notebook(&server, &runner, "tour", &tour_doc);
    let lock = |name: &str| tour_doc["kernels"][name].clone();

    let mut proxy = Proxy::start(&server.url);
    let browser = Browser::start();
    browser.sign_in(&proxy.url, &runner);

    // The trust file the page verifies with, shown with its digest.
    browser.goto(&format!("{}/#/notebooks/tour", proxy.url));
    browser.wait_until("document.querySelector('#show-trust')");
    browser.click("#show-trust");
    browser.wait_until("document.querySelector('#trust-digest')");
    let trust_bytes = server
        .request(reqwest::Method::GET, "/v1/trust", Some(&runner))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(
        browser.text("#trust-digest"),
        Digest::of(&trust_bytes).to_string()
    );
    assert!(browser.text("#trust-file").contains("reviewer"));
    browser.screenshot("browser-trust");

    // The tour in the page: every cell ok, no fuel figure, and the same outputs as the server.
    open_for_browser_runs(&browser, &proxy.url, "tour");
    let status = run_all(&browser);
    assert!(status.contains("Ran in this browser"), "{status}");
    for id in [
        "station-stats",
        "top-words",
        "picture",
        "word-counts",
        "count-table",
    ] {
        assert_eq!(
            browser.execute(
                "return document.querySelector(`section[data-cell='${arguments[0]}']`).dataset.states;",
                vec![json!(id)]
            ),
            json!("queued running ok"),
            "{id}"
        );
    }
    let telemetry = browser.text("section[data-cell='picture'] .cell-telemetry");
    assert!(telemetry.contains("fuel not metered"), "{telemetry}");
    browser.click("#check-on-server");
    browser.wait_until("document.querySelector('#agreement-verdict')");
    assert_eq!(browser.text("#agreement-verdict"), "every output matches");
    assert_eq!(browser.count("#agreement td.state-ok"), 5);
    browser.screenshot("browser-run-agrees");

    // Kept by digest: a second run fetches no artifact.
    let fetched = proxy.count_prefix("/v1/artifacts/");
    assert!(
        fetched >= 4,
        "manifests, modules and bundles were fetched: {fetched}"
    );
    run_all(&browser);
    assert_eq!(
        proxy.count_prefix("/v1/artifacts/"),
        fetched,
        "a cached artifact was fetched again"
    );
    // A kept module whose bytes changed is dropped and fetched again; the run is unharmed.
    let words_wasm = lock("words")["wasm"].as_str().unwrap().to_owned();
    let words_path = format!("/v1/artifacts/{words_wasm}");
    let before = proxy.count(&words_path);
    browser.execute_async(
        "const done = arguments[arguments.length - 1];
         caches.open('kiln-artifacts-v1').then((c) => c.put(arguments[0], new Response('not a module'))).then(() => done(true));",
        vec![json!(words_path)],
    );
    let status = run_all(&browser);
    assert!(status.contains("Ran in this browser"), "{status}");
    assert_eq!(proxy.count(&words_path), before + 1);

    // One byte of the module changed on the way: refused before the worker ever sees it.
    browser.execute_async(
        "const done = arguments[arguments.length - 1];
         caches.open('kiln-artifacts-v1').then((c) => c.delete(arguments[0])).then(() => done(true));",
        vec![json!(words_path)],
    );
    proxy.flip_byte(&words_path);
    let calls = worker_calls(&browser);
    assert_refused(
        &browser,
        "top-words",
        "digest-mismatch",
        "the bytes fetched are",
    );
    assert_eq!(
        worker_calls(&browser),
        calls,
        "a tampered module reached the worker"
    );
    browser.screenshot("browser-digest-mismatch");
    proxy.clear();

    // A review bundle signed by a key the trust file does not hold.
    let csv = lock("csv");
    let intruder = SigningKey::generate().unwrap();
    let forged = sign_statement(
        &intruder,
        &Statement::new(
            vec![ResourceDescriptor::new(
                "kernel.wasm",
                csv["wasm"].as_str().unwrap().parse().unwrap(),
            )],
            StatementKind::Review.predicate_type(),
            json!({"decision": "approve"}),
        ),
    )
    .unwrap()
    .to_json()
    .into_bytes();
    let forged_digest = Digest::of(&forged);
    let listing_path = "/v1/kernels/kernel-csv-stats/0.1.0";
    let mut listing = server.get_json(listing_path, Some(&runner));
    for statement in listing["statements"].as_array_mut().unwrap() {
        if statement["kind"] == "review" {
            statement["digest"] = json!(forged_digest.to_string());
        }
    }
    proxy.replace(listing_path, serde_json::to_vec(&listing).unwrap());
    proxy.replace(&format!("/v1/artifacts/{forged_digest}"), forged);
    assert_refused(
        &browser,
        "station-stats",
        "missing-statement",
        "unknown-key",
    );
    proxy.clear();

    // A revocation list replayed after the policy's age: refused as stale.
    let wait = Duration::from_secs(REVOCATION_MAX_AGE_SECS + 1).saturating_sub(captured.elapsed());
    std::thread::sleep(wait);
    proxy.replace("/v1/revocations", old_revocations);
    assert_refused(
        &browser,
        "picture",
        "revocation-list-stale",
        "the policy allows",
    );
    proxy.clear();

    // Hostile kernels: an infinite loop, an output flood, a memory hog and a deep recursion.
    let hostile = {
        let catalogue = server.get_json("/v1/catalogue", Some(&runner));
        let entry = catalogue
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["crate"] == "kernel-hostile")
            .unwrap()
            .clone();
        json!({"crate": "kernel-hostile", "version": "0.1.0", "wasm": entry["kernel"]["wasm"]})
    };
    let hostile_doc = json!({
        "kiln_notebook": 1,
        "metadata": {"title": "Hostile"},
        "kernels": {"hostile": hostile},
        "cells": [
            kernel_cell("echo", "hostile", "echo", json!({"text": "hi"}), json!({})),
            kernel_cell("spin", "hostile", "spin", json!({"text": ""}), json!({"wall_ms": 1500})),
            kernel_cell("flood", "hostile", "flood", json!({"text": ""}), json!({"output_bytes": 65536})),
            kernel_cell("grow", "hostile", "grow", json!({"text": ""}), json!({"memory_bytes": 8 << 20})),
            kernel_cell("recurse", "hostile", "recurse", json!({"text": "x"}), json!({})),
        ],
    });
    save_notebook(&server, &runner, "hostile", &hostile_doc);
    open_for_browser_runs(&browser, &proxy.url, "hostile");
    browser.click("#run-all");
    browser.wait_until(
        "document.querySelector(\"section[data-cell='spin']\").dataset.states?.endsWith('running')",
    );
    // The page answers while the kernel spins in its worker.
    let answered = browser.execute(
        "return document.querySelector(\"section[data-cell='spin'] .cell-status\").textContent;",
        Vec::new(),
    );
    assert_eq!(answered, json!("running"));
    browser.wait_until("document.body.dataset.lastRunMs !== undefined");
    let spin = reason_codes(&browser, "spin");
    assert!(spin.iter().any(|r| r.starts_with("deadline")), "{spin:?}");
    for (id, code) in [
        ("flood", "output-limit"),
        ("grow", "memory-limit"),
        ("recurse", "stack-overflow"),
    ] {
        let reasons = reason_codes(&browser, id);
        assert!(
            reasons.iter().any(|r| r.starts_with(code)),
            "{id}: {reasons:?}"
        );
    }
    browser.screenshot("browser-hostile");

    // Speed: one trivial cell in the page (artifacts cached) against the same on the server.
    let echo_doc = json!({
        "kiln_notebook": 1,
        "metadata": {"title": "Echo"},
        "kernels": {"hostile": hostile_doc["kernels"]["hostile"]},
        "cells": [kernel_cell("echo", "hostile", "echo", json!({"text": "hi"}), json!({}))],
    });
    save_notebook(&server, &runner, "echo", &echo_doc);
    let median_run = |where_: &str| {
        open_for_browser_runs(&browser, &proxy.url, "echo");
        browser.select("#run-where", where_);
        run_all(&browser);
        let mut times: Vec<u64> = (0..7)
            .map(|_| {
                run_all(&browser);
                browser
                    .execute(
                        "return Number(document.body.dataset.lastRunMs);",
                        Vec::new(),
                    )
                    .as_u64()
                    .unwrap()
            })
            .collect();
        times.sort_unstable();
        times[times.len() / 2]
    };
    let in_page = median_run("browser");
    let on_server = median_run("server");
    // Verification of one kernel's three bundles in the page, as a person's page does it.
    let verify_ms = browser.execute_async(
        "const [done, listing] = [arguments[arguments.length - 1], arguments[0]];
         (async () => {
           const v = await import('/app/verify.js');
           const r = await import('/app/browser-run.js');
           const trust = await r.loadTrust();
           const bundles = [];
           for (const s of listing.statements) bundles.push(await r.artifact(s.digest, s.kind));
           const times = [];
           for (let i = 0; i < 20; i += 1) {
             const keyring = await v.Keyring.fromTrust(JSON.parse(trust.text));
             const t = performance.now();
             for (const b of bundles) await v.verifyBundle(keyring, b);
             times.push(performance.now() - t);
           }
           times.sort((a, b) => a - b);
           done(times[10]);
         })();",
        vec![server.get_json(listing_path, Some(&runner))],
    );

    // Revoked: the page refuses the kernel with the executor's code and reason.
    let out = kiln(
        &server.url,
        &server.admin_token,
        &[
            "revoke",
            "kernel-mandelbrot@0.1.0",
            "--reason",
            "incident 9",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    open_for_browser_runs(&browser, &proxy.url, "tour");
    assert_refused(&browser, "picture", "revoked", "incident 9");

    // Offline once loaded: the proxy gone, the page still loads and runs what it kept.
    let offline_doc = json!({
        "kiln_notebook": 1,
        "metadata": {"title": "Offline"},
        "kernels": {"words": lock("words")},
        "cells": [kernel_cell("count", "words", "counts", json!({"text": "a b a"}), json!({}))],
    });
    save_notebook(&server, &runner, "offline", &offline_doc);
    open_for_browser_runs(&browser, &proxy.url, "offline");
    let status = run_all(&browser);
    assert!(status.contains("Ran in this browser"), "{status}");
    proxy.go_offline();
    browser.refresh();
    browser.wait_until("document.querySelector('#run-where')");
    browser.select("#run-where", "browser");
    let status = run_all(&browser);
    assert!(status.contains("Ran in this browser"), "offline: {status}");
    browser.screenshot("browser-offline");

    println!(
        "browser runs: a trivial cell (kernel-hostile echo, artifacts cached) {in_page} ms in the page \
         against {on_server} ms on the server (median of 7, from Run all to its output); \
         verifying kernel-csv-stats's three bundles in the page {verify_ms} ms (median of 20)"
    );
}

/// A bundle with its statement's payload replaced by `edit` of it, signature kept.
fn with_payload(bundle: &Value, edit: impl Fn(&mut Value)) -> Value {
    let engine = base64::engine::general_purpose::STANDARD;
    let mut bundle = bundle.clone();
    let payload = engine
        .decode(bundle["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    let mut statement: Value = serde_json::from_slice(&payload).unwrap();
    edit(&mut statement);
    bundle["dsseEnvelope"]["payload"] =
        json!(engine.encode(serde_json::to_vec(&statement).unwrap()));
    bundle
}

#[test]
fn the_page_verifier_and_sigstore_js_agree_on_good_and_tampered_bundles() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    let other = SigningKey::generate().unwrap();
    let artifact = b"kernel bytes".to_vec();
    let statement = Statement::new(
        vec![ResourceDescriptor::new(
            "kernel.wasm",
            Digest::of(&artifact),
        )],
        StatementKind::Provenance.predicate_type(),
        json!({"buildDefinition": {}, "runDetails": {}}),
    );
    let good: Value =
        serde_json::from_str(&sign_statement(&key, &statement).unwrap().to_json()).unwrap();
    let by_other: Value =
        serde_json::from_str(&sign_statement(&other, &statement).unwrap().to_json()).unwrap();
    let engine = base64::engine::general_purpose::STANDARD;
    let flip_sig = |bundle: &Value, at: usize| {
        let mut bundle = bundle.clone();
        let mut sig = engine
            .decode(
                bundle["dsseEnvelope"]["signatures"][0]["sig"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
        let at = at.min(sig.len() - 1);
        sig[at] ^= 0x01;
        bundle["dsseEnvelope"]["signatures"][0]["sig"] = json!(engine.encode(sig));
        bundle
    };
    let mut cases: Vec<(&str, Value)> = vec![("good", good.clone())];
    cases.push((
        "payload subject changed",
        with_payload(&good, |s| {
            s["subject"][0]["digest"]["sha256"] = json!(Digest::of(b"other").hex());
        }),
    ));
    cases.push((
        "payload predicate changed",
        with_payload(&good, |s| s["predicate"]["runDetails"] = json!({"x": 1})),
    ));
    cases.push(("signature's last byte changed", flip_sig(&good, usize::MAX)));
    cases.push(("signature's tenth byte changed", flip_sig(&good, 10)));
    {
        // Signed by another key, but naming the trusted one.
        let mut forged = by_other.clone();
        let id = key.id().to_string();
        forged["verificationMaterial"]["publicKey"]["hint"] = json!(id);
        forged["dsseEnvelope"]["signatures"][0]["keyid"] = json!(id);
        cases.push((
            "signed by an untrusted key named as the trusted one",
            forged,
        ));
    }
    cases.push(("signed by an untrusted key", by_other.clone()));
    {
        let mut changed = good.clone();
        changed["dsseEnvelope"]["payloadType"] = json!("application/json");
        cases.push(("payload type changed", changed));
    }
    {
        let mut none = good.clone();
        none["dsseEnvelope"]["signatures"] = json!([]);
        cases.push(("no signature", none));
    }

    // The reference verifier, trusting `key` alone.
    let pem = dir.path().join("key.pub");
    std::fs::write(&pem, key.public_key().to_pem()).unwrap();
    let artifact_path = dir.path().join("artifact");
    std::fs::write(&artifact_path, &artifact).unwrap();
    let mut reference = Vec::new();
    for (index, (_, bundle)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("case-{index}.json"));
        std::fs::write(&path, serde_json::to_vec(bundle).unwrap()).unwrap();
        let (ok, _, _) = run_script(
            "verify.mjs",
            &[path.as_os_str(), pem.as_os_str(), artifact_path.as_os_str()],
        );
        reference.push(ok);
    }

    // The page's verifier, in Chromium, with a trust file holding `key` as a builder.
    let server = KilnServer::start();
    let browser = Browser::start();
    browser.goto(&format!("{}/", server.url));
    browser.wait_until("document.querySelector('#sign-in')");
    let trust = json!({"schema": "kiln-trust/v1", "keys": [
        {"id": key.id().to_string(), "name": "builder", "roles": ["builder"], "pem": key.public_key().to_pem()}]});
    let bundles: Vec<String> = cases
        .iter()
        .map(|(_, b)| serde_json::to_string(b).unwrap())
        .collect();
    let page = browser.execute_async(
        "const [trust, bundles, subject, done] = arguments;
         (async () => {
           const v = await import('/app/verify.js');
           const keyring = await v.Keyring.fromTrust(trust);
           const out = [];
           for (const b of bundles) {
             try {
               await v.verifyBundle(keyring, new TextEncoder().encode(b), { subject });
               out.push('ok');
             } catch (err) {
               out.push(err.code ?? String(err));
             }
           }
           done(out);
         })();",
        vec![
            trust,
            json!(bundles),
            json!(Digest::of(&artifact).to_string()),
        ],
    );
    let page: Vec<String> = serde_json::from_value(page).unwrap();
    for (((name, _), reference), page) in cases.iter().zip(&reference).zip(&page) {
        assert_eq!(
            *reference,
            page == "ok",
            "{name}: @sigstore/verify says {}, the page says {page}",
            if *reference { "verified" } else { "refused" }
        );
    }
    assert_eq!(page[0], "ok");
    assert!(page[1..].iter().all(|p| p != "ok"), "{page:?}");
    println!(
        "verifier agreement: {} bundles, @sigstore/verify and the page agree on every one ({page:?})",
        cases.len()
    );
}
