//! Helpers for kiln's end-to-end tests: where the workspace is, the real `kiln` binary, the
//! example kernels built for `wasm32-wasip1`, a minimal ABI v1 host, Node.js for the interop
//! tests, and headless Chromium for the web app's.

#![forbid(unsafe_code)]

pub mod abi_host;
pub mod advisories;
pub mod browser;
pub mod cargo;
pub mod cli;
pub mod crate_file;
pub mod examples;
pub mod kernels;
pub mod node;
pub mod postgres;
pub mod proxy;
pub mod server;
pub mod upstream;
pub mod vet;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root.
pub fn workspace_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("tests/ sits in the workspace")
            .to_owned()
    })
}

/// The `kiln` binary of this build profile, built (or found up to date) by `cargo build` once
/// per test process, so that tests never run a stale binary.
///
/// `KILN_TEST_BINARY` names one to use instead: `scripts/test` sets it to the binary its
/// `cargo test --workspace` has just built (the CLI's own integration tests need it), which a
/// `cargo build -p kiln` would otherwise build again with the features of `kiln` alone.
pub fn kiln_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(given) = std::env::var_os("KILN_TEST_BINARY") {
            let given = PathBuf::from(given);
            assert!(
                given.is_file(),
                "KILN_TEST_BINARY={} is not a file",
                given.display()
            );
            return given;
        }
        let exe = std::env::current_exe().expect("test binary path");
        // target/<profile>/deps/e2e-<hash> → target/<profile>/kiln
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binary lives in target/<profile>/deps");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "--quiet", "-p", "kiln", "--bin", "kiln"])
            .current_dir(workspace_root());
        if profile_dir
            .file_name()
            .is_some_and(|name| name == "release")
        {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "building the kiln binary failed");
        profile_dir.join("kiln")
    })
}
