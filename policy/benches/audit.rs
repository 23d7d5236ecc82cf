//! One audit of a 311-package lockfile (`benches/fixtures/lockfile-311.lock`: tokio, axum,
//! reqwest, sqlx, clap and friends, plus two known-vulnerable pins) with the advisory database
//! loaded once, under kiln's default policy. `scripts/bench-audit` runs this beside
//! `cargo audit --no-fetch --db` on the same lockfile and reports the ratio.
//!
//! The database is `KILN_ADVISORY_DB` or `../shared/advisory-db` (a RustSec snapshot).

#![allow(clippy::disallowed_macros, reason = "a benchmark prints its figures")]

use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use kiln_policy::audit::{AuditInput, Auditor};
use kiln_policy::checks::advisories::{AdvisoryDb, parse_lockfile};
use kiln_policy::policy_file::Policy;

fn bench(c: &mut Criterion) {
    let db_path = std::env::var_os("KILN_ADVISORY_DB")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/advisory-db"));
    let Ok(db) = AdvisoryDb::open(&db_path) else {
        eprintln!(
            "no advisory database at {}: set KILN_ADVISORY_DB",
            db_path.display()
        );
        return;
    };
    let text = include_str!("fixtures/lockfile-311.lock");
    let policy = Policy::parse("", "defaults").unwrap();
    let auditor = Auditor {
        policy: &policy,
        db: &db,
    };
    let mut group = c.benchmark_group("audit");
    group.bench_function("311-package lockfile, database loaded once", |b| {
        b.iter(|| {
            let lockfile = parse_lockfile(text).unwrap();
            auditor
                .audit(&AuditInput {
                    subject: None,
                    lockfile: &lockfile,
                    crates: None,
                    registry_index: None,
                    approved_names: &[],
                    today: "2026-11-23",
                    features: None,
                    curated: &[],
                    manifest: None,
                    registry_aliases: &[],
                })
                .unwrap()
        })
    });
    group.bench_function("loading the database", |b| {
        b.iter(|| AdvisoryDb::open(&db_path).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
