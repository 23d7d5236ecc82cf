//! The wasm check against hand-written modules: a good kernel, and every way one can be wrong.

use super::*;
use crate::findings::Severity;

const METADATA: &str = r#"{"abi":1,"crate":"k","version":"0.1.0","entries":[{"name":"run","input":"text/plain","output":"text/plain"}]}"#;

fn escaped(metadata: &str) -> String {
    metadata.replace('"', "\\\"")
}

/// A kernel in WAT; `imports` and `extra` are spliced into the module.
fn kernel(imports: &str, extra: &str, metadata: &str) -> Vec<u8> {
    let metadata = escaped(metadata);
    wat::parse_str(format!(
        r#"(module
            (import "kiln" "output" (func $output (param i32 i32) (result i32)))
            {imports}
            (memory (export "memory") 1 16)
            (func (export "kiln_alloc") (param i32) (result i32) i32.const 1024)
            (func (export "kiln_entry_run") (param i32 i32) (result i32)
                (drop (call $output (local.get 0) (local.get 1)))
                i32.const 0)
            {extra}
            (@custom "kiln.kernel" "{metadata}")
        )"#
    ))
    .unwrap()
}

fn codes(report: &WasmReport) -> Vec<&str> {
    report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Deny)
        .map(|f| f.code.as_str())
        .collect()
}

