//! The source diff of a submission against an earlier approved version (or, for a first
//! version, against nothing), with what a reviewer should read first called out: new
//! dependencies, new wasm imports, a new or changed build script, added lines with `unsafe`.

use std::collections::{BTreeMap, BTreeSet};

use kiln_crate_archive::{CrateArchive, Limits};
use kiln_wire::diff::{FileDiff, SourceDiff};
use kiln_wire::submissions::SubmissionDetail;

use crate::app::App;
use crate::model::{ModelError, ModelResult, versions};

/// Files Cargo writes into every `.crate` that say nothing about the code.
const PACKAGING: [&str; 3] = ["Cargo.toml.orig", ".cargo_vcs_info.json", "Cargo.lock"];

/// The dependency names of a `Cargo.toml`.
fn dependency_names(manifest: Option<&Vec<u8>>) -> BTreeSet<String> {
    let Some(Ok(table)) =
        manifest.map(|m| toml::from_str::<toml::Table>(&String::from_utf8_lossy(m)))
    else {
        return BTreeSet::new();
    };
    ["dependencies", "build-dependencies"]
        .iter()
        .filter_map(|k| table.get(*k).and_then(toml::Value::as_table))
        .flat_map(|t| t.keys().cloned())
        .collect()
}

/// A built module's imports, as `MODULE.NAME`.
fn imports(detail: Option<&SubmissionDetail>) -> BTreeSet<String> {
    detail
        .and_then(|d| d.reports.build.as_ref())
        .and_then(|b| b.kernel.as_ref())
        .map(|k| {
            k.imports
                .iter()
                .map(|i| format!("{}.{}", i.module, i.name))
                .collect()
        })
        .unwrap_or_default()
}

/// A version's files and its module's imports (`MODULE.NAME`).
type Side<'a> = (&'a BTreeMap<String, Vec<u8>>, &'a BTreeSet<String>);

/// The diff of `new` against `old` (`None`: a first version).
pub fn diff_files(old: Option<Side<'_>>, new: Side<'_>) -> (Vec<String>, Vec<FileDiff>) {
    let empty = BTreeMap::new();
    let none = BTreeSet::new();
    let (old_files, old_imports) = old.unwrap_or((&empty, &none));
    let (new_files, new_imports) = new;
    let mut notes = Vec::new();
    if old.is_none() {
        notes.push(
            "first version: there is no approved version to compare with, so every file is new"
                .to_owned(),
        );
    }
    let old_deps = dependency_names(old_files.get("Cargo.toml"));
    for dep in dependency_names(new_files.get("Cargo.toml")).difference(&old_deps) {
        notes.push(format!("new dependency: {dep}"));
    }
    for import in new_imports.difference(old_imports) {
        notes.push(format!("new import: {import}"));
    }
    let mut files = Vec::new();
    let paths: BTreeSet<&String> = old_files.keys().chain(new_files.keys()).collect();
    for path in paths {
        if PACKAGING.contains(&path.as_str()) {
            continue;
        }
        let (old_bytes, new_bytes) = (old_files.get(path), new_files.get(path));
        if old_bytes == new_bytes {
            continue;
        }
        let change = match (old_bytes, new_bytes) {
            (None, _) => "added",
            (_, None) => "removed",
            _ => "changed",
        };
        // Binary files are named with their sizes, not diffed line by line.
        let text = |b: Option<&Vec<u8>>| match b {
            None => Some(String::new()),
            Some(b) if b.contains(&0) => None,
            Some(b) => String::from_utf8(b.clone()).ok(),
        };
        let (Some(before), Some(after)) = (text(old_bytes), text(new_bytes)) else {
            let size = |b: Option<&Vec<u8>>| b.map_or(0, Vec::len);
            files.push(FileDiff {
                path: path.clone(),
                change: change.to_owned(),
                unified: format!(
                    "Binary files a/{path} and b/{path} differ ({} -> {} bytes)\n",
                    size(old_bytes),
                    size(new_bytes)
                ),
            });
            continue;
        };
        let after_exists = new_bytes.is_some();
        if path == "build.rs" && after_exists {
            notes.push(format!(
                "build.rs {change}: it runs at build time, in the build sandbox"
            ));
        }
        let unified = similar::TextDiff::from_lines(&before, &after)
            .unified_diff()
            .header(&format!("a/{path}"), &format!("b/{path}"))
            .to_string();
        let new_unsafe = unified
            .lines()
            .filter(|l| l.starts_with('+') && !l.starts_with("+++") && l.contains("unsafe"))
            .count();
        if new_unsafe > 0 {
            notes.push(format!("{path}: {new_unsafe} added lines with `unsafe`"));
        }
        files.push(FileDiff {
            path: path.clone(),
            change: change.to_owned(),
            unified,
        });
    }
    (notes, files)
}

