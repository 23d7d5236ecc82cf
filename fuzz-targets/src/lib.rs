//! The bodies of kiln's fuzz targets: each parser that faces untrusted bytes, driven as a
//! hostile client would drive it. A target must never panic, hang or allocate without bound,
//! whatever its input; each returns whether the input was accepted, so that a corpus can be
//! checked to reach both the accepting and the refusing paths.
//!
//! `fuzz/` runs them under libFuzzer (`scripts/fuzz`, nightly); the normal test suite runs
//! each over its seeds and its corpus (`tests/corpus.rs`), so CI checks them on stable.

use std::sync::OnceLock;

use kiln_crate_archive::{CrateArchive, Limits};
use kiln_policy::policy_file::Policy;
use kiln_policy::revocation::RevocationList;
use kiln_policy::{Expectation, Keyring, Role, SigningKey, Verifier};

/// A fuzz target: the bytes in, whether they were accepted.
pub type Target = fn(&[u8]) -> bool;

/// Every target, by name (the names of `fuzz/fuzz_targets/*.rs` and of the corpus
/// directories).
pub const TARGETS: &[(&str, Target)] = &[
    ("publish_frame", publish_frame),
    ("crate_archive", crate_archive),
    ("wasm_check", wasm_check),
    ("notebook", notebook),
    ("bundle", bundle),
    ("policy_file", policy_file),
    ("sdk_input", sdk_input),
];

/// A publish body as Cargo frames it: the frame, the metadata's checks, and the packaged
/// manifest's cross-check, as the registry runs them before storing anything.
pub fn publish_frame(data: &[u8]) -> bool {
    let Ok(frame) = kiln_registry::publish::frame::parse_frame(data) else {
        return false;
    };
    if frame.metadata.validate().is_err() {
        return false;
    }
    let archive = CrateArchive::new(
        frame.tarball,
        &frame.metadata.name,
        &frame.metadata.vers,
        Limits::default(),
    );
    match archive.inspect() {
        Ok(contents) => frame.metadata.check_manifest(&contents.manifest).is_ok(),
        Err(_) => false,
    }
}

/// A `.crate` tarball, inspected and read as the registry, builder and reviewers read it.
pub fn crate_archive(data: &[u8]) -> bool {
    let archive = CrateArchive::new(data, "demo", "0.1.0", Limits::default());
    archive.inspect().is_ok() && archive.files().is_ok()
}

/// A built module through the wasm check of the default policy (accepted unless denied).
pub fn wasm_check(data: &[u8]) -> bool {
    let report = kiln_policy::checks::wasm::check(data, &default_policy().wasm);
    report.verdict != kiln_policy::findings::Verdict::Deny
}

/// A notebook document, as the executor parses and validates it.
pub fn notebook(data: &[u8]) -> bool {
    kiln_executor::notebook::Notebook::parse(data).is_ok()
}

/// A Sigstore bundle, verified against a keyring that trusts [`fuzz_key`] for every role, as a
/// statement of any kind and as a revocation list.
pub fn bundle(data: &[u8]) -> bool {
    let verifier = Verifier::new(keyring());
    let statement = verifier.verify_json(data, Expectation::default()).is_ok();
    let revocations = RevocationList::verify(&verifier, data).is_ok();
    statement || revocations
}

/// A policy file's text.
pub fn policy_file(data: &[u8]) -> bool {
    std::str::from_utf8(data).is_ok_and(|text| Policy::parse(text, "fuzz input").is_ok())
}

/// A kernel's input, decoded by the SDK: as text, by its own JSON reader, and by serde.
pub fn sdk_input(data: &[u8]) -> bool {
    let input = kiln_kernel::Input::new(data);
    let text = input.text().is_ok();
    let own = input.json_value().is_ok();
    let serde = input.json::<serde_json::Value>().is_ok();
    text && own && serde
}

fn default_policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| Policy::parse("", "built-in defaults").expect("the defaults parse"))
}

/// The key the bundle target trusts, for seeds that reach past the signature check. It signs
/// nothing outside fuzzing: its password is in this file.
pub fn fuzz_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| {
        SigningKey::from_pem(include_bytes!("fuzz.key"), b"fuzz").expect("the fuzz key reads")
    })
}

fn keyring() -> &'static Keyring {
    static KEYRING: OnceLock<Keyring> = OnceLock::new();
    KEYRING.get_or_init(|| {
        let mut keyring = Keyring::new();
        keyring
            .add("fuzz", fuzz_key().public_key().clone(), Role::ALL)
            .expect("one key");
        keyring
    })
}
