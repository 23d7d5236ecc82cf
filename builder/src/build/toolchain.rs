//! The Rust toolchain builds use, and the policy's pin of it.

use std::path::PathBuf;
use std::process::Command;

use super::{BuildError, TARGET};

/// The Rust toolchain builds use.
#[derive(Debug, Clone)]
pub struct Toolchain {
    /// Its sysroot (mounted read-only in the sandbox).
    pub sysroot: PathBuf,
    /// `rustc -V`.
    pub rustc: String,
    /// `cargo -V`.
    pub cargo: String,
}

impl Toolchain {
    /// Refuses a toolchain other than the one `pinned` (a rustc version such as `1.95.0`).
    pub fn check_pin(&self, pinned: Option<&str>) -> Result<(), BuildError> {
        match pinned {
            Some(version) if self.rustc.split_whitespace().nth(1) != Some(version) => {
                Err(BuildError::Builder(format!(
                    "the policy pins rustc {version}, but this builder has {}",
                    self.rustc
                )))
            }
            _ => Ok(()),
        }
    }

    /// The toolchain `rustc` on `PATH` belongs to.
    pub fn detect() -> Result<Self, BuildError> {
        let output = |program: &str, args: &[&str]| {
            Command::new(program)
                .args(args)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .ok_or_else(|| {
                    BuildError::Builder(format!("cannot run `{program} {}`", args.join(" ")))
                })
        };
        let sysroot = PathBuf::from(output("rustc", &["--print", "sysroot"])?);
        if !sysroot.join("lib/rustlib").join(TARGET).is_dir() {
            return Err(BuildError::Builder(format!(
                "the toolchain at {} has no {TARGET} target (rustup target add {TARGET})",
                sysroot.display()
            )));
        }
        Ok(Self {
            // The toolchain's own binaries, past rustup's proxies (which cost a process each).
            rustc: output(&sysroot.join("bin/rustc").display().to_string(), &["-V"])?,
            cargo: output(&sysroot.join("bin/cargo").display().to_string(), &["-V"])?,
            sysroot,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_toolchain_must_match() {
        let toolchain = Toolchain {
            sysroot: PathBuf::from("/toolchain"),
            rustc: "rustc 1.95.0 (59807616e 2026-04-14)".into(),
            cargo: "cargo 1.95.0".into(),
        };
        assert!(toolchain.check_pin(None).is_ok());
        assert!(toolchain.check_pin(Some("1.95.0")).is_ok());
        let err = toolchain.check_pin(Some("1.94.1")).unwrap_err();
        assert!(err.to_string().contains("pins rustc 1.94.1"), "{err}");
    }
}
