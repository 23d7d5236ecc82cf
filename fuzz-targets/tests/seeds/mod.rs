//! Seed inputs for every fuzz target, made from kiln's own fixtures: the crates, notebooks,
//! policies, modules and signed statements its tests use, each with hostile variations.

use kiln_fuzz_targets::fuzz_key;
use kiln_policy::intoto::ResourceDescriptor;
use kiln_policy::{Digest, Statement, StatementKind, sign_statement};
use kiln_tests::crate_file::{CrateFile, gzip, metadata, publish_body};

/// The seeds of target `name`, each with a file name.
pub(crate) fn seeds(name: &str) -> Vec<(String, Vec<u8>)> {
    let seeds: Vec<(&str, Vec<u8>)> = match name {
        "publish_frame" => publish_frames(),
        "crate_archive" => crate_archives(),
        "wasm_check" => modules(),
        "notebook" => notebooks(),
        "bundle" => bundles(),
        "policy_file" => policies(),
        "sdk_input" => inputs(),
        other => panic!("no seeds for target {other}"),
    };
    seeds
        .into_iter()
        .map(|(seed, bytes)| (seed.to_owned(), bytes))
        .collect()
}

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn publish_frames() -> Vec<(&'static str, Vec<u8>)> {
    let tarball = CrateFile::valid("demo", "0.1.0").gzip();
    let meta = metadata("demo", "0.1.0").to_string();
    let mut featured = metadata("demo", "0.1.0");
    featured["features"] = serde_json::json!({"a b\n": []});
    let mut truncated = publish_body(meta.as_bytes(), &tarball);
    truncated.truncate(truncated.len() / 2);
    vec![
        ("valid", publish_body(meta.as_bytes(), &tarball)),
        (
            "bad-feature",
            publish_body(featured.to_string().as_bytes(), &tarball),
        ),
        ("truncated", truncated),
        ("not-json", publish_body(b"\xff\xfe", &tarball)),
        ("empty", Vec::new()),
    ]
}

fn crate_archives() -> Vec<(&'static str, Vec<u8>)> {
    let mut escaping = CrateFile::valid("demo", "0.1.0");
    escaping.file("demo-0.1.0/../../etc/passwd", b"root");
    let mut elsewhere = CrateFile::new();
    elsewhere.file("other-1.0.0/Cargo.toml", b"[package]\n");
    vec![
        ("valid", CrateFile::valid("demo", "0.1.0").gzip()),
        ("escaping-path", escaping.gzip()),
        ("wrong-prefix", elsewhere.gzip()),
        ("not-tar", gzip(b"not a tar archive")),
        ("not-gzip", b"plain bytes".to_vec()),
    ]
}

fn modules() -> Vec<(&'static str, Vec<u8>)> {
    let wat = |text: &str| wat::parse_str(text).expect("the seed module parses");
    vec![
        (
            "mandelbrot",
            kiln_tests::kernels::example_module("kernel-mandelbrot"),
        ),
        (
            "no-abi",
            wat(r#"(module (memory (export "memory") 1) (func (export "f")))"#),
        ),
        (
            "denied-import",
            wat(r#"(module (import "env" "system" (func)) (memory (export "memory") 1))"#),
        ),
        ("not-wasm", b"\0asm\x01\0\0\0\x01\xff".to_vec()),
    ]
}

fn notebooks() -> Vec<(&'static str, Vec<u8>)> {
    let tour = std::fs::read(root().join("examples/notebooks/tour.json")).expect("the tour");
    let mut deep = br#"{"kiln_notebook":1,"kernels":{},"cells":"#.to_vec();
    deep.extend(std::iter::repeat_n(b'[', 10_000));
    vec![
        ("tour", tour),
        (
            "empty",
            br#"{"kiln_notebook":1,"kernels":{},"cells":[]}"#.to_vec(),
        ),
        (
            "bad-limits",
            br#"{"kiln_notebook":1,"kernels":{"k":{"crate":"a","version":"1.0.0","wasm":"sha256:00"}},"cells":[{"type":"kernel","id":"c","kernel":"k","entry":"e","limits":{"fuel":-1}}]}"#.to_vec(),
        ),
        ("deep", deep),
    ]
}

fn statement(kind: StatementKind, predicate: serde_json::Value, subject: Digest) -> Vec<u8> {
    let statement = Statement::new(
        vec![ResourceDescriptor::new("subject", subject)],
        kind.predicate_type(),
        predicate,
    );
    sign_statement(fuzz_key(), &statement)
        .expect("the fuzz key signs")
        .to_json()
        .into_bytes()
}

fn bundles() -> Vec<(&'static str, Vec<u8>)> {
    let entries =
        serde_json::json!([{"digest": Digest::of(b"revoked").to_string(), "reason": "a test"}]);
    let revocations = statement(
        StatementKind::Revocation,
        serde_json::json!({"issued_at": 1_700_000_000_000u64, "count": 1, "entries": entries}),
        Digest::of(entries.to_string().as_bytes()),
    );
    let review = statement(
        StatementKind::Review,
        serde_json::json!({"decision": "approved", "crate": "demo", "version": "0.1.0"}),
        Digest::of(b"demo"),
    );
    let mut tampered: serde_json::Value = serde_json::from_slice(&review).unwrap();
    let payload = tampered["dsseEnvelope"]["payload"].as_str().unwrap();
    tampered["dsseEnvelope"]["payload"] = format!("AAAA{payload}").into();
    let tampered = tampered.to_string().into_bytes();
    vec![
        ("revocation-list", revocations),
        ("review", review),
        ("tampered", tampered),
        ("not-json", b"{\"mediaType\":".to_vec()),
    ]
}

fn policies() -> Vec<(&'static str, Vec<u8>)> {
    let read = |name: &str| std::fs::read(root().join("policies").join(name)).expect("a policy");
    vec![
        ("default", read("default.toml")),
        (
            "unknown-key",
            b"[execution]\nmax_fuel = 1\nnonsense = true\n".to_vec(),
        ),
        (
            "wrong-type",
            b"[advisories]\nmax_db_age_days = \"soon\"\n".to_vec(),
        ),
        ("not-toml", b"[[[".to_vec()),
    ]
}

fn inputs() -> Vec<(&'static str, Vec<u8>)> {
    let mut deep = "[".repeat(100_000).into_bytes();
    deep.extend("]".repeat(100_000).bytes());
    vec![
        (
            "json",
            r#"{"a":[1,2.5e3,-0,"\u00e9\n"],"b":{"c":null,"d":true}}"#
                .as_bytes()
                .to_vec(),
        ),
        ("deep", deep),
        ("not-utf8", b"\xff\xfe{}".to_vec()),
        ("huge-number", b"1e999999999".to_vec()),
    ]
}
