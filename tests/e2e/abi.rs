//! Kernel ABI v1 end to end: the example kernels, built for wasm32-wasip1 with real cargo,
//! checked against the contract and called through a minimal wasmtime host.

use std::collections::BTreeSet;

use kiln_kernel::abi;
use kiln_kernel::json;
use kiln_tests::abi_host::{self, CallOutcome};
use kiln_tests::kernels::{EXAMPLES, example_module};
use wasmparser::{Parser, Payload, TypeRef, ValType};
use wasmtime::{Engine, Module};

fn engine() -> Engine {
    kiln_executor::engine::new_engine().unwrap()
}

fn call(name: &str, entry: &str, input: &[u8], limit: usize) -> CallOutcome {
    let engine = engine();
    let module = Module::new(&engine, example_module(name)).unwrap();
    abi_host::call(&engine, &module, entry, input, limit).unwrap()
}

/// What the contract checks read from a module.
#[derive(Default)]
struct Shape {
    imports: BTreeSet<(String, String)>,
    exports: BTreeSet<String>,
    entry_signatures_ok: bool,
    metadata: Option<String>,
    has_start: bool,
}

fn shape(bytes: &[u8]) -> Shape {
    let mut shape = Shape {
        entry_signatures_ok: true,
        ..Shape::default()
    };
    let mut func_types = Vec::new();
    let mut func_type_of = Vec::new();
    let mut imported_funcs = 0;
    let mut entry_funcs = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.unwrap() {
            Payload::TypeSection(reader) => {
                for ty in reader.into_iter_err_on_gc_types() {
                    func_types.push(ty.unwrap());
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.unwrap();
                    if let TypeRef::Func(index) = import.ty {
                        imported_funcs += 1;
                        func_type_of.push(index);
                    }
                    shape
                        .imports
                        .insert((import.module.to_owned(), import.name.to_owned()));
                }
            }
            Payload::FunctionSection(reader) => {
                for ty in reader {
                    func_type_of.push(ty.unwrap());
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.unwrap();
                    if export.name.starts_with(abi::ENTRY_PREFIX) {
                        entry_funcs.push(export.index);
                    }
                    shape.exports.insert(export.name.to_owned());
                }
            }
            Payload::StartSection { .. } => shape.has_start = true,
            Payload::CustomSection(reader) if reader.name() == abi::METADATA_SECTION => {
                shape.metadata = Some(String::from_utf8(reader.data().to_vec()).unwrap());
            }
            _ => {}
        }
    }
    assert!(imported_funcs <= func_type_of.len());
    for index in entry_funcs {
        let ty = &func_types[func_type_of[index as usize] as usize];
        shape.entry_signatures_ok &=
            ty.params() == [ValType::I32, ValType::I32] && ty.results() == [ValType::I32];
    }
    shape
}

#[test]
fn every_example_kernel_meets_the_contract() {
    for name in EXAMPLES {
        let bytes = example_module(name);
        wasmparser::Validator::new().validate_all(&bytes).unwrap();
        let shape = shape(&bytes);
        assert!(!shape.has_start, "{name}: a start function is not allowed");
        assert!(shape.exports.contains("memory"), "{name}");
        assert!(shape.exports.contains(abi::ALLOC_EXPORT), "{name}");
        assert!(
            shape.entry_signatures_ok,
            "{name}: entries must be (i32, i32) -> i32"
        );
        for (module, function) in &shape.imports {
            assert!(
                module == abi::HOST_MODULE || module == "wasi_snapshot_preview1",
                "{name} imports {module}.{function}"
            );
            assert!(
                !function.starts_with("sock_") && !function.starts_with("path_"),
                "{name} imports {module}.{function}: no sockets or filesystem"
            );
        }
        let metadata = json::parse(shape.metadata.as_deref().expect("metadata section")).unwrap();
        assert_eq!(
            metadata.get("abi").unwrap().as_u64(),
            Some(u64::from(abi::VERSION))
        );
        assert_eq!(metadata.get("crate").unwrap().as_str(), Some(name));
        let entries = metadata.get("entries").unwrap().as_array().unwrap();
        assert!(!entries.is_empty());
        for entry in entries {
            let entry_name = entry.get("name").unwrap().as_str().unwrap();
            assert!(
                shape
                    .exports
                    .contains(&format!("{}{entry_name}", abi::ENTRY_PREFIX)),
                "{name}: metadata names `{entry_name}`, which is not exported"
            );
            assert!(entry.get("input").unwrap().as_str().unwrap().contains('/'));
            assert!(entry.get("output").unwrap().as_str().unwrap().contains('/'));
        }
    }
}

#[test]
fn the_schema_in_metadata_is_embedded_as_json() {
    let metadata = shape(&example_module("kernel-word-freq")).metadata.unwrap();
    let metadata = json::parse(&metadata).unwrap();
    let top = &metadata.get("entries").unwrap().as_array().unwrap()[0];
    assert_eq!(top.get("name").unwrap().as_str(), Some("top"));
    let schema = top.get("schema").unwrap();
    assert_eq!(schema.get("type").unwrap().as_str(), Some("object"));
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
    assert_eq!(outcome.text().lines().count(), 40_000);
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
    assert_eq!(
        outcome.error.as_deref(),
        Some("`text` (a string) is required")
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
