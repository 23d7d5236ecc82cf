//! Kernel ABI v1 end to end: the example kernels, built for wasm32-wasip1 with real cargo,
//! checked against the contract (the policy's wasm check) and called through a minimal wasmtime
//! host.

use kiln_kernel::abi;
use kiln_kernel::json;
use kiln_policy::checks::wasm::{WasmPolicy, WasmReport, check};
use kiln_policy::findings::Verdict;
use kiln_tests::abi_host::{self, CallOutcome};
use kiln_tests::kernels::{EXAMPLES, example_module};
use wasmtime::{Engine, Module};

fn engine() -> Engine {
    kiln_engine::new_engine().unwrap()
}

fn call(name: &str, entry: &str, input: &[u8], limit: usize) -> CallOutcome {
    let engine = engine();
    let module = Module::new(&engine, example_module(name)).unwrap();
    abi_host::call(&engine, &module, entry, input, limit).unwrap()
}

fn wasm_report(name: &str) -> WasmReport {
    check(&example_module(name), &WasmPolicy::default())
}

#[test]
fn every_example_kernel_meets_the_contract() {
    for name in EXAMPLES {
        let report = wasm_report(name);
        assert_eq!(
            report.verdict,
            Verdict::Pass,
            "{name}: {:?}",
            report.findings
        );
        assert!(report.exports.contains(&"memory".to_owned()), "{name}");
        assert!(
            report.exports.contains(&abi::ALLOC_EXPORT.to_owned()),
            "{name}"
        );
        for import in &report.imports {
            assert!(
                import.module == abi::HOST_MODULE || import.module == "wasi_snapshot_preview1",
                "{name} imports {}.{}",
                import.module,
                import.name
            );
        }
        let metadata = report.metadata.expect("metadata section");
        assert_eq!(metadata.abi, abi::VERSION);
        assert_eq!(metadata.krate, name);
        for entry in &metadata.entries {
            assert!(
                entry.input.contains('/') && entry.output.contains('/'),
                "{name}: {entry:?}"
            );
        }
    }
}

#[test]
fn the_schema_in_metadata_is_embedded_as_json() {
    let metadata = wasm_report("kernel-word-freq").metadata.unwrap();
    let top = &metadata.entries[0];
    assert_eq!(top.name, "top");
    assert_eq!(top.schema.as_ref().unwrap()["type"], "object");
}

#[test]
fn csv_stats_describes_columns_in_wasm() {
    let csv = b"city,temp\nOslo,3.5\nBergen,7.5\nOslo,-1\n";
    let outcome = call("kernel-csv-stats", "describe", csv, 1 << 20);
    assert_eq!(outcome.status, abi::STATUS_OK, "{:?}", outcome.error);
    let report = json::parse(&outcome.text()).unwrap();
    assert_eq!(report.get("rows").unwrap().as_u64(), Some(3));
    let temp = &report.get("columns").unwrap().as_array().unwrap()[1];
    assert_eq!(temp.get("max").unwrap().as_f64(), Some(7.5));
    // Same answer as the function compiled natively.
    let native = kiln_kernel::testing::run(kernel_csv_stats::describe, csv).unwrap();
    assert_eq!(outcome.output(), native);
}

#[test]
fn wasm_and_native_mandelbrot_tiles_are_identical() {
    let request = br#"{"width":96,"height":48,"center":[-0.74,0.12],"span":0.3,"max_iter":500}"#;
    let outcome = call("kernel-mandelbrot", "tile", request, 1 << 20);
    assert_eq!(outcome.status, abi::STATUS_OK, "{:?}", outcome.error);
    let native = kiln_kernel::testing::run(kernel_mandelbrot::tile, request).unwrap();
    assert_eq!(outcome.output(), native);
}

#[test]
fn large_output_is_streamed_in_chunks() {
    let text: String = (0..40_000).map(|i| format!("word{i} ")).collect();
    let outcome = call("kernel-word-freq", "counts", text.as_bytes(), 16 << 20);
    assert_eq!(outcome.status, abi::STATUS_OK, "{:?}", outcome.error);
    assert!(outcome.chunks.len() > 1, "{} chunks", outcome.chunks.len());
    assert!(outcome.chunks.iter().all(|c| c.len() <= abi::CHUNK_BYTES));
    assert_eq!(
        outcome.text().lines().count(),
        40_001,
        "a header and a row per word"
    );
}

#[test]
fn the_output_limit_stops_the_kernel_with_a_reported_error() {
    let text: String = (0..40_000).map(|i| format!("word{i} ")).collect();
    let outcome = call("kernel-word-freq", "counts", text.as_bytes(), 100_000);
    assert_eq!(outcome.status, abi::STATUS_ERROR);
    assert_eq!(outcome.error.as_deref(), Some("output limit reached"));
    assert!(outcome.output().len() <= 100_000);
}

#[test]
fn a_kernel_error_is_reported_through_the_host() {
    let outcome = call("kernel-word-freq", "top", b"{\"limit\": 3}", 1 << 20);
    assert_eq!(outcome.status, abi::STATUS_ERROR);
    let error = outcome.error.as_deref().unwrap_or_default();
    assert!(
        error.starts_with("input does not match: missing field `text`"),
        "{error}"
    );
    assert!(outcome.output().is_empty());

    let outcome = call("kernel-csv-stats", "describe", b"a\n\xff\n", 1 << 20);
    assert_eq!(outcome.status, abi::STATUS_ERROR);
    assert!(outcome.error.unwrap().starts_with("input is not UTF-8"));
}

#[test]
fn empty_input_reaches_the_kernel_as_empty() {
    let outcome = call("kernel-csv-stats", "describe", b"", 1 << 20);
    assert_eq!(outcome.status, abi::STATUS_ERROR);
    assert_eq!(
        outcome.error.as_deref(),
        Some("the input has no header row")
    );
}

#[test]
fn kiln_inspect_describes_a_kernel_and_refuses_a_hostile_one() {
    let path = &kiln_tests::kernels::example_modules()["kernel-word-freq"];
    let out = std::process::Command::new(kiln_tests::kiln_binary())
        .arg("inspect")
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("kernel:  kernel-word-freq 0.1.0 (ABI v1)"),
        "{text}"
    );
    assert!(text.contains("entry top"), "{text}");
    assert!(text.contains("kiln.output (func)"), "{text}");
    assert!(text.contains("verdict: pass"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let hostile = dir.path().join("hostile.wasm");
    let bytes = wat::parse_str(
        r#"(module (import "wasi_snapshot_preview1" "sock_connect" (func (param i32 i32) (result i32))) (memory (export "memory") 1))"#,
    )
    .unwrap();
    std::fs::write(&hostile, bytes).unwrap();
    let out = std::process::Command::new(kiln_tests::kiln_binary())
        .args(["inspect", "--json"])
        .arg(&hostile)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verdict"], "deny");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sock_connect") && err.contains("socket"),
        "{err}"
    );
    std::fs::write(&hostile, b"\0asm garbage").unwrap();
    let out = std::process::Command::new(kiln_tests::kiln_binary())
        .arg("inspect")
        .arg(&hostile)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("[wasm-invalid]"));
}
