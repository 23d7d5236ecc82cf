//! The advisory database's lifecycle: where it is, what revision it holds, and syncing it from a
//! directory (a snapshot, copied) or a git URL (cloned with gix, a pure-Rust git client; local
//! repositories and `file://` URLs work too). A sync is all or nothing: the new database is
//! loaded and checked beside the old one, and only then swapped in, so a failed or corrupt sync
//! leaves the old database in place.

pub use kiln_wire::admin::SyncOutcome;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use kiln_policy::checks::advisories::AdvisoryDb;

/// Why a sync failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The source could not be read or cloned.
    #[error("cannot fetch the advisory database from {source_name}: {message}")]
    Fetch {
        /// The source.
        source_name: String,
        /// Why.
        message: String,
    },
    /// What was fetched is not a usable advisory database.
    #[error("{source_name} is not a usable advisory database (the old one is kept): {message}")]
    Invalid {
        /// The source.
        source_name: String,
        /// Why.
        message: String,
    },
    /// The destination could not be written.
    #[error("cannot write the advisory database at {path}: {message}")]
    Write {
        /// The destination.
        path: String,
        /// Why.
        message: String,
    },
}

/// Whether `source` names a git repository rather than a plain directory.
fn is_git(source: &str) -> bool {
    let path = Path::new(source);
    if path.is_dir() {
        return path.join(".git").exists() || path.join("HEAD").is_file();
    }
    source.contains("://") || source.ends_with(".git") || source.starts_with("git@")
}

/// Replaces the database at `dest` with the one at `source` (a directory or a git URL); returns
/// what changed and the new database, loaded (it was loaded once to check it).
pub fn sync(source: &str, dest: &Path) -> Result<(SyncOutcome, AdvisoryDb), SyncError> {
    let before = AdvisoryDb::open(dest).ok().map(|db| db.revision);
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|err| write_error(parent, err))?;
    let staging = tempfile::Builder::new()
        .prefix(".advisory-db-sync.")
        .tempdir_in(parent)
        .map_err(|err| write_error(parent, err))?;
    let fresh = staging.path().join("db");
    let fetch = |message: String| SyncError::Fetch {
        source_name: source.to_owned(),
        message,
    };
    if is_git(source) {
        clone(source, &fresh).map_err(fetch)?;
    } else {
        let from = Path::new(source);
        if !from.join("crates").is_dir() {
            return Err(SyncError::Invalid {
                source_name: source.to_owned(),
                message: "it has no crates/ directory".into(),
            });
        }
        copy_tree(from, &fresh).map_err(|err| fetch(err.to_string()))?;
    }
    let mut db = AdvisoryDb::open(&fresh).map_err(|err| SyncError::Invalid {
        source_name: source.to_owned(),
        message: err.to_string(),
    })?;
    let outcome = SyncOutcome {
        before,
        after: db.revision.clone(),
        advisories: db.count,
        newest: db.newest.clone(),
    };
    let old = staging.path().join("old");
    if dest.exists() {
        std::fs::rename(dest, &old).map_err(|err| write_error(dest, err))?;
    }
    if let Err(err) = std::fs::rename(&fresh, dest) {
        if old.exists() {
            let _ = std::fs::rename(&old, dest);
        }
        return Err(write_error(dest, err));
    }
    db.path = dest.display().to_string();
    Ok((outcome, db))
}

fn write_error(path: &Path, err: std::io::Error) -> SyncError {
    SyncError::Write {
        path: path.display().to_string(),
        message: err.to_string(),
    }
}

/// Clones `url` into `into` and checks out its default branch.
fn clone(url: &str, into: &PathBuf) -> Result<(), String> {
    let interrupt = AtomicBool::new(false);
    let mut prepare = gix::prepare_clone(url, into).map_err(|err| err.to_string())?;
    let (mut checkout, _) = prepare
        .fetch_then_checkout(gix::progress::Discard, &interrupt)
        .map_err(|err| err.to_string())?;
    checkout
        .main_worktree(gix::progress::Discard, &interrupt)
        .map_err(|err| err.to_string())?;
    Ok(())
}

