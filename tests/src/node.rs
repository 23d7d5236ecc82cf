//! Node.js and the npm packages of the interop tests (`tests/interop/`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::workspace_root;

/// The directory of the interop scripts, with their npm packages installed. The packages are
/// installed from `package-lock.json` with `npm ci` on first use (./scripts/test does the same
/// beforehand).
pub fn interop_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = workspace_root().join("tests/interop");
        if !dir.join("node_modules/@sigstore/verify").exists() {
            let output = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir)
                .output()
                .expect("run npm (Node.js and npm are needed for the interop tests)");
            assert!(
                output.status.success(),
                "npm ci failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        dir
    })
}

/// Runs `node SCRIPT ARGS…` in the interop directory and returns its exit status, stdout and
/// stderr.
pub fn run_script(script: &str, args: &[&std::ffi::OsStr]) -> (bool, String, String) {
    let dir = interop_dir();
    let output = Command::new("node")
        .arg(dir.join(script))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run node");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
