//! One hermetic build, from sources to signed artifacts:
//!
//! 1. **prepare**: the sources are laid out in a work directory (an unpacked `.crate`, or a local
//!    crate with the path dependencies it has inside its repository), and every registry
//!    dependency is vendored by `cargo vendor` (outside the sandbox, where no build-time code
//!    runs) from the registry the lockfile names;
//! 2. **build**: `cargo build --offline --locked --release --target wasm32-wasip1` in the
//!    sandbox ([`crate::sandbox`]), with fixed paths, remapped path prefixes and
//!    `SOURCE_DATE_EPOCH`, so the same inputs give the same bytes from any directory;
//! 3. **check and precompile**: the policy's wasm checks, then wasmtime AOT with the executor's
//!    engine settings;
//! 4. **attest**: the artifact manifest and an SLSA Provenance v1 statement signed with the
//!    builder key.
//!
//! `toolchain` finds the Rust toolchain, `prepare` lays the sources out and vendors them,
//! `compile` runs the sandboxed build, and `attest` checks, precompiles and signs.

mod attest;
mod compile;
mod prepare;
mod toolchain;

use std::path::Path;

use kiln_policy::checks::wasm::WasmPolicy;
use kiln_policy::manifest::ArtifactManifest;
use kiln_policy::{KeyId, SigningKey};

use crate::sandbox::{Isolation, Limits};

pub use self::compile::{Compiled, compile, compile_outcome};
pub use self::prepare::{
    Prepared, is_kernel, prepare_generated, prepare_local, prepare_registry_crate,
    registry_cache_key, unpack_registry_crate,
};
pub use self::toolchain::Toolchain;

/// The build type recorded in provenance.
pub const BUILD_TYPE: &str = "https://kiln.dev/build/cargo-wasm32-wasip1/v1";
/// The builder id recorded in provenance.
pub const BUILDER_ID: &str = "https://kiln.dev/builder/v1";
/// The target kernels are built for.
pub const TARGET: &str = "wasm32-wasip1";

/// The compiler flags every build adds (besides the path remapping), recorded in provenance and
/// in cache keys.
///
/// `--initial-heap` gives a kernel 256 KiB of heap in its initial memory (after its 1 MiB stack
/// and its data). The C library's allocator, which Rust's `std` uses on this target, starts in
/// that region; without it, the first allocation of every call grows memory, and the executor
/// pays for a growth (an `mprotect` to make the pages accessible, another to take them back
/// when the instance is recycled) on every call. 256 KiB holds a small call's input, its 64 KiB
/// output buffer and its working data; a call that needs more grows as before, and is large
/// enough that the growth does not show.
pub const KERNEL_RUSTFLAGS: [&str; 1] = ["-Clink-arg=--initial-heap=262144"];

/// Why a build failed. `Submission` errors are the crate's fault (do not retry); the others are
/// the builder's or the environment's.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The crate does not build, is not a kernel, or breaks the policy.
    #[error("{0}")]
    Submission(String),
    /// The builder could not do its work (toolchain, sandbox, disk, registry).
    #[error("{0}")]
    Builder(String),
}

pub(super) fn builder_error(context: &str) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |err| BuildError::Builder(format!("{context}: {err}"))
}

/// What a build made.
#[derive(Debug, Clone)]
pub struct Artifacts {
    /// The module.
    pub wasm: Vec<u8>,
    /// The module precompiled by wasmtime.
    pub cwasm: Vec<u8>,
    /// The manifest (canonical JSON).
    pub manifest: Vec<u8>,
    /// The signed provenance (a Sigstore bundle, JSON).
    pub provenance: String,
    /// The build log.
    pub log: String,
    /// The manifest, parsed.
    pub parsed_manifest: ArtifactManifest,
}

/// Everything a build needs besides its sources.
#[derive(Debug)]
pub struct Settings<'a> {
    /// The toolchain.
    pub toolchain: &'a Toolchain,
    /// How builds are isolated.
    pub isolation: Isolation,
    /// Resource limits.
    pub limits: Limits,
    /// The wasm checks the result must pass.
    pub wasm_policy: &'a WasmPolicy,
    /// Signs the provenance.
    pub key: &'a SigningKey,
}

/// Builds `prepared` in the sandbox and turns the module into signed artifacts.
pub fn build(prepared: &Prepared, settings: &Settings<'_>) -> Result<Artifacts, BuildError> {
    let log = compile(prepared, settings)?;
    finish(prepared, settings, log)
}

/// Turns the module a successful [`compile`] of `prepared` made into signed artifacts.
pub fn finish(
    prepared: &Prepared,
    settings: &Settings<'_>,
    log: String,
) -> Result<Artifacts, BuildError> {
    let lib = prepared.name.replace('-', "_");
    let module = prepared
        .work
        .path()
        .join("target")
        .join(TARGET)
        .join("release")
        .join(format!("{lib}.wasm"));
    let wasm = std::fs::read(&module).map_err(|_| {
        BuildError::Submission(format!(
            "the build made no {lib}.wasm: a kernel must be a cdylib ([lib] crate-type = [\"cdylib\"])"
        ))
    })?;
    attest::finish(prepared, settings, wasm, log)
}

/// The build settings that change a result, as text for a cache key: the compiler flags, the
/// wasm policy the module must pass, the key that signs the provenance, and the engine's
/// compatibility hash (a new wasmtime or engine setting compiles a different `.cwasm`, which a
/// cached one from before would not match).
pub fn settings_text(wasm_policy: &WasmPolicy, key: &KeyId) -> String {
    format!(
        "{}\n{}\n{}\n{}",
        KERNEL_RUSTFLAGS.join(" "),
        serde_json::to_string(wasm_policy).unwrap_or_default(),
        key,
        kiln_engine::config_compatibility_hash()
    )
}

/// The standard file names of a build's artifacts: module, precompiled module, manifest,
/// provenance, log.
const ARTIFACT_FILES: [&str; 5] = [
    "kernel.wasm",
    "kernel.cwasm",
    "manifest.json",
    "provenance.sigstore.json",
    "build.log",
];

/// Writes `artifacts` into `dir` under their standard names.
pub fn write_artifacts(dir: &Path, artifacts: &Artifacts) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let contents: [&[u8]; 5] = [
        &artifacts.wasm,
        &artifacts.cwasm,
        &artifacts.manifest,
        artifacts.provenance.as_bytes(),
        artifacts.log.as_bytes(),
    ];
    for (name, bytes) in ARTIFACT_FILES.iter().zip(contents) {
        std::fs::write(dir.join(name), bytes)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_settings_of_a_cached_build_name_the_engine_that_precompiled_it() {
        let engine = kiln_engine::new_engine().unwrap();
        let key = SigningKey::generate().unwrap();
        let text = settings_text(&WasmPolicy::default(), key.id());
        assert!(
            text.contains(&kiln_engine::compatibility_hash(&engine)),
            "{text}"
        );
        assert!(text.contains(&KERNEL_RUSTFLAGS.join(" ")), "{text}");
    }
}
