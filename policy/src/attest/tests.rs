//! Verification of good bundles and of every kind of forged, tampered or malformed one.

use super::*;
use crate::intoto::ResourceDescriptor;
use crate::keys::PublicKey;

struct Fixture {
    builder: SigningKey,
    reviewer: SigningKey,
    keyring: Keyring,
    artifact: Digest,
}

fn fixture() -> Fixture {
    let builder = SigningKey::generate().unwrap();
    let reviewer = SigningKey::generate().unwrap();
    let mut keyring = Keyring::new();
    keyring
        .add("builder", builder.public_key().clone(), [Role::Builder])
        .unwrap();
    keyring
        .add("reviewer", reviewer.public_key().clone(), [Role::Reviewer])
        .unwrap();
    Fixture {
        builder,
        reviewer,
        keyring,
        artifact: Digest::of(b"\0asm kernel bytes"),
    }
}

fn statement(kind: StatementKind, subject: Digest) -> Statement {
    Statement::new(
        vec![ResourceDescriptor::new("kernel.wasm", subject)],
        kind.predicate_type(),
        serde_json::json!({"note": "test"}),
    )
}

/// Signs any payload, so tests can make bundles that are well signed but wrong inside.
fn sign_raw(key: &SigningKey, payload_type: &str, payload: &[u8]) -> Bundle {
    let mut envelope = Envelope {
        payload: payload.to_vec(),
        payload_type: payload_type.to_owned(),
        signatures: vec![],
    };
    envelope.signatures.push(EnvelopeSignature {
        sig: key.sign(&envelope.signed_bytes()).unwrap(),
        keyid: key.id().to_string(),
    });
    Bundle::new(envelope, key.id().to_string())
}

fn verify(f: &Fixture, bundle: &Bundle, expect: Expectation) -> Result<Verified, VerifyError> {
    let json = bundle.to_json();
    Verifier::new(&f.keyring).verify_json(json.as_bytes(), expect)
}

fn expect_artifact(f: &Fixture) -> Expectation {
    Expectation {
        kind: Some(StatementKind::Provenance),
        subject: Some(f.artifact),
    }
}

fn good(f: &Fixture) -> Bundle {
    sign_statement(
        &f.builder,
        &statement(StatementKind::Provenance, f.artifact),
    )
    .unwrap()
}

#[test]
fn a_good_bundle_verifies_and_names_its_signer() {
    let f = fixture();
    let verified = verify(&f, &good(&f), expect_artifact(&f)).unwrap();
    assert_eq!(verified.kind, StatementKind::Provenance);
    assert_eq!(&verified.key_id, f.builder.id());
    assert_eq!(verified.key_name, "builder");
    assert!(verified.statement.has_subject(&f.artifact));
}

#[test]
fn written_bundles_have_the_v03_shape() {
    let f = fixture();
    let json: serde_json::Value = serde_json::from_str(&good(&f).to_json()).unwrap();
    assert_eq!(json["mediaType"], MEDIA_TYPE);
    assert_eq!(
        json["verificationMaterial"]["publicKey"]["hint"],
        f.builder.id().as_str()
    );
    assert_eq!(
        json["verificationMaterial"]["tlogEntries"],
        serde_json::json!([])
    );
    assert_eq!(json["dsseEnvelope"]["payloadType"], PAYLOAD_TYPE);
    assert_eq!(
        json["dsseEnvelope"]["signatures"][0]["keyid"],
        f.builder.id().as_str()
    );
}

#[test]
fn signing_refuses_statements_without_subject_digests() {
    let f = fixture();
    let mut s = statement(StatementKind::Provenance, f.artifact);
    s.subject.clear();
    assert!(matches!(
        sign_statement(&f.builder, &s),
        Err(SignError::Subjects)
    ));
    let mut s = statement(StatementKind::Provenance, f.artifact);
    s.subject[0].digest.clear();
    assert!(matches!(
        sign_statement(&f.builder, &s),
        Err(SignError::Subjects)
    ));
    let mut s = statement(StatementKind::Provenance, f.artifact);
    s.type_ = "https://in-toto.io/Statement/v0.1".into();
    assert!(matches!(
        sign_statement(&f.builder, &s),
        Err(SignError::NotAStatement(_))
    ));
}

#[test]
fn malformed_json_and_base64_are_refused() {
    let f = fixture();
    let verifier = Verifier::new(&f.keyring);
    for bad in [
        &b""[..],
        b"{",
        b"null",
        b"[]",
        b"{\"mediaType\": 1}",
        b"\xff\xfe",
    ] {
        let err = verifier
            .verify_json(bad, Expectation::default())
            .unwrap_err();
        assert_eq!(err.code(), "bundle-malformed", "{bad:?}: {err}");
    }
    let mut json: serde_json::Value = serde_json::from_str(&good(&f).to_json()).unwrap();
    json["dsseEnvelope"]["payload"] = "not*base64!".into();
    let err = verifier
        .verify_json(json.to_string().as_bytes(), Expectation::default())
        .unwrap_err();
    assert!(
        matches!(err, VerifyError::Malformed(ref m) if m.contains("base64")),
        "{err}"
    );
}

