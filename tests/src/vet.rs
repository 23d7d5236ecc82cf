//! cargo-vet, for the tests of kiln's cargo-vet feed: the release kiln documents (0.10.3),
//! installed from crates.io with `cargo install --locked` into `target/tools` on first use (it
//! takes minutes, so it is kept there like the npm packages of the interop tests).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::workspace_root;

/// The cargo-vet release the docs and tests use.
pub const CARGO_VET_VERSION: &str = "0.10.3";

/// The `cargo-vet` binary, installed first when it is not there yet.
pub fn cargo_vet() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let root = workspace_root().join("target/tools");
        let bin = root.join("bin/cargo-vet");
        let installed = Command::new(&bin)
            .args(["vet", "--version"])
            .output()
            .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains(CARGO_VET_VERSION));
        if !installed {
            let status = Command::new(env!("CARGO"))
                .args(["install", "--quiet", "--locked", "cargo-vet", "--version"])
                .arg(CARGO_VET_VERSION)
                .arg("--root")
                .arg(&root)
                .status()
                .expect("run cargo install");
            assert!(
                status.success(),
                "installing cargo-vet {CARGO_VET_VERSION} failed"
            );
        }
        bin
    })
}
