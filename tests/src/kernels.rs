//! The example kernels, built for `wasm32-wasip1` with real `cargo`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::workspace_root;

/// The example kernels in `examples/kernels/`, by package name.
pub const EXAMPLES: [&str; 3] = ["kernel-csv-stats", "kernel-word-freq", "kernel-mandelbrot"];

/// The misbehaving kernel of `tests/kernels/hostile`, whose `echo` is the trivial kernel of the
/// executor's benchmarks.
pub const HOSTILE: &str = "kernel-hostile";

/// Builds every example kernel and [`HOSTILE`] once per process (release, `wasm32-wasip1`) and
/// returns the path of each module by package name. The build uses its own target directory so
/// that it never waits on the lock of the `cargo test` that runs it, and the compiler flags
/// kiln's builder adds (`KERNEL_RUSTFLAGS`), so that the modules are laid out as kiln builds
/// them.
pub fn example_modules() -> &'static HashMap<&'static str, PathBuf> {
    static MODULES: OnceLock<HashMap<&'static str, PathBuf>> = OnceLock::new();
    MODULES
        .get_or_init(|| build_kernels("kiln-tests-kernels", &kiln_builder::build::KERNEL_RUSTFLAGS))
}

/// Builds every example kernel and [`HOSTILE`] into `target/{target_dir}` with `rustflags`
/// (benchmarks compare flags with it) and returns the path of each module by package name.
pub fn build_kernels(target_dir: &str, rustflags: &[&str]) -> HashMap<&'static str, PathBuf> {
    let target_dir = workspace_root().join("target").join(target_dir);
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "--release", "--target", "wasm32-wasip1"])
        .current_dir(workspace_root())
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("CARGO_ENCODED_RUSTFLAGS", rustflags.join("\u{1f}"));
    for name in EXAMPLES.into_iter().chain([HOSTILE]) {
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
        .chain([HOSTILE])
        .map(|name| {
            let file = format!("{}.wasm", name.replace('-', "_"));
            (name, target_dir.join("wasm32-wasip1/release").join(file))
        })
        .collect()
}

/// A kernel called with raw wasmtime, the baseline of the executor's benchmarks: an
/// `InstancePre` with a WASI preview 1 context and captured stdio (which every kiln call also
/// builds) and stubs for kiln's host functions (output is dropped), a fresh instance per call.
pub struct RawKernel {
    engine: wasmtime::Engine,
    pre: wasmtime::InstancePre<wasmtime_wasi::p1::WasiP1Ctx>,
}

impl RawKernel {
    /// Links `module`, compiled for `engine`.
    pub fn new(engine: &wasmtime::Engine, module: &wasmtime::Module) -> Self {
        let mut linker = wasmtime::Linker::new(engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |ctx| ctx).expect("link WASI");
        linker
            .func_wrap("kiln", "output", |_: i32, _: i32| -> i32 { 0 })
            .and_then(|l| l.func_wrap("kiln", "log", |_: i32, _: i32, _: i32| {}))
            .and_then(|l| l.func_wrap("kiln", "error", |_: i32, _: i32| {}))
            .expect("link kiln's host functions");
        Self {
            engine: engine.clone(),
            pre: linker.instantiate_pre(module).expect("link the module"),
        }
    }

    /// Calls `kiln_entry_{entry}` on `input` and returns its status. Fuel and the epoch
    /// deadline, where the engine meters them, are set so that they never run out.
    pub fn call(&self, entry: &str, input: &[u8]) -> i32 {
        let pipe = wasmtime_wasi::p2::pipe::MemoryOutputPipe::new(64 * 1024);
        let ctx = wasmtime_wasi::WasiCtxBuilder::new()
            .stdout(pipe.clone())
            .stderr(pipe)
            .build_p1();
        let mut store = wasmtime::Store::new(&self.engine, ctx);
        // Errs when the engine does not meter fuel: then there is nothing to set.
        let _ = store.set_fuel(i64::MAX as u64);
        store.set_epoch_deadline(u64::MAX / 2);
        let instance = self.pre.instantiate(&mut store).expect("instantiate");
        let alloc = instance
            .get_typed_func::<i32, i32>(&mut store, "kiln_alloc")
            .expect("kiln_alloc");
        let run = instance
            .get_typed_func::<(i32, i32), i32>(&mut store, &format!("kiln_entry_{entry}"))
            .expect("the entry point");
        let memory = instance
            .get_memory(&mut store, "memory")
            .expect("the memory");
        let len = i32::try_from(input.len()).expect("an input under 2 GiB");
        let ptr = alloc.call(&mut store, len).expect("kiln_alloc");
        memory
            .write(&mut store, ptr as usize, input)
            .expect("write the input");
        run.call(&mut store, (ptr, len)).expect("the entry point")
    }
}

/// Precompiles `wasm` with `runtime`'s engine and loads it the way the executor loads a signed
/// `.cwasm` (deserialised from bytes whose digest is checked).
pub fn load_precompiled(
    runtime: &kiln_executor::runtime::Runtime,
    wasm: &[u8],
) -> kiln_executor::runtime::Kernel {
    use kiln_executor::runtime::VerifiedBytes;
    let cwasm = runtime
        .engine()
        .precompile_module(wasm)
        .expect("precompile the module");
    let digest = kiln_policy::Digest::of(&cwasm);
    let verified = VerifiedBytes::new(&cwasm, &digest).expect("the digest of these bytes");
    runtime
        .load_cwasm(&verified)
        .expect("load the precompiled module")
}

/// The bytes of one example kernel's module (or [`HOSTILE`]'s).
pub fn example_module(name: &str) -> Vec<u8> {
    let path = &example_modules()[name];
    std::fs::read(path).unwrap_or_else(|err| panic!("read {}: {err}", path.display()))
}
