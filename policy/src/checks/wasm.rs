//! The wasm check: what a built kernel module can do, read from the module itself.
//!
//! It validates the module with kiln's fixed feature set, then checks kernel ABI v1
//! (`docs/kernel-abi.md`): imports only from allowed modules and functions, the `memory` and
//! `kiln_alloc` exports, every entry point's signature, no start function, a bounded memory, the
//! metadata section and its agreement with the exports, and the module's size. Hostile modules
//! (truncated, oversized, deeply nested) end in a finding, never a panic.

pub mod cfg;

use std::collections::{BTreeMap, BTreeSet};

use kiln_abi as abi;
use serde::{Deserialize, Serialize};
use wasmparser::{Parser, Payload, TypeRef, ValType, Validator, WasmFeatures};

use crate::findings::{Finding, FindingCode, Verdict};

/// The WASI preview 1 module name.
pub const WASI_P1: &str = "wasi_snapshot_preview1";

/// Which functions of one import module a kernel may import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AllowedFunctions {
    /// Every function of the module (`"*"` in a policy file).
    All(AllMarker),
    /// Exactly these functions.
    Only(BTreeSet<String>),
}

/// The `"*"` of [`AllowedFunctions::All`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AllMarker {
    /// Every function.
    #[serde(rename = "*")]
    Star,
}

impl AllowedFunctions {
    fn allows(&self, function: &str) -> bool {
        match self {
            AllowedFunctions::All(_) => true,
            AllowedFunctions::Only(names) => names.contains(function),
        }
    }
}

/// What the wasm check enforces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WasmPolicy {
    /// The largest module accepted, in bytes.
    pub max_module_bytes: usize,
    /// The largest declared memory maximum accepted, in 64 KiB pages.
    pub max_memory_pages: u64,
    /// The imports allowed, by module.
    pub allowed_imports: BTreeMap<String, AllowedFunctions>,
}

/// The WASI preview 1 functions kiln's default policy grants: what Rust's standard library needs
/// for output, the environment, time, randomness and exiting. No filesystem, no sockets.
pub const DEFAULT_WASI_FUNCTIONS: &[&str] = &[
    "args_get",
    "args_sizes_get",
    "clock_res_get",
    "clock_time_get",
    "environ_get",
    "environ_sizes_get",
    "fd_close",
    "fd_fdstat_get",
    "fd_write",
    "proc_exit",
    "random_get",
    "sched_yield",
];

impl Default for WasmPolicy {
    fn default() -> Self {
        let names =
            |list: &[&str]| AllowedFunctions::Only(list.iter().map(|s| (*s).to_owned()).collect());
        Self {
            max_module_bytes: 32 * 1024 * 1024,
            max_memory_pages: 16 * 1024,
            allowed_imports: BTreeMap::from([
                (
                    abi::HOST_MODULE.to_owned(),
                    names(&["output", "log", "error"]),
                ),
                (WASI_P1.to_owned(), names(DEFAULT_WASI_FUNCTIONS)),
            ]),
        }
    }
}

/// One entry point of a kernel, from its metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The entry's name (exported as `kiln_entry_NAME`).
    pub name: String,
    /// The input media type.
    pub input: String,
    /// The output media type.
    pub output: String,
    /// The input's JSON Schema, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<serde_json::Value>,
}

/// The kernel metadata section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelMetadata {
    /// The ABI version.
    pub abi: u32,
    /// The crate.
    #[serde(rename = "crate")]
    pub krate: String,
    /// Its version.
    pub version: String,
    /// The entry points.
    pub entries: Vec<Entry>,
}

/// An import of the module.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Import {
    /// The module imported from.
    pub module: String,
    /// The item's name.
    pub name: String,
    /// `func`, `memory`, `table`, `global` or `tag`.
    pub kind: String,
}

/// What the wasm check read and found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WasmReport {
    /// The module's size in bytes.
    pub size: usize,
    /// Its imports.
    pub imports: Vec<Import>,
    /// Its exports' names.
    pub exports: Vec<String>,
    /// Its metadata, when present and valid.
    pub metadata: Option<KernelMetadata>,
    /// The declared memory maximum, in pages.
    pub memory_max_pages: Option<u64>,
    /// What was found.
    pub findings: Vec<Finding>,
    /// The verdict.
    pub verdict: Verdict,
}