/// Copies the advisory files of a snapshot (`crates/`, `rust/` and the top-level files), never
/// following symbolic links.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let target = to.join(&name);
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn advisory(dir: &Path, id: &str, krate: &str) {
        let folder = dir.join("crates").join(krate);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(
            folder.join(format!("{id}.md")),
            format!("```toml\n[advisory]\nid = \"{id}\"\npackage = \"{krate}\"\ndate = \"2026-11-01\"\n\n[versions]\npatched = [\">= 9.0.0\"]\n```\n\n# Fixture\n\nWritten by kiln's tests.\n"),
        )
        .unwrap();
    }

    fn git(dir: &Path, args: &[&str]) {
        let status = std::process::Command::new("git")
            .args([
                "-c",
                "user.name=kiln",
                "-c",
                "user.email=kiln@example.invalid",
            ])
            .args(args)
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    }

    #[test]
    fn a_local_git_repository_syncs_and_updates() {
        let upstream = tempfile::tempdir().unwrap();
        git(upstream.path(), &["init", "-q", "-b", "main"]);
        advisory(upstream.path(), "RUSTSEC-2099-0001", "one");
        git(upstream.path(), &["add", "."]);
        git(upstream.path(), &["commit", "-qm", "first"]);
        let home = tempfile::tempdir().unwrap();
        let dest = home.path().join("advisory-db");
        let source = upstream.path().display().to_string();

        let (first, _) = sync(&source, &dest).unwrap();
        assert_eq!((first.before.as_deref(), first.advisories), (None, 1));
        assert_eq!(first.after.len(), 40, "a commit id: {first:?}");

        advisory(upstream.path(), "RUSTSEC-2099-0002", "two");
        git(upstream.path(), &["add", "."]);
        git(upstream.path(), &["commit", "-qm", "second"]);
        let (second, db) = sync(&format!("file://{source}"), &dest).unwrap();
        assert_eq!(db.path, dest.display().to_string());
        assert_eq!(second.before.as_deref(), Some(first.after.as_str()));
        assert!(second.changed());
        assert_eq!(second.advisories, 2);
        assert_eq!(AdvisoryDb::open(&dest).unwrap().revision, second.after);

        let (again, _) = sync(&source, &dest).unwrap();
        assert!(!again.changed());
    }

    #[test]
    fn a_directory_syncs_and_a_corrupt_one_keeps_the_old_database() {
        let snapshot = tempfile::tempdir().unwrap();
        advisory(snapshot.path(), "RUSTSEC-2099-0001", "one");
        let home = tempfile::tempdir().unwrap();
        let dest = home.path().join("db");
        let (outcome, _) = sync(&snapshot.path().display().to_string(), &dest).unwrap();
        assert_eq!(outcome.advisories, 1);

        let corrupt = tempfile::tempdir().unwrap();
        advisory(corrupt.path(), "RUSTSEC-2099-0001", "one");
        std::fs::write(
            corrupt.path().join("crates/one/RUSTSEC-2099-0003.md"),
            "```toml\n[advisory]\nid = \"nope\"\n```\n",
        )
        .unwrap();
        let err = sync(&corrupt.path().display().to_string(), &dest).unwrap_err();
        assert!(matches!(err, SyncError::Invalid { .. }), "{err}");
        assert_eq!(AdvisoryDb::open(&dest).unwrap().revision, outcome.after);

        let err = sync(&home.path().join("missing").display().to_string(), &dest).unwrap_err();
        assert!(err.to_string().contains("no crates/ directory"), "{err}");
        let err = sync("file:///nonexistent/advisory-db.git", &dest).unwrap_err();
        assert!(matches!(err, SyncError::Fetch { .. }), "{err}");
        assert_eq!(AdvisoryDb::open(&dest).unwrap().revision, outcome.after);
    }
}
