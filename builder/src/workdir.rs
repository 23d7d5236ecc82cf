//! The temporary work directories of audits and builds. Each is named for the process that
//! made it (`kiln-work-PID-…` in the system's temporary directory) and removed when its job
//! ends; a builder that was killed mid-job cannot remove its own, so a worker removes, when it
//! starts, every one whose process is gone.

use std::path::Path;

/// The prefix of every work directory.
const PREFIX: &str = "kiln-work-";

/// A new work directory for a job of `kind` (`audit`, `build`), removed when dropped.
pub fn new(kind: &str) -> std::io::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(&format!("{PREFIX}{}-{kind}.", std::process::id()))
        .tempdir()
}

/// Removes the work directories under `root` whose process is no longer running; returns how
/// many it removed.
pub fn sweep(root: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(root) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        match std::fs::remove_dir_all(entry.path()) {
            Ok(()) => removed += 1,
            Err(err) => tracing::warn!(
                path = %entry.path().display(),
                error = %err,
                "removing a killed builder's work directory"
            ),
        }
    }
    removed
}

/// Removes the work directories killed builders left in the system's temporary directory.
pub fn sweep_abandoned() {
    let removed = sweep(&std::env::temp_dir());
    if removed > 0 {
        tracing::info!(
            removed,
            "removed work directories of builders that were killed"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_directories_of_dead_processes_are_removed() {
        let root = tempfile::tempdir().unwrap();
        // Beyond the kernel's largest pid, so never a live process.
        let dead = root.path().join("kiln-work-4294967294-build.abc");
        std::fs::create_dir_all(dead.join("target/debug")).unwrap();
        std::fs::write(dead.join("target/debug/lib.rlib"), b"left over").unwrap();
        let live = root
            .path()
            .join(format!("kiln-work-{}-audit.def", std::process::id()));
        std::fs::create_dir_all(&live).unwrap();
        let other = root.path().join("someone-elses-dir");
        std::fs::create_dir_all(&other).unwrap();
        assert_eq!(sweep(root.path()), 1);
        assert!(!dead.exists());
        assert!(live.exists());
        assert!(other.exists());
    }

    #[test]
    fn new_directories_name_this_process() {
        let work = new("build").unwrap();
        let name = work
            .path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            name.starts_with(&format!("kiln-work-{}-build.", std::process::id())),
            "{name}"
        );
        // The system's temporary directory may hold other builders' leftovers, which the sweep
        // may remove; this process's own directory is never one of them.
        sweep(work.path().parent().unwrap());
        assert!(work.path().exists());
    }
}
