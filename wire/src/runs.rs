//! The executor's answers: a notebook's preflight, run records, outputs and replays.

use std::collections::{BTreeMap, BTreeSet};

use kiln_policy::Digest;
use kiln_policy::preflight::{Limits, Reason};
use serde::{Deserialize, Serialize};

/// One kernel cell's preflight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CellPreflight {
    /// The cell's id.
    pub id: String,
    /// The kernel's name in the notebook.
    pub kernel: String,
    /// Whether it may run.
    pub allow: bool,
    /// Every reason it may not, each with a stable code.
    #[schema(value_type = Vec<Object>)]
    pub reasons: Vec<Reason>,
    /// Whether the signed `.cwasm` is used (else the verified `.wasm` is compiled here).
    pub precompiled: bool,
    /// What the cell grants: its own `grants`, or, when it names none, what its module imports
    /// within what the policy allows.
    #[serde(default)]
    pub grants: BTreeSet<String>,
    /// The limits it runs under, each one it leaves out at its default.
    #[schema(value_type = Object)]
    pub limits: Limits,
    /// A code cell that does not compile: rustc's messages, placed in the cell's source.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<crate::code_builds::Diagnostic>,
}

/// A notebook's preflight: it runs only when every kernel cell is allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PreflightReport {
    /// The notebook's digest.
    #[schema(value_type = String)]
    pub notebook: Digest,
    /// Whether every kernel cell may run.
    pub allow: bool,
    /// Each kernel cell, in order.
    pub cells: Vec<CellPreflight>,
}

/// What a cell cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CellMetrics {
    /// Fuel consumed.
    pub fuel: u64,
    /// Wall time in microseconds.
    pub wall_us: u64,
    /// The largest linear memory the kernel had, in bytes.
    pub peak_memory_bytes: u64,
    /// Output bytes written.
    pub output_bytes: u64,
}

/// How a cell ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CellStatus {
    /// It returned its output.
    Ok,
    /// The call failed (see the cell's `error`).
    Error,
    /// An earlier cell it needs failed, so it was not called.
    Skipped,
}

impl CellStatus {
    /// The status's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            CellStatus::Ok => "ok",
            CellStatus::Error => "error",
            CellStatus::Skipped => "skipped",
        }
    }
}

impl std::fmt::Display for CellStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed cell's error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CellError {
    /// `out-of-fuel`, `deadline`, `memory-limit`, `stack-overflow`, `output-limit`,
    /// `kernel-error`, `trap`, `contract` or `skipped`.
    pub code: String,
    /// For people.
    pub message: String,
}

/// One cell's part of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CellRecord {
    /// The cell's id.
    pub id: String,
    /// The kernel's name in the notebook.
    pub kernel: String,
    /// The entry point.
    pub entry: String,
    /// How it ended.
    pub status: CellStatus,
    /// The input's digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub input: Option<Digest>,
    /// The output's digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub output: Option<Digest>,
    /// Why the call failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CellError>,
    /// Measurements.
    pub metrics: CellMetrics,
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunRecord {
    /// The notebook's digest.
    #[schema(value_type = String)]
    pub notebook: Digest,
    /// Each kernel's module digest, by the notebook's name for it.
    #[schema(value_type = BTreeMap<String, String>)]
    pub kernels: BTreeMap<String, Digest>,
    /// The seed of a deterministic run (clocks fixed, randomness seeded); `None` otherwise.
    pub seed: Option<u64>,
    /// The cells, in order.
    pub cells: Vec<CellRecord>,
    /// Who ran it (the executor's caller), when it was run through the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ran_by: Option<String>,
}

/// An output, as text when it is UTF-8, else base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OutputBody {
    /// Its digest.
    #[schema(value_type = String)]
    pub digest: Digest,
    /// The output as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The output in base64 (when it is not UTF-8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
}

impl OutputBody {
    /// The output `bytes`: as text when they are UTF-8, else in base64.
    pub fn of(bytes: &[u8]) -> Self {
        use base64::Engine as _;
        let digest = Digest::of(bytes);
        match std::str::from_utf8(bytes) {
            Ok(text) => Self {
                digest,
                text: Some(text.to_owned()),
                base64: None,
            },
            Err(_) => Self {
                digest,
                text: None,
                base64: Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
            },
        }
    }
}

/// A finished run: its id, its record and its outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunBody {
    /// The run's id.
    pub id: String,
    /// When it finished (Unix milliseconds).
    pub created_ms: u64,
    /// The run record (docs/notebook.md).
    pub record: RunRecord,
    /// Each cell's output by cell id.
    pub outputs: BTreeMap<String, OutputBody>,
}

/// One cell of a replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReplayedCell {
    /// The cell's id.
    pub id: String,
    /// The recorded output digest.
    #[schema(value_type = Option<String>)]
    pub recorded: Option<Digest>,
    /// The replayed output digest.
    #[schema(value_type = Option<String>)]
    pub replayed: Option<Digest>,
    /// Whether they are equal.
    pub matches: bool,
}

/// A replay's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReplayReport {
    /// The run replayed.
    pub run: String,
    /// Whether every cell's output digest matched.
    pub matches: bool,
    /// Each cell.
    pub cells: Vec<ReplayedCell>,
}

/// The answer to a run or replay that preflight refused (422): nothing ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BlockedBody {
    /// Always `blocked`.
    pub error: String,
    /// For people.
    pub message: String,
    /// The preflight, with every reason.
    pub preflight: PreflightReport,
}

/// One event of a streamed run (`POST /v1/runs` with `Accept: application/x-ndjson`), one JSON
/// object per line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum RunEvent {
    /// Every cell passed preflight; the run starts.
    Preflight {
        /// The preflight.
        preflight: PreflightReport,
    },
    /// Preflight refused a cell: nothing runs.
    Blocked {
        /// The preflight, with every reason.
        preflight: PreflightReport,
    },
    /// A code cell's build moved on (before preflight): `queued`, `compiling`, `checking`,
    /// `signed` or `failed`; `cached` when an earlier build of the same cell is used.
    Build {
        /// The cell's id.
        cell: String,
        /// The build's stage.
        stage: crate::code_builds::CodeBuildStage,
        /// Whether the build was made before (by any executor).
        #[serde(default)]
        cached: bool,
    },
    /// A cell is called.
    CellStarted {
        /// The cell's id.
        cell: String,
    },
    /// A chunk of a cell's output.
    Output {
        /// The cell's id.
        cell: String,
        /// The chunk's number, from 0.
        chunk: usize,
        /// The chunk as text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        /// The chunk in base64 (when it is not UTF-8).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base64: Option<String>,
    },
    /// A cell is done (or skipped).
    CellFinished {
        /// Its record.
        cell: CellRecord,
    },
    /// The run is done and stored.
    RunFinished {
        /// The run's id.
        id: String,
        /// Its record.
        record: RunRecord,
    },
    /// The run stopped.
    Error {
        /// A stable code.
        error: String,
        /// What went wrong.
        message: String,
        /// The request's id, for an internal error.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
    },
}
