use super::*;

/// A WAT kernel: memory, a bump allocator, and `body` as the entry point `run`.
fn kernel(runtime: &Runtime, body: &str, extra: &str) -> Kernel {
    let wat = format!(
        r#"(module
  (import "kiln" "output" (func $output (param i32 i32) (result i32)))
  (import "kiln" "error" (func $error (param i32 i32)))
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  (data (i32.const 16) "hello, kiln")
  (func (export "kiln_alloc") (param $len i32) (result i32)
    (local $at i32)
    (local.set $at (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $len)))
    (local.get $at))
  {extra}
  (func (export "kiln_entry_run") (param $ptr i32) (param $len i32) (result i32)
    {body}))"#
    );
    runtime.load_wasm(&wat::parse_str(&wat).unwrap()).unwrap()
}

fn limits() -> Limits {
    Limits {
        fuel: 10_000_000,
        memory_bytes: 4 << 20,
        wall_ms: 5_000,
        output_bytes: 1 << 16,
    }
}

#[test]
fn a_kernel_echoes_its_input_and_is_measured() {
    let runtime = Runtime::new(4).unwrap();
    let echo = kernel(
        &runtime,
        "(drop (call $output (local.get $ptr) (local.get $len))) (i32.const 0)",
        "",
    );
    let outcome = runtime.call(&echo, "run", b"some input", &limits(), None);
    assert_eq!(outcome.result.unwrap(), b"some input");
    assert!(outcome.metrics.fuel > 0 && outcome.metrics.fuel < 1_000);
    assert_eq!(outcome.metrics.output_bytes, 10);
    // The same kernel again: a fresh instance each call, from the cached InstancePre.
    let again = runtime.call(&echo, "run", b"x", &limits(), Some(7));
    assert_eq!(again.result.unwrap(), b"x");
}

#[test]
fn every_way_of_ending_has_its_name() {
    let runtime = Runtime::new(4).unwrap();
    let cases: Vec<(&str, &str, &str, Limits, &str)> = vec![
        (
            "(loop $l (br $l)) (i32.const 0)",
            "",
            "infinite loop",
            limits(),
            "out-of-fuel",
        ),
        (
            "(loop $l (br $l)) (i32.const 0)",
            "",
            "infinite loop, generous fuel",
            Limits {
                fuel: u64::MAX / 2,
                wall_ms: 200,
                ..limits()
            },
            "deadline",
        ),
        (
            "(loop $l (br_if $l (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) unreachable",
            "",
            "unbounded memory growth",
            limits(),
            "memory-limit",
        ),
        (
            "(call $deep) (i32.const 0)",
            "(func $deep (call $deep))",
            "deep recursion",
            Limits {
                fuel: u64::MAX / 2,
                ..limits()
            },
            "stack-overflow",
        ),
        (
            "(loop $l (br_if $l (i32.eqz (call $output (i32.const 0) (i32.const 4096))))) (i32.const 0)",
            "",
            "output flood",
            limits(),
            "output-limit",
        ),
        ("unreachable", "", "a trap", limits(), "trap"),
        (
            "(call $error (i32.const 16) (i32.const 11)) (i32.const 1)",
            "",
            "a kernel error",
            limits(),
            "kernel-error",
        ),
    ];
    for (body, extra, what, limits, code) in cases {
        let k = kernel(&runtime, body, extra);
        let outcome = runtime.call(&k, "run", b"", &limits, None);
        let err = outcome.result.expect_err(what);
        assert_eq!(err.code(), code, "{what}: {err}");
        if code == "kernel-error" {
            assert_eq!(err.to_string(), "kernel error: hello, kiln");
        }
    }
    // The runtime goes on serving.
    let ok = kernel(&runtime, "(i32.const 0)", "");
    assert!(
        runtime
            .call(&ok, "run", b"", &limits(), None)
            .result
            .is_ok()
    );
    let missing = runtime.call(&ok, "nope", b"", &limits(), None);
    assert_eq!(missing.result.unwrap_err().code(), "contract");
}

#[test]
fn only_verified_bytes_are_deserialized() {
    let runtime = Runtime::new(2).unwrap();
    let wasm = wat::parse_str(
        r#"(module (memory (export "memory") 1)
             (func (export "kiln_alloc") (param i32) (result i32) (i32.const 64))
             (func (export "kiln_entry_run") (param i32 i32) (result i32) (i32.const 0)))"#,
    )
    .unwrap();
    let cwasm = runtime.engine().precompile_module(&wasm).unwrap();
    let signed = kiln_policy::Digest::of(&cwasm);
    let verified = VerifiedBytes::new(&cwasm, &signed).unwrap();
    let k = runtime.load_cwasm(&verified).unwrap();
    assert!(runtime.call(&k, "run", b"", &limits(), None).result.is_ok());
    let mut tampered = cwasm.to_vec();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(
        VerifiedBytes::new(&tampered, &signed).is_none(),
        "one changed byte is refused before deserialisation"
    );
}

