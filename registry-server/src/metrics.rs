//! The registry's metrics, kept by `prometheus-client` and served at `/metrics` in the
//! OpenMetrics text format. Another service in the same process (the executor under
//! `kiln serve`) registers its own metrics in the same registry.

use std::sync::RwLock;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The labels of the versions gauge.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct StateLabels {
    /// A review state.
    pub state: String,
}

/// The labels of the jobs gauge.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct JobLabels {
    /// `audit` or `build`.
    pub kind: String,
    /// `queued`, `running`, `done` or `dead`.
    pub state: String,
}

/// The registry's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: RwLock<Registry>,
    publishes: Counter,
    publish_seconds: Counter<f64, AtomicU64>,
    downloads: Counter,
    /// Versions by review state, set from the database at each scrape.
    pub versions: Family<StateLabels, Gauge>,
    /// Jobs by kind and state, set from the database at each scrape.
    pub jobs: Family<JobLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let metrics = Self {
            registry: RwLock::new(Registry::default()),
            publishes: Counter::default(),
            publish_seconds: Counter::default(),
            downloads: Counter::default(),
            versions: Family::default(),
            jobs: Family::default(),
        };
        metrics.register(|registry| {
            registry.register(
                "kiln_publish",
                "Versions accepted into quarantine",
                metrics.publishes.clone(),
            );
            registry.register(
                "kiln_publish_seconds",
                "Time spent handling accepted publishes",
                metrics.publish_seconds.clone(),
            );
            registry.register(
                "kiln_download",
                "Crate downloads served",
                metrics.downloads.clone(),
            );
            registry.register(
                "kiln_versions",
                "Versions by review state",
                metrics.versions.clone(),
            );
            registry.register("kiln_jobs", "Jobs by kind and state", metrics.jobs.clone());
        });
        metrics
    }
}

impl Metrics {
    /// Registers more metrics (another service's) in the same registry.
    pub fn register(&self, register: impl FnOnce(&mut Registry)) {
        register(&mut self.registry.write().expect("metrics registry"));
    }

    /// Counts one publish that took `elapsed`.
    pub fn record_publish(&self, elapsed: Duration) {
        self.publishes.inc();
        self.publish_seconds.inc_by(elapsed.as_secs_f64());
    }

    /// Counts one download.
    pub fn record_download(&self) {
        self.downloads.inc();
    }

    /// Every registered metric in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(
            &mut out,
            &self.registry.read().expect("metrics registry"),
        )
        .expect("writing to a String does not fail");
        out
    }
}

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_keep_their_names() {
        let metrics = Metrics::default();
        metrics.record_publish(Duration::from_millis(1500));
        metrics
            .versions
            .get_or_create(&StateLabels {
                state: "built".into(),
            })
            .set(3);
        let text = metrics.render();
        assert!(text.contains("kiln_publish_total 1\n"), "{text}");
        assert!(text.contains("kiln_publish_seconds_total 1.5\n"), "{text}");
        assert!(
            text.contains("kiln_versions{state=\"built\"} 3\n"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