/// The files of `name@version`'s `.crate`.
async fn crate_files(
    app: &App,
    name: &str,
    version: &str,
) -> ModelResult<BTreeMap<String, Vec<u8>>> {
    let row = versions::find(&app.db, name, version).await?;
    let bytes = app.blobs.get(&row.checksum).await?.ok_or_else(|| {
        ModelError::Corrupt(format!(
            "blob {} of {name}@{version} is missing",
            row.checksum
        ))
    })?;
    let (name, version) = (name.to_owned(), version.to_owned());
    tokio::task::spawn_blocking(move || {
        CrateArchive::new(&bytes, &name, &version, Limits::default()).files()
    })
    .await
    .map_err(|err| ModelError::Corrupt(format!("reading the .crate: {err}")))?
    .map_err(|err| ModelError::Corrupt(format!("reading the stored .crate: {err}")))
}

/// The newest approved version of `name` before `version`.
async fn previous_approved(app: &App, name: &str, version: &str) -> ModelResult<Option<String>> {
    let Ok(current) = semver::Version::parse(version) else {
        return Ok(None);
    };
    Ok(versions::approved_versions(&app.db, name)
        .await?
        .into_iter()
        .filter(|v| *v < current)
        .max()
        .map(|v| v.to_string()))
}

/// The source diff of `name@version` against `against` (default: the newest approved version
/// before it; none for a first version).
pub async fn source_diff(
    app: &App,
    name: &str,
    version: &str,
    against: Option<String>,
) -> ModelResult<SourceDiff> {
    let against = match against {
        Some(against) => Some(against),
        None => previous_approved(app, name, version).await?,
    };
    let new_files = crate_files(app, name, version).await?;
    let new_detail = crate::submissions::detail(app, name, version).await?;
    let old = match &against {
        Some(against) => Some((
            crate_files(app, name, against).await?,
            crate::submissions::detail(app, name, against).await?,
        )),
        None => None,
    };
    let new_imports = imports(Some(&new_detail));
    let old_imports = imports(old.as_ref().map(|(_, detail)| detail));
    let (notes, files) = diff_files(
        old.as_ref().map(|(files, _)| (files, &old_imports)),
        (&new_files, &new_imports),
    );
    Ok(SourceDiff {
        krate: name.to_owned(),
        version: version.to_owned(),
        against,
        notes,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &[u8])]) -> BTreeMap<String, Vec<u8>> {
        list.iter()
            .map(|(path, bytes)| ((*path).to_owned(), bytes.to_vec()))
            .collect()
    }

    #[test]
    fn a_first_version_is_all_new_with_its_build_script_called_out() {
        let new = files(&[
            ("build.rs", b"fn main() {}\n"),
            ("src/lib.rs", b"pub fn f() { unsafe {} }\n"),
            ("Cargo.toml.orig", b"x"),
            ("data.bin", b"\0\0\0"),
        ]);
        let imports = BTreeSet::from(["wasi_snapshot_preview1.fd_write".to_owned()]);
        let (notes, diffs) = diff_files(None, (&new, &imports));
        assert!(notes[0].starts_with("first version"), "{notes:?}");
        assert!(
            notes.iter().any(|n| n.starts_with("build.rs added")),
            "{notes:?}"
        );
        assert!(notes.contains(&"new import: wasi_snapshot_preview1.fd_write".to_owned()));
        assert!(notes.contains(&"src/lib.rs: 1 added lines with `unsafe`".to_owned()));
        let paths: Vec<_> = diffs
            .iter()
            .map(|d| (d.path.as_str(), d.change.as_str()))
            .collect();
        assert_eq!(
            paths,
            [
                ("build.rs", "added"),
                ("data.bin", "added"),
                ("src/lib.rs", "added")
            ]
        );
        assert!(
            diffs[1]
                .unified
                .starts_with("Binary files a/data.bin and b/data.bin differ (0 -> 3 bytes)")
        );
    }

    #[test]
    fn only_what_changed_is_shown() {
        let old = files(&[("src/lib.rs", b"a\n"), ("README.md", b"same\n")]);
        let new = files(&[("src/lib.rs", b"b\n"), ("README.md", b"same\n")]);
        let none = BTreeSet::new();
        let (notes, diffs) = diff_files(Some((&old, &none)), (&new, &none));
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(diffs.len(), 1);
        assert!(
            diffs[0].unified.contains("-a\n+b\n"),
            "{}",
            diffs[0].unified
        );
    }

    #[test]
    fn new_dependencies_come_from_both_tables() {
        let manifest =
            b"[package]\nname='x'\n[dependencies]\nserde='1'\n[build-dependencies]\ncc='1'\n"
                .to_vec();
        assert_eq!(
            dependency_names(Some(&manifest))
                .into_iter()
                .collect::<Vec<_>>(),
            ["cc", "serde"]
        );
    }
}
