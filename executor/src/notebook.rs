//! Notebook documents (format version 2, specified in `docs/notebook.md`; version 1 is still
//! read): metadata, a `kernels` lock pinning each kernel's crate, version and module digests,
//! and cells: markdown (passed through), kernel cells (an entry point of a locked kernel, an
//! input, grants and limits) and, from version 2, code cells (Rust source built by the registry's
//! builder against exact approved dependencies, then run like a kernel cell).
//! [`Notebook::parse`] validates everything a run depends on, and its errors name the cell and
//! the field.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use kiln_policy::Digest;
use kiln_policy::preflight::Limits;
use serde::{Deserialize, Serialize};

/// The newest format version, which this crate reads and writes.
pub const FORMAT_VERSION: u32 = 2;
/// Every format version this crate reads (1 has no code cells).
pub const READ_VERSIONS: [u32; 2] = [1, 2];
/// The prefix of the name a code cell's build goes by among a run's kernels.
pub const CODE_KERNEL_PREFIX: &str = "code:";
/// The largest notebook accepted, in bytes.
pub const MAX_NOTEBOOK_BYTES: usize = 4 << 20;
/// The most cells in one notebook.
pub const MAX_CELLS: usize = 1000;

/// The limits a cell gets when it names none.
pub const DEFAULT_LIMITS: Limits = Limits {
    fuel: 1_000_000_000,
    memory_bytes: 64 << 20,
    wall_ms: 10_000,
    output_bytes: 1 << 20,
};

/// A validated notebook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notebook {
    /// The format version, one of [`READ_VERSIONS`].
    pub kiln_notebook: u32,
    /// Free-form metadata (title, authors, …), passed through.
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// The kernels the cells use, by the name cells call them.
    pub kernels: BTreeMap<String, KernelLock>,
    /// The cells, in order.
    pub cells: Vec<Cell>,
}

/// A locked kernel: what a cell's `kernel` name resolves to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelLock {
    /// The crate.
    #[serde(rename = "crate")]
    pub krate: String,
    /// Its version.
    pub version: String,
    /// The `.wasm` digest the notebook pins.
    pub wasm: Digest,
    /// The `.cwasm` digest, when pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwasm: Option<Digest>,
    /// The version requirement the pin was resolved from (`kiln notebook lock --update` moves
    /// the pin to the newest approved version within it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirement: Option<String>,
}

/// A cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Cell {
    /// Text for people, passed through.
    Markdown {
        /// The Markdown source.
        source: String,
    },
    /// A call of a kernel's entry point.
    Kernel(KernelCell),
    /// Rust source, built by the registry's builder and run like a kernel cell.
    Code(CodeCell),
}

/// A code cell (format version 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeCell {
    /// Its id, unique in the notebook.
    pub id: String,
    /// The Rust source: the body of `main(input: Input<'_>, out: &mut Output) -> Result<(),
    /// Error>`, or a whole module that declares its entries with `kiln_kernel::kernel!`.
    pub source: String,
    /// Dependencies by crate name, each locked to an exact approved version.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dependencies: BTreeMap<String, DependencyLock>,
    /// The input's media type (default `text/plain`).
    #[serde(default = "text_plain")]
    pub input_type: String,
    /// The output's media type (default `text/plain`).
    #[serde(default = "text_plain")]
    pub output_type: String,
    /// The entry point a whole module's cell calls (default `main`, a body's only one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
    /// The input.
    pub input: Input,
    /// WASI imports granted, as a kernel cell's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grants: Option<BTreeSet<String>>,
    /// Limits, as a kernel cell's (the policy's code-cell maxima apply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<CellLimits>,
}

fn text_plain() -> String {
    "text/plain".to_owned()
}

/// A code cell's dependency: the requirement it was chosen with and the exact approved version
/// `kiln notebook lock` resolved it to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DependencyLock {
    /// The exact version (required to run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The requirement it was chosen with (`1`, `^0.8`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirement: Option<String>,
    /// Features to turn on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
    /// Whether the default features are on (default: yes).
    #[serde(
        default = "yes",
        rename = "default-features",
        skip_serializing_if = "Clone::clone"
    )]
    pub default_features: bool,
}

