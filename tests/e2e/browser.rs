//! The web app in real headless Chromium, against a real `kiln serve` that audits and builds:
//! kernels published with `cargo publish` and approved; then, as people use the page, signing in
//! with a token (a `run` token sees no review queue), a notebook made of a markdown cell and
//! chained kernel cells, Run all with the states streamed live, a table from the CSV statistics,
//! the Mandelbrot PNG, the telemetry, saving and reloading (two versions), a dataset uploaded and
//! read by a cell, a kernel revoked with the CLI (its reason on its cell, nothing run), and a
//! pending crate approved from the review queue (seen approved through the CLI), and `/me` (where
//! `cargo login` points) listing a person's tokens and revoking one. Also: no request
//! leaves the page's origin, the Content-Security-Policy refuses inline script, and kernel output
//! is never HTML in any renderer. Screenshots of each page go to `target/browser-screenshots/`.
//!
//! The API tests beside them need no browser: notebook versions and the 409 on a stale parent,
//! a malformed notebook's 400 naming the cell and field, a dataset over the limit's 413.

use std::time::{Duration, Instant};

use kiln_tests::browser::Browser;
use kiln_tests::cargo::stderr;
use kiln_tests::cli::{kiln, stdout};
use kiln_tests::examples::publish_examples;
use kiln_tests::server::{KilnServer, ServerOptions};
use kiln_tests::workspace_root;
use serde_json::{Value, json};

/// Adds a kernel cell for `kernel` (`crate@version`) and `entry`; answers its id.
fn add_kernel_cell(browser: &Browser, kernel: &str, entry: &str) -> String {
    let before = browser.count("section.kernel-cell");
    browser.click("#add-kernel");
    browser.wait_until(&format!(
        "document.querySelectorAll('section.kernel-cell').length === {}",
        before + 1
    ));
    let last = "section.kernel-cell:last-of-type";
    browser.select(&format!("{last} .kernel-picker"), kernel);
    browser.select(&format!("{last} .entry-picker"), entry);
    browser
        .execute(
            "const all = document.querySelectorAll('section.kernel-cell'); return all[all.length - 1].dataset.cell;",
            Vec::new(),
        )
        .as_str()
        .unwrap()
        .to_owned()
}

fn cell(id: &str) -> String {
    format!("section[data-cell='{id}']")
}

