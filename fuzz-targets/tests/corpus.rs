//! Every fuzz target over its seeds (made from kiln's fixtures), over the corpus `scripts/fuzz`
//! grew (`fuzz/corpus/TARGET/`, when present) and over the inputs that once made it fail
//! (`fuzz/regressions/TARGET/`): none may panic. The seeds must reach both the accepting and the
//! refusing path of every target, so a target that stopped parsing anything would fail here.

#![allow(clippy::disallowed_macros, reason = "the test prints what it ran")]

mod seeds;

use std::panic::AssertUnwindSafe;
use std::path::Path;

use kiln_fuzz_targets::TARGETS;

fn files_in(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| {
            (
                e.path().display().to_string(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn every_target_survives_its_corpus_and_reaches_both_outcomes() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut failures = Vec::new();
    for (name, target) in TARGETS {
        let seeds = seeds::seeds(name);
        let (mut accepted, mut refused) = (0, 0);
        for (seed, bytes) in &seeds {
            match std::panic::catch_unwind(AssertUnwindSafe(|| target(bytes))) {
                Ok(true) => accepted += 1,
                Ok(false) => refused += 1,
                Err(_) => failures.push(format!("{name}: seed {seed} panicked")),
            }
        }
        if accepted == 0 || refused == 0 {
            failures.push(format!(
                "{name}: its seeds must be both accepted and refused ({accepted} accepted, {refused} refused)"
            ));
        }
        let mut more = files_in(&fuzz.join("corpus").join(name));
        more.extend(files_in(&fuzz.join("regressions").join(name)));
        for (path, bytes) in &more {
            if std::panic::catch_unwind(AssertUnwindSafe(|| target(bytes))).is_err() {
                failures.push(format!("{name}: {path} panicked"));
            }
        }
        eprintln!(
            "{name}: {} seeds ({accepted} accepted), {} corpus and regression inputs",
            seeds.len(),
            more.len()
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
