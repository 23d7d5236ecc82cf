//! The build sandbox: `cargo build` runs under bubblewrap with no network, the toolchain and the
//! sources read-only at fixed paths, only the target directory writable, an empty temporary
//! home, a cleared environment, and limits on CPU time, address space and wall clock. Paths
//! inside the sandbox are the same for every build (`/kiln/...`), which is half of what makes
//! builds reproducible.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::pids::PidsCgroup;

/// Where things are inside the sandbox.
pub mod paths {
    /// The sources (the crate and its path dependencies), read-only.
    pub const SRC: &str = "/kiln/src";
    /// The vendored dependencies, read-only.
    pub const VENDOR: &str = "/kiln/vendor";
    /// The build's Cargo configuration, read-only.
    pub const CONFIG: &str = "/kiln/config";
    /// The target directory, the only writable place besides `/tmp` and the home.
    pub const TARGET: &str = "/kiln/target";
    /// The empty home (`HOME` and `CARGO_HOME`).
    pub const HOME: &str = "/kiln/home";
    /// The Rust toolchain, read-only.
    pub const TOOLCHAIN: &str = "/kiln/toolchain";
}

/// Resource limits of one build.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wall-clock time.
    pub wall: Duration,
    /// CPU seconds per process.
    pub cpu_secs: u64,
    /// Address space per process, in bytes.
    pub address_space: u64,
    /// Processes and threads at once (a pids cgroup where the builder can make one, and
    /// `RLIMIT_NPROC` inside the sandbox's user namespace).
    pub processes: u64,
    /// The most build-log bytes kept (the rest is cut, with a note).
    pub log_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            wall: Duration::from_secs(900),
            cpu_secs: 900,
            address_space: 16 << 30,
            processes: 1024,
            log_bytes: 1 << 20,
        }
    }
}

/// How builds are isolated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// bubblewrap (the default; required unless explicitly declined).
    Bubblewrap,
    /// No sandbox: build scripts can reach the network and the host. Only with an explicit
    /// insecure flag; the provenance records it.
    Insecure,
}

impl Isolation {
    /// The name recorded in the provenance.
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::Bubblewrap => "bubblewrap",
            Isolation::Insecure => "none (insecure)",
        }
    }

    /// bubblewrap when it is installed and works here; an error otherwise.
    pub fn detect() -> Result<Self, String> {
        let ok = Command::new("bwrap")
            .args([
                "--ro-bind",
                "/",
                "/",
                "--unshare-all",
                "--die-with-parent",
                "--",
                "true",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            Ok(Isolation::Bubblewrap)
        } else {
            Err("bubblewrap (bwrap) is not installed or cannot create namespaces here; kiln refuses to build without a sandbox unless started with --insecure-no-sandbox".into())
        }
    }
}

/// The host directories a build sees.
#[derive(Debug, Clone)]
pub struct Mounts {
    /// Sources.
    pub src: PathBuf,
    /// Vendored dependencies.
    pub vendor: PathBuf,
    /// Cargo configuration directory.
    pub config: PathBuf,
    /// Target directory (writable).
    pub target: PathBuf,
    /// The toolchain's sysroot.
    pub toolchain: PathBuf,
}

/// What a sandboxed command did.
#[derive(Debug)]
pub struct Outcome {
    /// Whether it exited successfully.
    pub success: bool,
    /// Why it was stopped, when it was.
    pub stopped: Option<String>,
    /// Its output, capped.
    pub log: String,
}

