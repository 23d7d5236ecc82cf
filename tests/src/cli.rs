//! The `kiln` command line as a user runs it: against one server, with one token, in an
//! environment with no kiln settings of its own.

use std::process::{Command, Output};

use crate::cargo::stderr;
use crate::kiln_binary;

/// `kiln ARGS` against the server at `server_url` with `token`, in an environment with no kiln settings.
pub fn kiln(server_url: &str, token: &str, args: &[&str]) -> Output {
    let config = tempfile::tempdir().unwrap();
    Command::new(kiln_binary())
        .args(args)
        .env_remove("KILN_EXECUTOR")
        .env_remove("KILN_POLICY")
        .env_remove("KILN_REGISTRY_TOKEN")
        .env_remove("KILN_DATABASE_URL")
        .env_remove("KILN_ADVISORY_SOURCE")
        .env_remove("KILN_ADVISORY_DB")
        .env("KILN_CONFIG", config.path().join("none.toml"))
        .env("KILN_REGISTRY", server_url)
        .env("KILN_TOKEN", token)
        .env("COLUMNS", "100")
        .output()
        .unwrap()
}

/// The text of a run's standard output.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts a refusal: exit code 1 and one `kiln: …` line on stderr containing `needle`.
pub fn refused(out: &Output, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}{}", stdout(out));
    assert_eq!(
        err.trim().lines().count(),
        1,
        "one line, not a trace: {err}"
    );
    assert!(
        err.starts_with("kiln: ") && err.contains(needle),
        "expected `{needle}` in: {err}"
    );
}
