use super::*;
use crate::checks::wasm::{Entry, Import};
use crate::intoto::{ResourceDescriptor, Statement};
use crate::keyring::Role;
use crate::keys::SigningKey;
use crate::policy_file::Policy;
use crate::sign_statement;

struct World {
    builder: SigningKey,
    reviewer: SigningKey,
    revoker: SigningKey,
    preflight: Preflight,
    manifest: ArtifactManifest,
    manifest_digest: Digest,
    bundles: Vec<(Digest, Vec<u8>)>,
    revocations: RevocationList,
    cell: CellContract,
}

const NOW: u64 = 1_800_000_000_000;

fn manifest() -> ArtifactManifest {
    ArtifactManifest {
        schema: crate::manifest::MANIFEST_SCHEMA.into(),
        krate: "kernel-csv-stats".into(),
        version: "0.1.0".into(),
        crate_checksum: Digest::of(b"crate"),
        wasm: Digest::of(b"wasm"),
        wasm_size: 4,
        cwasm: Some(Digest::of(b"cwasm")),
        imports: vec![
            Import {
                module: "kiln".into(),
                name: "output".into(),
                kind: "func".into(),
            },
            Import {
                module: "wasi_snapshot_preview1".into(),
                name: "fd_write".into(),
                kind: "func".into(),
            },
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
        compatibility_hash: "engine-a".into(),
    }
}

fn sign(
    key: &SigningKey,
    kind: StatementKind,
    subjects: Vec<ResourceDescriptor>,
    predicate: serde_json::Value,
) -> (Digest, Vec<u8>) {
    let statement = Statement::new(subjects, kind.predicate_type(), predicate);
    let json = sign_statement(key, &statement)
        .unwrap()
        .to_json()
        .into_bytes();
    (Digest::of(&json), json)
}

fn revocation_list(key: &SigningKey, issued_at: u64, entries: serde_json::Value) -> Vec<u8> {
    let statement = Statement::new(
        vec![ResourceDescriptor::new(
            "revocation-list",
            Digest::of(entries.to_string().as_bytes()),
        )],
        StatementKind::Revocation.predicate_type(),
        serde_json::json!({"issued_at": issued_at, "count": 0, "entries": entries}),
    );
    sign_statement(key, &statement)
        .unwrap()
        .to_json()
        .into_bytes()
}

fn world() -> World {
    let builder = SigningKey::generate().unwrap();
    let reviewer = SigningKey::generate().unwrap();
    let revoker = SigningKey::generate().unwrap();
    let mut keyring = Keyring::new();
    keyring
        .add("builder", builder.public_key().clone(), [Role::Builder])
        .unwrap();
    keyring
        .add("reviewer", reviewer.public_key().clone(), [Role::Reviewer])
        .unwrap();
    keyring
        .add(
            "revocation",
            revoker.public_key().clone(),
            [Role::Revocation],
        )
        .unwrap();
    let policy = Policy::parse("", "defaults").unwrap();
    let manifest = manifest();
    let (_, manifest_digest) = manifest.to_bytes();
    let provenance = sign(
        &builder,
        StatementKind::Provenance,
        vec![
            ResourceDescriptor::new("kernel.wasm", manifest.wasm),
            ResourceDescriptor::new("kernel.cwasm", manifest.cwasm.unwrap()),
        ],
        serde_json::json!({
            "buildDefinition": {"buildType": "https://kiln.dev/build/v1", "externalParameters": {}},
            "runDetails": {"builder": {"id": "https://kiln.dev/builder"},
                           "byproducts": [{"name": "manifest.json", "digest": {"sha256": manifest_digest.hex()}}]}
        }),
    );
    let review = sign(
        &reviewer,
        StatementKind::Review,
        vec![ResourceDescriptor::new("kernel.wasm", manifest.wasm)],
        serde_json::json!({"decision": "approved"}),
    );
    let list = revocation_list(&revoker, NOW - 1000, serde_json::json!([]));
    let revocations = RevocationList::verify(&Verifier::new(&keyring), &list).unwrap();
    World {
        preflight: Preflight::new(keyring, policy.execution.clone(), policy.wasm.clone()),
        builder,
        reviewer,
        revoker,
        manifest,
        manifest_digest,
        bundles: vec![provenance, review],
        revocations,
        cell: CellContract {
            entry: "stats".into(),
            grants: ["wasi_snapshot_preview1.fd_write".to_owned()].into(),
            limits: Limits {
                fuel: 1_000_000,
                memory_bytes: 1 << 20,
                wall_ms: 1000,
                output_bytes: 1 << 16,
            },
        },
    }
}

impl World {
    fn decide(&self) -> Decision {
        let attestations: Vec<Attestation<'_>> = self
            .bundles
            .iter()
            .map(|(digest, json)| Attestation {
                digest: *digest,
                json,
            })
            .collect();
        self.preflight.decide(&PreflightInput {
            cell: &self.cell,
            manifest: &self.manifest,
            manifest_digest: self.manifest_digest,
            pins: &Pins {
                wasm: Digest::of(b"wasm"),
                cwasm: Some(Digest::of(b"cwasm")),
            },
            attestations: &attestations,
            revocations: &self.revocations,
            now_ms: NOW,
            engine_compatibility: "engine-a",
            code_source: None,
        })
    }

    fn codes(&self) -> Vec<String> {
        self.decide()
            .reasons
            .into_iter()
            .map(|r| r.code.to_string())
            .collect()
    }
}

#[test]
fn a_trusted_pinned_granted_artifact_is_allowed_twice() {
    let world = world();
    for _ in 0..2 {
        let decision = world.decide();
        assert!(decision.allow, "{decision:?}");
        assert!(decision.use_precompiled);
    }
}

#[test]
fn every_reason_is_given() {
    let mut world = world();
    world.manifest.imports.push(Import {
        module: "wasi_snapshot_preview1".into(),
        name: "sock_accept".into(),
        kind: "func".into(),
    });
    world.cell.entry = "nope".into();
    world
        .cell
        .grants
        .insert("wasi_snapshot_preview1.path_open".into());
    world.cell.limits.fuel = u64::MAX;
    world.bundles.pop(); // no review
    world.revocations.issued_at_ms = 0;
    world.manifest_digest = world.manifest.to_bytes().1;
    let codes = world.codes();
    for code in [
        "import-not-granted",
        "entry-missing",
        "grant-not-allowed",
        "limit-exceeded",
        "missing-statement",
        "revocation-list-stale",
        "manifest-unsigned", // the manifest changed, so its digest is not the signed one
    ] {
        assert!(codes.iter().any(|c| c == code), "{code} not in {codes:?}");
    }
}

#[test]
fn pins_revocations_and_signers_are_enforced() {
    let mut world = world();
    world.manifest.wasm = Digest::of(b"other wasm");
    let codes = world.codes();
    assert!(codes.contains(&"digest-mismatch".to_owned()), "{codes:?}");

    let mut world = self::world();
    let entries =
        serde_json::json!([{"digest": world.manifest.wasm.to_string(), "reason": "incident 7"}]);
    let list = revocation_list(&world.revoker, NOW, entries);
    world.revocations =
        RevocationList::verify(&Verifier::new(world.preflight.keyring()), &list).unwrap();
    let decision = world.decide();
    assert!(!decision.allow);
    assert!(
        decision
            .reasons
            .iter()
            .any(|r| r.code == "revoked" && r.message.contains("incident 7")),
        "{decision:?}"
    );

    // A review signed by the builder key is not a review; an unknown key is not trusted.
    let mut world = self::world();
    let stranger = SigningKey::generate().unwrap();
    world.bundles[1] = sign(
        &world.builder,
        StatementKind::Review,
        vec![ResourceDescriptor::new("kernel.wasm", world.manifest.wasm)],
        serde_json::json!({}),
    );
    world.bundles.push(sign(
        &stranger,
        StatementKind::Review,
        vec![ResourceDescriptor::new("kernel.wasm", world.manifest.wasm)],
        serde_json::json!({}),
    ));
    let decision = world.decide();
    let missing = decision
        .reasons
        .iter()
        .find(|r| r.code == "missing-statement")
        .expect("missing review");
    assert!(missing.message.contains("review"), "{missing:?}");
    assert!(missing.message.contains("unknown-key"), "{missing:?}");

    // A bundle whose bytes do not match the digest it was fetched by is refused.
    let mut world = self::world();
    world.bundles[1].0 = Digest::of(b"something else");
    assert!(world.codes().contains(&"missing-statement".to_owned()));
    let _ = &world.reviewer;
}

#[test]
fn a_module_wide_grant_covers_only_what_the_policy_allows() {
    let mut world = world();
    world.cell.grants = ["wasi_snapshot_preview1.*".to_owned()].into();
    assert!(world.decide().allow, "{:?}", world.decide());
    world.manifest.imports.push(Import {
        module: "wasi_snapshot_preview1".into(),
        name: "path_open".into(),
        kind: "func".into(),
    });
    world.manifest_digest = world.manifest.to_bytes().1;
    let codes = world.codes();
    assert!(
        codes.contains(&"import-not-granted".to_owned()),
        "{codes:?}"
    );
    world.cell.grants = ["wasi_unstable.*".to_owned()].into();
    assert!(world.codes().contains(&"grant-not-allowed".to_owned()));
}

#[test]
fn another_engine_compiles_locally() {
    let mut world = world();
    world.manifest.compatibility_hash = "engine-b".into();
    // The manifest changed, so it is no longer the signed one; re-pin its digest to isolate the
    // compatibility answer.
    world.manifest_digest = world.manifest.to_bytes().1;
    let decision = world.decide();
    assert!(!decision.use_precompiled);
}

#[test]
fn forged_revocation_lists_are_refused() {
    let world = world();
    let verifier = Verifier::new(world.preflight.keyring());
    // Signed by the builder key: wrong role.
    let list = revocation_list(&world.builder, NOW, serde_json::json!([]));
    assert!(RevocationList::verify(&verifier, &list).is_err());
    // Entries swapped after signing: the subject no longer covers them.
    let statement = Statement::new(
        vec![ResourceDescriptor::new(
            "revocation-list",
            Digest::of(b"[]"),
        )],
        StatementKind::Revocation.predicate_type(),
        serde_json::json!({"issued_at": NOW, "count": 1, "entries": [{"digest": Digest::of(b"x").to_string(), "reason": "r"}]}),
    );
    let json = sign_statement(&world.revoker, &statement)
        .unwrap()
        .to_json();
    let err = RevocationList::verify(&verifier, json.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("digest of its entries"), "{err}");
}

#[test]
fn a_cell_without_grants_grants_its_imports_within_the_policy() {
    let mut world = world();
    let mut imports = world.manifest.imports.clone();
    imports.push(Import {
        module: "wasi_snapshot_preview1".into(),
        name: "sock_accept".into(),
        kind: "func".into(),
    });
    let grants = world.preflight.default_grants(&imports);
    // The host module needs no grant; a function the policy does not allow is not granted.
    assert_eq!(
        grants,
        BTreeSet::from(["wasi_snapshot_preview1.fd_write".to_owned()])
    );
    world.cell.grants = world.preflight.default_grants(&world.manifest.imports);
    assert!(world.decide().allow);
}

#[test]
fn a_grant_names_exactly_its_module_and_function() {
    use super::grant_names;
    assert!(grant_names(
        "wasi_snapshot_preview1.fd_write",
        "wasi_snapshot_preview1",
        "fd_write"
    ));
    assert!(grant_names(
        "wasi_snapshot_preview1.*",
        "wasi_snapshot_preview1",
        "*"
    ));
    assert!(!grant_names(
        "wasi_snapshot_preview1.fd_write",
        "wasi",
        "fd_write"
    ));
    assert!(!grant_names("wasi.fd_write", "wasi", "fd_writev"));
    assert!(!grant_names("wasi.fd_writev", "wasi", "fd_write"));
    assert!(!grant_names("wasifd_write", "wasi", "fd_write"));
}
