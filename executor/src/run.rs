//! Running a notebook: kernel cells in order, each cell's input resolved (inline, or an earlier
//! cell's output), outputs kept by digest, and a [`RunRecord`] with the notebook's digest, each
//! kernel's module digest, and per cell the input and output digests and metrics. A run in
//! deterministic mode records its seed; [`replay`] runs the record again in that mode and says,
//! per cell, whether the output digest matches.

use std::collections::BTreeMap;

use kiln_policy::Digest;
pub use kiln_wire::runs::{CellError, CellRecord, CellStatus, ReplayedCell, RunRecord};

use crate::notebook::{Notebook, NotebookError};
use crate::runtime::{CallError, Cancel, Kernel, Limits, Metrics, Runtime};
pub use kiln_policy::preflight::RunBudget;

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
        &RunBudget::UNLIMITED,
        &|_| None,
    )
}

/// What a run may still use of its [`RunBudget`].
#[derive(Debug, Clone, Copy)]
struct Remaining(RunBudget);

impl Remaining {
    /// `limits` capped by what is left, and whether any was capped; `None` when something is
    /// used up.
    fn cap(&self, limits: Limits) -> Option<(Limits, bool)> {
        let left = self.0;
        let output_left = left.output_bytes.min(left.stored_bytes);
        if left.fuel == 0 || left.wall_ms == 0 || output_left == 0 {
            return None;
        }
        let capped = Limits {
            fuel: limits.fuel.min(left.fuel),
            wall_ms: limits.wall_ms.min(left.wall_ms),
            output_bytes: limits.output_bytes.min(output_left),
            ..limits
        };
        Some((capped, capped != limits))
    }

    fn spend(&mut self, metrics: &Metrics, stored: u64) {
        let left = &mut self.0;
        left.fuel = left.fuel.saturating_sub(metrics.fuel);
        left.wall_ms = left.wall_ms.saturating_sub(metrics.wall_us.div_ceil(1000));
        left.output_bytes = left.output_bytes.saturating_sub(metrics.output_bytes);
        left.stored_bytes = left.stored_bytes.saturating_sub(stored);
    }
}

/// The `run-budget` error of a cell stopped by its run's budget.
fn over_budget(budget: &RunBudget) -> CellError {
    CellError {
        code: "run-budget".into(),
        message: format!(
            "run budget: the run used what it may in all ({} fuel, {} ms, {} bytes of output, {} bytes stored)",
            budget.fuel, budget.wall_ms, budget.output_bytes, budget.stored_bytes
        ),
    }
}

/// [`run`], telling `observe` as each cell starts and finishes, reading uploaded datasets with
/// `dataset`; once `cancel` is set, the cell
/// running stops and the rest do not start (each ends with the error `cancelled`). Each cell's
/// limits are capped by what is left of `budget`; once the run reaches it, the cell that
/// reached it and the rest end with the error `run-budget`.
#[allow(
    clippy::too_many_arguments,
    reason = "one run's inputs, each its own concern"
)]
pub fn run_observed(
    runtime: &Runtime,
    notebook: &Notebook,
    notebook_digest: Digest,
    kernels: &BTreeMap<String, LoadedKernel>,
    seed: Option<u64>,
    observe: &mut dyn FnMut(CellEvent<'_>),
    cancel: &Cancel,
    budget: &RunBudget,
    dataset: &dyn Fn(&Digest) -> Option<Vec<u8>>,
) -> Result<RunResult, NotebookError> {
    let mut remaining = Remaining(*budget);
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
        let Some(input) = cell.input.bytes(&outputs_by_cell, dataset) else {
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
        let Some((limits, capped)) = remaining.cap(cell.limits()) else {
            record.status = CellStatus::Error;
            record.error = Some(over_budget(budget));
            observe(CellEvent::Finished {
                record: &record,
                output: None,
            });
            cells.push(record);
            continue;
        };
        observe(CellEvent::Started { id: &cell.id });
        record.input = Some(Digest::of(&input));
        let outcome =
            runtime.call_until(&loaded.kernel, &cell.entry, &input, &limits, seed, cancel);
        record.metrics = outcome.metrics;
        let stored = match &outcome.result {
            Ok(output) if !outputs.contains_key(&Digest::of(output)) => output.len() as u64,
            _ => 0,
        };
        remaining.spend(&record.metrics, stored);
        match outcome.result {
            Err(CallError::OutOfFuel(_) | CallError::Deadline(_) | CallError::OutputLimit(_))
                if capped =>
            {
                record.status = CellStatus::Error;
                record.error = Some(over_budget(budget));
                observe(CellEvent::Finished {
                    record: &record,
                    output: None,
                });
            }
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
            ran_by: None,
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
    budget: &RunBudget,
    dataset: &dyn Fn(&Digest) -> Option<Vec<u8>>,
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
        budget,
        dataset,
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