/// The notebook's runs, through the API.
fn runs_of(server: &KilnServer, token: &str, id: &str) -> usize {
    server
        .get_json(&format!("/v1/notebooks/{id}/runs"), Some(token))
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn people_write_and_run_notebooks_and_review_crates_in_the_browser() {
    let fixtures = tempfile::tempdir().unwrap();
    let options = ServerOptions::building(fixtures.path(), &[]);
    // A deployment that puts a price on fuel: each cell shows what it cost.
    std::fs::write(
        fixtures.path().join("policy.toml"),
        "[advisories]\nmax_db_age_days = 100000\n\n[execution]\nfuel_price = { per_billion = 2.5, currency = \"EUR\" }\n",
    )
    .unwrap();
    let server = KilnServer::start_with(options);
    let author = server.token("ada", &["publish"]);
    let reviewer = server.token("rita", &["review"]);
    let runner = server.token("dana", &["run"]);
    publish_examples(&server, &author, &reviewer, false);
    let browser = Browser::start();

    // The page's first load, signed out: everything it needs comes from kiln.
    browser.goto(&format!("{}/", server.url));
    browser.wait_until("document.querySelector('#sign-in')");
    let first_load_ms = browser
        .execute(
            "const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd - n.startTime;",
            Vec::new(),
        )
        .as_f64()
        .unwrap();
    // Loads after the first, as a person coming back sees them (files revalidated by ETag).
    let mut reloads: Vec<f64> = (0..5)
        .map(|_| {
            browser.refresh();
            browser.wait_until("document.querySelector('#sign-in')");
            browser
                .execute(
                    "const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd - n.startTime;",
                    Vec::new(),
                )
                .as_f64()
                .unwrap()
        })
        .collect();
    reloads.sort_by(f64::total_cmp);
    let reload_ms = reloads[reloads.len() / 2];
    browser.screenshot("sign-in");

    // A wrong token is refused at sign-in.
    browser.fill("#token", "kiln_not-a-token");
    browser.click("#sign-in button[type=submit]");
    browser.wait_until("document.querySelector('#sign-in-error').textContent.length > 0");

    // A `run` token: notebooks and the catalogue, no review queue.
    browser.sign_in(&server.url, &runner);
    assert_eq!(browser.text("#login"), "dana");
    assert_eq!(browser.count("#nav-notebooks"), 1);
    assert_eq!(
        browser.count("#nav-review"),
        0,
        "a run token sees no review queue"
    );
    browser.goto(&format!("{}/#/review", server.url));
    browser.wait_until("document.querySelector('#page-error')");
    assert!(browser.text("#page-error").contains("`review` scope"));

    // The catalogue lists the approved kernels with their entry points and media types.
    browser.goto(&format!("{}/#/catalogue", server.url));
    browser.wait_until("document.querySelector('#catalogue')");
    let mandelbrot = "article[data-kernel='kernel-mandelbrot@0.1.0']";
    assert!(browser.text(mandelbrot).contains("image/png"));
    assert_eq!(
        browser.count("article[data-kernel^='kernel-hostile']"),
        0,
        "not approved yet"
    );
    browser.screenshot("catalogue");

    // `/me`, where `cargo login` sends people: their own tokens, which they can revoke.
    let spare = server.token("dana", &["run"]);
    browser.goto(&format!("{}/me", server.url));
    browser.wait_until("document.querySelectorAll('#tokens tbody tr').length === 2");
    browser.screenshot("tokens");
    let spare_id = server.get_json("/api/kiln/v1/whoami", Some(&spare))["token_id"]
        .as_i64()
        .unwrap();
    browser.click(&format!(
        "#tokens tr[data-token='{spare_id}'] .revoke-token"
    ));
    browser.wait_until(&format!(
        "document.querySelector(\"#tokens tr[data-token='{spare_id}']\").textContent.includes('revoked')"
    ));
    let refused = server
        .request(reqwest::Method::GET, "/api/kiln/v1/whoami", Some(&spare))
        .send()
        .unwrap()
        .status();
    assert_eq!(refused, 401, "a token revoked from the page is refused");

    // A new notebook: a markdown cell and two chained kernel cells, and a picture.
    browser.goto(&format!("{}/#/notebooks", server.url));
    browser.fill("#new-id", "weather");
    browser.fill("#new-title", "Weather words");
    browser.click("#new-notebook button[type=submit]");
    browser.wait_until("document.querySelector('#run-all')");
    browser.click("#add-markdown");
    browser.type_into(
        "section.markdown-cell .markdown-source",
        "# Weather words\n\nWord counts, then *their* statistics.",
    );
    browser.click("section.markdown-cell .edit");
    assert_eq!(
        browser.text("section.markdown-cell .markdown-view h1"),
        "Weather words"
    );
    let words = add_kernel_cell(&browser, "kernel-word-freq@0.1.0", "counts");
    browser.type_into(
        &format!("{} .input-text", cell(&words)),
        "rain rain sun wind rain sun",
    );
    let stats = add_kernel_cell(&browser, "kernel-csv-stats@0.1.0", "describe");
    browser.select(&format!("{} .input-mode", cell(&stats)), "from");
    browser.select(&format!("{} .input-from", cell(&stats)), &words);
    let picture = add_kernel_cell(&browser, "kernel-mandelbrot@0.1.0", "png");
    browser.fill(
        &format!("{} .input-text", cell(&picture)),
        r#"{"width": 96, "height": 64}"#,
    );
    // Partial limits: the rest keep their defaults.
    browser.click(&format!("{} .limits summary", cell(&picture)));
    browser.type_into(&format!("{} .limit-wall_ms", cell(&picture)), "5000");

    // Run all: every cell streams queued → running → ok.
    browser.click("#run-all");
    browser.wait_until("document.querySelector('#status-line').textContent.includes('finished')");
    for id in [&words, &stats, &picture] {
        browser.wait_until(&format!(
            "document.querySelector(\"{}\").dataset.states === 'queued running ok'",
            cell(id)
        ));
    }
    // The statistics of the word table, as a table (its `columns` are records).
    browser.wait_until(&format!(
        "document.querySelector(\"{} .cell-output table.output-table\")",
        cell(&stats)
    ));
    let header = browser.text(&format!("{} table.output-table thead", cell(&stats)));
    assert!(header.contains("name"), "{header}");
    // The picture, decoded by the browser as a 96×64 PNG.
    browser.wait_until(&format!(
        "document.querySelector(\"{} img.output-image\")?.naturalWidth === 96",
        cell(&picture)
    ));
    let telemetry = browser.text(&format!("{} .cell-telemetry", cell(&picture)));
    for part in ["fuel ", "wall ", "peak memory ", "output ", "cost ", " EUR"] {
        assert!(telemetry.contains(part), "{telemetry}");
    }
    browser.screenshot("notebook-run");

    // Save, reload: the notebook has two versions (created, then saved).
    browser.click("#save");
    browser
        .wait_until("document.querySelector('#status-line').textContent.includes('Saved version')");
    browser.refresh();
    browser.wait_until("document.querySelector('#show-history')");
    assert_eq!(
        browser.count("section.kernel-cell"),
        3,
        "the saved cells came back"
    );
    browser.click("#show-history");
    browser.wait_until("document.querySelectorAll('#versions tr.version').length === 2");
    browser.screenshot("notebook-history");

    // A dataset: uploaded from a file, read by a cell, never copied into the notebook.
    let csv = fixtures.path().join("stations.csv");
    std::fs::write(&csv, "station,temp_c\nnorth,12.5\nsouth,17.25\neast,9.0\n").unwrap();
    let dataset = add_kernel_cell(&browser, "kernel-csv-stats@0.1.0", "describe");
    browser.select(&format!("{} .input-mode", cell(&dataset)), "dataset");
    browser.type_into(
        &format!("{} .dataset-file", cell(&dataset)),
        csv.to_str().unwrap(),
    );
    browser.wait_until(&format!(
        "document.querySelector(\"{} .dataset-digest code\")",
        cell(&dataset)
    ));
    browser.click(&format!("{} .run-cell", cell(&dataset)));
    browser.wait_until(&format!(
        "document.querySelector(\"{}\").dataset.states === 'queued running ok'",
        cell(&dataset)
    ));
    let output = browser.text(&format!("{} .cell-output", cell(&dataset)));
    assert!(
        output.contains("temp_c") && output.contains("rows"),
        "{output}"
    );
    browser.click("#save");
    browser
        .wait_until("document.querySelector('#status-line').textContent.includes('Saved version')");
    let saved = server.get_json("/v1/notebooks/weather", Some(&runner));
    let cells = saved["notebook"]["cells"].as_array().unwrap();
    let blob = cells.last().unwrap()["input"]["blob"].as_str().unwrap();
    assert!(blob.starts_with("sha256:"), "{saved}");
    assert!(!saved["notebook"].to_string().contains("north,12.5"));

    // The notebook's runs, and a replay of the first (deterministic) run, cell by cell.
    browser.click("#show-runs");
    browser.wait_until("document.querySelectorAll('#runs tr.run').length === 2");
    browser.click("#runs tr.run:last-of-type .replay-run");
    browser.wait_until("document.querySelector('#replay-verdict')");
    assert_eq!(browser.text("#replay-verdict"), "every output matches");
    assert_eq!(browser.count("#replay-cells td.state-ok"), 3);
    browser.screenshot("notebook-replay");

    // Revoked with the CLI: the reason shows on its cell, and nothing ran.
    let out = kiln(
        &server.url,
        &server.admin_token,
        &[
            "revoke",
            "kernel-mandelbrot@0.1.0",
            "--reason",
            "incident 7",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let runs_before = runs_of(&server, &runner, "weather");
    browser.click("#run-all");
    browser
        .wait_until("document.querySelector('#status-line').textContent.includes('nothing ran')");
    let reasons = browser.text(&format!("{} .cell-reasons", cell(&picture)));
    assert!(
        reasons.contains("revoked") && reasons.contains("incident 7"),
        "{reasons}"
    );
    assert_eq!(
        browser.text(&format!("{} .cell-status", cell(&words))),
        "not run"
    );
    assert_eq!(
        runs_of(&server, &runner, "weather"),
        runs_before,
        "nothing ran"
    );
    browser.screenshot("notebook-blocked");

    // Kernel output is never HTML: every renderer shows `<script>` as text.
    let rendered = browser.execute_async(
        r#"const done = arguments[arguments.length - 1];
        import("/app/render.js").then((m) => {
          const hostile = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">';
          const bytes = new TextEncoder().encode(hostile);
          const types = ["text/plain", "text/html", "application/json", "text/csv",
                         "text/tab-separated-values", "application/octet-stream"];
          const json = new TextEncoder().encode(JSON.stringify({a: hostile, rows: [{b: hostile}]}));
          const root = document.createElement("div");
          for (const type of types) root.append(m.renderOutput(type, bytes));
          root.append(m.renderOutput("application/json", json));
          document.body.append(root);
          setTimeout(() => done({
            scripts: root.querySelectorAll("script").length,
            images: root.querySelectorAll("img").length,
            pwned: window.pwned ?? null,
            shown: root.textContent.includes("<script>"),
          }), 100);
        });"#,
        Vec::new(),
    );
    assert_eq!(
        rendered,
        json!({"scripts": 0, "images": 0, "pwned": null, "shown": true})
    );
    // The policy refuses an inline script the page did not ship (and nothing before it was
    // refused: the app itself keeps to its policy).
    let violations = browser.execute(
        "return document.body.dataset.cspViolations ?? '';",
        Vec::new(),
    );
    assert_eq!(violations, json!(""), "the app broke its own policy");
    let inline = browser.execute_async(
        r#"const done = arguments[arguments.length - 1];
        const s = document.createElement("script");
        s.textContent = "window.inlineRan = true";
        document.body.append(s);
        setTimeout(() => done(window.inlineRan ?? false), 100);"#,
        Vec::new(),
    );
    assert_eq!(inline, Value::Bool(false), "an inline script ran");

    // A reviewer: the queue, a submission with its diff, approval; the CLI sees it approved.
    browser.sign_in(&server.url, &reviewer);
    assert_eq!(
        browser.count("#nav-notebooks"),
        0,
        "a review token keeps no notebooks"
    );
    browser.goto(&format!("{}/#/review", server.url));
    browser.wait_until(
        "document.querySelector(\"#queue tr[data-submission='kernel-hostile@0.1.0']\")",
    );
    browser.screenshot("review-queue");
    browser.click("#queue tr[data-submission='kernel-hostile@0.1.0'] a");
    browser.wait_until("document.querySelector('#approve')");
    assert!(browser.text("#callouts").contains("first version"));
    browser.screenshot("review-submission");
    browser.click("#approve");
    browser.wait_until("document.querySelector('#submission-state')?.textContent === 'approved'");
    let out = kiln(
        &server.url,
        &reviewer,
        &["review", "show", "kernel-hostile@0.1.0"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("approved"), "{}", stdout(&out));

    // No request left kiln's origin.
    let urls = browser.requested_urls();
    assert!(
        urls.len() > 10,
        "the performance log holds the page's requests: {urls:?}"
    );
    let foreign: Vec<_> = urls
        .iter()
        .filter(|u| {
            !u.starts_with(&server.url) && !u.starts_with("blob:") && !u.starts_with("data:")
        })
        .collect();
    assert!(foreign.is_empty(), "requests to other origins: {foreign:?}");

    // Speed: the tour notebook from Run all to its last output, against `kiln run --executor`.
    let tour = fixtures.path().join("tour.json");
    // Mandelbrot is revoked now; the tour runs without its picture cell.
    let mut doc: Value = serde_json::from_slice(
        &std::fs::read(workspace_root().join("examples/notebooks/tour.json")).unwrap(),
    )
    .unwrap();
    doc["cells"]
        .as_array_mut()
        .unwrap()
        .retain(|c| c.get("kernel") != Some(&json!("mandelbrot")));
    doc["kernels"].as_object_mut().unwrap().remove("mandelbrot");
    std::fs::write(&tour, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    // Pinned to what this registry built, by the lock command.
    let out = kiln(
        &server.url,
        &reviewer,
        &["notebook", "lock", tour.to_str().unwrap(), "--update"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&std::fs::read(&tour).unwrap()).unwrap();
    let put = server
        .request(reqwest::Method::PUT, "/v1/notebooks/tour", Some(&runner))
        .json(&json!({"parent": null, "notebook": doc}))
        .send()
        .unwrap();
    assert_eq!(put.status(), 200);
    let started = Instant::now();
    let out = kiln(
        &server.url,
        &runner,
        &[
            "run",
            tour.to_str().unwrap(),
            "--executor",
            &server.url,
            "--json",
        ],
    );
    let cli = started.elapsed();
    assert!(out.status.success(), "{}", stderr(&out));
    // `--json` carries every output with its digest.
    let ran: Value = serde_json::from_str(&stdout(&out)).unwrap();
    for cell in ran["record"]["cells"].as_array().unwrap() {
        let output = &ran["outputs"][cell["id"].as_str().unwrap()];
        assert_eq!(output["digest"], cell["output"], "{ran}");
        assert!(
            output["text"].is_string() || output["base64"].is_string(),
            "{ran}"
        );
    }
    browser.sign_in(&server.url, &runner);
    browser.goto(&format!("{}/#/notebooks/tour", server.url));
    browser.wait_until("document.querySelector('#run-all')");
    let mut page_runs = Vec::new();
    for _ in 0..5 {
        browser.execute("delete document.body.dataset.lastRunMs;", Vec::new());
        browser.click("#run-all");
        browser.wait_until("document.body.dataset.lastRunMs !== undefined");
        let ms = browser.execute(
            "return Number(document.body.dataset.lastRunMs);",
            Vec::new(),
        );
        page_runs.push(Duration::from_millis(ms.as_u64().unwrap()));
    }
    page_runs.sort();
    let page = page_runs[page_runs.len() / 2];
    browser.screenshot("tour");
    println!(
        "web app: first load {first_load_ms:.0} ms in a new browser, {reload_ms:.0} ms after (median of 5; aim ≤ 300 ms); tour Run all → last output {page:?} (median of 5) \
         against `kiln run --executor` {cli:?}: {:.2}× (aim ≤ 1.5×); screenshots in {}",
        page.as_secs_f64() / cli.as_secs_f64(),
        browser.screenshots.display()
    );
}

#[test]
fn notebooks_are_versioned_documents_and_datasets_are_bounded() {
    let fixtures = tempfile::tempdir().unwrap();
    let policy = fixtures.path().join("policy.toml");
    std::fs::write(&policy, "[execution]\nmax_dataset_bytes = 1024\n").unwrap();
    let server = KilnServer::start_with(ServerOptions {
        args: vec!["--policy".into(), policy.display().to_string()],
        ..ServerOptions::default()
    });
    let runner = server.token("dana", &["run"]);
    let put = |id: &str, body: &Value| {
        let response = server
            .request(
                reqwest::Method::PUT,
                &format!("/v1/notebooks/{id}"),
                Some(&runner),
            )
            .json(body)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json::<Value>().unwrap())
    };
    let doc = |title: &str| {
        json!({"kiln_notebook": 1, "metadata": {"title": title}, "kernels": {}, "cells": [
        {"type": "markdown", "source": title}]})
    };

    let (status, first) = put("plots", &json!({"parent": null, "notebook": doc("one")}));
    assert_eq!(status, 200, "{first}");
    let (status, second) = put(
        "plots",
        &json!({"parent": first["digest"], "notebook": doc("two")}),
    );
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["parent"], first["digest"]);
    // Another editor still on the first version: 409, and nothing changes.
    let (status, stale) = put(
        "plots",
        &json!({"parent": first["digest"], "notebook": doc("three")}),
    );
    assert_eq!(status, 409, "{stale}");
    assert_eq!(stale["error"], "stale-parent");
    assert!(
        stale["message"]
            .as_str()
            .unwrap()
            .contains(second["digest"].as_str().unwrap())
    );
    let head = server.get_json("/v1/notebooks/plots", Some(&runner));
    assert_eq!(head["version"]["digest"], second["digest"]);
    assert_eq!(head["notebook"]["metadata"]["title"], "two");
    let history = server.get_json("/v1/notebooks/plots/versions", Some(&runner));
    assert_eq!(history.as_array().unwrap().len(), 2);
    let old = server.get_json(
        &format!(
            "/v1/notebooks/plots/versions/{}",
            first["digest"].as_str().unwrap()
        ),
        Some(&runner),
    );
    assert_eq!(old["notebook"]["metadata"]["title"], "one");

    // A malformed notebook: 400 naming the cell and the field; nothing stored.
    let mut bad = doc("four");
    bad["cells"] = json!([{"type": "kernel", "id": "x", "kernel": "nope", "entry": "e", "input": {"text": ""}}]);
    let (status, answer) = put(
        "plots",
        &json!({"parent": second["digest"], "notebook": bad}),
    );
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("cell `x` (#1), field `kernel`"),
        "{answer}"
    );
    let history = server.get_json("/v1/notebooks/plots/versions", Some(&runner));
    assert_eq!(history.as_array().unwrap().len(), 2);
    // Ids are names, never paths.
    let (status, _) = put(
        "..%2Fescape",
        &json!({"parent": null, "notebook": doc("x")}),
    );
    assert!(status == 400 || status == 404, "{status}");
    // No token, no notebooks.
    let status = server
        .request(reqwest::Method::GET, "/v1/notebooks", None)
        .send()
        .unwrap()
        .status();
    assert_eq!(status, 401);

    // Datasets: up to the policy's limit; past it 413 and nothing kept.
    let upload = |bytes: Vec<u8>| {
        let response = server
            .request(reqwest::Method::POST, "/v1/datasets", Some(&runner))
            .body(bytes)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json::<Value>().unwrap())
    };
    let (status, created) = upload(b"a,b\n1,2\n".to_vec());
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["size"], 8);
    let (status, refused) = upload(vec![b'x'; 4096]);
    assert_eq!(status, 413, "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("1024"),
        "{refused}"
    );
    // Only the first is kept (datasets/sha256/HE/HEX), and no staging file is left behind.
    let datasets = server.data_dir().join("executor/datasets");
    let shards: Vec<_> = std::fs::read_dir(datasets.join("sha256"))
        .unwrap()
        .collect();
    assert_eq!(shards.len(), 1);
    let left: Vec<_> = std::fs::read_dir(&datasets)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["sha256"], "{left:?}");

    // The policy the page writes cells against.
    let policy = server.get_json("/v1/policy", Some(&runner));
    assert_eq!(policy["max_dataset_bytes"], 1024);
    assert_eq!(policy["default_limits"]["wall_ms"], 10_000);
    assert!(policy["allowed_imports"]["wasi_snapshot_preview1"].is_array());

    // The page itself, with its policy.
    let response = server
        .request(reqwest::Method::GET, "/", None)
        .send()
        .unwrap();
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe"), "{csp}");
}
