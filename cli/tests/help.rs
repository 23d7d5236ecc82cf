//! The help text documents the commands, the exit codes and the environment.

use std::process::Command;

fn kiln(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn help_lists_commands_exit_codes_and_environment() {
    let out = kiln(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "keys",
        "attest",
        "Exit codes:",
        "KILN_KEY_PASSWORD",
        "COSIGN_PASSWORD",
    ] {
        assert!(text.contains(needle), "`{needle}` missing from:\n{text}");
    }
}

#[test]
fn a_wrong_command_line_exits_2() {
    let out = kiln(&["attest", "verify", "--bundle", "b.json"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("--key") || err.contains("--trust"), "{err}");
}