/// Runs `args` (a program inside the sandbox and its arguments) in `workdir` (a sandbox path)
/// with `env` as the whole environment. Under bubblewrap the run gets a pids cgroup of its own
/// where the machine allows one, and is stopped as soon as it reaches its process limit.
pub fn run(
    isolation: Isolation,
    mounts: &Mounts,
    workdir: &str,
    env: &[(&str, String)],
    args: &[String],
    limits: Limits,
) -> std::io::Result<Outcome> {
    let cgroup = match isolation {
        Isolation::Bubblewrap => PidsCgroup::create(limits.processes),
        Isolation::Insecure => None,
    };
    let mut command = match isolation {
        Isolation::Bubblewrap => {
            let mut c = match &cgroup {
                // The shell joins the cgroup, then becomes bubblewrap: everything the build
                // starts is born inside it.
                Some(cgroup) => {
                    let mut c = Command::new("/bin/sh");
                    c.args(["-c", "echo $$ > \"$0\" || { echo \"kiln: cannot join the build's pids cgroup $0\" >&2; exit 125; }; exec \"$@\""])
                        .arg(cgroup.procs_file())
                        .arg("bwrap");
                    c
                }
                None => Command::new("bwrap"),
            };
            let ro = |c: &mut Command, host: &Path, inside: &str| {
                c.arg("--ro-bind").arg(host).arg(inside);
            };
            c.args(["--unshare-all", "--die-with-parent", "--new-session"]);
            for dir in ["/usr", "/etc/alternatives"] {
                if Path::new(dir).exists() {
                    c.args(["--ro-bind", dir, dir]);
                }
            }
            for (link, target) in [
                ("/bin", "usr/bin"),
                ("/lib", "usr/lib"),
                ("/lib64", "usr/lib64"),
                ("/sbin", "usr/sbin"),
            ] {
                c.args(["--symlink", target, link]);
            }
            c.args(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]);
            c.args(["--tmpfs", "/kiln"]);
            ro(&mut c, &mounts.toolchain, paths::TOOLCHAIN);
            ro(&mut c, &mounts.src, paths::SRC);
            ro(&mut c, &mounts.vendor, paths::VENDOR);
            ro(&mut c, &mounts.config, paths::CONFIG);
            c.arg("--bind").arg(&mounts.target).arg(paths::TARGET);
            c.args(["--dir", paths::HOME, "--chdir", workdir, "--clearenv"]);
            for (key, value) in env {
                c.arg("--setenv").arg(key).arg(value);
            }
            c.args([
                "--",
                "/usr/bin/prlimit",
                &format!("--cpu={}", limits.cpu_secs),
                &format!("--as={}", limits.address_space),
                &format!("--nproc={}", limits.processes),
                "--core=0",
                "--",
            ]);
            c.args(args);
            c
        }
        Isolation::Insecure => {
            // Map the sandbox paths onto the host ones.
            let map = |s: &str| {
                let mut s = s.to_owned();
                for (inside, host) in [
                    (paths::TOOLCHAIN, &mounts.toolchain),
                    (paths::SRC, &mounts.src),
                    (paths::VENDOR, &mounts.vendor),
                    (paths::CONFIG, &mounts.config),
                    (paths::TARGET, &mounts.target),
                ] {
                    s = s.replace(inside, &host.display().to_string());
                }
                s
            };
            let mut c = Command::new(map(&args[0]));
            c.args(args[1..].iter().map(|a| map(a)));
            c.current_dir(map(workdir)).env_clear();
            let home = mounts.target.join("home");
            std::fs::create_dir_all(&home)?;
            for (key, value) in env {
                let value = if value.starts_with(paths::HOME) {
                    value.replace(paths::HOME, &home.display().to_string())
                } else {
                    map(value)
                };
                c.env(key, value);
            }
            c
        }
    };
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        command.process_group(0);
    }
    let mut child = command.spawn()?;
    let log_limit = limits.log_bytes;
    let collect = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            let mut buf = [0u8; 8192];
            let mut dropped = 0usize;
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let room = log_limit.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                dropped += n.saturating_sub(room);
            }
            (kept, dropped)
        })
    };
    let out = collect(Box::new(child.stdout.take().expect("piped")));
    let err = collect(Box::new(child.stderr.take().expect("piped")));
    let start = Instant::now();
    let mut stopped = None;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if start.elapsed() > limits.wall {
            stopped = Some(format!(
                "the build ran past its wall-clock limit of {} s and was stopped",
                limits.wall.as_secs()
            ));
            kill_group(&mut child);
            if let Some(cgroup) = &cgroup {
                cgroup.kill_all();
            }
            break None;
        }
        if let Some(cgroup) = &cgroup
            && cgroup.hit_limit()
        {
            stopped = Some(format!(
                "the build tried to run more than {} processes at once (a fork bomb?) and was stopped",
                cgroup.limit()
            ));
            kill_group(&mut child);
            cgroup.kill_all();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (out, out_dropped) = out.join().unwrap_or_default();
    let (err, err_dropped) = err.join().unwrap_or_default();
    let mut log = String::from_utf8_lossy(&err).into_owned();
    log.push_str(&String::from_utf8_lossy(&out));
    log.truncate(log_limit);
    if out_dropped + err_dropped > 0 {
        log.push_str(&format!(
            "\n[kiln: {} more bytes of build output were cut]\n",
            out_dropped + err_dropped
        ));
    }
    if let Some(status) = status
        && stopped.is_none()
    {
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt as _;
            if let Some(signal) = status.signal() {
                stopped = Some(match signal {
                    9 | 24 => format!(
                        "the build was killed by signal {signal} (a CPU-time or memory limit)"
                    ),
                    _ => format!("the build was killed by signal {signal}"),
                });
            }
        }
    }
    Ok(Outcome {
        success: status.is_some_and(|s| s.success()),
        stopped,
        log,
    })
}

fn kill_group(child: &mut std::process::Child) {
    #[cfg(unix)]
    {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .status();
    }
    let _ = child.kill();
    let _ = child.wait();
}
