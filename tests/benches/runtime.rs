//! One call of a trivial kernel through `Runtime::call` (a store with WASI preview 1 and
//! captured stdio, the resource limiter, fuel and an epoch deadline, instantiation from the
//! cached `InstancePre`, `kiln_alloc`, the entry point, teardown) against raw wasmtime in the
//! same run: the same module, engine settings and pooling allocator, instantiated from an
//! `InstancePre` and called directly.
//!
//! Two kernels: a hand-written WAT module of one page, and a real Rust kernel,
//! `kernel-hostile`'s `echo`, built with `cargo build --release --target wasm32-wasip1` and the
//! builder's flags and loaded the way the executor loads it (precompiled, then deserialised from
//! verified bytes). For comparison, the same kernel linked without the builder's flags (no
//! initial heap: its first allocation grows memory on every call).

use criterion::{Criterion, criterion_group, criterion_main};
use kiln_executor::runtime::{Limits, Runtime};
use kiln_tests::kernels::{HOSTILE, RawKernel, build_kernels, example_module, load_precompiled};
use wasmtime::{Linker, Module, Store};

const WAT_KERNEL: &str = r#"(module
  (import "kiln" "output" (func $output (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "kiln_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "kiln_entry_run") (param $ptr i32) (param $len i32) (result i32)
    (drop (call $output (local.get $ptr) (local.get $len)))
    (i32.const 0)))"#;

const LIMITS: Limits = Limits {
    fuel: 1_000_000,
    memory_bytes: 16 << 20,
    wall_ms: 1_000,
    output_bytes: 1 << 16,
};

fn wat_kernel(c: &mut Criterion, runtime: &Runtime) {
    let wasm = wat::parse_str(WAT_KERNEL).unwrap();
    let kernel = runtime.load_wasm(&wasm).unwrap();
    let call = || runtime.call(&kernel, "run", b"hi", &LIMITS, None);
    assert_eq!(call().result.unwrap(), b"hi");

    let engine = runtime.engine().clone();
    let module = Module::new(&engine, &wasm).unwrap();
    let mut linker: Linker<()> = Linker::new(&engine);
    linker
        .func_wrap("kiln", "output", |_: i32, _: i32| -> i32 { 0 })
        .unwrap();
    let pre = linker.instantiate_pre(&module).unwrap();

    let mut group = c.benchmark_group("call a WAT kernel");
    group.bench_function("baseline: raw wasmtime InstancePre", |b| {
        b.iter(|| {
            let mut store = Store::new(&engine, ());
            store.set_fuel(1_000_000).unwrap();
            store.set_epoch_deadline(1_000);
            let instance = pre.instantiate(&mut store).unwrap();
            let alloc = instance
                .get_typed_func::<i32, i32>(&mut store, "kiln_alloc")
                .unwrap();
            let run = instance
                .get_typed_func::<(i32, i32), i32>(&mut store, "kiln_entry_run")
                .unwrap();
            let ptr = alloc.call(&mut store, 2).unwrap();
            run.call(&mut store, (ptr, 2)).unwrap()
        })
    });
    let raw = RawKernel::new(&engine, &module);
    group.bench_function("baseline: raw InstancePre with a WASI p1 context", |b| {
        b.iter(|| raw.call("run", b"hi"))
    });
    group.bench_function("kiln Runtime::call", |b| b.iter(call));
    group.finish();
}

fn rust_kernel(c: &mut Criterion, runtime: &Runtime) {
    let wasm = example_module(HOSTILE);
    let kernel = load_precompiled(runtime, &wasm);
    let call = || runtime.call(&kernel, "echo", b"hi", &LIMITS, None);
    assert_eq!(call().result.unwrap(), b"hi");

    let plain = std::fs::read(&build_kernels("kiln-bench-plain-kernels", &[])[HOSTILE]).unwrap();
    let plain = load_precompiled(runtime, &plain);
    let call_plain = || runtime.call(&plain, "echo", b"hi", &LIMITS, None);
    assert_eq!(call_plain().result.unwrap(), b"hi");

    let module = Module::new(runtime.engine(), &wasm).unwrap();
    let mut group = c.benchmark_group("call a Rust kernel (kernel-hostile echo)");
    let raw = RawKernel::new(runtime.engine(), &module);
    group.bench_function("baseline: raw InstancePre with a WASI p1 context", |b| {
        b.iter(|| raw.call("echo", b"hi"))
    });
    group.bench_function("kiln Runtime::call", |b| b.iter(call));
    group.bench_function("kiln Runtime::call, linked without an initial heap", |b| {
        b.iter(call_plain)
    });
    group.finish();
}

fn bench(c: &mut Criterion) {
    let runtime = Runtime::new(16).unwrap();
    wat_kernel(c, &runtime);
    rust_kernel(c, &runtime);
}

criterion_group!(benches, bench);
criterion_main!(benches);