fn yes() -> bool {
    true
}

impl CodeCell {
    /// The build request of this cell (every dependency must be locked).
    pub fn request(&self) -> kiln_wire::code_builds::CodeBuildRequest {
        kiln_wire::code_builds::CodeBuildRequest {
            source: self.source.clone(),
            dependencies: self
                .dependencies
                .iter()
                .map(|(name, lock)| {
                    (
                        name.clone(),
                        kiln_wire::code_builds::CodeDependency {
                            version: lock.version.clone().unwrap_or_default(),
                            features: lock.features.clone(),
                            default_features: lock.default_features,
                        },
                    )
                })
                .collect(),
            input_type: self.input_type.clone(),
            output_type: self.output_type.clone(),
        }
    }

    /// The cell as a call of its build's entry point, under the kernel name
    /// `code:ID`.
    pub fn as_call(&self) -> KernelCell {
        KernelCell {
            id: self.id.clone(),
            kernel: format!("{CODE_KERNEL_PREFIX}{}", self.id),
            entry: self
                .entry
                .clone()
                .unwrap_or_else(|| kiln_wire::code_builds::ENTRY.to_owned()),
            input: self.input.clone(),
            grants: self.grants.clone(),
            limits: self.limits,
        }
    }
}

/// A kernel cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelCell {
    /// Its id, unique in the notebook (`[a-z0-9_-]`, at most 64 characters).
    pub id: String,
    /// The name of a kernel in the lock.
    pub kernel: String,
    /// The entry point.
    pub entry: String,
    /// The input.
    pub input: Input,
    /// WASI imports granted (`MODULE.FUNCTION` or `MODULE.*`); the `kiln` host module is always
    /// granted. Left out, the cell grants what its module imports, within what the policy allows
    /// (the module is pinned by the lock, so the grants are too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grants: Option<BTreeSet<String>>,
    /// Limits; each one left out is its default in [`DEFAULT_LIMITS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<CellLimits>,
}

/// A cell's limits as written: any of them may be left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellLimits {
    /// Fuel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Linear memory in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// Wall-clock time in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_ms: Option<u64>,
    /// Output in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_bytes: Option<u64>,
}

impl CellLimits {
    /// These limits, each one left out taken from `defaults`.
    pub fn or(self, defaults: Limits) -> Limits {
        Limits {
            fuel: self.fuel.unwrap_or(defaults.fuel),
            memory_bytes: self.memory_bytes.unwrap_or(defaults.memory_bytes),
            wall_ms: self.wall_ms.unwrap_or(defaults.wall_ms),
            output_bytes: self.output_bytes.unwrap_or(defaults.output_bytes),
        }
    }
}

impl From<Limits> for CellLimits {
    fn from(limits: Limits) -> Self {
        Self {
            fuel: Some(limits.fuel),
            memory_bytes: Some(limits.memory_bytes),
            wall_ms: Some(limits.wall_ms),
            output_bytes: Some(limits.output_bytes),
        }
    }
}

impl KernelCell {
    /// The cell's limits, each one it leaves out at its default.
    pub fn limits(&self) -> Limits {
        self.limits.unwrap_or_default().or(DEFAULT_LIMITS)
    }
}

/// A kernel cell's input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Input {
    /// UTF-8 text.
    Text(String),
    /// A JSON value, serialised compactly.
    Json(serde_json::Value),
    /// Bytes, base64-encoded (standard alphabet, padded).
    Base64(String),
    /// The output of an earlier kernel cell, by id.
    From(String),
    /// A dataset uploaded to the executor (`POST /v1/datasets`), by digest.
    Blob(Digest),
}

/// What is wrong with a notebook, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct NotebookError {
    /// `notebook`, `kernels.NAME`, or `cell ID (#N)`, with the field.
    pub location: String,
    /// What is wrong.
    pub message: String,
}

fn error(location: impl Into<String>, message: impl Into<String>) -> NotebookError {
    NotebookError {
        location: location.into(),
        message: message.into(),
    }
}

