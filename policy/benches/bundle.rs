//! Signing one statement into a bundle, and verifying one bundle, with an ECDSA P-256 key.
//!
//! `verify_json` is the whole check a consumer runs on bundle bytes (parse, key lookup, PAE,
//! signature, statement, role, subject). The baseline in the same run is the bare ECDSA
//! verification of the same PAE bytes, so the ratio shows what the bundle handling costs on
//! top of the cryptography.

use criterion::{Criterion, criterion_group, criterion_main};
use kiln_policy::intoto::ResourceDescriptor;
use kiln_policy::{
    Digest, Expectation, Keyring, Role, SigningKey, Statement, StatementKind, Verifier,
    sign_statement,
};

fn statement(artifact: Digest) -> Statement {
    // A provenance statement of a realistic size: 40 locked crates.
    let deps: Vec<serde_json::Value> = (0..40)
        .map(|i| {
            serde_json::json!({
                "name": format!("crate:dep-{i}@1.0.{i}"),
                "digest": {"sha256": Digest::of(format!("dep {i}").as_bytes()).hex()}
            })
        })
        .collect();
    Statement::new(
        vec![
            ResourceDescriptor::new("kernel.wasm", artifact),
            ResourceDescriptor::new("kernel.cwasm", Digest::of(b"cwasm")),
        ],
        StatementKind::Provenance.predicate_type(),
        serde_json::json!({
            "buildDefinition": {
                "buildType": "https://kiln.dev/build/cargo-wasm32-wasip1/v1",
                "externalParameters": {"crate": "kernel-csv-stats", "version": "0.1.0"},
                "resolvedDependencies": deps,
            },
            "runDetails": {"builder": {"id": "https://kiln.dev/builder/v1"}}
        }),
    )
}

fn bench(c: &mut Criterion) {
    let key = SigningKey::generate().unwrap();
    let mut keyring = Keyring::new();
    keyring
        .add("builder", key.public_key().clone(), [Role::Builder])
        .unwrap();
    let artifact = Digest::of(b"\0asm kernel");
    let statement = statement(artifact);
    let bundle = sign_statement(&key, &statement).unwrap();
    let json = bundle.to_json();
    let expect = Expectation {
        kind: Some(StatementKind::Provenance),
        subject: Some(artifact),
    };
    let verifier = Verifier::new(&keyring);
    let envelope = bundle.dsse_envelope.clone().unwrap();
    let pae = envelope.signed_bytes();
    let sig = envelope.signatures[0].sig.clone();

    let mut group = c.benchmark_group("bundle");
    group.bench_function("sign", |b| {
        b.iter(|| sign_statement(&key, &statement).unwrap())
    });
    group.bench_function("verify_json", |b| {
        b.iter(|| verifier.verify_json(json.as_bytes(), expect).unwrap())
    });
    group.bench_function("baseline_ecdsa_verify", |b| {
        b.iter(|| assert!(key.public_key().verify(&pae, &sig)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
