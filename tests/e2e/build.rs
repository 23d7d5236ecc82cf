//! The hermetic builder end to end: the SDK and an example kernel published with real
//! `cargo publish`, audited and built by the workers inside `kiln serve` (bubblewrap, offline,
//! vendored from the registry), with signed provenance that names exactly the locked
//! dependencies; and `kiln build` giving the same bytes from two different directories.

use std::path::Path;

use kiln_policy::manifest::ArtifactManifest;
use kiln_policy::slsa::Provenance;
use kiln_policy::{Digest, Expectation, Keyring, StatementKind, Verifier};
use kiln_tests::cargo::{CargoWorld, stderr};
use kiln_tests::server::{KilnServer, ServerOptions};
use kiln_tests::{kiln_binary, workspace_root};
use serde_json::Value;

fn advisory_db(dir: &Path) {
    kiln_tests::advisories::write(dir, "RUSTSEC-2099-0001", "someone-else", ">= 1.0.0");
}

#[test]
fn a_kernel_builds_through_the_queue_into_signed_artifacts() {
    let fixtures = tempfile::tempdir().unwrap();
    let server = KilnServer::start_with(ServerOptions::building(fixtures.path(), &[]));
    let author = server.token("ada", &["publish"]);
    let reviewer = server.token("rita", &["review"]);
    let world = CargoWorld::new(&server);

    // The SDK is a library: it is compiled for the kernel target and has no module.
    world.publish_sdk(&server, &author, &reviewer);
    let sdk = server.settled("kiln-kernel", "0.1.0");
    assert_eq!(sdk["reports"]["build"]["target"], "wasm32-wasip1", "{sdk}");
    assert!(sdk["reports"]["build"]["kernel"].is_null(), "{sdk}");

    // The example kernel without dependencies of its own depends on it through the registry
    // (the kernels on crates.io crates go through closures: tests/e2e/closure.rs).
    let out = world.publish(
        &workspace_root().join("examples/kernels/mandelbrot"),
        Some(&author),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let kernel = server.settled("kernel-mandelbrot", "0.1.0");
    assert_eq!(kernel["state"], "built", "{kernel}");
    let build = &kernel["reports"]["build"];
    assert_eq!(build["isolation"], "bubblewrap", "{build}");

    let (wasm_digest, wasm) = server.artifact(&kernel, "wasm");
    let (cwasm_digest, _) = server.artifact(&kernel, "cwasm");
    let (manifest_digest, manifest) = server.artifact(&kernel, "manifest");
    let (_, provenance) = server.artifact(&kernel, "provenance");
    let (log_digest, _) = server.artifact(&kernel, "log");
    assert_eq!(&wasm[..4], b"\0asm");
    let manifest: ArtifactManifest = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(
        (manifest.wasm, manifest.cwasm),
        (wasm_digest, Some(cwasm_digest))
    );
    assert!(
        manifest.entries.iter().any(|e| e.name == "tile"),
        "{manifest:?}"
    );

    // The provenance verifies with the server's trust file and covers both modules.
    let keyring = Keyring::load(&server.data_dir().join("trust.toml")).unwrap();
    let verifier = Verifier::new(&keyring);
    for subject in [wasm_digest, cwasm_digest] {
        verifier
            .verify_json(
                &provenance,
                Expectation {
                    kind: Some(StatementKind::Provenance),
                    subject: Some(subject),
                },
            )
            .unwrap();
    }
    let verified = verifier
        .verify_json(&provenance, Expectation::default())
        .unwrap();
    let predicate: Provenance = verified.statement.predicate_as().unwrap();
    let mut resolved: Vec<&str> = predicate
        .build_definition
        .resolved_dependencies
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    resolved.sort();
    assert_eq!(
        resolved,
        [
            "crate:kiln-abi@0.1.0",
            "crate:kiln-kernel@0.1.0",
            "rust-toolchain"
        ]
    );
    let sdk_checksum: Digest = format!("sha256:{}", sdk["checksum"].as_str().unwrap())
        .parse()
        .unwrap();
    assert_eq!(
        predicate
            .build_definition
            .resolved_dependencies
            .iter()
            .find(|d| d.name == "crate:kiln-kernel@0.1.0")
            .unwrap()
            .sha256(),
        Some(sdk_checksum),
        "the dependency is named by the checksum of the approved .crate"
    );
    let byproducts: Vec<Option<Digest>> = predicate
        .run_details
        .byproducts
        .iter()
        .map(|b| b.sha256())
        .collect();
    assert!(
        byproducts.contains(&Some(manifest_digest)),
        "{byproducts:?}"
    );
    assert!(byproducts.contains(&Some(log_digest)), "{byproducts:?}");
    assert_eq!(
        predicate.build_definition.external_parameters["crate"],
        "kernel-mandelbrot"
    );

    // Anyone with the trust file can rebuild the approved version and compare.
    let (status, body) = server.approve(&reviewer, "kernel-mandelbrot", "0.1.0");
    assert_eq!(status, 200, "{body}");
    let out = std::process::Command::new(kiln_binary())
        .args([
            "build",
            "kernel-mandelbrot@0.1.0",
            "--verify",
            "--registry",
            &server.url,
            "--trust",
        ])
        .arg(server.data_dir().join("trust.toml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("rebuilt to the same bytes"), "{stdout}");
    assert!(stdout.contains(&wasm_digest.to_string()), "{stdout}");

    // A notebook pinned to the approved artifacts runs after preflight; approval signed a
    // review statement with the server's reviewer key, which the default policy requires.
    let notebook = |grants: serde_json::Value| {
        serde_json::json!({
            "kiln_notebook": 1,
            "kernels": {"set": {"crate": "kernel-mandelbrot", "version": "0.1.0",
                                "wasm": wasm_digest.to_string(), "cwasm": cwasm_digest.to_string()}},
            "cells": [{"type": "kernel", "id": "tile", "kernel": "set", "entry": "ascii",
                       "input": {"json": {"width": 8, "height": 4}}, "grants": grants}]
        })
    };
    let scratch = tempfile::tempdir().unwrap();
    let run = |name: &str, document: &Value| {
        let path = scratch.path().join(name);
        std::fs::write(&path, serde_json::to_vec(document).unwrap()).unwrap();
        std::process::Command::new(kiln_binary())
            .arg("run")
            .arg(&path)
            .args(["--json", "--registry", &server.url, "--trust"])
            .arg(server.data_dir().join("trust.toml"))
            .arg("--cache")
            .arg(scratch.path().join("cache"))
            .output()
            .unwrap()
    };
    let granted = notebook(serde_json::json!(["wasi_snapshot_preview1.*"]));
    let out = run("granted.json", &granted);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    let record = &answer["record"];
    assert!(
        answer["id"].as_str().unwrap().starts_with("run-"),
        "{answer}"
    );
    assert_eq!(record["cells"][0]["status"], "ok", "{record}");
    assert!(record["cells"][0]["metrics"]["fuel"].as_u64().unwrap() > 0);

    // Imports the cell does not grant: blocked, with the import named, and nothing ran.
    let out = run("ungranted.json", &notebook(serde_json::json!([])));
    assert_eq!(out.status.code(), Some(1));
    let blocked: Value = serde_json::from_slice(&out.stdout).unwrap();
    let reasons = blocked["preflight"]["cells"][0]["reasons"].to_string();
    assert!(
        reasons.contains("import-not-granted") && reasons.contains("fd_write"),
        "{reasons}"
    );

    // Revoked: blocked, even with every artifact in the local cache.
    let (status, body) = server.post_json(
        "/api/kiln/v1/revocations",
        Some(&server.admin_token),
        &serde_json::json!({"target": "kernel-mandelbrot@0.1.0", "reason": "incident 42"}),
    );
    assert_eq!(status, 200, "{body}");
    let out = run("granted.json", &granted);
    assert_eq!(out.status.code(), Some(1));
    let blocked = String::from_utf8_lossy(&out.stdout);
    assert!(
        blocked.contains("revoked") && blocked.contains("incident 42"),
        "{blocked}"
    );
}

#[test]
fn a_separate_builder_process_works_the_queue() {
    let fixtures = tempfile::tempdir().unwrap();
    advisory_db(&fixtures.path().join("db"));
    let server = KilnServer::start_with(ServerOptions {
        workers: false,
        ..ServerOptions::default()
    });
    let author = server.token("ada", &["publish"]);
    let worker = server.token("builders", &["worker"]);
    let policy = fixtures.path().join("policy.toml");
    std::fs::write(&policy, "[advisories]\nmax_db_age_days = 100000\n").unwrap();
    // Two replicas named, the first out of reach: the builder passes over it. The token comes
    // from the environment, so it never shows in the process list.
    let replicas = format!("http://127.0.0.1:9,{}", server.url);
    let mut builder = std::process::Command::new(kiln_binary())
        .args([
            "builder",
            "--registry",
            &replicas,
            "--name",
            "scale-out-1",
            "--key",
        ])
        .arg(server.data_dir().join("keys/builder.key"))
        .arg("--advisory-db")
        .arg(fixtures.path().join("db"))
        .arg("--policy")
        .arg(&policy)
        .arg("--cache")
        .arg(fixtures.path().join("cache"))
        .env("KILN_KEY_PASSWORD", "")
        .env("KILN_TOKEN", &worker)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let command_line = std::fs::read(format!("/proc/{}/cmdline", builder.id())).unwrap();
    assert!(
        !String::from_utf8_lossy(&command_line).contains(&worker),
        "the worker token shows in the process list"
    );
    let world = CargoWorld::new(&server);
    let lib = world.library("scaled-out", "1.0.0", "", "pub fn f() -> u8 { 7 }\n");
    let out = world.publish(&lib, Some(&author));
    assert!(out.status.success(), "{}", stderr(&out));
    let detail = server.settled("scaled-out", "1.0.0");
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(builder.id().to_string())
        .status();
    let status = builder.wait().unwrap();
    assert_eq!(detail["state"], "built", "{detail}");
    assert_eq!(detail["reports"]["audit"]["verdict"], "pass", "{detail}");
    assert!(
        status.success(),
        "the builder stops cleanly on SIGTERM: {status}"
    );
}

/// Copies the SDK and one example kernel into `dest`, as a second clone would have them.
fn clone_subset(dest: &Path) {
    let root = workspace_root();
    for rel in ["abi", "sdk", "examples/kernels/csv-stats", ".cargo"] {
        copy_dir(&root.join(rel), &dest.join(rel));
    }
    std::fs::copy(root.join("Cargo.lock"), dest.join("Cargo.lock")).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == "target" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn kiln_build_gives_the_same_bytes_from_two_directories() {
    let scratch = tempfile::tempdir().unwrap();
    let mut digests = Vec::new();
    for clone in ["first-clone", "somewhere/else/second"] {
        let repo = scratch.path().join(clone);
        clone_subset(&repo);
        let out_dir = scratch.path().join(format!("out-{}", digests.len()));
        let out = std::process::Command::new(kiln_binary())
            .arg("build")
            .arg(repo.join("examples/kernels/csv-stats"))
            .arg("--repository")
            .arg(&repo)
            .arg("--out")
            .arg(&out_dir)
            // Limits change the provenance, not the module.
            .args(["--build-processes", &(700 + digests.len()).to_string()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let signer =
            kiln_policy::PublicKey::from_pem(&std::fs::read(out_dir.join("builder.pub")).unwrap())
                .unwrap();
        let mut keyring = Keyring::new();
        keyring
            .add("ephemeral", signer, [kiln_policy::Role::Builder])
            .unwrap();
        let provenance = Verifier::new(&keyring)
            .verify_json(
                &std::fs::read(out_dir.join("provenance.sigstore.json")).unwrap(),
                Expectation::default(),
            )
            .unwrap();
        let predicate: Provenance = provenance.statement.predicate_as().unwrap();
        assert_eq!(
            predicate.build_definition.internal_parameters.unwrap()["limits"]["processes"],
            700 + digests.len(),
            "the limit given is the limit recorded"
        );
        let wasm = std::fs::read(out_dir.join("kernel.wasm")).unwrap();
        let cwasm = std::fs::read(out_dir.join("kernel.cwasm")).unwrap();
        for file in [
            "manifest.json",
            "provenance.sigstore.json",
            "build.log",
            "builder.pub",
        ] {
            assert!(out_dir.join(file).is_file(), "{file}");
        }
        let text = String::from_utf8_lossy(&wasm);
        assert!(
            !text.contains(&scratch.path().display().to_string()),
            "a host path in the module"
        );
        digests.push((Digest::of(&wasm), Digest::of(&cwasm)));
    }
    assert_eq!(digests[0], digests[1], "two clones, two different bytes");

    // With a fixed key and a cache, the same inputs are served from the cache, unchanged.
    let key = scratch.path().join("builder");
    let out = std::process::Command::new(kiln_binary())
        .args(["keys", "generate", "--out"])
        .arg(&key)
        .env("KILN_KEY_PASSWORD", "")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let repo = scratch.path().join("first-clone");
    let cached_build = |out_dir: &Path| {
        std::process::Command::new(kiln_binary())
            .arg("build")
            .arg(repo.join("examples/kernels/csv-stats"))
            .arg("--repository")
            .arg(&repo)
            .arg("--key")
            .arg(key.with_extension("key"))
            .arg("--cache")
            .arg(scratch.path().join("cache"))
            .arg("--out")
            .arg(out_dir)
            .env("KILN_KEY_PASSWORD", "")
            .output()
            .unwrap()
    };
    let mut outputs = Vec::new();
    for round in 0..2 {
        let out_dir = scratch.path().join(format!("cached-{round}"));
        let out = cached_build(&out_dir);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        outputs.push((
            String::from_utf8_lossy(&out.stdout).into_owned(),
            Digest::of(&std::fs::read(out_dir.join("kernel.wasm")).unwrap()),
        ));
    }
    assert!(outputs[0].0.starts_with("built "), "{}", outputs[0].0);
    assert!(
        outputs[1]
            .0
            .starts_with("served kernel-csv-stats@0.1.0 from the build cache"),
        "{}",
        outputs[1].0
    );
    assert_eq!(outputs[0].1, outputs[1].1);
    assert_eq!(outputs[0].1, digests[0].0);

    // A cache hit reads the builder's public key from KEY.pub; a .pub of another key fails the
    // cached provenance's check, and the build then refuses to sign with a mismatched pair.
    let stranger = scratch.path().join("stranger");
    let out = std::process::Command::new(kiln_binary())
        .args(["keys", "generate", "--out"])
        .arg(&stranger)
        .env("KILN_KEY_PASSWORD", "")
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::copy(stranger.with_extension("pub"), key.with_extension("pub")).unwrap();
    let out = cached_build(&scratch.path().join("mismatched"));
    assert_eq!(out.status.code(), Some(1));
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(message.contains("does not belong to"), "{message}");

    // A path dependency outside the repository is refused with one line.
    let repo = scratch.path().join("first-clone");
    let out = std::process::Command::new(kiln_binary())
        .arg("build")
        .arg(repo.join("examples/kernels/csv-stats"))
        .arg("--repository")
        .arg(repo.join("examples"))
        .arg("--out")
        .arg(scratch.path().join("refused"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(message.contains("outside the repository"), "{message}");
}

/// What the registry accepts, the workers and the CLI read: one `.crate` reader, one set of
/// limits. A crate with a 100 MiB data file (well compressed; over what the builder used to
/// unpack) is published with real cargo, audited, built, approved, and diffed by a reviewer.
#[test]
fn a_crate_the_registry_accepts_is_audited_built_and_read_whatever_its_size() {
    let fixtures = tempfile::tempdir().unwrap();
    let server = KilnServer::start_with(ServerOptions::building(fixtures.path(), &[]));
    let author = server.token("ada", &["publish"]);
    let reviewer = server.token("rita", &["review"]);
    let world = CargoWorld::new(&server);
    let small = world.library("bulky", "0.1.0", "", "pub fn size() -> usize { 0 }\n");
    let out = world.publish(&small, Some(&author));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(server.settled("bulky", "0.1.0")["state"], "built");
    let (status, body) = server.approve(&reviewer, "bulky", "0.1.0");
    assert_eq!(status, 200, "{body}");

    let big = world.library(
        "bulky",
        "0.2.0",
        "",
        "/// The data this crate ships (`data.bin`, read at run time).\npub fn size() -> usize { 100 << 20 }\n",
    );
    std::fs::write(big.join("data.bin"), vec![0u8; 100 * 1024 * 1024]).unwrap();
    let out = world.publish(&big, Some(&author));
    assert!(out.status.success(), "{}", stderr(&out));
    let detail = server.settled("bulky", "0.2.0");
    assert_eq!(detail["state"], "built", "{detail}");

    let out = std::process::Command::new(kiln_binary())
        .args(["review", "diff", "bulky@0.2.0", "--registry", &server.url])
        .args(["--token", &reviewer])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}{text}", stderr(&out));
    assert!(text.contains("bulky: 0.1.0 -> 0.2.0"), "{text}");
    assert!(text.contains("b/src/lib.rs"), "{text}");
    // The 100 MiB of zeros is named with its size, not diffed line by line.
    assert!(
        text.contains("Binary files a/data.bin and b/data.bin differ (0 -> 104857600 bytes)"),
        "{text}"
    );
}
