//! The example kernels, built for `wasm32-wasip1` with real `cargo`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::workspace_root;

/// The example kernels in `examples/kernels/`, by package name.
pub const EXAMPLES: [&str; 3] = ["kernel-csv-stats", "kernel-word-freq", "kernel-mandelbrot"];

/// Builds every example kernel once per test process (release, `wasm32-wasip1`) and returns the
/// path of each module by package name. The build uses its own target directory so that it
/// never waits on the lock of the `cargo test` that runs it.
pub fn example_modules() -> &'static HashMap<&'static str, PathBuf> {
    static MODULES: OnceLock<HashMap<&'static str, PathBuf>> = OnceLock::new();
    MODULES.get_or_init(|| {
        let target_dir = workspace_root().join("target/kiln-tests-kernels");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "--release", "--target", "wasm32-wasip1"])
            .current_dir(workspace_root())
            .env("CARGO_TARGET_DIR", &target_dir);
        for name in EXAMPLES {
            cmd.args(["-p", name]);
        }
        let output = cmd
            .output()
            .expect("run cargo build for the example kernels");
        assert!(
            output.status.success(),
            "building the example kernels failed (is the wasm32-wasip1 target installed? \
             ./scripts/test installs it):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        EXAMPLES
            .into_iter()
            .map(|name| {
                let file = format!("{}.wasm", name.replace('-', "_"));
                (name, target_dir.join("wasm32-wasip1/release").join(file))
            })
            .collect()
    })
}

/// The bytes of one example kernel's module.
pub fn example_module(name: &str) -> Vec<u8> {
    let path = &example_modules()[name];
    std::fs::read(path).unwrap_or_else(|err| panic!("read {}: {err}", path.display()))
}
