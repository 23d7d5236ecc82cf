//! The preflight decision for one cell: the first time an artifact is seen (its provenance and
//! review bundles verified: two ECDSA P-256 checks, parsing, role and subject checks) and later
//! (the verified statements come from the cache). The baseline in the same run is one bare
//! `Verifier::verify_json` of the provenance bundle.

use std::collections::BTreeSet;

use criterion::{Criterion, criterion_group, criterion_main};
use kiln_policy::checks::wasm::{Entry, Import};
use kiln_policy::intoto::ResourceDescriptor;
use kiln_policy::manifest::{ArtifactManifest, MANIFEST_SCHEMA};
use kiln_policy::policy_file::Policy;
use kiln_policy::preflight::{Attestation, CellContract, Limits, Pins, Preflight, PreflightInput};
use kiln_policy::revocation::RevocationList;
use kiln_policy::{
    Digest, Expectation, Keyring, Role, SigningKey, Statement, StatementKind, Verifier,
    sign_statement,
};

fn bundle(
    key: &SigningKey,
    kind: StatementKind,
    subject: Digest,
    predicate: serde_json::Value,
) -> Vec<u8> {
    let statement = Statement::new(
        vec![ResourceDescriptor::new("kernel.wasm", subject)],
        kind.predicate_type(),
        predicate,
    );
    sign_statement(key, &statement)
        .unwrap()
        .to_json()
        .into_bytes()
}

fn bench(c: &mut Criterion) {
    let builder = SigningKey::generate().unwrap();
    let reviewer = SigningKey::generate().unwrap();
    let mut keyring = Keyring::new();
    keyring
        .add("builder", builder.public_key().clone(), [Role::Builder])
        .unwrap();
    keyring
        .add("reviewer", reviewer.public_key().clone(), [Role::Reviewer])
        .unwrap();
    let import = |module: &str, name: &str| Import {
        module: module.into(),
        name: name.into(),
        kind: "func".into(),
    };
    let manifest = ArtifactManifest {
        schema: MANIFEST_SCHEMA.into(),
        krate: "kernel-csv-stats".into(),
        version: "0.1.0".into(),
        crate_checksum: Digest::of(b"crate"),
        wasm: Digest::of(b"wasm"),
        wasm_size: 4,
        cwasm: Some(Digest::of(b"cwasm")),
        imports: vec![
            import("kiln", "output"),
            import("kiln", "error"),
            import("wasi_snapshot_preview1", "fd_write"),
            import("wasi_snapshot_preview1", "random_get"),
        ],
        exports: vec![
            "memory".into(),
            "kiln_alloc".into(),
            "kiln_entry_stats".into(),
        ],
        entries: vec![Entry {
            name: "stats".into(),
            input: "text/csv".into(),
            output: "application/json".into(),
            schema: None,
        }],
        wasmtime_version: "48.0.8".into(),
        compatibility_hash: "engine".into(),
    };
    let (_, manifest_digest) = manifest.to_bytes();
    let provenance = bundle(
        &builder,
        StatementKind::Provenance,
        manifest.wasm,
        serde_json::json!({
            "buildDefinition": {"buildType": "https://kiln.dev/build/v1", "externalParameters": {}},
            "runDetails": {"builder": {"id": "https://kiln.dev/builder"},
                           "byproducts": [{"name": "manifest.json", "digest": {"sha256": manifest_digest.hex()}}]}
        }),
    );
    let review = bundle(
        &reviewer,
        StatementKind::Review,
        manifest.wasm,
        serde_json::json!({"decision": "approved"}),
    );
    let attestations = [
        Attestation {
            digest: Digest::of(&provenance),
            json: &provenance,
        },
        Attestation {
            digest: Digest::of(&review),
            json: &review,
        },
    ];
    let policy = Policy::parse("", "defaults").unwrap();
    let cell = CellContract {
        entry: "stats".into(),
        grants: BTreeSet::from([
            "wasi_snapshot_preview1.fd_write".to_owned(),
            "wasi_snapshot_preview1.random_get".to_owned(),
        ]),
        limits: Limits {
            fuel: 1_000_000,
            memory_bytes: 1 << 20,
            wall_ms: 1000,
            output_bytes: 1 << 16,
        },
    };
    let pins = Pins {
        wasm: manifest.wasm,
        cwasm: manifest.cwasm,
    };
    let revocations = RevocationList {
        issued_at_ms: 1_000,
        revoked: Default::default(),
    };
    let input = PreflightInput {
        cell: &cell,
        manifest: &manifest,
        manifest_digest,
        pins: &pins,
        attestations: &attestations,
        revocations: &revocations,
        now_ms: 2_000,
        engine_compatibility: "engine",
        code_source: None,
    };
    let new = || {
        Preflight::new(
            keyring.clone(),
            policy.execution.clone(),
            policy.wasm.clone(),
        )
    };
    assert!(new().decide(&input).allow);

    let mut group = c.benchmark_group("preflight");
    let verifier = Verifier::new(&keyring);
    group.bench_function("baseline: verify_json of one bundle", |b| {
        b.iter(|| {
            verifier
                .verify_json(&provenance, Expectation::default())
                .unwrap()
        })
    });
    group.bench_function("first decision (verifies both bundles)", |b| {
        b.iter_batched(
            new,
            |preflight| preflight.decide(&input),
            criterion::BatchSize::SmallInput,
        )
    });
    let warm = new();
    warm.decide(&input);
    group.bench_function("cached decision", |b| b.iter(|| warm.decide(&input)));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
