//! Advisory databases written by the tests, so that what they check does not move with the real
//! RustSec database.

use std::path::Path;

/// Writes an advisory `id` against `krate` (patched in `patched`, a version requirement) into
/// the database directory `dir`, dated 2026-11-01.
pub fn write(dir: &Path, id: &str, krate: &str, patched: &str) {
    write_dated(dir, id, krate, patched, "2026-11-01");
}

/// [`write()`], dated `date` (YYYY-MM-DD): the database's age is its newest advisory's.
pub fn write_dated(dir: &Path, id: &str, krate: &str, patched: &str, date: &str) {
    let folder = dir.join("crates").join(krate);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join(format!("{id}.md")),
        format!("```toml\n[advisory]\nid = \"{id}\"\npackage = \"{krate}\"\ndate = \"{date}\"\n\n[versions]\npatched = [\"{patched}\"]\n```\n\n# Fixture advisory for {krate}\n\nWritten by kiln's tests.\n"),
    )
    .unwrap();
}
