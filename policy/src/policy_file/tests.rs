//! The shipped policy parses to the built-in defaults, and malformed policies are refused with
//! their line and column.

use super::*;
use crate::checks::wasm::AllowedFunctions;
use crate::intoto::StatementKind;

fn shipped() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/default.toml"))
        .unwrap()
}

#[test]
fn the_shipped_default_policy_matches_the_built_in_defaults() {
    let policy = Policy::parse(&shipped(), "default.toml").unwrap();
    let empty = Policy::parse("", "empty.toml").unwrap();
    assert_eq!(policy.wasm, WasmPolicy::default());
    assert_eq!(policy.wasm, empty.wasm);
    assert_eq!(policy.advisories, empty.advisories);
    assert_eq!(policy.build, empty.build);
    assert_eq!(policy.execution, empty.execution);
    assert_eq!(policy.licenses, empty.licenses);
    assert_eq!(policy.bans, empty.bans);
    assert_eq!(policy.sources, empty.sources);
    assert_eq!(policy.typosquat, empty.typosquat);
    assert!(policy.licenses.allow.contains("MIT"));
    assert_eq!(
        policy.execution.require,
        [StatementKind::Provenance, StatementKind::Review].into()
    );
    assert_eq!(policy.digest, Digest::of(shipped().as_bytes()));
}

#[test]
fn a_full_policy_is_validated_into_typed_values() {
    let text = r#"
[licenses]
allow = ["MIT"]
clarify = [{ crate = "ring", expression = "MIT AND ISC" }]
[build]
bypass = [{ crate = "libm", version = "0.2.8", checksum = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" }]
[bans]
deny = [{ name = "openssl-sys", reason = "no native code" }, { name = "time", version = "<0.2.23" }]
[wasm.imports]
kiln = "*"
[[exceptions]]
code = "advisory-unmaintained"
crate = "instant@0.1.12"
reason = "tracked"
until = "2028-02-29"
"#;
    let policy = Policy::parse(text, "p.toml").unwrap();
    assert_eq!(policy.licenses.clarify["ring"], "MIT AND ISC");
    assert_eq!(policy.build.bypass[0].1, semver::Version::new(0, 2, 8));
    assert!(
        policy.bans[1]
            .version
            .as_ref()
            .unwrap()
            .matches(&semver::Version::new(0, 2, 0))
    );
    assert!(matches!(
        policy.wasm.allowed_imports["kiln"],
        AllowedFunctions::All(_)
    ));
    assert_eq!(policy.exceptions[0].until, "2028-02-29");
}

fn error(text: &str) -> PolicyError {
    Policy::parse(text, "bad.toml").unwrap_err()
}

#[test]
fn malformed_policies_name_the_line_and_column() {
    let err = error("[advisories]\nvulnerabilty = \"deny\"\n");
    assert_eq!((err.line, err.column), (2, 1), "{err}");
    assert!(
        err.message.contains("unknown field `vulnerabilty`"),
        "{err}"
    );
    assert!(err.to_string().starts_with("bad.toml:2:1: "), "{err}");

    let err = error("[licenses]\nallow = [\"MIT\", \"Apache2\"]\n");
    assert_eq!((err.line, err.column), (2, 17), "{err}");
    assert!(
        err.message
            .contains("`Apache2` is not an SPDX licence identifier"),
        "{err}"
    );

    let err =
        error("[licenses]\nclarify = [{ crate = \"x\", expression = \"MIT ORR Apache-2.0\" }]\n");
    assert!(err.message.contains("is not an SPDX expression"), "{err}");
    assert_eq!(err.line, 2);

    let err = error(
        "[[exceptions]]\ncode = \"x\"\ncrate = \"y\"\nreason = \"r\"\nuntil = \"2026-02-30\"\n",
    );
    assert_eq!((err.line, err.column), (5, 9), "{err}");
    assert!(err.message.contains("is not a date"), "{err}");
    let err = error(
        "[[exceptions]]\ncode = \"x\"\ncrate = \"y\"\nreason = \" \"\nuntil = \"2026-02-28\"\n",
    );
    assert!(err.message.contains("needs a reason"), "{err}");
    let err = error("[[exceptions]]\ncode = \"x\"\ncrate = \"y\"\nreason = \"r\"\n");
    assert!(err.message.contains("missing field `until`"), "{err}");

    let err = error("[bans]\ndeny = [{ name = \"time\", version = \"<<0.2\" }]\n");
    assert!(
        err.message.contains("is not a version requirement"),
        "{err}"
    );
    let err =
        error("[build]\nbypass = [{ crate = \"a\", version = \"1.0.0\", checksum = \"abc\" }]\n");
    assert!(err.message.contains("bad checksum"), "{err}");
    let err = error("[execution]\nrequire = [\"provenance\", \"blessing\"]\n");
    assert!(
        err.message.contains("`blessing` is not a statement kind"),
        "{err}"
    );
    let err = error("[advisories]\nvulnerability = \"maybe\"\n");
    assert!(err.message.contains("unknown variant `maybe`"), "{err}");
    let err = error("[execution]\nmax_fuel = -1\n");
    assert_eq!(err.line, 2, "{err}");
    let err = error("this is not toml");
    assert_eq!(err.line, 1, "{err}");
}

#[test]
fn dates_are_real_calendar_dates() {
    for good in ["2026-01-31", "2024-02-29", "2000-02-29"] {
        assert!(valid_date(good), "{good}");
    }
    for bad in [
        "2026-02-29",
        "1900-02-29",
        "2026-13-01",
        "2026-00-10",
        "2026-1-01",
        "26-01-01",
        "2026-01-32",
        "2026/01/01",
        "2026-01-0a",
    ] {
        assert!(!valid_date(bad), "{bad}");
    }
}

#[test]
fn rule_files_load_relative_to_the_policy_and_their_errors_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("good.rego"),
        "package kiln.rules\n\nreview contains \"always\" if true\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("bad.rego"),
        "package kiln.rules\n\ndeny contains x if {\n",
    )
    .unwrap();
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, "[rules]\nfiles = [\"good.rego\"]\n").unwrap();
    let policy = Policy::load(&path).unwrap();
    assert_eq!(policy.rules.names().len(), 1);
    assert!(policy.rules.names()[0].starts_with("good.rego sha256:"));

    std::fs::write(
        &path,
        "[rules]\nfiles = [\n  \"good.rego\",\n  \"bad.rego\",\n]\n",
    )
    .unwrap();
    let err = Policy::load(&path).unwrap_err();
    assert_eq!((err.line, err.column), (4, 3), "{err}");
    assert!(err.message.contains("bad.rego"), "{err}");

    std::fs::write(&path, "[rules]\nfiles = [\"missing.rego\"]\n").unwrap();
    let err = Policy::load(&path).unwrap_err();
    assert!(err.message.contains("cannot read the rule file"), "{err}");
    assert_eq!(err.line, 2);

    let err = Policy::parse("[rules]\nfiles = [\"good.rego\"]\n", "inline").unwrap_err();
    assert!(err.message.contains("policy file on disk"), "{err}");
}
