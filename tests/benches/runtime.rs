//! One call of a trivial kernel through `Runtime::call` (a store with WASI preview 1 and
//! captured stdio, the resource limiter, fuel and an epoch deadline, instantiation from the
//! cached `InstancePre`, `kiln_alloc`, the entry point, teardown) against a raw wasmtime baseline
//! in the same run: the same module, engine settings and pooling allocator, instantiated from an
//! `InstancePre` with a unit store and called directly.

use criterion::{Criterion, criterion_group, criterion_main};
use kiln_executor::runtime::{Limits, Runtime};
use wasmtime::{Linker, Module, Store};

const KERNEL: &str = r#"(module
  (import "kiln" "output" (func $output (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "kiln_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "kiln_entry_run") (param $ptr i32) (param $len i32) (result i32)
    (drop (call $output (local.get $ptr) (local.get $len)))
    (i32.const 0)))"#;

fn bench(c: &mut Criterion) {
    let wasm = wat::parse_str(KERNEL).unwrap();
    let runtime = Runtime::new(16).unwrap();
    let kernel = runtime.load_wasm(&wasm).unwrap();
    let limits = Limits {
        fuel: 1_000_000,
        memory_bytes: 1 << 20,
        wall_ms: 1_000,
        output_bytes: 1 << 16,
    };
    assert_eq!(
        runtime
            .call(&kernel, "run", b"hi", &limits, None)
            .result
            .unwrap(),
        b"hi"
    );

    // The baseline: the same engine, a raw InstancePre with a stub `kiln.output`.
    let engine = runtime.engine().clone();
    let module = Module::new(&engine, &wasm).unwrap();
    let mut linker: Linker<()> = Linker::new(&engine);
    linker
        .func_wrap("kiln", "output", |_: i32, _: i32| -> i32 { 0 })
        .unwrap();
    let pre = linker.instantiate_pre(&module).unwrap();

    let mut group = c.benchmark_group("call a trivial kernel");
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
    // A second baseline: raw wasmtime with a WASI preview 1 context and captured stdio, which
    // every kiln call also builds.
    let mut wasi_linker: Linker<wasmtime_wasi::p1::WasiP1Ctx> = Linker::new(&engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut wasi_linker, |ctx| ctx).unwrap();
    wasi_linker
        .func_wrap("kiln", "output", |_: i32, _: i32| -> i32 { 0 })
        .unwrap();
    let wasi_pre = wasi_linker.instantiate_pre(&module).unwrap();
    group.bench_function("baseline: raw InstancePre with a WASI p1 context", |b| {
        b.iter(|| {
            let pipe = wasmtime_wasi::p2::pipe::MemoryOutputPipe::new(64 * 1024);
            let ctx = wasmtime_wasi::WasiCtxBuilder::new()
                .stdout(pipe.clone())
                .stderr(pipe)
                .build_p1();
            let mut store = Store::new(&engine, ctx);
            store.set_fuel(1_000_000).unwrap();
            store.set_epoch_deadline(1_000);
            let instance = wasi_pre.instantiate(&mut store).unwrap();
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
    group.bench_function("kiln Runtime::call", |b| {
        b.iter(|| runtime.call(&kernel, "run", b"hi", &limits, None))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