/// The feature set kernels are validated with: WebAssembly 2.0 (what Rust emits for
/// `wasm32-wasip1`), without threads, shared memory, 64-bit memory or relaxed SIMD.
pub fn features() -> WasmFeatures {
    WasmFeatures::WASM2
}

/// Checks `bytes` against `policy`.
pub fn check(bytes: &[u8], policy: &WasmPolicy) -> WasmReport {
    let mut report = WasmReport {
        size: bytes.len(),
        imports: Vec::new(),
        exports: Vec::new(),
        metadata: None,
        memory_max_pages: None,
        findings: Vec::new(),
        verdict: Verdict::Pass,
    };
    inspect(bytes, policy, &mut report);
    report.verdict = Verdict::of(&report.findings);
    report
}

fn inspect(bytes: &[u8], policy: &WasmPolicy, report: &mut WasmReport) {
    let findings = &mut report.findings;
    if bytes.len() > policy.max_module_bytes {
        findings.push(Finding::deny(
            FindingCode::WasmTooLarge,
            format!(
                "the module is {} bytes, over the policy's {}",
                bytes.len(),
                policy.max_module_bytes
            ),
        ));
        return;
    }
    if Parser::is_component(bytes) {
        findings.push(Finding::deny(
            FindingCode::WasmComponent,
            "the module is a component; kernel ABI v1 is a core module",
        ));
        return;
    }
    let types = match Validator::new_with_features(features()).validate_all(bytes) {
        Ok(types) => types,
        Err(err) => {
            findings.push(Finding::deny(
                FindingCode::WasmInvalid,
                format!("the module is not valid WebAssembly for kiln: {err}"),
            ));
            return;
        }
    };

    let types = types.as_ref();
    let mut metadata_bytes = None;
    let mut export_funcs: BTreeMap<String, u32> = BTreeMap::new();
    let mut memory_exported = false;
    for payload in Parser::new(0).parse_all(bytes) {
        // The module validated, so parsing it again cannot fail.
        let Ok(payload) = payload else { break };
        match payload {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports().flatten() {
                    let kind = match import.ty {
                        TypeRef::Func(_) | TypeRef::FuncExact(_) => "func",
                        TypeRef::Memory(_) => "memory",
                        TypeRef::Table(_) => "table",
                        TypeRef::Global(_) => "global",
                        TypeRef::Tag(_) => "tag",
                    };
                    report.imports.push(Import {
                        module: import.module.to_owned(),
                        name: import.name.to_owned(),
                        kind: kind.to_owned(),
                    });
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader.into_iter().flatten() {
                    match export.kind {
                        wasmparser::ExternalKind::Func | wasmparser::ExternalKind::FuncExact => {
                            export_funcs.insert(export.name.to_owned(), export.index);
                        }
                        wasmparser::ExternalKind::Memory if export.name == "memory" => {
                            memory_exported = true
                        }
                        _ => {}
                    }
                    report.exports.push(export.name.to_owned());
                }
            }
            Payload::StartSection { .. } => {
                findings.push(Finding::deny(
                    FindingCode::WasmStartFunction,
                    "the module has a start function; kernels run nothing at instantiation",
                ));
            }
            Payload::CustomSection(reader) if reader.name() == abi::METADATA_SECTION => {
                if metadata_bytes.is_some() {
                    findings.push(Finding::deny(
                        FindingCode::AbiMetadataDuplicate,
                        format!(
                            "the module has more than one `{}` section",
                            abi::METADATA_SECTION
                        ),
                    ));
                }
                metadata_bytes = Some(reader.data().to_vec());
            }
            _ => {}
        }
    }

    for import in &report.imports {
        let allowed = import.kind == "func"
            && policy
                .allowed_imports
                .get(&import.module)
                .is_some_and(|functions| functions.allows(&import.name));
        if !allowed {
            findings.push(Finding::deny(
                FindingCode::WasmImportDenied,
                format!(
                    "the module imports {}.{} ({}), which the policy does not allow{}",
                    import.module,
                    import.name,
                    import.kind,
                    capability_hint(&import.module, &import.name)
                ),
            ));
        }
    }

    match types.memory_count() {
        0 => findings.push(Finding::deny(
            FindingCode::AbiMissingMemory,
            "the module has no memory",
        )),
        1 => {
            let memory = types.memory_at(0);
            report.memory_max_pages = memory.maximum;
            match memory.maximum {
                Some(max) if max > policy.max_memory_pages => findings.push(Finding::deny(
                    FindingCode::WasmMemoryMax,
                    format!("the memory may grow to {max} pages ({} MiB), over the policy's {} pages", max / 16, policy.max_memory_pages),
                )),
                Some(_) => {}
                None => findings.push(Finding::info(FindingCode::WasmMemoryUnbounded, "the memory declares no maximum; the executor caps it at the cell's memory limit")),
            }
        }
        n => findings.push(Finding::deny(
            FindingCode::WasmMultipleMemories,
            format!("the module has {n} memories; kernels have one"),
        )),
    }
    if !memory_exported {
        findings.push(Finding::deny(
            FindingCode::AbiMissingMemory,
            "the module does not export its memory as `memory`",
        ));
    }

    let signature = |index: u32| {
        let id = types.core_function_at(index);
        let func = types[id].unwrap_func();
        (func.params().to_vec(), func.results().to_vec())
    };
    match export_funcs.get(abi::ALLOC_EXPORT) {
        None => findings.push(Finding::deny(
            FindingCode::AbiMissingAlloc,
            format!("the module does not export `{}`", abi::ALLOC_EXPORT),
        )),
        Some(&index) if signature(index) != (vec![ValType::I32], vec![ValType::I32]) => {
            findings.push(Finding::deny(
                FindingCode::AbiSignature,
                format!("`{}` must have type (i32) -> i32", abi::ALLOC_EXPORT),
            ));
        }
        Some(_) => {}
    }
    let mut exported_entries = BTreeSet::new();
    for (name, &index) in &export_funcs {
        if let Some(entry) = name.strip_prefix(abi::ENTRY_PREFIX) {
            exported_entries.insert(entry.to_owned());
            if signature(index) != (vec![ValType::I32, ValType::I32], vec![ValType::I32]) {
                findings.push(Finding::deny(
                    FindingCode::AbiSignature,
                    format!("entry point `{name}` must have type (i32, i32) -> i32"),
                ));
            }
        }
    }
    if exported_entries.is_empty() {
        findings.push(Finding::deny(
            FindingCode::AbiNoEntry,
            format!(
                "the module exports no entry point (`{}NAME`)",
                abi::ENTRY_PREFIX
            ),
        ));
    }

    let Some(raw) = metadata_bytes else {
        findings.push(Finding::deny(
            FindingCode::AbiMissingMetadata,
            format!(
                "the module has no `{}` section (the SDK's `kernel!` embeds it)",
                abi::METADATA_SECTION
            ),
        ));
        return;
    };
    let metadata: KernelMetadata = match serde_json::from_slice(&raw) {
        Ok(metadata) => metadata,
        Err(err) => {
            findings.push(Finding::deny(
                FindingCode::AbiMetadataInvalid,
                format!(
                    "the `{}` section is not kernel metadata: {err}",
                    abi::METADATA_SECTION
                ),
            ));
            return;
        }
    };
    if metadata.abi != abi::VERSION {
        findings.push(Finding::deny(
            FindingCode::AbiVersion,
            format!(
                "the module is built for kernel ABI v{}; this policy knows v{}",
                metadata.abi,
                abi::VERSION
            ),
        ));
    }
    let declared: BTreeSet<String> = metadata.entries.iter().map(|e| e.name.clone()).collect();
    for missing in declared.difference(&exported_entries) {
        findings.push(Finding::deny(
            FindingCode::AbiEntryMissing,
            format!(
                "the metadata declares entry `{missing}`, but `{}{missing}` is not exported",
                abi::ENTRY_PREFIX
            ),
        ));
    }
    for undeclared in exported_entries.difference(&declared) {
        findings.push(Finding::deny(
            FindingCode::AbiEntryUndeclared,
            format!(
                "`{}{undeclared}` is exported, but the metadata does not declare it",
                abi::ENTRY_PREFIX
            ),
        ));
    }
    for entry in &metadata.entries {
        if let Some(schema) = &entry.schema
            && !schema.is_object()
        {
            findings.push(Finding::deny(
                FindingCode::AbiMetadataInvalid,
                format!("the schema of entry `{}` is not a JSON object", entry.name),
            ));
        }
    }
    report.metadata = Some(metadata);
}

/// What an import would give a kernel, when it is a known capability.
fn capability_hint(module: &str, name: &str) -> &'static str {
    if module != WASI_P1 {
        return "";
    }
    if name.starts_with("sock_") {
        " (a socket function: network access)"
    } else if name.starts_with("path_") || name.starts_with("fd_prestat") || name == "fd_readdir" {
        " (a filesystem function)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests;
