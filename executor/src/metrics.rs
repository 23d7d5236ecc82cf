//! The executor's metrics, kept by `prometheus-client`: runs by outcome, cells, fuel and wall
//! time, preflight refusals by reason, requests turned away, requests in flight, stored runs.
//! Under `kiln serve` they are registered in the registry's `/metrics`; a standalone executor
//! serves its own.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `ok` (every cell), `failed` (some cell did not succeed) or `blocked` (by preflight).
    pub outcome: &'static str,
}

/// A preflight refusal's reason.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct CodeLabels {
    /// The reason code.
    pub code: String,
}

/// The executor's metrics.
#[derive(Debug, Default, Clone)]
pub struct ExecutorMetrics {
    /// Runs by outcome.
    pub runs: Family<OutcomeLabels, Counter>,
    /// Requests answered 503 because every slot and queue place was taken.
    pub rejected_busy: Counter,
    /// Kernel cells called.
    pub cells: Counter,
    /// Fuel consumed by all cells.
    pub fuel: Counter,
    /// Wall time of all cells, in seconds.
    pub cell_seconds: Counter<f64, AtomicU64>,
    /// Cells refused by preflight, by reason code.
    pub denials: Family<CodeLabels, Counter>,
    /// Requests running or waiting for a slot.
    pub in_flight: Gauge,
    /// Runs in the run store.
    pub stored_runs: Gauge,
}

impl ExecutorMetrics {
    /// Counts a run that ended with `outcome` (`ok`, `failed`, `blocked`).
    pub fn run(&self, outcome: &'static str) {
        self.runs.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// Registers every metric in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "kiln_executor_runs",
            "Notebook runs by outcome",
            self.runs.clone(),
        );
        registry.register(
            "kiln_executor_rejected",
            "Requests answered 503 because every slot and queue place was taken",
            self.rejected_busy.clone(),
        );
        registry.register(
            "kiln_executor_cells",
            "Kernel cells called",
            self.cells.clone(),
        );
        registry.register(
            "kiln_executor_fuel",
            "Fuel consumed by kernel cells",
            self.fuel.clone(),
        );
        registry.register(
            "kiln_executor_cell_seconds",
            "Wall time of kernel cells",
            self.cell_seconds.clone(),
        );
        registry.register(
            "kiln_executor_preflight_denials",
            "Cells refused by preflight, by reason code",
            self.denials.clone(),
        );
        registry.register(
            "kiln_executor_in_flight",
            "Requests running or waiting for a slot",
            self.in_flight.clone(),
        );
        registry.register(
            "kiln_executor_stored_runs",
            "Runs in the run store",
            self.stored_runs.clone(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metric_names_stay() {
        let metrics = ExecutorMetrics::default();
        metrics.run("ok");
        metrics
            .denials
            .get_or_create(&CodeLabels {
                code: "revoked".into(),
            })
            .inc();
        metrics.cell_seconds.inc_by(0.25);
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "kiln_executor_runs_total{outcome=\"ok\"} 1",
            "kiln_executor_preflight_denials_total{code=\"revoked\"} 1",
            "kiln_executor_cell_seconds_total 0.25",
            "kiln_executor_rejected_total 0",
            "kiln_executor_stored_runs 0",
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
    }
}