#[test]
fn every_truncation_of_a_good_bundle_fails_without_panicking() {
    let f = fixture();
    let json = good(&f).to_json();
    let verifier = Verifier::new(&f.keyring);
    for end in 0..json.len() {
        assert!(
            verifier
                .verify_json(&json.as_bytes()[..end], Expectation::default())
                .is_err()
        );
    }
}

#[test]
fn oversized_bundles_are_refused_before_parsing() {
    let f = fixture();
    let huge = vec![b' '; MAX_BUNDLE_BYTES + 1];
    let err = Verifier::new(&f.keyring)
        .verify_json(&huge, Expectation::default())
        .unwrap_err();
    assert_eq!(
        err,
        VerifyError::TooLarge {
            size: MAX_BUNDLE_BYTES + 1,
            limit: MAX_BUNDLE_BYTES
        }
    );
}

#[test]
fn other_media_types_and_message_signatures_are_refused() {
    let f = fixture();
    let mut bundle = good(&f);
    bundle.media_type = "application/vnd.dev.sigstore.bundle+json;version=0.2".into();
    assert_eq!(
        verify(&f, &bundle, expect_artifact(&f)).unwrap_err().code(),
        "bundle-media-type"
    );

    let mut bundle = good(&f);
    bundle.dsse_envelope = None;
    bundle.message_signature = Some(serde_json::json!({"signature": "AAAA"}));
    assert_eq!(
        verify(&f, &bundle, expect_artifact(&f)).unwrap_err(),
        VerifyError::NotDsse
    );
}

#[test]
fn certificate_material_is_refused() {
    let f = fixture();
    let mut bundle = good(&f);
    bundle.verification_material.certificate = Some(serde_json::json!({"rawBytes": "AAAA"}));
    assert_eq!(
        verify(&f, &bundle, expect_artifact(&f)).unwrap_err(),
        VerifyError::NoKeyHint
    );
    let mut bundle = good(&f);
    bundle.verification_material.public_key = None;
    assert_eq!(
        verify(&f, &bundle, expect_artifact(&f)).unwrap_err(),
        VerifyError::NoKeyHint
    );
}

#[test]
fn zero_or_two_signatures_are_refused() {
    let f = fixture();
    let mut bundle = good(&f);
    let env = bundle.dsse_envelope.as_mut().unwrap();
    let extra = env.signatures[0].clone();
    env.signatures.push(extra);
    assert_eq!(
        verify(&f, &bundle, expect_artifact(&f)).unwrap_err(),
        VerifyError::SignatureCount(2)
    );
    bundle.dsse_envelope.as_mut().unwrap().signatures.clear();
    assert_eq!(
        verify(&f, &bundle, expect_artifact(&f)).unwrap_err(),
        VerifyError::SignatureCount(0)
    );
}

#[test]
fn a_hint_that_differs_from_the_keyid_is_refused() {
    let f = fixture();
    let mut bundle = good(&f);
    bundle
        .verification_material
        .public_key
        .as_mut()
        .unwrap()
        .hint = f.reviewer.id().to_string();
    let err = verify(&f, &bundle, expect_artifact(&f)).unwrap_err();
    assert_eq!(err.code(), "keyid-mismatch", "{err}");
}

