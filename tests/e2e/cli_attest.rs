//! `kiln keys` and `kiln attest`, driven as a user would: the real binary in a scratch directory.

use std::path::Path;
use std::process::{Command, Output};

use kiln_policy::Digest;
use kiln_tests::kiln_binary;

const PASSWORD: &str = "correct horse battery staple";

/// Runs `kiln` with the words of `command_line` in `dir`, with the test key password.
pub(crate) fn kiln(dir: &Path, command_line: &str) -> Output {
    kiln_with_env(dir, command_line, &[("KILN_KEY_PASSWORD", PASSWORD)])
}

/// Runs `kiln` with the words of `command_line` in `dir` and exactly the password variables in
/// `env` (standard input closed, so there is no terminal to prompt on).
pub(crate) fn kiln_with_env(dir: &Path, command_line: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(kiln_binary());
    cmd.args(command_line.split_whitespace())
        .current_dir(dir)
        .env_remove("KILN_KEY_PASSWORD")
        .env_remove("COSIGN_PASSWORD")
        .stdin(std::process::Stdio::null());
    for (name, value) in env {
        cmd.env(name, value);
    }
    cmd.output().expect("run kiln")
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts a failure with exit code 1 and a single-line reason containing `needle`.
fn assert_refused(output: &Output, needle: &str) {
    assert_eq!(
        output.status.code(),
        Some(1),
        "stdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
    let err = stderr(output);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("kiln: "), "{err}");
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
}

/// Writes a provenance statement about `artifact` and returns its path.
pub(crate) fn write_statement(
    dir: &Path,
    artifact: &[u8],
    predicate_type: &str,
) -> std::path::PathBuf {
    let statement = serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "kernel.wasm", "digest": {"sha256": Digest::of(artifact).hex()}}],
        "predicateType": predicate_type,
        "predicate": {
            "buildDefinition": {
                "buildType": "https://kiln.dev/build/cargo-wasm32-wasip1/v1",
                "externalParameters": {"crate": "kernel-csv-stats", "version": "0.1.0"}
            },
            "runDetails": {"builder": {"id": "https://kiln.dev/builder/v1"}}
        }
    });
    let path = dir.join("statement.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&statement).unwrap()).unwrap();
    path
}

#[test]
fn generate_sign_and_verify_with_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = kiln(dir, "keys generate --out builder");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("key id:"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.join("builder.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let key_pem = std::fs::read(dir.join("builder.key")).unwrap();
    assert!(key_pem.starts_with(b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"));

    // A second generate must not overwrite the key.
    let again = kiln(dir, "keys generate --out builder");
    assert_refused(&again, "exists; pass --force");
    assert_eq!(std::fs::read(dir.join("builder.key")).unwrap(), key_pem);

    std::fs::write(dir.join("kernel.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(dir.join("other.wasm"), b"\0asm\x01\0\0\0\0").unwrap();
    write_statement(dir, b"\0asm\x01\0\0\0", "https://slsa.dev/provenance/v1");
    let out = kiln(
        dir,
        "attest sign --key builder.key --statement statement.json --out bundle.json",
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let out = kiln(
        dir,
        "attest verify --bundle bundle.json --key builder.pub --artifact kernel.wasm",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("verified: provenance statement"),
        "{}",
        stdout(&out)
    );

    let out = kiln(
        dir,
        "attest verify --bundle bundle.json --key builder.pub --artifact other.wasm",
    );
    assert_refused(&out, "[subject-mismatch]");

    let out = kiln(
        dir,
        "attest verify --bundle bundle.json --key builder.pub --kind review",
    );
    assert_refused(&out, "[wrong-kind]");

    // A trust file that knows the key only as a reviewer refuses its provenance.
    let id = String::from_utf8(kiln(dir, "keys list --trust /dev/null").stdout).unwrap();
    assert!(
        id.starts_with("NAME"),
        "an empty trust file lists no keys: {id}"
    );
    std::fs::write(
        dir.join("trust.toml"),
        "[[key]]\nname = \"alice\"\nroles = [\"reviewer\"]\npublic_key = \"builder.pub\"\n",
    )
    .unwrap();
    let out = kiln(dir, "attest verify --bundle bundle.json --trust trust.toml");
    assert_refused(&out, "[wrong-role]");
    let out = kiln(dir, "keys list --trust trust.toml");
    assert!(
        stdout(&out).contains("alice") && stdout(&out).contains("reviewer"),
        "{}",
        stdout(&out)
    );

    // Tampering with the payload is caught.
    let mut bundle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("bundle.json")).unwrap()).unwrap();
    bundle["dsseEnvelope"]["payload"] = base64_of(b"{}").into();
    std::fs::write(dir.join("tampered.json"), bundle.to_string()).unwrap();
    let out = kiln(
        dir,
        "attest verify --bundle tampered.json --key builder.pub",
    );
    assert_refused(&out, "[bad-signature]");
}

pub(crate) fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn signing_with_the_wrong_password_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    assert!(kiln(dir, "keys generate --out k").status.success());
    write_statement(dir, b"x", "https://slsa.dev/provenance/v1");
    let out = kiln_with_env(
        dir,
        "attest sign --key k.key --statement statement.json --out b.json",
        &[("KILN_KEY_PASSWORD", "wrong")],
    );
    assert_refused(&out, "wrong password");
    assert!(!dir.join("b.json").exists());
}

#[test]
fn a_missing_password_without_a_terminal_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = kiln_with_env(tmp.path(), "keys generate --out k", &[]);
    assert_refused(&out, "KILN_KEY_PASSWORD is not set");
    assert!(!tmp.path().join("k.key").exists());
}

#[test]
fn malformed_inputs_are_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    assert!(kiln(dir, "keys generate --out k").status.success());
    std::fs::write(dir.join("garbage.json"), b"{not json").unwrap();
    let out = kiln(dir, "attest verify --bundle garbage.json --key k.pub");
    assert_refused(&out, "[bundle-malformed]");
    let out = kiln(dir, "attest verify --bundle missing.json --key k.pub");
    assert_refused(&out, "reading missing.json");
    std::fs::write(
        dir.join("bad.pub"),
        b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    let out = kiln(dir, "attest verify --bundle garbage.json --key bad.pub");
    assert_refused(&out, "could not read the public key");
    let out = kiln(
        dir,
        "attest sign --key k.key --statement garbage.json --out b.json",
    );
    assert_refused(&out, "is not an in-toto statement");
    std::fs::write(
        dir.join("trust.toml"),
        b"[[key]]\nname = \"a\"\nrole = [\"builder\"]\n",
    )
    .unwrap();
    let out = kiln(dir, "keys list --trust trust.toml");
    assert_refused(&out, "unknown field `role`");
}

#[test]
fn kiln_policy_check_accepts_the_shipped_policy_and_names_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let shipped = kiln_tests::workspace_root().join("policies/default.toml");
    let out = kiln(dir, &format!("policy check {}", shipped.display()));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("valid policy sha256:"),
        "{}",
        stdout(&out)
    );
    std::fs::write(
        dir.join("bad.toml"),
        "[licenses]\nallow = [\"MIT\", \"GPL-9.0\"]\n",
    )
    .unwrap();
    let out = kiln(dir, "policy check bad.toml");
    assert_refused(
        &out,
        "bad.toml:2:17: `GPL-9.0` is not an SPDX licence identifier",
    );
}

