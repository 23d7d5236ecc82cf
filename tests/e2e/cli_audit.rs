//! `kiln policy check` and `kiln audit` as a person or a script runs them: the real binary, a
//! fixture advisory database, real lockfiles; exit codes 0 (pass), 1 (deny or bad input) and
//! one `kiln: …` line for every error.

use std::path::Path;
use std::process::Output;

use kiln_tests::kiln_binary;
use serde_json::Value;

fn kiln(args: &[&str], files: &[&Path]) -> Output {
    std::process::Command::new(kiln_binary())
        .args(args)
        .args(files)
        .env("NO_COLOR", "1")
        .env_remove("KILN_ADVISORY_DB")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// One line on stderr, starting `kiln: `, and exit code 1.
fn refused(out: &Output) -> String {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}{}", text(&out.stdout));
    assert!(
        stderr.starts_with("kiln: ") && stderr.trim_end().lines().count() == 1,
        "one line: {stderr}"
    );
    stderr
}

#[test]
fn policy_check_accepts_the_shipped_policy_and_names_where_a_bad_one_breaks() {
    let scratch = tempfile::tempdir().unwrap();
    let shipped = kiln_tests::workspace_root().join("policies/default.toml");
    let out = kiln(&["policy", "check"], &[&shipped]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("valid policy sha256:"));

    for (name, body, expected) in [
        (
            "unknown-key.toml",
            "[licenses]\nallow = [\"MIT\"]\nalow = []\n",
            ":3:1",
        ),
        (
            "bad-spdx.toml",
            "[licenses]\nallow = [\"MIT\", \"Not-A-Licence\"]\n",
            ":2:",
        ),
        (
            "bad-date.toml",
            "[[exceptions]]\ncode = \"build-script\"\ncrate = \"x\"\nreason = \"r\"\nuntil = \"2026-02-30\"\n",
            ":5:",
        ),
        (
            "bad-rule.toml",
            "[rules]\nfiles = [\"broken.rego\"]\n",
            "broken.rego:3:1: expecting expression",
        ),
    ] {
        std::fs::write(
            scratch.path().join("broken.rego"),
            "package kiln.rules\ndeny contains msg if {\n",
        )
        .unwrap();
        let file = scratch.path().join(name);
        std::fs::write(&file, body).unwrap();
        let message = refused(&kiln(&["policy", "check"], &[&file]));
        assert!(
            message.contains(name) && message.contains(expected),
            "{name}: {message}"
        );
    }
}

#[test]
fn audit_exits_1_on_a_vulnerable_lockfile_and_0_on_a_clean_one() {
    let scratch = tempfile::tempdir().unwrap();
    let db = scratch.path().join("db");
    kiln_tests::advisories::write(&db, "RUSTSEC-2099-0101", "leaky", ">= 1.2.0");
    let policy = scratch.path().join("policy.toml");
    std::fs::write(&policy, "[advisories]\nmax_db_age_days = 100000\n").unwrap();
    let lockfile = |name: &str, version: &str| {
        let path = scratch.path().join(format!("{name}-{version}.lock"));
        std::fs::write(
            &path,
            format!(
                "version = 4\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\ndependencies = [\"{name}\"]\n\n\
                 [[package]]\nname = \"{name}\"\nversion = \"{version}\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n\
                 checksum = \"{}\"\n",
                "ab".repeat(32)
            ),
        )
        .unwrap();
        path
    };

    let vulnerable = lockfile("leaky", "1.1.0");
    let out = kiln(
        &["audit", "--json", "--db"],
        &[&db, Path::new("--policy"), &policy, &vulnerable],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verdict"], "deny", "{report}");
    assert_eq!(
        report["advisories"][0]["id"], "RUSTSEC-2099-0101",
        "{report}"
    );
    assert!(text(&out.stderr).contains("denied by the audit"));

    let out = kiln(
        &["audit", "--db"],
        &[&db, Path::new("--policy"), &policy, &vulnerable],
    );
    let human = text(&out.stdout);
    assert!(
        human.contains("RUSTSEC-2099-0101") && human.contains("leaky@1.1.0"),
        "{human}"
    );

    let clean = lockfile("leaky", "1.2.0");
    let out = kiln(
        &["audit", "--json", "--db"],
        &[&db, Path::new("--policy"), &policy, &clean],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verdict"], "pass", "{report}");

    // Bad input: one line each, exit 1.
    let malformed = scratch.path().join("malformed.lock");
    std::fs::write(&malformed, "[[package]]\nname = 1\n").unwrap();
    let message = refused(&kiln(
        &["audit", "--db"],
        &[&db, Path::new("--policy"), &policy, &malformed],
    ));
    assert!(
        message.contains("malformed.lock") || message.contains("lockfile"),
        "{message}"
    );
    let message = refused(&kiln(
        &["audit", "--db"],
        &[&scratch.path().join("no-db"), &clean],
    ));
    assert!(message.contains("no-db"), "{message}");
    let message = refused(&kiln(&["audit"], &[&clean]));
    assert!(message.contains("--db"), "{message}");
}
