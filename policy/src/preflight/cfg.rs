//! The `[execution]` section of a policy file: what a cell may use, and what its artifact must
//! carry.

use std::collections::BTreeSet;

use serde::Deserialize;
use toml::Spanned;

use crate::config::{At, PolicyError};
use crate::intoto::StatementKind;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawExecution {
    max_fuel: u64,
    max_memory_bytes: u64,
    max_wall_ms: u64,
    max_output_bytes: u64,
    max_run_fuel: u64,
    max_run_wall_ms: u64,
    max_run_output_bytes: u64,
    max_run_stored_bytes: u64,
    run_retention_days: u64,
    run_store_max_bytes: u64,
    run_store_max_runs: u64,
    require: Vec<Spanned<String>>,
    revocation_max_age_secs: u64,
    max_dataset_bytes: u64,
    fuel_price: Option<RawFuelPrice>,
    code_cells: Spanned<String>,
    code_cell_max_fuel: u64,
    code_cell_max_memory_bytes: u64,
    code_cell_max_wall_ms: u64,
    code_cell_max_output_bytes: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFuelPrice {
    per_billion: f64,
    currency: String,
}

impl Default for RawExecution {
    fn default() -> Self {
        Self {
            max_fuel: 10_000_000_000,
            max_memory_bytes: 256 * 1024 * 1024,
            max_wall_ms: 30_000,
            max_output_bytes: 16 * 1024 * 1024,
            max_run_fuel: 100_000_000_000,
            max_run_wall_ms: 120_000,
            max_run_output_bytes: 64 * 1024 * 1024,
            max_run_stored_bytes: 64 * 1024 * 1024,
            run_retention_days: 30,
            run_store_max_bytes: 1024 * 1024 * 1024,
            run_store_max_runs: 100_000,
            require: vec![
                Spanned::new(0..0, "provenance".into()),
                Spanned::new(0..0, "review".into()),
            ],
            revocation_max_age_secs: 3600,
            max_dataset_bytes: 256 * 1024 * 1024,
            fuel_price: None,
            code_cells: Spanned::new(0..0, "deny".into()),
            code_cell_max_fuel: 1_000_000_000,
            code_cell_max_memory_bytes: 64 * 1024 * 1024,
            code_cell_max_wall_ms: 10_000,
            code_cell_max_output_bytes: 1024 * 1024,
        }
    }
}

/// What a cell may use.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionPolicy {
    /// Fuel per cell.
    pub max_fuel: u64,
    /// Linear memory per cell.
    pub max_memory_bytes: u64,
    /// Wall-clock time per cell.
    pub max_wall_ms: u64,
    /// Output per cell.
    pub max_output_bytes: u64,
    /// What one run may use in all, whatever its cells ask for.
    pub run_budget: RunBudget,
    /// How long and how much the executor keeps of its runs.
    pub retention: Retention,
    /// Statements an artifact must carry, each by a trusted key of its role.
    pub require: BTreeSet<StatementKind>,
    /// The oldest revocation list the executor accepts.
    pub revocation_max_age_secs: u64,
    /// The largest dataset a person may upload to the executor for cells to read.
    pub max_dataset_bytes: u64,
    /// What fuel costs, when the deployment puts a price on it (shown with each cell's telemetry).
    pub fuel_price: Option<FuelPrice>,
    /// Whether code cells (Rust written in the notebook) may run.
    pub code_cells: CodeCells,
    /// The most a code cell may ask for; code cells are held to these instead of the `max_*`
    /// above.
    pub code_cell_limits: super::Limits,
}

/// Whether code cells may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CodeCells {
    /// No code cell runs (the default).
    Deny,
    /// A code cell runs when a trusted builder key signed its build's provenance, naming the
    /// cell's source, and a passing audit of its closure.
    BuilderSigned,
}

impl CodeCells {
    /// The setting as written in a policy file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deny => "deny",
            Self::BuilderSigned => "builder-signed",
        }
    }
}

/// The price of fuel: `per_billion` units of `currency` for 10⁹ fuel.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FuelPrice {
    /// The price of 10⁹ fuel.
    pub per_billion: f64,
    /// The currency or unit the price is in (`EUR`, `credits`, …).
    pub currency: String,
}