#[test]
fn the_runtime_engine_can_load_what_the_builder_precompiles() {
    let runtime = Runtime::new(2).unwrap();
    let builder = kiln_engine::new_engine().unwrap();
    assert_eq!(
        kiln_engine::compatibility_hash(runtime.engine()),
        kiln_engine::compatibility_hash(&builder)
    );
}

/// A kernel that writes "hello" to stdout through WASI, and imports `poll_oneoff` when `waits`.
fn stdout_kernel(runtime: &Runtime, waits: bool) -> Kernel {
    let poll = if waits {
        r#"(import "wasi_snapshot_preview1" "poll_oneoff" (func (param i32 i32 i32 i32) (result i32)))"#
    } else {
        ""
    };
    let wat = format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  {poll}
  (memory (export "memory") 1)
  (data (i32.const 16) "hello")
  (data (i32.const 32) "\10\00\00\00\05\00\00\00")
  (func (export "kiln_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "kiln_entry_run") (param i32 i32) (result i32)
    (drop (call $fd_write (i32.const 1) (i32.const 32) (i32.const 1) (i32.const 48)))
    (i32.const 0)))"#
    );
    runtime.load_wasm(&wat::parse_str(&wat).unwrap()).unwrap()
}

#[test]
fn only_a_kernel_that_imports_poll_oneoff_may_wait() {
    let runtime = Runtime::new(2).unwrap();
    assert!(!stdout_kernel(&runtime, false).may_wait());
    assert!(stdout_kernel(&runtime, true).may_wait());
    assert!(!kernel(&runtime, "(i32.const 0)", "").may_wait());
}

#[test]
fn a_kernel_that_cannot_wait_uses_wasi_when_called_on_an_async_worker() {
    // Small runs are called right on a tokio worker thread, where wasmtime-wasi's blocking
    // functions (`fd_write`) would start the ambient runtime's `block_on` and panic.
    let runtime = Arc::new(Runtime::new(2).unwrap());
    let kernel = stdout_kernel(&runtime, false);
    assert!(!kernel.may_wait());
    for flavour in ["multi-thread", "current-thread"] {
        let tokio = match flavour {
            "multi-thread" => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .build(),
            _ => tokio::runtime::Builder::new_current_thread().build(),
        }
        .unwrap();
        let (runtime, kernel) = (runtime.clone(), kernel.clone());
        let outcome = tokio.block_on(async move {
            tokio::spawn(async move { runtime.call(&kernel, "run", b"", &limits(), None) })
                .await
                .unwrap()
        });
        assert_eq!(outcome.result.unwrap(), b"", "{flavour}");
        assert_eq!(outcome.stdio, b"hello", "{flavour}");
    }
}

#[test]
fn a_kernel_that_can_wait_sleeps_on_the_blocking_pool() {
    // `poll_oneoff` on a relative monotonic clock of 20 ms (0x01312d00 ns), then "hello".
    let wat = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello")
  (data (i32.const 32) "\10\00\00\00\05\00\00\00")
  (data (i32.const 80) "\01\00\00\00")
  (data (i32.const 88) "\00\2d\31\01\00\00\00\00")
  (func (export "kiln_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "kiln_entry_run") (param i32 i32) (result i32)
    (if (call $poll (i32.const 64) (i32.const 128) (i32.const 1) (i32.const 192))
      (then (unreachable)))
    (drop (call $fd_write (i32.const 1) (i32.const 32) (i32.const 1) (i32.const 48)))
    (i32.const 0)))"#;
    let runtime = Arc::new(Runtime::new(2).unwrap());
    let kernel = runtime.load_wasm(&wat::parse_str(wat).unwrap()).unwrap();
    assert!(kernel.may_wait());
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let outcome = tokio.block_on(async move {
        tokio::task::spawn_blocking(move || runtime.call(&kernel, "run", b"", &limits(), None))
            .await
            .unwrap()
    });
    assert_eq!(outcome.result.unwrap(), b"");
    assert_eq!(outcome.stdio, b"hello");
    assert!(outcome.metrics.wall_us >= 20_000, "{:?}", outcome.metrics);
}

#[cfg(target_arch = "x86_64")]
#[test]
fn a_nan_has_the_processors_bits_as_in_the_browser() {
    // 0/0 from the input (so that nothing folds it), its bits as output. V8 (Chromium, Node)
    // answers 0xfff8000000000000 on x86-64, the processor's default NaN; a run here must give the
    // same output digest as the same run in the page.
    let runtime = Runtime::new(2).unwrap();
    let nan = kernel(
        &runtime,
        "(i64.store (i32.const 0)
           (i64.reinterpret_f64 (f64.div (f64.load (local.get $ptr)) (f64.load (local.get $ptr)))))
         (drop (call $output (i32.const 0) (i32.const 8)))
         (i32.const 0)",
        "",
    );
    let outcome = runtime.call(&nan, "run", &[0u8; 8], &limits(), Some(1));
    let bits = u64::from_le_bytes(outcome.result.unwrap().try_into().unwrap());
    assert_eq!(bits, 0xfff8_0000_0000_0000, "{bits:#x}");
}
