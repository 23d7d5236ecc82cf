//! Real crates.io crates through the gate: closures imported from an upstream index on loopback
//! (real `.crate` files, fetched by Cargo from the pinned `tests/upstream/Cargo.lock`), audited
//! and built as a dependent sees them, approved with one `--closure` command, and a kernel on
//! `serde_json` and `serde` with `derive`, published with real `cargo publish`, built in the
//! sandbox and run in a notebook.

use std::collections::BTreeSet;
use std::time::Duration;

use kiln_tests::cargo::{CargoWorld, stderr};
use kiln_tests::cli::{kiln, refused, stdout};
use kiln_tests::server::{KilnServer, ServerOptions};
use kiln_tests::upstream::{Upstream, real_crate};
use kiln_tests::workspace_root;
use serde_json::Value;

/// `kiln import SPEC --upstream … --json ARGS`, which must succeed; the plan.
fn import(server: &KilnServer, upstream: &Upstream, spec: &str, args: &[&str]) -> Value {
    let mut all = vec!["import", spec, "--upstream", &upstream.index, "--json"];
    all.extend(args);
    let out = kiln(&server.url, &server.admin_token, &all);
    assert!(out.status.success(), "{}{}", stderr(&out), stdout(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

/// `NAME@VERSION` of each member of an import plan, with its status.
fn members(plan: &Value) -> BTreeSet<(String, String)> {
    plan["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                format!(
                    "{}@{}",
                    m["crate"].as_str().unwrap(),
                    m["version"].as_str().unwrap()
                ),
                m["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn names(plan: &Value) -> BTreeSet<String> {
    members(plan).into_iter().map(|(n, _)| n).collect()
}

/// Waits (up to 5 minutes) until `name@version`'s detail satisfies `done`; returns it.
fn wait_until(server: &KilnServer, subject: &str, done: impl Fn(&Value) -> bool) -> Value {
    let (name, version) = subject.split_once('@').unwrap();
    let start = std::time::Instant::now();
    loop {
        let detail = server.get_json(&format!("/api/kiln/v1/submissions/{name}/{version}"), None);
        if done(&detail) {
            return detail;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "{subject} never got there: {detail}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn built(server: &KilnServer, subject: &str) {
    let (name, version) = subject.split_once('@').unwrap();
    let detail = server.settled(name, version);
    assert_eq!(detail["state"], "built", "{detail}");
}

/// What a dependent of `serde_json` resolves: its lockfile, which is the same for every target
/// (serde's `cfg(any())` pin of `serde_derive` is in it, though nothing builds it).
const SERDE_JSON_CLOSURE: [&str; 11] = [
    "itoa@1.0.19",
    "memchr@2.8.3",
    "proc-macro2@1.0.107",
    "quote@1.0.47",
    "serde@1.0.229",
    "serde_core@1.0.229",
    "serde_derive@1.0.229",
    "serde_json@1.0.154",
    "syn@3.0.10",
    "unicode-ident@1.0.27",
    "zmij@1.0.23",
];

const KERNEL: &str = r#"
use kiln_kernel::{Error, Input, Output};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Point {
    x: f64,
    y: f64,
}

#[derive(Serialize)]
struct Centroid {
    points: usize,
    x: f64,
    y: f64,
}

fn centroid(input: Input<'_>, out: &mut Output) -> Result<(), Error> {
    let points: Vec<Point> = input.json()?;
    let n = points.len().max(1) as f64;
    let answer = Centroid {
        points: points.len(),
        x: points.iter().map(|p| p.x).sum::<f64>() / n,
        y: points.iter().map(|p| p.y).sum::<f64>() / n,
    };
    let tagged = serde_json::json!({"centroid": answer, "by": "serde_json"});
    out.json(&tagged)
}

kiln_kernel::kernel! {
    entry centroid(input: "application/json", output: "application/json") => centroid;
}
"#;

#[test]
fn serde_json_and_serde_derive_get_through_the_gate_and_a_kernel_on_them_runs() {
    let upstream = Upstream::start();
    let fixtures = tempfile::tempdir().unwrap();
    let server = KilnServer::start_with(ServerOptions::building(fixtures.path(), &[]));
    let author = server.token("ada", &["publish"]);
    let reviewer = server.token("rita", &["review"]);

    // A dry run lists the closure a dependent resolves for the kernel target, and imports
    // nothing: no dev-dependency, no optional dependency (`indexmap`) that no default feature
    // turns on.
    let plan = import(&server, &upstream, "serde_json@1", &["--dry-run"]);
    assert_eq!(plan["root"], "serde_json@1.0.154", "{plan}");
    assert_eq!(
        names(&plan),
        SERDE_JSON_CLOSURE.iter().map(|s| s.to_string()).collect(),
        "{plan}"
    );
    assert_eq!(
        server.get_json("/api/kiln/v1/submissions", None),
        Value::Array(vec![])
    );

    // The import brings every member in, byte for byte.
    let plan = import(&server, &upstream, "serde_json@1", &[]);
    assert!(members(&plan).iter().all(|(_, s)| s == "added"), "{plan}");
    for subject in SERDE_JSON_CLOSURE {
        let (name, version) = subject.split_once('@').unwrap();
        let stored = server
            .request(
                reqwest::Method::GET,
                &format!("/api/kiln/v1/submissions/{name}/{version}/crate"),
                Some(&reviewer),
            )
            .send()
            .unwrap()
            .bytes()
            .unwrap();
        assert!(
            stored[..] == real_crate(name, version)[..],
            "{subject} is byte-identical"
        );
    }
    for subject in SERDE_JSON_CLOSURE {
        built(&server, subject);
    }
    // The features each was curated with are in its audit report: serde_json's dependents turn
    // none of serde's on.
    let audit_features = |name: &str, version: &str| -> Vec<String> {
        let detail = server.get_json(&format!("/api/kiln/v1/submissions/{name}/{version}"), None);
        detail["reports"]["audit"]["features"]
            .as_array()
            .map(|f| f.iter().map(|f| f.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    };
    assert_eq!(audit_features("serde_json", "1.0.154"), ["default", "std"]);
    assert!(audit_features("serde", "1.0.229").is_empty());

    // The closure as one review: build-time code and licences of every member, dependencies
    // first.
    let out = kiln(
        &server.url,
        &reviewer,
        &[
            "review",
            "show",
            "serde_json@1.0.154",
            "--closure",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let review: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let entry = |name: &str| {
        review["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["crate"] == name)
            .unwrap_or_else(|| panic!("{name} in {review}"))
            .clone()
    };
    assert_eq!(entry("serde_derive")["proc_macro"], true, "{review}");
    assert_eq!(entry("proc-macro2")["build_script"], true, "{review}");
    assert_eq!(entry("syn")["standing"], "new", "{review}");
    assert_eq!(entry("itoa")["license"], "MIT OR Apache-2.0", "{review}");
    assert_eq!(
        review["members"].as_array().unwrap().last().unwrap()["crate"],
        "serde_json",
        "dependencies first: {review}"
    );

    // One version alone cannot be approved before what it resolves.
    let out = kiln(
        &server.url,
        &reviewer,
        &["review", "approve", "serde_json@1.0.154"],
    );
    refused(&out, "its resolution needs what is not approved here yet");
    // The whole closure can, in one command, each version with its own signed review statement.
    let out = kiln(
        &server.url,
        &reviewer,
        &["review", "approve", "serde_json@1.0.154", "--closure"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("11 versions now"), "{}", stdout(&out));
    let syn = server.get_json("/api/kiln/v1/submissions/syn/3.0.10", None);
    assert_eq!(syn["state"], "approved");
    assert!(
        syn["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "review"),
        "{syn}"
    );

    // serde with `derive`: approved for fewer features, so a new round covers them; the rest
    // is here already and is not imported again.
    let plan = import(&server, &upstream, "serde@1", &["--features", "derive"]);
    let statuses = members(&plan);
    assert!(
        statuses.contains(&("serde@1.0.229".into(), "extended".into())),
        "{plan}"
    );
    assert_eq!(
        statuses.iter().filter(|(_, s)| s == "present").count(),
        6,
        "{plan}"
    );
    let serde = server.get_json("/api/kiln/v1/submissions/serde/1.0.229", None);
    assert_eq!(
        serde["approved_features"],
        serde_json::json!([]),
        "still approved: {serde}"
    );
    built(&server, "serde@1.0.229");
    assert_eq!(
        audit_features("serde", "1.0.229"),
        ["default", "derive", "serde_derive", "std"]
    );
    let out = kiln(
        &server.url,
        &reviewer,
        &["review", "approve", "serde@1.0.229", "--closure"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("1 version now, 6 approved before"),
        "{}",
        stdout(&out)
    );

    // The SDK, then a kernel that turns on its uncurated `serde` feature: it waits, naming it.
    let world = CargoWorld::new(&server);
    world.curated_only();
    world.publish_sdk(&server, &author, &reviewer);
    let kernel = world.kernel(
        "kernel-centroid",
        "0.1.0",
        "kiln-kernel = { version = \"0.1.0\", registry = \"kiln\", features = [\"serde\"] }\n\
         serde = { version = \"1\", features = [\"derive\"] }\nserde_json = \"1\"",
        KERNEL,
    );
    let out = world.publish(&kernel, Some(&author));
    assert!(out.status.success(), "{}", stderr(&out));
    let waiting = wait_until(&server, "kernel-centroid@0.1.0", |d| {
        d["state_reason"]
            .as_str()
            .is_some_and(|r| r.contains("needs features"))
    });
    let reason = waiting["state_reason"].as_str().unwrap();
    assert!(
        reason.contains("kiln-kernel@0.1.0 with feature `serde`"),
        "{reason}"
    );
    assert_eq!(waiting["state"], "submitted", "{waiting}");

    // Curating the feature starts a round for it; the SDK stays usable meanwhile.
    let out = kiln(
        &server.url,
        &reviewer,
        &[
            "review",
            "curate",
            "kiln-kernel@0.1.0",
            "--features",
            "serde",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    built(&server, "kiln-kernel@0.1.0");
    let (status, body) = server.approve(&reviewer, "kiln-kernel", "0.1.0");
    assert_eq!(status, 200, "{body}");
    let sdk = server.get_json("/api/kiln/v1/submissions/kiln-kernel/0.1.0", None);
    assert_eq!(
        sdk["approved_features"],
        serde_json::json!(["serde"]),
        "{sdk}"
    );

    // The kernel's audit wakes, it builds in the sandbox, and runs.
    built(&server, "kernel-centroid@0.1.0");
    let (status, body) = server.approve(&reviewer, "kernel-centroid", "0.1.0");
    assert_eq!(status, 200, "{body}");
    let detail = server.get_json("/api/kiln/v1/submissions/kernel-centroid/0.1.0", None);
    let (wasm, _) = server.artifact(&detail, "wasm");
    let (cwasm, _) = server.artifact(&detail, "cwasm");
    let notebook = serde_json::json!({
        "kiln_notebook": 1,
        "kernels": {"c": {"crate": "kernel-centroid", "version": "0.1.0",
                          "wasm": wasm.to_string(), "cwasm": cwasm.to_string()}},
        "cells": [{"type": "kernel", "id": "mid", "kernel": "c", "entry": "centroid",
                   "input": {"json": [{"x": 0, "y": 0}, {"x": 2, "y": 4}]},
                   "grants": ["wasi_snapshot_preview1.*"]}]
    });
    let scratch = tempfile::tempdir().unwrap();
    let path = scratch.path().join("notebook.json");
    std::fs::write(&path, serde_json::to_vec(&notebook).unwrap()).unwrap();
    let out = std::process::Command::new(kiln_tests::kiln_binary())
        .arg("run")
        .arg(&path)
        .args(["--json", "--registry", &server.url, "--trust"])
        .arg(server.data_dir().join("trust.toml"))
        .arg("--cache")
        .arg(scratch.path().join("cache"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let run: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let cell = &run["record"]["cells"][0];
    assert_eq!(cell["status"], "ok", "{run}");
    // The output is serde_json's serialisation of the derived struct, byte for byte.
    let expected = br#"{"by":"serde_json","centroid":{"points":2,"x":1.0,"y":2.0}}"#;
    assert_eq!(
        cell["output"],
        kiln_policy::Digest::of(expected).to_string(),
        "{run}"
    );
}

#[test]
fn a_closure_with_a_denied_member_approves_nothing_and_names_it() {
    let upstream = Upstream::start();
    let fixtures = tempfile::tempdir().unwrap();
    // The snapshot's advisory for smallvec 1.6.0 (RUSTSEC-2021-0003), in the test's database.
    let snapshot =
        workspace_root().join("../shared/advisory-db/crates/smallvec/RUSTSEC-2021-0003.md");
    let options = ServerOptions::building(fixtures.path(), &[]);
    let into = fixtures.path().join("db/crates/smallvec");
    std::fs::create_dir_all(&into).unwrap();
    match std::fs::read(&snapshot) {
        Ok(text) => std::fs::write(into.join("RUSTSEC-2021-0003.md"), text).unwrap(),
        Err(_) => kiln_tests::advisories::write(
            &fixtures.path().join("db"),
            "RUSTSEC-2021-0003",
            "smallvec",
            ">= 1.6.1",
        ),
    }
    let server = KilnServer::start_with(options);
    let reviewer = server.token("rita", &["review"]);

    // A crate that depends on smallvec ^1, whose only upstream version is 1.6.0.
    let mut file = kiln_tests::crate_file::CrateFile::new();
    file.file(
        "uses-smallvec-0.1.0/Cargo.toml",
        b"[package]\nname = \"uses-smallvec\"\nversion = \"0.1.0\"\nedition = \"2021\"\nlicense = \"MIT\"\n\n[dependencies]\nsmallvec = \"1\"\n",
    );
    file.file(
        "uses-smallvec-0.1.0/src/lib.rs",
        b"pub use smallvec::SmallVec;\n",
    );
    upstream.add(
        "uses-smallvec",
        "0.1.0",
        file.gzip(),
        serde_json::json!([{"name": "smallvec", "req": "^1", "features": [], "optional": false,
                            "default_features": true, "target": null, "kind": "normal"}]),
    );
    let plan = import(&server, &upstream, "uses-smallvec@0.1.0", &[]);
    assert_eq!(
        names(&plan),
        ["smallvec@1.6.0", "uses-smallvec@0.1.0"]
            .map(str::to_owned)
            .into_iter()
            .collect()
    );
    let smallvec = server.settled("smallvec", "1.6.0");
    assert_eq!(smallvec["state"], "failed", "{smallvec}");
    assert_eq!(
        smallvec["reports"]["audit"]["verdict"], "deny",
        "{smallvec}"
    );

    let out = kiln(
        &server.url,
        &reviewer,
        &["review", "approve", "uses-smallvec@0.1.0", "--closure"],
    );
    refused(&out, "nothing was approved");
    let err = stderr(&out);
    assert!(
        err.contains("smallvec@1.6.0 is denied by its audit") && err.contains("RUSTSEC-2021-0003"),
        "{err}"
    );
    for (name, version) in [("smallvec", "1.6.0"), ("uses-smallvec", "0.1.0")] {
        let detail = server.get_json(&format!("/api/kiln/v1/submissions/{name}/{version}"), None);
        assert!(detail["approved_features"].is_null(), "{detail}");
        assert!(detail["reviews"].as_array().unwrap().is_empty(), "{detail}");
    }
    let index = server
        .request(reqwest::Method::GET, "/index/sm/al/smallvec", None)
        .send()
        .unwrap();
    assert_eq!(index.status(), 404);
}
