use std::path::Path;

use super::*;
use crate::checks::advisories::parse_lockfile;

const FIXTURE_CHECKSUM: &str = "1111111111111111111111111111111111111111111111111111111111111111";

/// A two-advisory database written by the test, so that the snapshot does not move with the
/// real database.
fn fixture_db(dir: &Path) -> AdvisoryDb {
    let write = |krate: &str, id: &str, extra: &str, patched: &str| {
        let folder = dir.join("crates").join(krate);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(
            folder.join(format!("{id}.md")),
            format!(
                "```toml\n[advisory]\nid = \"{id}\"\npackage = \"{krate}\"\ndate = \"2026-11-01\"\n{extra}\n[versions]\npatched = [\"{patched}\"]\n```\n\n# Fixture advisory for {krate}\n\nWritten by kiln's tests.\n"
            ),
        )
        .unwrap();
    };
    write("kiln-fixture", "RUSTSEC-2099-0001", "", ">= 1.0.1");
    write(
        "old-thing",
        "RUSTSEC-2099-0002",
        "informational = \"unmaintained\"\n",
        ">= 9.0.0",
    );
    AdvisoryDb::open(dir).unwrap()
}

const LOCKFILE: &str = r#"
version = 4

[[package]]
name = "kernel-csv-stat"
version = "0.1.0"
dependencies = ["kiln-fixture", "old-thing", "foo-sys", "early", "gitdep", "serde"]

[[package]]
name = "kiln-fixture"
version = "1.0.0"
source = "sparse+http://127.0.0.1:7878/index/"
checksum = "1111111111111111111111111111111111111111111111111111111111111111"

[[package]]
name = "old-thing"
version = "0.3.0"
source = "sparse+http://127.0.0.1:7878/index/"
checksum = "2222222222222222222222222222222222222222222222222222222222222222"

[[package]]
name = "foo-sys"
version = "0.2.0"
source = "sparse+http://127.0.0.1:7878/index/"
checksum = "3333333333333333333333333333333333333333333333333333333333333333"

[[package]]
name = "early"
version = "0.0.3"
source = "sparse+http://127.0.0.1:7878/index/"
checksum = "4444444444444444444444444444444444444444444444444444444444444444"

[[package]]
name = "gitdep"
version = "1.0.0"
source = "git+https://example.invalid/gitdep#0123456789abcdef0123456789abcdef01234567"

[[package]]
name = "serde"
version = "1.0.228"
source = "sparse+http://127.0.0.1:7878/index/"
checksum = "5555555555555555555555555555555555555555555555555555555555555555"
"#;

const POLICY: &str = r#"
[advisories]
max_db_age_days = 100000

[rules]
files = ["rules/unsettled-dependencies.rego"]

[[exceptions]]
code = "advisory-unmaintained"
crate = "old-thing"
reason = "replacement tracked in OPS-1"
until = "2099-01-01"
"#;

fn crate_info(name: &str, version: &str, license: &str, build_script: bool) -> CrateInfo {
    CrateInfo {
        name: name.into(),
        version: version.into(),
        license: Some(license.into()),
        license_file: None,
        build_script,
        proc_macro: false,
        links: None,
        checksum: None,
    }
}

fn report() -> AuditReport {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let policy = Policy::parse_in(POLICY, "fixture.toml", Some(&policies)).unwrap();
    let lockfile = parse_lockfile(LOCKFILE).unwrap();
    let crates = vec![
        crate_info("kernel-csv-stat", "0.1.0", "MIT", false),
        crate_info("kiln-fixture", "1.0.0", "MIT OR Apache-2.0", false),
        crate_info("old-thing", "0.3.0", "GPL-3.0-only", false),
        crate_info("foo-sys", "0.2.0", "MIT", true),
        crate_info("early", "0.0.3", "MIT", false),
        crate_info("gitdep", "1.0.0", "MIT", false),
        crate_info("serde", "1.0.228", "MIT OR Apache-2.0", false),
    ];
    let subject = AuditSubject {
        name: "kernel-csv-stat".into(),
        version: "0.1.0".into(),
        checksum: Digest::from_hex(&"9".repeat(64)).unwrap(),
    };
    let approved = vec!["kernel-csv-stats".to_owned(), "serde".to_owned()];
    Auditor {
        policy: &policy,
        db: &db,
    }
    .audit(&AuditInput {
        subject: Some(&subject),
        lockfile: &lockfile,
        crates: Some(&crates),
        registry_index: Some("sparse+http://127.0.0.1:7878/index/"),
        approved_names: &approved,
        today: "2026-11-23",
        features: None,
        curated: &[],
        manifest: None,
        registry_aliases: &[],
    })
    .unwrap()
}

#[test]
fn the_report_of_a_fixture_crate() {
    let report = report();
    let codes: Vec<&str> = report.findings.iter().map(|f| f.code.as_str()).collect();
    for code in [
        "advisory-vulnerability",
        "source-git",
        "license",
        "rule-native-binding",
        "rule-unsettled-version",
        "build-script",
        "typosquat",
        "advisory-unmaintained",
    ] {
        assert!(
            codes.iter().any(|c| c.starts_with(code)),
            "{code} missing from {codes:?}"
        );
    }
    assert_eq!(report.verdict, Verdict::Deny);
    insta::assert_json_snapshot!("fixture-report", report);
    insta::assert_snapshot!("fixture-report-text", report.render_text());
}

#[test]
fn the_report_round_trips_and_rebuilds_its_lockfile() {
    let report = report();
    let json = serde_json::to_string(&report).unwrap();
    let back: AuditReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
    // The lockfile keeps what Cargo.lock holds; what the manifests said is the report's.
    let lockfile = lockfile_of(&report.packages).unwrap();
    let locked: Vec<LockedPackage> = report
        .packages
        .iter()
        .map(|p| LockedPackage {
            license: None,
            build_script: false,
            proc_macro: false,
            ..p.clone()
        })
        .collect();
    assert_eq!(locked_packages(&lockfile), locked);
}

#[test]
fn the_statement_covers_the_crate_and_every_locked_checksum() {
    let report = report();
    let statement = report.statement().unwrap();
    assert_eq!(
        statement.predicate_type,
        StatementKind::Audit.predicate_type()
    );
    let names: Vec<&str> = statement.subject.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "kernel-csv-stat-0.1.0.crate",
            "early-0.0.3.crate",
            "foo-sys-0.2.0.crate",
            "kiln-fixture-1.0.0.crate",
            "old-thing-0.3.0.crate",
            "serde-1.0.228.crate",
        ]
    );
    assert!(statement.has_subject(&Digest::from_hex(FIXTURE_CHECKSUM).unwrap()));
    let predicate: AuditReport = statement.predicate_as().unwrap();
    assert_eq!(predicate, report);
}
