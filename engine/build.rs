//! Records the wasmtime version this crate is built against (from the workspace's Cargo.lock)
//! as `KILN_WASMTIME_VERSION`, for artifact manifests and provenance.

#![allow(
    clippy::disallowed_macros,
    reason = "a build script speaks to Cargo on stdout"
)]

fn main() {
    let lock = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = std::fs::read_to_string(&lock).unwrap_or_default();
    let version = text
        .split("[[package]]")
        .find(|block| block.contains("\nname = \"wasmtime\"\n"))
        .and_then(|block| {
            block
                .lines()
                .find_map(|line| line.strip_prefix("version = \""))
                .map(|v| v.trim_end_matches('"').to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=KILN_WASMTIME_VERSION={version}");
}