#[test]
fn a_key_outside_the_keyring_is_never_trusted_even_when_the_bundle_carries_it() {
    let f = fixture();
    let attacker = SigningKey::generate().unwrap();
    let bundle =
        sign_statement(&attacker, &statement(StatementKind::Provenance, f.artifact)).unwrap();
    // Put the attacker's key material into the bundle, as a certificate-less bundle could try.
    let mut json: serde_json::Value = serde_json::from_str(&bundle.to_json()).unwrap();
    json["verificationMaterial"]["publicKey"]["rawBytes"] =
        base64_of(attacker.public_key().to_der()).into();
    let err = Verifier::new(&f.keyring)
        .verify_json(json.to_string().as_bytes(), expect_artifact(&f))
        .unwrap_err();
    assert_eq!(err, VerifyError::UnknownKey(attacker.id().to_string()));
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn a_forged_signature_under_a_trusted_hint_is_refused() {
    let f = fixture();
    let attacker = SigningKey::generate().unwrap();
    let mut bundle =
        sign_statement(&attacker, &statement(StatementKind::Provenance, f.artifact)).unwrap();
    bundle
        .verification_material
        .public_key
        .as_mut()
        .unwrap()
        .hint = f.builder.id().to_string();
    bundle.dsse_envelope.as_mut().unwrap().signatures[0].keyid = f.builder.id().to_string();
    let err = verify(&f, &bundle, expect_artifact(&f)).unwrap_err();
    assert_eq!(err, VerifyError::BadSignature(f.builder.id().clone()));
}

#[test]
fn a_tampered_payload_or_truncated_signature_is_refused() {
    let f = fixture();
    let other = statement(StatementKind::Provenance, Digest::of(b"evil"));
    let mut bundle = good(&f);
    bundle.dsse_envelope.as_mut().unwrap().payload = serde_json::to_vec(&other).unwrap();
    assert_eq!(
        verify(&f, &bundle, Expectation::default())
            .unwrap_err()
            .code(),
        "bad-signature"
    );

    let mut bundle = good(&f);
    let sig = &mut bundle.dsse_envelope.as_mut().unwrap().signatures[0].sig;
    sig.truncate(sig.len() - 3);
    assert_eq!(
        verify(&f, &bundle, Expectation::default())
            .unwrap_err()
            .code(),
        "bad-signature"
    );

    let mut bundle = good(&f);
    bundle.dsse_envelope.as_mut().unwrap().signatures[0]
        .sig
        .clear();
    assert_eq!(
        verify(&f, &bundle, Expectation::default())
            .unwrap_err()
            .code(),
        "bad-signature"
    );
}

#[test]
fn a_changed_payload_type_is_refused() {
    let f = fixture();
    let mut bundle = good(&f);
    bundle.dsse_envelope.as_mut().unwrap().payload_type = "application/json".into();
    assert_eq!(
        verify(&f, &bundle, Expectation::default()).unwrap_err(),
        VerifyError::PayloadType("application/json".into())
    );
    // Also when the wrong type was itself signed.
    let payload = serde_json::to_vec(&statement(StatementKind::Provenance, f.artifact)).unwrap();
    let bundle = sign_raw(&f.builder, "application/json", &payload);
    assert_eq!(
        verify(&f, &bundle, Expectation::default())
            .unwrap_err()
            .code(),
        "payload-type"
    );
}

#[test]
fn well_signed_payloads_that_are_not_kiln_statements_are_refused() {
    let f = fixture();
    let bundle = sign_raw(&f.builder, PAYLOAD_TYPE, b"not json");
    assert_eq!(
        verify(&f, &bundle, Expectation::default())
            .unwrap_err()
            .code(),
        "statement-malformed"
    );

    let mut old = statement(StatementKind::Provenance, f.artifact);
    old.type_ = "https://in-toto.io/Statement/v0.1".into();
    let bundle = sign_raw(&f.builder, PAYLOAD_TYPE, &serde_json::to_vec(&old).unwrap());
    assert_eq!(
        verify(&f, &bundle, Expectation::default())
            .unwrap_err()
            .code(),
        "statement-malformed"
    );

    let mut empty = statement(StatementKind::Provenance, f.artifact);
    empty.subject.clear();
    let bundle = sign_raw(
        &f.builder,
        PAYLOAD_TYPE,
        &serde_json::to_vec(&empty).unwrap(),
    );
    assert_eq!(
        verify(&f, &bundle, Expectation::default())
            .unwrap_err()
            .code(),
        "statement-malformed"
    );

    let mut unknown = statement(StatementKind::Provenance, f.artifact);
    unknown.predicate_type = "https://example.com/anything/v1".into();
    let bundle = sign_statement(&f.builder, &unknown).unwrap();
    assert_eq!(
        verify(&f, &bundle, Expectation::default()).unwrap_err(),
        VerifyError::UnknownPredicateType("https://example.com/anything/v1".into())
    );
}

#[test]
fn a_key_without_the_needed_role_is_refused() {
    let f = fixture();
    let bundle = sign_statement(
        &f.reviewer,
        &statement(StatementKind::Provenance, f.artifact),
    )
    .unwrap();
    let err = verify(&f, &bundle, Expectation::default()).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::WrongRole {
                needed: Role::Builder,
                kind: StatementKind::Provenance,
                ..
            }
        ),
        "{err}"
    );
    // The same reviewer key may sign reviews.
    let review =
        sign_statement(&f.reviewer, &statement(StatementKind::Review, f.artifact)).unwrap();
    assert_eq!(
        verify(&f, &review, Expectation::default()).unwrap().kind,
        StatementKind::Review
    );
}

#[test]
fn the_wrong_kind_or_subject_is_refused() {
    let f = fixture();
    let review =
        sign_statement(&f.reviewer, &statement(StatementKind::Review, f.artifact)).unwrap();
    assert_eq!(
        verify(&f, &review, expect_artifact(&f)).unwrap_err(),
        VerifyError::WrongKind {
            expected: StatementKind::Provenance,
            found: StatementKind::Review
        }
    );
    let other = Digest::of(b"some other module");
    let err = verify(
        &f,
        &good(&f),
        Expectation {
            kind: None,
            subject: Some(other),
        },
    )
    .unwrap_err();
    assert_eq!(err, VerifyError::SubjectMismatch(other));
}

#[test]
fn a_bundle_read_back_from_disk_verifies_with_a_key_read_back_from_pem() {
    let f = fixture();
    let json = good(&f).to_json();
    let public = PublicKey::from_pem(f.builder.public_key().to_pem().as_bytes()).unwrap();
    let mut keyring = Keyring::new();
    keyring.add("builder", public, [Role::Builder]).unwrap();
    Verifier::new(&keyring)
        .verify_json(json.as_bytes(), expect_artifact(&f))
        .unwrap();
}