#[test]
fn kiln_audit_flags_a_vulnerable_lockfile_and_passes_a_clean_one() {
    let snapshot = kiln_tests::workspace_root().join("../shared/advisory-db");
    if !snapshot.join("crates").is_dir() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have the advisory-db snapshot"
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let source = "registry+https://github.com/rust-lang/crates.io-index";
    std::fs::write(
        dir.join("vulnerable.lock"),
        format!("version = 4\n[[package]]\nname = \"smallvec\"\nversion = \"1.6.0\"\nsource = \"{source}\"\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("clean.lock"),
        format!("version = 4\n[[package]]\nname = \"serde\"\nversion = \"1.0.228\"\nsource = \"{source}\"\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("policy.toml"),
        "[advisories]\nmax_db_age_days = 100000\n",
    )
    .unwrap();
    let db = snapshot.display().to_string();
    let out = kiln(
        dir,
        &format!("audit vulnerable.lock --json --policy policy.toml --db {db}"),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verdict"], "deny");
    assert_eq!(report["advisories"][0]["id"], "RUSTSEC-2021-0003");
    assert_eq!(report["schema"], "https://kiln.dev/schemas/audit-report/v1");
    let out = kiln(
        dir,
        &format!("audit clean.lock --policy policy.toml --db {db}"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("verdict: pass"), "{}", stdout(&out));
    // A live exception accepts the finding, with its reason.
    std::fs::write(
        dir.join("excepted.toml"),
        "[advisories]\nmax_db_age_days = 100000\n[[exceptions]]\ncode = \"advisory-vulnerability\"\ncrate = \"smallvec@1.6.0\"\nreason = \"insert_many is not called\"\nuntil = \"2099-12-31\"\n",
    )
    .unwrap();
    let out = kiln(
        dir,
        &format!("audit vulnerable.lock --policy excepted.toml --db {db}"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("accepted until 2099-12-31: insert_many is not called"),
        "{}",
        stdout(&out)
    );

    // Bans and sources, from the same command.
    std::fs::write(
        dir.join("policy.toml"),
        "[advisories]\nmax_db_age_days = 100000\n[bans]\ndeny = [{ name = \"serde\", reason = \"testing bans\" }]\n",
    )
    .unwrap();
    let out = kiln(
        dir,
        &format!(
            "audit clean.lock --json --policy policy.toml --db {db} --registry-index sparse+http://127.0.0.1:1/index/"
        ),
    );
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let codes: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["banned", "source-registry"]);
    std::fs::write(dir.join("broken.lock"), "[[package]]\nname = 3\n").unwrap();
    let out = kiln(dir, &format!("audit broken.lock --db {db}"));
    assert_refused(&out, "broken.lock");
}