/// A lock entry that holds a requirement (or no digests) instead of an exact, pinned version.
fn unlocked(name: &str, version: Option<&serde_json::Value>) -> NotebookError {
    let version = version.map_or_else(|| "?".to_owned(), |v| v.to_string());
    error(
        format!("kernels.{name}, field `version`"),
        format!(
            "{version} is not pinned to an exact approved version with its digests: \
             `kiln notebook lock FILE` resolves it (the web app pins a kernel when it is picked)"
        ),
    )
}

/// Whether `id` may name a cell or a stored notebook: 1 to 64 characters of `a-z`, `0-9`, `-`
/// and `_` (so a notebook's id is also a safe directory name).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

impl Notebook {
    /// Parses and validates a notebook document.
    pub fn parse(bytes: &[u8]) -> Result<Self, NotebookError> {
        if bytes.len() > MAX_NOTEBOOK_BYTES {
            return Err(error(
                "notebook",
                format!(
                    "{} bytes, more than the {MAX_NOTEBOOK_BYTES} allowed",
                    bytes.len()
                ),
            ));
        }
        // The common case, a well-formed notebook, in one pass; anything else goes the slower
        // way below, which names the cell or field at fault.
        if let Ok(notebook) = serde_json::from_slice::<Notebook>(bytes)
            && READ_VERSIONS.contains(&notebook.kiln_notebook)
            && notebook.cells.len() <= MAX_CELLS
        {
            notebook.validate()?;
            return Ok(notebook);
        }
        let value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|err| error("notebook", format!("not JSON: {err}")))?;
        if !value
            .get("kiln_notebook")
            .and_then(|v| v.as_u64())
            .is_some_and(|v| READ_VERSIONS.iter().any(|r| u64::from(*r) == v))
        {
            return Err(error(
                "notebook, field `kiln_notebook`",
                "must be 1 or 2 (this executor reads format versions 1 and 2)",
            ));
        }
        // Cells one by one, so that an error names the cell.
        if let Some(cells) = value.get("cells").and_then(|c| c.as_array()) {
            if cells.len() > MAX_CELLS {
                return Err(error(
                    "notebook, field `cells`",
                    format!("{} cells, more than the {MAX_CELLS} allowed", cells.len()),
                ));
            }
            for (index, cell) in cells.iter().enumerate() {
                if let Err(err) = Cell::deserialize(cell) {
                    let id = cell.get("id").and_then(|i| i.as_str()).unwrap_or("?");
                    return Err(error(
                        format!("cell `{id}` (#{})", index + 1),
                        err.to_string(),
                    ));
                }
            }
        }
        if let Some(kernels) = value.get("kernels").and_then(|k| k.as_object()) {
            for (name, lock) in kernels {
                if let Err(err) = KernelLock::deserialize(lock) {
                    if lock.get("wasm").is_none() && lock.get("version").is_some() {
                        return Err(unlocked(name, lock.get("version")));
                    }
                    return Err(error(format!("kernels.{name}"), err.to_string()));
                }
            }
        }
        let notebook: Notebook =
            serde_json::from_value(value).map_err(|err| error("notebook", err.to_string()))?;
        notebook.validate()?;
        Ok(notebook)
    }

    fn validate(&self) -> Result<(), NotebookError> {
        for (name, lock) in &self.kernels {
            if semver::Version::parse(&lock.version).is_err() {
                return Err(unlocked(
                    name,
                    Some(&serde_json::Value::String(lock.version.clone())),
                ));
            }
        }
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for (index, cell) in self.cells.iter().enumerate() {
            let call = match cell {
                Cell::Markdown { .. } => continue,
                Cell::Kernel(cell) => Cow::Borrowed(cell),
                Cell::Code(code) => {
                    let at = |field: &str| {
                        format!("cell `{}` (#{}), field `{field}`", code.id, index + 1)
                    };
                    if self.kiln_notebook < 2 {
                        return Err(error(
                            at("type"),
                            "code cells need format version 2 (`\"kiln_notebook\": 2`)",
                        ));
                    }
                    for (name, lock) in &code.dependencies {
                        if lock
                            .version
                            .as_deref()
                            .is_none_or(|v| semver::Version::parse(v).is_err())
                        {
                            return Err(error(
                                at(&format!("dependencies.{name}")),
                                "not locked to an exact approved version: `kiln notebook lock FILE` resolves it (the web app locks a dependency when it is picked)",
                            ));
                        }
                    }
                    Cow::Owned(code.as_call())
                }
            };
            let cell = call.as_ref();
            let at = |field: &str| format!("cell `{}` (#{}), field `{field}`", cell.id, index + 1);
            if !valid_id(&cell.id) {
                return Err(error(
                    at("id"),
                    "an id is 1 to 64 characters of a-z, 0-9, `-` and `_`",
                ));
            }
            if matches!(call, Cow::Borrowed(_)) && !self.kernels.contains_key(&cell.kernel) {
                return Err(error(
                    at("kernel"),
                    format!(
                        "no kernel `{}` in the notebook's `kernels` (it has: {})",
                        cell.kernel,
                        self.kernels.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            if cell.entry.is_empty() {
                return Err(error(at("entry"), "an entry point is required"));
            }
            match &cell.input {
                Input::From(from) if !seen.contains(from) => {
                    return Err(error(
                        at("input.from"),
                        format!("`{from}` is not an earlier kernel cell"),
                    ));
                }
                Input::Base64(text) => {
                    base64::engine::general_purpose::STANDARD
                        .decode(text)
                        .map_err(|err| error(at("input.base64"), format!("not base64: {err}")))?;
                }
                _ => {}
            }
            for grant in cell.grants.iter().flatten() {
                if grant
                    .split_once('.')
                    .is_none_or(|(m, f)| m.is_empty() || f.is_empty())
                {
                    return Err(error(
                        at("grants"),
                        format!("`{grant}` is not MODULE.FUNCTION or MODULE.*"),
                    ));
                }
            }
            let limits = cell.limits();
            if limits.fuel == 0 || limits.wall_ms == 0 {
                return Err(error(at("limits"), "fuel and wall_ms must be positive"));
            }
            if !seen.insert(cell.id.clone()) {
                return Err(error(at("id"), "the id is used by an earlier cell"));
            }
        }
        Ok(())
    }

    /// The digest of the notebook as given (its bytes).
    pub fn digest_of(bytes: &[u8]) -> Digest {
        Digest::of(bytes)
    }

    /// The cells that run, in order: kernel cells, and code cells as calls of their builds
    /// (kernel `code:ID`).
    pub fn kernel_cells(&self) -> impl Iterator<Item = Cow<'_, KernelCell>> {
        self.cells.iter().filter_map(|c| match c {
            Cell::Kernel(k) => Some(Cow::Borrowed(k)),
            Cell::Code(code) => Some(Cow::Owned(code.as_call())),
            Cell::Markdown { .. } => None,
        })
    }

    /// The code cells, in order.
    pub fn code_cells(&self) -> impl Iterator<Item = &CodeCell> {
        self.cells.iter().filter_map(|c| match c {
            Cell::Code(code) => Some(code),
            _ => None,
        })
    }
}

impl Input {
    /// The input's bytes; `outputs` holds earlier cells' outputs by id, and `dataset` reads an
    /// uploaded dataset by digest.
    pub fn bytes(
        &self,
        outputs: &BTreeMap<String, Vec<u8>>,
        dataset: &dyn Fn(&Digest) -> Option<Vec<u8>>,
    ) -> Option<Vec<u8>> {
        match self {
            Input::Text(text) => Some(text.clone().into_bytes()),
            Input::Json(value) => Some(value.to_string().into_bytes()),
            Input::Base64(text) => base64::engine::general_purpose::STANDARD.decode(text).ok(),
            Input::From(id) => outputs.get(id).cloned(),
            Input::Blob(digest) => dataset(digest),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notebook(cells: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "kiln_notebook": 1,
            "metadata": {"title": "t"},
            "kernels": {"csv": {"crate": "kernel-csv-stats", "version": "0.1.0", "wasm": format!("sha256:{}", "a".repeat(64))}},
            "cells": cells,
        }))
        .unwrap()
    }

    #[test]
    fn a_valid_notebook_parses() {
        let bytes = notebook(serde_json::json!([
            {"type": "markdown", "source": "# Stats"},
            {"type": "kernel", "id": "one", "kernel": "csv", "entry": "describe", "input": {"text": "a\n1\n"}},
            {"type": "kernel", "id": "two", "kernel": "csv", "entry": "describe", "input": {"from": "one"},
             "grants": ["wasi_snapshot_preview1.fd_write"], "limits": {"fuel": 10, "memory_bytes": 65536, "wall_ms": 5, "output_bytes": 10}},
            {"type": "kernel", "id": "three", "kernel": "csv", "entry": "describe", "input": {"base64": "YQox"}},
        ]));
        let nb = Notebook::parse(&bytes).unwrap();
        assert_eq!(nb.kernel_cells().count(), 3);
        let outputs = BTreeMap::from([("one".to_owned(), b"x".to_vec())]);
        let cells: Vec<_> = nb.kernel_cells().collect();
        let none = |_: &Digest| None;
        assert_eq!(cells[1].input.bytes(&outputs, &none).unwrap(), b"x");
        assert_eq!(cells[2].input.bytes(&outputs, &none).unwrap(), b"a\n1");
        assert_eq!(cells[0].limits(), DEFAULT_LIMITS);
        assert_eq!(cells[0].grants, None);
    }

    #[test]
    fn each_limit_left_out_is_its_default() {
        let bytes = notebook(serde_json::json!([
            {"type": "kernel", "id": "one", "kernel": "csv", "entry": "describe", "input": {"text": ""},
             "limits": {"wall_ms": 50}},
        ]));
        let nb = Notebook::parse(&bytes).unwrap();
        let cell = nb.kernel_cells().next().unwrap();
        assert_eq!(
            cell.limits(),
            Limits {
                wall_ms: 50,
                ..DEFAULT_LIMITS
            }
        );
        // Written back as it was given: the defaults are not copied into the document.
        let again = serde_json::to_value(&nb).unwrap();
        assert_eq!(
            again["cells"][0]["limits"],
            serde_json::json!({"wall_ms": 50})
        );
    }

    #[test]
    fn a_requirement_in_the_lock_points_to_the_lock_command() {
        for lock in [
            serde_json::json!({"crate": "kernel-csv-stats", "version": "^0.2"}),
            serde_json::json!({"crate": "kernel-csv-stats", "version": "^0.2", "wasm": format!("sha256:{}", "a".repeat(64))}),
        ] {
            let bytes = serde_json::to_vec(&serde_json::json!({
                "kiln_notebook": 1, "kernels": {"csv": lock}, "cells": [],
            }))
            .unwrap();
            let err = Notebook::parse(&bytes).unwrap_err();
            assert_eq!(err.location, "kernels.csv, field `version`");
            assert!(err.message.contains("kiln notebook lock"), "{err}");
        }
    }

    #[test]
    fn a_dataset_input_is_read_by_digest() {
        let digest = Digest::of(b"rows");
        let bytes = notebook(serde_json::json!([
            {"type": "kernel", "id": "one", "kernel": "csv", "entry": "describe", "input": {"blob": digest}},
        ]));
        let nb = Notebook::parse(&bytes).unwrap();
        let cell = nb.kernel_cells().next().unwrap();
        let read = |d: &Digest| (*d == digest).then(|| b"rows".to_vec());
        assert_eq!(cell.input.bytes(&BTreeMap::new(), &read).unwrap(), b"rows");
    }

    #[test]
    fn errors_name_the_cell_and_the_field() {
        for (cells, want) in [
            (
                serde_json::json!([{"type": "kernel", "id": "a", "kernel": "nope", "entry": "e", "input": {"text": ""}}]),
                "cell `a` (#1), field `kernel`",
            ),
            (
                serde_json::json!([{"type": "kernel", "id": "a", "kernel": "csv", "entry": "e", "input": {"from": "b"}}]),
                "field `input.from`",
            ),
            (
                serde_json::json!([{"type": "kernel", "id": "a", "kernel": "csv", "entry": "e", "input": {"base64": "!!"}}]),
                "field `input.base64`",
            ),
            (
                serde_json::json!([{"type": "kernel", "id": "A B", "kernel": "csv", "entry": "e", "input": {"text": ""}}]),
                "field `id`",
            ),
            (
                serde_json::json!([{"type": "kernel", "id": "a", "kernel": "csv", "entry": "e", "input": {"text": ""}, "grants": ["nodot"]}]),
                "field `grants`",
            ),
            (
                serde_json::json!([{"type": "kernel", "id": "a", "kernel": "csv", "entry": "e", "input": {"text": ""}},
                                {"type": "kernel", "id": "a", "kernel": "csv", "entry": "e", "input": {"text": ""}}]),
                "cell `a` (#2), field `id`",
            ),
            (
                serde_json::json!([{"type": "markdown", "source": "x"}, {"type": "kernel", "id": "z", "kernel": "csv", "entry": "e", "input": {"text": ""}, "extra": 1}]),
                "cell `z` (#2)",
            ),
            (
                serde_json::json!([{"type": "kernel", "id": "a", "kernel": "csv", "entry": "e", "input": {"text": ""}, "limits": {"fuel": 0, "memory_bytes": 1, "wall_ms": 1, "output_bytes": 1}}]),
                "field `limits`",
            ),
        ] {
            let err = Notebook::parse(&notebook(cells)).unwrap_err();
            assert!(err.to_string().contains(want), "{want}: {err}");
        }
        assert!(
            Notebook::parse(b"{")
                .unwrap_err()
                .to_string()
                .contains("not JSON")
        );
        let err =
            Notebook::parse(br#"{"kiln_notebook": 3, "kernels": {}, "cells": []}"#).unwrap_err();
        assert!(err.to_string().contains("kiln_notebook"), "{err}");
        let err = Notebook::parse(br#"{"kiln_notebook": 1, "kernels": {"k": {"crate": "c", "version": "1.0.0", "wasm": "md5:x"}}, "cells": []}"#).unwrap_err();
        assert!(err.to_string().starts_with("kernels.k"), "{err}");
        assert!(Notebook::parse(&vec![b' '; MAX_NOTEBOOK_BYTES + 1]).is_err());
    }

    fn code_cell(version: u32, dependency: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "kiln_notebook": version,
            "kernels": {},
            "cells": [
                {"type": "code", "id": "pick", "source": "out.write_str(\"hi\")",
                 "dependencies": {"serde_json": dependency}, "input": {"text": ""}},
                {"type": "code", "id": "next", "source": "", "input": {"from": "pick"},
                 "limits": {"wall_ms": 5}},
            ],
        }))
        .unwrap()
    }

    #[test]
    fn a_code_cell_is_a_call_of_its_build_and_needs_version_2_and_a_lock() {
        let nb = Notebook::parse(&code_cell(2, serde_json::json!({"version": "1.0.145"}))).unwrap();
        let calls: Vec<_> = nb.kernel_cells().collect();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].kernel, "code:pick");
        assert_eq!(calls[0].entry, "main");
        assert_eq!(calls[1].limits().wall_ms, 5);
        let request = nb.code_cells().next().unwrap().request();
        assert_eq!(request.input_type, "text/plain");
        assert_eq!(request.dependencies["serde_json"].version, "1.0.145");
        // Written back as given.
        let again = serde_json::to_value(&nb).unwrap();
        assert_eq!(
            again["cells"][0]["dependencies"],
            serde_json::json!({"serde_json": {"version": "1.0.145"}})
        );

        let err =
            Notebook::parse(&code_cell(1, serde_json::json!({"version": "1.0.145"}))).unwrap_err();
        assert!(err.to_string().contains("format version 2"), "{err}");
        let err =
            Notebook::parse(&code_cell(2, serde_json::json!({"requirement": "1"}))).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cell `pick` (#1), field `dependencies.serde_json`"),
            "{err}"
        );
    }
}
