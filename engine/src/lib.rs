//! `kiln-engine`: the wasmtime engine settings shared by kiln's builder (ahead-of-time
//! precompilation) and its executor, in a crate of their own so that the builder does not depend
//! on the executor.
//!
//! Anything that changes compiled code lives here and nowhere else: a `.cwasm` is only usable by
//! an engine whose settings hash the same (`Engine::precompile_compatibility_hash`).

#![forbid(unsafe_code)]

use wasmtime::{Config, Engine, OptLevel, Strategy};

/// The deepest wasm stack a kernel may use, in bytes. Deep recursion traps with a stack
/// overflow instead of exhausting the host thread's stack.
pub const MAX_WASM_STACK: usize = 512 * 1024;

/// The engine settings for kernels.
///
/// - Cranelift, optimising for speed.
/// - Fuel metering (the budget and the cost unit of a cell) and epoch interruption (the
///   wall-clock backstop) are both compiled in.
/// - A bounded wasm stack.
/// - A fixed feature set: no threads or shared memory (not compiled into kiln's wasmtime), no
///   64-bit memories, no relaxed SIMD (its results may differ between machines).
/// - No NaN canonicalisation: a NaN's bits are what the processor makes, as in the browser's
///   engine, so that a deterministic run gives the same output digests in the executor and in
///   the page on the same architecture (x86-64: `0/0` is `0xfff8000000000000` in both;
///   canonicalisation would make it `0x7ff8000000000000` here only). Canonicalising every
///   float result tripled the time of float-heavy kernels (the compute benchmark's Mandelbrot).
///   Only a kernel that looks at a NaN's bits can tell, and only across architectures.
pub fn config() -> Config {
    let mut config = Config::new();
    config
        .strategy(Strategy::Cranelift)
        .cranelift_opt_level(OptLevel::Speed)
        .cranelift_nan_canonicalization(false)
        .consume_fuel(true)
        .epoch_interruption(true)
        .max_wasm_stack(MAX_WASM_STACK)
        .wasm_memory64(false)
        .wasm_relaxed_simd(false)
        .wasm_simd(true)
        .wasm_bulk_memory(true)
        .wasm_multi_value(true);
    config
}

/// The engine's `precompile_compatibility_hash` as a stable string (`sha256:…`), recorded in
/// artifact manifests: a `.cwasm` loads only in an engine with the same one.
pub fn compatibility_hash(engine: &Engine) -> String {
    use std::hash::{Hash, Hasher};
    /// Feeds what `Hash` writes into SHA-256, so that the result does not depend on
    /// `DefaultHasher`'s unspecified algorithm.
    struct Sha(sha2::Sha256);
    impl Hasher for Sha {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            sha2::Digest::update(&mut self.0, bytes);
        }
    }
    let mut hasher = Sha(<sha2::Sha256 as sha2::Digest>::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("sha256:{}", hex::encode(sha2::Digest::finalize(hasher.0)))
}

/// [`compatibility_hash`] of an engine with [`config`], computed once per process (creating an
/// engine is not free); the reason instead when no such engine can be made.
pub fn config_compatibility_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| match new_engine() {
        Ok(engine) => compatibility_hash(&engine),
        Err(err) => format!("no engine: {err}"),
    })
}

/// The wasmtime version kiln is built with.
pub const WASMTIME_VERSION: &str = env!("KILN_WASMTIME_VERSION");

/// A new engine with [`config`].
pub fn new_engine() -> wasmtime::Result<Engine> {
    Engine::new(&config())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_engines_with_the_shared_settings_are_compatible() {
        let a = new_engine().unwrap();
        let b = new_engine().unwrap();
        use std::hash::{DefaultHasher, Hash, Hasher};
        let hash = |engine: &Engine| {
            let mut h = DefaultHasher::new();
            engine.precompile_compatibility_hash().hash(&mut h);
            h.finish()
        };
        assert_eq!(hash(&a), hash(&b));
        assert_eq!(compatibility_hash(&a), compatibility_hash(&b));
        assert_eq!(config_compatibility_hash(), compatibility_hash(&a));
        assert!(compatibility_hash(&a).starts_with("sha256:"));
    }
}
