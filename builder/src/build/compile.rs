//! The sandboxed `cargo build --offline --locked` of prepared sources.

use super::{BuildError, KERNEL_RUSTFLAGS, Prepared, Settings, TARGET, builder_error};
use crate::sandbox::{self, Isolation, Mounts, paths};

/// Runs `cargo build` for `prepared` in the sandbox; returns the build log. A library (a crate
/// kernels depend on) stops here: it compiles for the kernel target, and has no module.
pub fn compile(prepared: &Prepared, settings: &Settings<'_>) -> Result<String, BuildError> {
    match compile_outcome(prepared, settings)? {
        Compiled::Built(log) => Ok(log),
        Compiled::Failed { reason, log } => {
            Err(BuildError::Submission(format!("{reason}:\n{}", tail(&log))))
        }
    }
}

/// How a sandboxed `cargo build` ended.
#[derive(Debug)]
pub enum Compiled {
    /// It built; the log.
    Built(String),
    /// It did not: why (`cargo build failed`, or the limit that stopped it), and the whole log.
    Failed {
        /// Why, in a few words.
        reason: String,
        /// The whole build log.
        log: String,
    },
}

/// Runs `cargo build` for `prepared` in the sandbox; a build that fails is an answer here (with
/// its whole log, for the compiler's messages), not an error.
pub fn compile_outcome(
    prepared: &Prepared,
    settings: &Settings<'_>,
) -> Result<Compiled, BuildError> {
    let target = prepared.work.path().join("target");
    let mounts = Mounts {
        src: prepared.src(),
        vendor: prepared.vendor(),
        config: prepared.config(),
        target: target.clone(),
        toolchain: settings.toolchain.sysroot.clone(),
    };
    let remap = [
        (paths::SRC, "/kiln/src"),
        (paths::VENDOR, "/kiln/vendor"),
        (paths::HOME, "/kiln/cargo-home"),
        (paths::TOOLCHAIN, "/kiln/toolchain"),
    ];
    let host = [
        (paths::SRC, mounts.src.display().to_string()),
        (paths::VENDOR, mounts.vendor.display().to_string()),
        (paths::HOME, target.join("home").display().to_string()),
        (paths::TOOLCHAIN, mounts.toolchain.display().to_string()),
    ];
    let mut flags: Vec<String> = KERNEL_RUSTFLAGS.iter().map(|f| (*f).to_owned()).collect();
    for ((inside, neutral), (_, on_host)) in remap.iter().zip(host.iter()) {
        let from = if settings.isolation == Isolation::Bubblewrap {
            (*inside).to_owned()
        } else {
            on_host.clone()
        };
        flags.push(format!("--remap-path-prefix={from}={neutral}"));
    }
    let env: Vec<(&str, String)> = vec![
        ("PATH", format!("{}/bin:/usr/bin:/bin", paths::TOOLCHAIN)),
        ("HOME", paths::HOME.to_owned()),
        ("CARGO_HOME", paths::HOME.to_owned()),
        ("CARGO_TARGET_DIR", paths::TARGET.to_owned()),
        ("RUSTC", format!("{}/bin/rustc", paths::TOOLCHAIN)),
        ("CARGO_ENCODED_RUSTFLAGS", flags.join("\u{1f}")),
        ("CARGO_TERM_COLOR", "never".to_owned()),
        ("CARGO_INCREMENTAL", "0".to_owned()),
        ("SOURCE_DATE_EPOCH", "0".to_owned()),
        ("TZ", "UTC".to_owned()),
        ("LANG", "C.UTF-8".to_owned()),
    ];
    let args: Vec<String> = [
        &format!("{}/bin/cargo", paths::TOOLCHAIN),
        "build",
        "--offline",
        "--locked",
        "--release",
        "--lib",
        "--target",
        TARGET,
        "--config",
        &format!("{}/vendor.toml", paths::CONFIG),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let workdir = format!("{}/{}", paths::SRC, prepared.crate_rel.display());
    let outcome = sandbox::run(
        settings.isolation,
        &mounts,
        &workdir,
        &env,
        &args,
        settings.limits,
    )
    .map_err(builder_error("starting the sandbox"))?;
    if let Some(stopped) = outcome.stopped {
        return Ok(Compiled::Failed {
            reason: format!("{stopped}; build log"),
            log: outcome.log,
        });
    }
    if !outcome.success {
        return Ok(Compiled::Failed {
            reason: "cargo build failed".to_owned(),
            log: outcome.log,
        });
    }
    Ok(Compiled::Built(outcome.log))
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
