//! The advisories check against the RustSec snapshot in `../shared/advisory-db` (or the
//! database `KILN_ADVISORY_DB` names), and against a database this test writes itself.

#![allow(clippy::disallowed_macros, reason = "a skipped test says why")]

use std::path::{Path, PathBuf};

use kiln_policy::checks::advisories::{AdvisoryDb, check, parse_lockfile};
use kiln_policy::findings::{Severity, Verdict};
use kiln_policy::policy_file::Policy;

fn snapshot() -> Option<PathBuf> {
    let path = std::env::var_os("KILN_ADVISORY_DB")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/advisory-db"));
    if path.join("crates").is_dir() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must have the advisory-db snapshot at {}",
        path.display()
    );
    eprintln!(
        "no advisory-db snapshot at {}; the snapshot test has nothing to check",
        path.display()
    );
    None
}

const LOCKFILE: &str = r#"
version = 4

[[package]]
name = "smallvec"
version = "1.6.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "fe0f37c9e8f3c5a4a66ad655a93c74daac4ad00c441533bf5c6e7990bb42604e"

[[package]]
name = "time"
version = "0.1.43"
source = "sparse+http://127.0.0.1:7878/index/"
checksum = "ca8a50ef2360fbd1eeb0ecd46795a87a19024eb4b53c5dc916ca1fd95fe62438"

[[package]]
name = "badge"
version = "0.3.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "3b5e2a6d0e4e8c2bb4c4a1eb47d8f6d3c9c57e5b0f7b2a9a4a1d4c7a7d5e0a1b"

[[package]]
name = "serde"
version = "1.0.228"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "9a8e94ea7f378bd32cbbd37198a4a91436180c5bb472411e48b5ec2e2124ae9e"

[[package]]
name = "my-kernel"
version = "0.1.0"
dependencies = ["smallvec", "time", "badge", "serde"]
"#;

fn lenient() -> Policy {
    // The snapshot is months old by design; staleness is tested on its own below.
    Policy::parse("[advisories]\nmax_db_age_days = 100000\n", "test.toml").unwrap()
}

#[test]
fn known_vulnerable_versions_are_flagged_with_their_ids() {
    let Some(path) = snapshot() else { return };
    let db = AdvisoryDb::open(&path).unwrap();
    assert!(db.count > 500, "{} advisories", db.count);
    let lockfile = parse_lockfile(LOCKFILE).unwrap();
    let (matches, findings) = check(&lockfile, &db, &lenient().advisories, "2026-11-23");
    let ids: Vec<&str> = matches.iter().map(|m| m.id.as_str()).collect();
    assert!(ids.contains(&"RUSTSEC-2021-0003"), "smallvec: {ids:?}");
    assert!(
        ids.contains(&"RUSTSEC-2020-0071"),
        "time from kiln's own index: {ids:?}"
    );
    assert!(
        ids.contains(&"RUSTSEC-2022-0057"),
        "badge is unmaintained: {ids:?}"
    );
    assert!(!matches.iter().any(|m| m.package == "serde"), "{matches:?}");
    let smallvec = findings
        .iter()
        .find(|f| f.message.contains("RUSTSEC-2021-0003"))
        .unwrap();
    assert_eq!(
        (smallvec.code.as_str(), smallvec.severity),
        ("advisory-vulnerability", Severity::Deny)
    );
    let badge = findings
        .iter()
        .find(|f| f.message.contains("RUSTSEC-2022-0057"))
        .unwrap();
    assert_eq!(
        (badge.code.as_str(), badge.severity),
        ("advisory-unmaintained", Severity::Review)
    );
    assert_eq!(Verdict::of(&findings), Verdict::Deny);
}

#[test]
fn a_clean_lockfile_passes_and_a_stale_database_is_a_finding() {
    let Some(path) = snapshot() else { return };
    let db = AdvisoryDb::open(&path).unwrap();
    let clean = parse_lockfile(
        "version = 4\n[[package]]\nname = \"serde\"\nversion = \"1.0.228\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n",
    )
    .unwrap();
    let (matches, findings) = check(&clean, &db, &lenient().advisories, "2026-11-23");
    assert!(matches.is_empty() && findings.is_empty(), "{findings:?}");
    let strict = Policy::parse("[advisories]\nmax_db_age_days = 30\n", "t.toml").unwrap();
    let (_, findings) = check(&clean, &db, &strict.advisories, "2099-01-01");
    assert_eq!(findings[0].code, "advisory-db-stale");
}

#[test]
fn a_database_written_here_is_read_and_a_corrupt_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let advisory = dir.path().join("crates/kiln-fixture");
    std::fs::create_dir_all(&advisory).unwrap();
    std::fs::write(
        advisory.join("RUSTSEC-2099-0001.md"),
        "```toml\n[advisory]\nid = \"RUSTSEC-2099-0001\"\npackage = \"kiln-fixture\"\ndate = \"2026-11-01\"\n\n[versions]\npatched = [\">= 1.0.1\"]\n```\n\n# A fixture vulnerability\n\nWritten by kiln's tests.\n",
    )
    .unwrap();
    let db = AdvisoryDb::open(dir.path()).unwrap();
    assert_eq!((db.count, db.newest.as_str()), (1, "2026-11-01"));
    let lockfile = parse_lockfile(
        "version = 4\n[[package]]\nname = \"kiln-fixture\"\nversion = \"1.0.0\"\nsource = \"sparse+http://127.0.0.1:7878/index/\"\n\n[[package]]\nname = \"kiln-fixture-b\"\nversion = \"1.0.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n",
    )
    .unwrap();
    let (matches, findings) = check(&lockfile, &db, &lenient().advisories, "2026-11-23");
    assert_eq!(matches.len(), 1);
    assert_eq!(findings[0].severity, Severity::Deny);

    std::fs::write(
        advisory.join("RUSTSEC-2099-0002.md"),
        "```toml\n[advisory]\nid = \"not an id\"\n```\n# x\n",
    )
    .unwrap();
    let err = AdvisoryDb::open(dir.path()).unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot load the advisory database"),
        "{err}"
    );
    assert!(parse_lockfile("[[package]]\nname = 1\n").is_err());
}
