//! Interop with the reference Sigstore implementation, both ways, and with cosign's key format:
//! bundles kiln signs verify with `@sigstore/verify`; bundles `@sigstore/sign` makes verify in
//! kiln; a key in cosign's encrypted format, written by an independent implementation, imports
//! into kiln and signs bundles that verify against its original public key.

use std::ffi::OsStr;

use kiln_tests::node::run_script;

use crate::cli_attest::{kiln, kiln_with_env, stderr, stdout, write_statement};

#[test]
fn bundles_signed_by_kiln_verify_with_sigstore_js() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    assert!(kiln(dir, "keys generate --out builder").status.success());
    std::fs::write(dir.join("kernel.wasm"), b"\0asm\x01\0\0\0 kernel").unwrap();
    write_statement(
        dir,
        b"\0asm\x01\0\0\0 kernel",
        "https://slsa.dev/provenance/v1",
    );
    let out = kiln(
        dir,
        "attest sign --key builder.key --statement statement.json --out bundle.json",
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let arg = |name: &str| dir.join(name).into_os_string();
    let (ok, out, err) = run_script(
        "verify.mjs",
        &[
            &arg("bundle.json"),
            &arg("builder.pub"),
            &arg("kernel.wasm"),
        ],
    );
    assert!(ok, "sigstore-js refused kiln's bundle: {out}{err}");
    assert!(
        out.contains("verified: https://slsa.dev/provenance/v1"),
        "{out}"
    );

    // The JS check is a real one: another key, or a tampered payload, fails there too.
    assert!(kiln(dir, "keys generate --out other").status.success());
    let (ok, _, err) = run_script("verify.mjs", &[&arg("bundle.json"), &arg("other.pub")]);
    assert!(!ok && err.contains("key not found"), "{err}");
    let mut bundle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("bundle.json")).unwrap()).unwrap();
    bundle["dsseEnvelope"]["payload"] = crate::cli_attest::base64_of(b"{\"_type\":\"x\"}").into();
    std::fs::write(dir.join("tampered.json"), bundle.to_string()).unwrap();
    let (ok, _, err) = run_script("verify.mjs", &[&arg("tampered.json"), &arg("builder.pub")]);
    assert!(
        !ok && err.contains("signature verification failed"),
        "{err}"
    );
}

#[test]
fn bundles_signed_by_sigstore_js_verify_in_kiln() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_statement(dir, b"module bytes", "https://slsa.dev/provenance/v1");
    std::fs::write(dir.join("kernel.wasm"), b"module bytes").unwrap();
    let arg = |name: &str| dir.join(name).into_os_string();
    let (ok, out, err) = run_script(
        "sign.mjs",
        &[
            &arg("statement.json"),
            &arg("js-bundle.json"),
            &arg("js.pub"),
        ],
    );
    assert!(ok, "sigstore-js could not sign: {out}{err}");

    std::fs::write(
        dir.join("trust.toml"),
        "[[key]]\nname = \"sigstore-js builder\"\nroles = [\"builder\"]\npublic_key = \"js.pub\"\n",
    )
    .unwrap();
    let out = kiln(
        dir,
        "attest verify --bundle js-bundle.json --trust trust.toml --artifact kernel.wasm --kind provenance",
    );
    assert!(
        out.status.success(),
        "kiln refused sigstore-js's bundle: {}",
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("signed by sigstore-js builder"),
        "{}",
        stdout(&out)
    );

    // Without the key in the trust file, kiln refuses it.
    std::fs::write(dir.join("empty.toml"), "").unwrap();
    let out = kiln(
        dir,
        "attest verify --bundle js-bundle.json --trust empty.toml",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("[unknown-key]"), "{}", stderr(&out));
}

#[test]
fn a_cosign_format_key_imports_and_signs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let arg = |name: &str| dir.join(name).into_os_string();
    let (ok, out, err) = run_script(
        "cosign-key.mjs",
        &[
            OsStr::new("cosign pw"),
            &arg("cosign.key"),
            &arg("cosign.pub"),
        ],
    );
    assert!(ok, "{out}{err}");

    let import = |password: &str| {
        kiln_with_env(
            dir,
            "keys import --key cosign.key --out imported --force",
            &[
                ("COSIGN_PASSWORD", password),
                ("KILN_KEY_PASSWORD", "new pw"),
            ],
        )
    };
    let out = import("not the password");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("wrong password"), "{}", stderr(&out));
    assert!(!dir.join("imported.key").exists());

    let out = import("cosign pw");
    assert!(out.status.success(), "{}", stderr(&out));
    // The imported public key is the one the cosign-format file was made from.
    let original =
        kiln_policy::PublicKey::from_pem(&std::fs::read(dir.join("cosign.pub")).unwrap()).unwrap();
    let imported =
        kiln_policy::PublicKey::from_pem(&std::fs::read(dir.join("imported.pub")).unwrap())
            .unwrap();
    assert_eq!(original, imported);

    write_statement(dir, b"artifact", "https://slsa.dev/provenance/v1");
    let out = kiln_with_env(
        dir,
        "attest sign --key imported.key --statement statement.json --out b.json",
        &[("KILN_KEY_PASSWORD", "new pw")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = kiln(dir, "attest verify --bundle b.json --key cosign.pub");
    assert!(out.status.success(), "{}", stderr(&out));
}
