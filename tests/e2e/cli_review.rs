//! The admin's command line against a real server: `kiln review list|show|diff|approve|reject|
//! export-vet`, `kiln token`, `kiln revoke`, plain tables when piped, `--help` pinned by
//! snapshots, and bad input (a wrong URL, a server that is down, an expired token, approving
//! what is not built, revoking twice) answered with one clear line and exit code 1, never a
//! stack trace; a first version's diff shows it whole.

use std::process::{Command, Output};

use kiln_tests::cargo::{CargoWorld, stderr};
use kiln_tests::cli::{kiln, refused, stdout};
use kiln_tests::kiln_binary;
use kiln_tests::server::KilnServer;

#[test]
fn admins_review_revoke_and_manage_tokens_from_the_command_line() {
    let server = KilnServer::start();
    let author = server.token("ada", &["publish"]);
    let worker = server.token("builders", &["worker"]);
    let admin = server.admin_token.clone();
    let world = CargoWorld::new(&server);

    let first = world.library("gauge", "1.0.0", "", "pub fn level() -> u8 { 1 }\n");
    assert!(world.publish(&first, Some(&author)).status.success());
    server.pass_audit_and_build(&worker, "gauge", "1.0.0");
    let out = kiln(&server.url, &admin, &["review", "approve", "gauge@1.0.0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("approved gauge@1.0.0 (safe-to-run)"));

    // A dependency for the next version, approved too.
    let dep = world.library("needle-dep", "0.1.0", "", "pub fn x() {}\n");
    assert!(world.publish(&dep, Some(&author)).status.success());
    server.pass_audit_and_build(&worker, "needle-dep", "0.1.0");
    assert!(
        kiln(
            &server.url,
            &admin,
            &["review", "approve", "needle-dep@0.1.0"]
        )
        .status
        .success()
    );

    // The next version adds a build script, a dependency and `unsafe`.
    let second = world.library(
        "gauge",
        "1.1.0",
        "needle-dep = { version = \"0.1.0\", registry = \"kiln\" }",
        "pub fn level() -> u8 { unsafe { core::hint::unreachable_unchecked() } }\n",
    );
    std::fs::write(second.join("build.rs"), "fn main() {}\n").unwrap();
    let out = world.publish(&second, Some(&author));
    assert!(out.status.success(), "{}", stderr(&out));

    // Approving what is not built yet.
    refused(
        &kiln(&server.url, &admin, &["review", "approve", "gauge@1.1.0"]),
        "only built versions can be approved",
    );

    // The list, piped: a plain table.
    let out = kiln(&server.url, &admin, &["review", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    assert!(!table.contains('\x1b'), "no colour when piped: {table:?}");
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("CRATE"), "{table}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("gauge") && l.contains("1.1.0") && l.contains("submitted")),
        "{table}"
    );
    let out = kiln(
        &server.url,
        &admin,
        &["review", "list", "--state", "approved", "--json"],
    );
    let approved: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(approved.as_array().unwrap().len(), 2, "{approved}");

    // Show and diff.
    let out = kiln(&server.url, &admin, &["review", "show", "gauge@1.1.0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = stdout(&out);
    assert!(
        shown.contains("gauge@1.1.0") && shown.contains("needle-dep"),
        "{shown}"
    );
    let out = kiln(&server.url, &admin, &["review", "diff", "gauge@1.1.0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let diff = stdout(&out);
    assert!(diff.contains("gauge: 1.0.0 -> 1.1.0"), "{diff}");
    assert!(diff.contains("! new dependency: needle-dep"), "{diff}");
    // A build script 1.0.0 did not have is new, not changed.
    assert!(diff.contains("! build.rs added"), "{diff}");
    assert!(
        diff.contains("src/lib.rs: 1 added lines with `unsafe`"),
        "{diff}"
    );
    assert!(diff.contains("+pub fn level() -> u8 { unsafe"), "{diff}");
    // A first version is read whole: every file new.
    let out = kiln(&server.url, &admin, &["review", "diff", "gauge@1.0.0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let diff = stdout(&out);
    assert!(diff.contains("gauge: nothing -> 1.0.0"), "{diff}");
    assert!(diff.contains("! first version"), "{diff}");
    assert!(diff.contains("+++ b/src/lib.rs"), "{diff}");

    // The source of any submission: its files with what to read first, and one file.
    let out = kiln(&server.url, &admin, &["review", "source", "gauge@1.1.0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listing = stdout(&out);
    assert!(listing.contains("gauge@1.1.0:"), "{listing}");
    assert!(
        listing
            .lines()
            .any(|l| l.contains("build.rs") && l.contains("! build script")),
        "{listing}"
    );
    assert!(
        listing
            .lines()
            .any(|l| l.contains("src/lib.rs") && l.contains("1 line(s) with `unsafe`")),
        "{listing}"
    );
    let out = kiln(
        &server.url,
        &admin,
        &["review", "source", "gauge@1.1.0", "src/lib.rs"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("unreachable_unchecked"),
        "{}",
        stdout(&out)
    );
    refused(
        &kiln(
            &server.url,
            &admin,
            &["review", "source", "gauge@1.1.0", "src/nope.rs"],
        ),
        "has no file `src/nope.rs`",
    );

    // Reject, then cargo-vet export of what is approved.
    let out = kiln(
        &server.url,
        &admin,
        &[
            "review",
            "reject",
            "gauge@1.1.0",
            "--reason",
            "unsound level()",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = kiln(&server.url, &admin, &["review", "export-vet"]);
    let audits = stdout(&out);
    let parsed: toml::Table = toml::from_str(&audits).unwrap();
    let gauge = &parsed["audits"]["gauge"].as_array().unwrap()[0];
    assert_eq!(gauge["version"].as_str(), Some("1.0.0"), "{audits}");
    assert_eq!(gauge["criteria"].as_str(), Some("safe-to-run"), "{audits}");
    assert!(parsed["audits"].get("needle-dep").is_some(), "{audits}");

    // Tokens: a run-only token, listed; an expired one is refused with a clear line.
    let out = kiln(
        &server.url,
        &admin,
        &["token", "create", "--login", "dana", "--scope", "run"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).trim().starts_with("kiln_"), "{}", stdout(&out));
    let dana = stdout(&out).trim().to_owned();
    let out = kiln(&server.url, &admin, &["token", "list"]);
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.contains("dana") && l.contains("run")),
        "{}",
        stdout(&out)
    );
    let out = kiln(
        &server.url,
        &admin,
        &[
            "token",
            "create",
            "--login",
            "old",
            "--scope",
            "review",
            "--expires-at",
            "1000",
        ],
    );
    let expired = stdout(&out).trim().to_owned();
    refused(&kiln(&server.url, &expired, &["review", "list"]), "expired");

    // A scope that does not exist is named beside the ones that do, without serde's words.
    let out = kiln(
        &server.url,
        &admin,
        &["token", "create", "--login", "dana", "--scope", "bogus"],
    );
    refused_usage(&out);
    assert!(
        stderr(&out).contains("unknown scope `bogus`")
            && stderr(&out).contains("publish")
            && !stderr(&out).contains("variant"),
        "{}",
        stderr(&out)
    );

    // Dana lists and revokes her own tokens, and no one else's.
    let tokens = |token: &str| -> Vec<serde_json::Value> {
        let out = kiln(&server.url, token, &["token", "list", "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let own = tokens(&dana);
    assert!(
        !own.is_empty() && own.iter().all(|t| t["login"] == "dana"),
        "{own:?}"
    );
    let everyone = tokens(&admin);
    assert!(everyone.len() > own.len(), "{everyone:?}");
    let other = everyone.iter().find(|t| t["login"] != "dana").unwrap()["id"].to_string();
    refused(
        &kiln(&server.url, &dana, &["token", "revoke", &other]),
        "only an admin or the token's own user",
    );
    let out = kiln(
        &server.url,
        &dana,
        &["token", "revoke", &own[0]["id"].to_string()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    refused(&kiln(&server.url, &dana, &["token", "list"]), "revoked");

    // Revoking, twice.
    let out = kiln(
        &server.url,
        &admin,
        &["revoke", "gauge@1.0.0", "--reason", "incident 3"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("revoked gauge@1.0.0"));
    refused(
        &kiln(
            &server.url,
            &admin,
            &["revoke", "gauge@1.0.0", "--reason", "again"],
        ),
        "already revoked",
    );

    // A wrong URL, then the server down.
    refused(
        &kiln("http://127.0.0.1:9/", &admin, &["review", "list"]),
        "cannot reach the kiln server at http://127.0.0.1:9",
    );
    let url = server.url.clone();
    server.stop();
    refused(
        &kiln(&url, &admin, &["review", "list"]),
        "cannot reach the kiln server",
    );
}

#[test]
fn help_texts_are_pinned() {
    for args in [
        vec!["--help"],
        vec!["review", "--help"],
        vec!["run", "--help"],
        vec!["executor", "--help"],
    ] {
        let out = kiln("http://unused.invalid", "unused", &args);
        assert!(out.status.success());
        let name = format!(
            "help-{}",
            args.join("-").trim_start_matches("--").replace("--", "")
        );
        insta::assert_snapshot!(name, stdout(&out));
    }
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = kiln("http://unused.invalid", "unused", &["completions", shell]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("review"), "{shell}");
    }
    refused_usage(&kiln(
        "http://unused.invalid",
        "unused",
        &["completions", "cmd.exe"],
    ));
}

/// A command line clap refuses: exit code 2.
fn refused_usage(out: &Output) {
    assert_eq!(out.status.code(), Some(2), "{}", stderr(out));
}

#[test]
fn a_server_key_rotates_and_the_old_one_stays_trusted_as_retired() {
    let data = tempfile::tempdir().unwrap();
    let before = kiln_registry::keys::load_or_create(data.path(), true).unwrap();
    let old_id = before.reviewer.id().to_string();
    let out = Command::new(kiln_binary())
        .args(["keys", "rotate", "--role", "reviewer", "--data"])
        .arg(data.path())
        .env("KILN_KEY_PASSWORD", "")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&old_id), "{}", stdout(&out));

    // The server loads the new key from its next start; the other roles are untouched.
    let after = kiln_registry::keys::load_or_create(data.path(), true).unwrap();
    let new_id = after.reviewer.id().to_string();
    assert_ne!(old_id, new_id);
    assert_eq!(
        after.builder.id().to_string(),
        before.builder.id().to_string()
    );

    // Both are trusted for the role; the old one carries its retirement date.
    let keyring = kiln_policy::Keyring::load(&data.path().join("trust.toml")).unwrap();
    assert_eq!(keyring.len(), 4);
    let old = keyring.get(&old_id).unwrap();
    let new = keyring.get(&new_id).unwrap();
    assert!(old.has_role(kiln_policy::Role::Reviewer) && new.has_role(kiln_policy::Role::Reviewer));
    let date = old.retired.clone().expect("a retirement date");
    assert!(new.retired.is_none());
    let out = Command::new(kiln_binary())
        .args(["keys", "list", "--trust"])
        .arg(data.path().join("trust.toml"))
        .output()
        .unwrap();
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.contains(&old_id) && l.ends_with(&date)),
        "{}",
        stdout(&out)
    );
    // A data directory that is not a server's: one clear line.
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(kiln_binary())
        .args(["keys", "rotate", "--role", "builder", "--data"])
        .arg(empty.path())
        .env("KILN_KEY_PASSWORD", "")
        .output()
        .unwrap();
    refused(&out, "is DATA a kiln server's?");
}
