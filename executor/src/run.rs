//! Running a notebook: kernel cells in order, each cell's input resolved (inline, or an earlier
//! cell's output), outputs kept by digest, and a [`RunRecord`] with the notebook's digest, each
//! kernel's module digest, and per cell the input and output digests and metrics. A run in
//! deterministic mode records its seed; [`replay`] runs the record again in that mode and says,
//! per cell, whether the output digest matches.

use std::collections::BTreeMap;

use kiln_policy::Digest;
pub use kiln_wire::runs::{CellError, CellRecord, CellStatus, ReplayedCell, RunRecord};

use crate::notebook::{Notebook, NotebookError};
use crate::runtime::{Cancel, Kernel, Metrics, Runtime};

/// A run's record and its outputs by digest.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The record.
    pub record: RunRecord,
    /// Every output, by its digest.
    pub outputs: BTreeMap<Digest, Vec<u8>>,
}

/// A loaded kernel and the digest of the module it was loaded from.
#[derive(Debug, Clone)]
pub struct LoadedKernel {
    /// The kernel.
    pub kernel: Kernel,
    /// The `.wasm` digest (what the notebook pins).
    pub wasm: Digest,
}

/// What a run reports as it goes, cell by cell.
#[derive(Debug, Clone, Copy)]
pub enum CellEvent<'a> {
    /// A kernel cell is about to be called.
    Started {
        /// The cell's id.
        id: &'a str,
    },
    /// A kernel cell is done (or skipped): its record and its output.
    Finished {
        /// The cell's record.
        record: &'a CellRecord,
        /// Its output, when it succeeded.
        output: Option<&'a [u8]>,
    },
}

/// Runs `notebook` (whose bytes hash to `notebook_digest`) with `kernels` by name.
pub fn run(
    runtime: &Runtime,
    notebook: &Notebook,
    notebook_digest: Digest,
    kernels: &BTreeMap<String, LoadedKernel>,
    seed: Option<u64>,
) -> Result<RunResult, NotebookError> {
    run_observed(
        runtime,
        notebook,
        notebook_digest,
        kernels,
        seed,
        &mut |_| {},
        &Cancel::default(),
    )
}

/// [`run`], telling `observe` as each cell starts and finishes; once `cancel` is set, the cell
/// running stops and the rest do not start (each ends with the error `cancelled`).
pub fn run_observed(
    runtime: &Runtime,
    notebook: &Notebook,
    notebook_digest: Digest,
    kernels: &BTreeMap<String, LoadedKernel>,
    seed: Option<u64>,
    observe: &mut dyn FnMut(CellEvent<'_>),
    cancel: &Cancel,
) -> Result<RunResult, NotebookError> {
    let mut outputs_by_cell: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut outputs = BTreeMap::new();
    let mut cells = Vec::new();
    for cell in notebook.kernel_cells() {
        let loaded = kernels.get(&cell.kernel).ok_or_else(|| NotebookError {
            location: format!("cell `{}`", cell.id),
            message: format!("kernel `{}` was not loaded", cell.kernel),
        })?;
        let mut record = CellRecord {
            id: cell.id.clone(),
            kernel: cell.kernel.clone(),
            entry: cell.entry.clone(),
            status: CellStatus::Skipped,
            input: None,
            output: None,
            error: None,
            metrics: Metrics::default(),
        };
        let Some(input) = cell.input.bytes(&outputs_by_cell) else {
            record.error = Some(CellError {
                code: "skipped".into(),
                message: "the cell it takes its input from did not succeed".into(),
            });
            observe(CellEvent::Finished {
                record: &record,
                output: None,
            });
            cells.push(record);
            continue;
        };
        observe(CellEvent::Started { id: &cell.id });
        record.input = Some(Digest::of(&input));
        let outcome = runtime.call_until(
            &loaded.kernel,
            &cell.entry,
            &input,
            &cell.limits(),
            seed,
            cancel,
        );
        record.metrics = outcome.metrics;
        match outcome.result {
            Ok(output) => {
                let digest = Digest::of(&output);
                record.status = CellStatus::Ok;
                record.output = Some(digest);
                observe(CellEvent::Finished {
                    record: &record,
                    output: Some(&output),
                });
                outputs_by_cell.insert(cell.id.clone(), output.clone());
                outputs.insert(digest, output);
            }
            Err(err) => {
                record.status = CellStatus::Error;
                record.error = Some(CellError {
                    code: err.code().into(),
                    message: err.to_string(),
                });
                observe(CellEvent::Finished {
                    record: &record,
                    output: None,
                });
            }
        }
        cells.push(record);
    }
    Ok(RunResult {
        record: RunRecord {
            notebook: notebook_digest,
            kernels: kernels
                .iter()
                .map(|(name, k)| (name.clone(), k.wasm))
                .collect(),
            seed,
            cells,
        },
        outputs,
    })
}

/// Runs a recorded run again in deterministic mode with its seed and compares each cell's
/// output digest. A record without a seed (not deterministic) replays with seed 0 and is not
/// expected to match where the kernel reads the clock or randomness.
pub fn replay(
    runtime: &Runtime,
    notebook: &Notebook,
    record: &RunRecord,
    kernels: &BTreeMap<String, LoadedKernel>,
    cancel: &Cancel,
) -> Result<Vec<ReplayedCell>, NotebookError> {
    for (name, digest) in &record.kernels {
        if kernels.get(name).map(|k| k.wasm) != Some(*digest) {
            return Err(NotebookError {
                location: format!("kernels.{name}"),
                message: format!("the run used {digest}; a replay needs that module"),
            });
        }
    }
    let again = run_observed(
        runtime,
        notebook,
        record.notebook,
        kernels,
        Some(record.seed.unwrap_or(0)),
        &mut |_| {},
        cancel,
    )?;
    Ok(record
        .cells
        .iter()
        .zip(again.record.cells)
        .map(|(before, after)| ReplayedCell {
            id: before.id.clone(),
            recorded: before.output,
            replayed: after.output,
            matches: before.output == after.output,
        })
        .collect())
}