impl FuelPrice {
    /// The cost of `fuel`.
    pub fn cost(&self, fuel: u64) -> f64 {
        fuel as f64 / 1e9 * self.per_billion
    }
}

/// What one run may use in all: a notebook of many cells stops with the error `run-budget` when
/// it reaches any of these, whatever each cell's own limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunBudget {
    /// Fuel of all its cells.
    pub fuel: u64,
    /// Wall-clock time of all its cells.
    pub wall_ms: u64,
    /// Output of all its cells.
    pub output_bytes: u64,
    /// What the run store keeps of its outputs (each distinct output once).
    pub stored_bytes: u64,
}

impl RunBudget {
    /// No budget beyond each cell's own limits.
    pub const UNLIMITED: RunBudget = RunBudget {
        fuel: u64::MAX,
        wall_ms: u64::MAX,
        output_bytes: u64::MAX,
        stored_bytes: u64::MAX,
    };
}

/// How long and how much of its runs an executor keeps: older runs, and the oldest beyond the
/// size or count, are pruned (their records, and notebooks and outputs no kept run refers to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Runs older than this many days go.
    pub max_age_days: u64,
    /// The store's size: records, notebooks and outputs.
    pub max_bytes: u64,
    /// How many runs are kept.
    pub max_runs: u64,
}

impl Retention {
    /// The time before which a run is too old to keep, as of `now_ms`.
    pub fn cutoff_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.max_age_days.saturating_mul(86_400_000))
    }
}

impl RawExecution {
    /// Checks the statement kinds required.
    pub(crate) fn validate(self, at: &At<'_>) -> Result<ExecutionPolicy, PolicyError> {
        let mut require = BTreeSet::new();
        for kind in &self.require {
            let parsed = StatementKind::ALL
                .into_iter()
                .find(|k| k.as_str() == kind.get_ref())
                .ok_or_else(|| {
                    at(
                        kind.span(),
                        format!(
                            "`{}` is not a statement kind (provenance, audit, review, revocation)",
                            kind.get_ref()
                        ),
                    )
                })?;
            require.insert(parsed);
        }
        let fuel_price = match self.fuel_price {
            Some(price) if !(price.per_billion.is_finite() && price.per_billion >= 0.0) => {
                return Err(at(
                    0..0,
                    "`fuel_price.per_billion` must be a number ≥ 0".into(),
                ));
            }
            Some(price) if price.currency.trim().is_empty() => {
                return Err(at(0..0, "`fuel_price.currency` must not be empty".into()));
            }
            Some(price) => Some(FuelPrice {
                per_billion: price.per_billion,
                currency: price.currency,
            }),
            None => None,
        };
        let code_cells = match self.code_cells.get_ref().as_str() {
            "deny" => CodeCells::Deny,
            "builder-signed" => CodeCells::BuilderSigned,
            other => {
                return Err(at(
                    self.code_cells.span(),
                    format!("`code_cells` is \"deny\" or \"builder-signed\", not `{other}`"),
                ));
            }
        };
        Ok(ExecutionPolicy {
            max_fuel: self.max_fuel,
            max_memory_bytes: self.max_memory_bytes,
            max_wall_ms: self.max_wall_ms,
            max_output_bytes: self.max_output_bytes,
            run_budget: RunBudget {
                fuel: self.max_run_fuel,
                wall_ms: self.max_run_wall_ms,
                output_bytes: self.max_run_output_bytes,
                stored_bytes: self.max_run_stored_bytes,
            },
            retention: Retention {
                max_age_days: self.run_retention_days,
                max_bytes: self.run_store_max_bytes,
                max_runs: self.run_store_max_runs,
            },
            require,
            revocation_max_age_secs: self.revocation_max_age_secs,
            max_dataset_bytes: self.max_dataset_bytes,
            fuel_price,
            code_cells,
            code_cell_limits: super::Limits {
                fuel: self.code_cell_max_fuel,
                memory_bytes: self.code_cell_max_memory_bytes,
                wall_ms: self.code_cell_max_wall_ms,
                output_bytes: self.code_cell_max_output_bytes,
            },
        })
    }
}
