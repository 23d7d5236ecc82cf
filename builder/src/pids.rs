//! A process cap for one build: a pids cgroup of its own, so that a build script that forks
//! forever is stopped at `pids.max` (and the build with it) instead of filling the host's
//! process table.
//!
//! The cgroup is made under the builder's own cgroup, in the pids hierarchy of cgroup v1 or in
//! the unified hierarchy of cgroup v2 when the pids controller is delegated there. Where neither
//! is writable (an unprivileged builder without delegation) the sandbox still sets
//! `RLIMIT_NPROC`, which Linux counts per user namespace, so it holds inside bubblewrap's
//! namespace for any builder that does not run as root.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A pids cgroup holding one build; removed (after its processes are killed) on drop.
#[derive(Debug)]
pub struct PidsCgroup {
    dir: PathBuf,
    limit: u64,
}

impl PidsCgroup {
    /// A new cgroup allowing at most `limit` processes and threads, or `None` where this
    /// process cannot make one.
    pub fn create(limit: u64) -> Option<Self> {
        let base = writable_base()?;
        let name = format!(
            "kiln-build-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = base.join(name);
        std::fs::create_dir(&dir).ok()?;
        let cgroup = Self { dir, limit };
        std::fs::write(cgroup.dir.join("pids.max"), limit.to_string()).ok()?;
        Some(cgroup)
    }

    /// Whether this machine lets the builder cap a build's processes with a cgroup.
    pub fn available() -> bool {
        Self::create(1).is_some()
    }

    /// The file a process writes its pid to in order to join the cgroup.
    pub fn procs_file(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// The cap.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Whether a fork or clone in the cgroup has been refused at the cap.
    pub fn hit_limit(&self) -> bool {
        std::fs::read_to_string(self.dir.join("pids.events"))
            .ok()
            .and_then(|events| {
                events
                    .lines()
                    .find_map(|line| line.strip_prefix("max ")?.trim().parse::<u64>().ok())
            })
            .is_some_and(|count| count > 0)
    }

    /// Kills every process in the cgroup, until it is empty or two seconds have passed.
    pub fn kill_all(&self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            let pids = self.pids();
            if pids.is_empty() {
                return;
            }
            let _ = std::process::Command::new("kill")
                .arg("-KILL")
                .args(pids.iter().map(i32::to_string))
                .stderr(std::process::Stdio::null())
                .status();
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn pids(&self) -> Vec<i32> {
        std::fs::read_to_string(self.procs_file())
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.trim().parse().ok())
            .filter(|&pid: &i32| pid > 0)
            .collect()
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        self.kill_all();
        // The kernel lets an empty cgroup go only once its last process is reaped.
        for _ in 0..100 {
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        tracing::warn!(cgroup = %self.dir.display(), "could not remove a build's pids cgroup");
    }
}

/// The directory of this process's own cgroup in a hierarchy with the pids controller, when a
/// child cgroup with `pids.max` can be made there.
fn writable_base() -> Option<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mut candidates = Vec::new();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let path = path.trim_start_matches('/');
        if id != "0" && controllers.split(',').any(|c| c == "pids") {
            candidates.push(Path::new("/sys/fs/cgroup/pids").join(path));
        } else if id == "0" && controllers.is_empty() {
            // cgroup v2: only where pids is enabled for this cgroup's children.
            for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
                let dir = Path::new(root).join(path);
                let delegated = std::fs::read_to_string(dir.join("cgroup.subtree_control"))
                    .is_ok_and(|s| s.split_whitespace().any(|c| c == "pids"));
                if delegated {
                    candidates.push(dir);
                }
            }
        }
    }
    candidates
        .into_iter()
        .find(|dir| dir.join("cgroup.procs").exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cgroup_counts_its_limit_and_goes_away() {
        let Some(cgroup) = PidsCgroup::create(7) else {
            // Nothing to check where no pids hierarchy is writable; the sandbox tests then
            // rely on RLIMIT_NPROC.
            return;
        };
        let dir = cgroup.dir.clone();
        assert_eq!(
            std::fs::read_to_string(dir.join("pids.max"))
                .unwrap()
                .trim(),
            "7"
        );
        assert_eq!(cgroup.limit(), 7);
        assert!(!cgroup.hit_limit());
        drop(cgroup);
        assert!(!dir.exists(), "the cgroup is removed");
    }
}