fn denied(bytes: &[u8]) -> Vec<String> {
    codes(&check(bytes, &WasmPolicy::default()))
        .into_iter()
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_well_formed_kernel_passes_and_is_described() {
    let bytes = kernel(
        r#"(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))"#,
        "",
        METADATA,
    );
    let report = check(&bytes, &WasmPolicy::default());
    assert_eq!(report.verdict, Verdict::Pass, "{:?}", report.findings);
    assert_eq!(report.imports.len(), 2);
    assert!(report.exports.contains(&"kiln_entry_run".to_owned()));
    assert_eq!(report.memory_max_pages, Some(16));
    assert_eq!(report.metadata.unwrap().entries[0].name, "run");
}

#[test]
fn socket_and_filesystem_imports_are_denied_and_named() {
    let bytes = kernel(
        r#"(import "wasi_snapshot_preview1" "sock_accept" (func (param i32 i32 i32) (result i32)))"#,
        "",
        METADATA,
    );
    let report = check(&bytes, &WasmPolicy::default());
    assert_eq!(report.verdict, Verdict::Deny);
    let finding = report
        .findings
        .iter()
        .find(|f| f.code == "wasm-import-denied")
        .unwrap();
    assert!(
        finding
            .message
            .contains("wasi_snapshot_preview1.sock_accept")
            && finding.message.contains("socket"),
        "{}",
        finding.message
    );

    let bytes = kernel(
        r#"(import "wasi_snapshot_preview1" "path_open" (func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))"#,
        "",
        METADATA,
    );
    let report = check(&bytes, &WasmPolicy::default());
    let finding = report
        .findings
        .iter()
        .find(|f| f.code == "wasm-import-denied")
        .unwrap();
    assert!(
        finding.message.contains("path_open") && finding.message.contains("filesystem"),
        "{}",
        finding.message
    );

    let bytes = kernel(
        r#"(import "env" "system" (func (param i32) (result i32)))"#,
        "",
        METADATA,
    );
    assert_eq!(denied(&bytes), ["wasm-import-denied"]);
    let bytes = kernel(r#"(import "kiln" "table" (table 1 funcref))"#, "", METADATA);
    assert_eq!(denied(&bytes), ["wasm-import-denied"]);
}

#[test]
fn a_policy_can_allow_a_whole_module() {
    let bytes = kernel(
        r#"(import "env" "helper" (func (param i32) (result i32)))"#,
        "",
        METADATA,
    );
    let mut policy = WasmPolicy::default();
    policy
        .allowed_imports
        .insert("env".into(), AllowedFunctions::All(AllMarker::Star));
    assert_eq!(check(&bytes, &policy).verdict, Verdict::Pass);
}

#[test]
fn contract_violations_are_named() {
    let no_alloc = wat::parse_str(format!(
        r#"(module (memory (export "memory") 1 1) (func (export "kiln_entry_run") (param i32 i32) (result i32) i32.const 0) (@custom "kiln.kernel" "{}"))"#,
        escaped(METADATA)
    ))
    .unwrap();
    assert_eq!(denied(&no_alloc), ["abi-missing-alloc"]);

    let bad_signature = kernel(
        "",
        r#"(func (export "kiln_entry_other") (param i64) (result i32) i32.const 0)"#,
        METADATA,
    );
    assert_eq!(
        denied(&bad_signature),
        ["abi-signature", "abi-entry-undeclared"]
    );

    let start = kernel("", "(func $init) (start $init)", METADATA);
    assert_eq!(denied(&start), ["wasm-start-function"]);

    let missing_entry = kernel("", "", &METADATA.replace("\"run\"", "\"other\""));
    assert_eq!(
        denied(&missing_entry),
        ["abi-entry-missing", "abi-entry-undeclared"]
    );

    let no_metadata = wat::parse_str(
        r#"(module (memory (export "memory") 1 1) (func (export "kiln_alloc") (param i32) (result i32) i32.const 0) (func (export "kiln_entry_run") (param i32 i32) (result i32) i32.const 0))"#,
    )
    .unwrap();
    assert_eq!(denied(&no_metadata), ["abi-missing-metadata"]);

    assert_eq!(
        denied(&kernel("", "", "not json")),
        ["abi-metadata-invalid"]
    );
    let future = kernel("", "", &METADATA.replace("\"abi\":1", "\"abi\":2"));
    assert_eq!(denied(&future), ["abi-version"]);
    let no_memory = wat::parse_str(
        r#"(module (func (export "kiln_alloc") (param i32) (result i32) i32.const 0))"#,
    )
    .unwrap();
    let codes = denied(&no_memory);
    assert!(
        codes.contains(&"abi-missing-memory".to_owned()),
        "{codes:?}"
    );
    assert!(codes.contains(&"abi-no-entry".to_owned()), "{codes:?}");
}

#[test]
fn memory_limits_are_enforced() {
    let policy = WasmPolicy {
        max_memory_pages: 8,
        ..WasmPolicy::default()
    };
    assert_eq!(
        codes(&check(&kernel("", "", METADATA), &policy)),
        ["wasm-memory-max"]
    );
    let unbounded = wat::parse_str(format!(
        r#"(module (memory (export "memory") 1) (func (export "kiln_alloc") (param i32) (result i32) i32.const 0) (func (export "kiln_entry_run") (param i32 i32) (result i32) i32.const 0) (@custom "kiln.kernel" "{}"))"#,
        escaped(METADATA)
    ))
    .unwrap();
    let report = check(&unbounded, &WasmPolicy::default());
    assert_eq!(report.verdict, Verdict::Pass);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.code == "wasm-memory-unbounded")
    );
    let shared = wat::parse_str(r#"(module (memory (export "memory") 1 2 shared))"#).unwrap();
    assert_eq!(
        denied(&shared),
        ["wasm-invalid"],
        "threads and shared memory are off"
    );
}

#[test]
fn hostile_bytes_end_in_a_finding_not_a_panic() {
    let good = kernel("", "", METADATA);
    for end in [0, 1, 4, 8, 9, good.len() / 2, good.len() - 1] {
        let report = check(&good[..end], &WasmPolicy::default());
        assert_eq!(report.verdict, Verdict::Deny, "truncated at {end}");
    }
    assert_eq!(
        denied(b"\0asm\x01\0\0\0\x01\xff\xff\xff\xff\x0f"),
        ["wasm-invalid"]
    );
    assert_eq!(denied(b"not wasm at all"), ["wasm-invalid"]);
    let policy = WasmPolicy {
        max_module_bytes: 100,
        ..WasmPolicy::default()
    };
    assert_eq!(codes(&check(&good, &policy)), ["wasm-too-large"]);
    // Deeply nested blocks, and a great many types: checked without overflowing anything.
    let depth = 50_000;
    let nested = format!(
        "(module (func {} {}))",
        "(block ".repeat(depth),
        ")".repeat(depth)
    );
    let report = check(&wat::parse_str(&nested).unwrap(), &WasmPolicy::default());
    assert_eq!(report.verdict, Verdict::Deny);
    let many_types = format!("(module {})", "(type (func (param i32)))".repeat(20_000));
    let report = check(
        &wat::parse_str(&many_types).unwrap(),
        &WasmPolicy::default(),
    );
    assert_eq!(report.verdict, Verdict::Deny);
}
