//! Counters for `/metrics`, in the Prometheus text format.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A gauge: its name, its help text, and its samples (labels and value).
pub type Gauge<'a> = (&'a str, &'a str, Vec<(Vec<(&'a str, String)>, i64)>);

/// The registry's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    publishes: AtomicU64,
    publish_micros: AtomicU64,
    downloads: AtomicU64,
}

impl Metrics {
    /// Counts one publish that took `elapsed`.
    pub fn record_publish(&self, elapsed: Duration) {
        self.publishes.fetch_add(1, Ordering::Relaxed);
        self.publish_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// Counts one download.
    pub fn record_download(&self) {
        self.downloads.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters, plus the gauges given, as Prometheus text.
    pub fn render(&self, gauges: &[Gauge<'_>]) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, value: f64| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
            ));
        };
        counter(
            "kiln_publish_total",
            "Versions accepted into quarantine.",
            self.publishes.load(Ordering::Relaxed) as f64,
        );
        counter(
            "kiln_publish_seconds_total",
            "Time spent handling accepted publishes.",
            self.publish_micros.load(Ordering::Relaxed) as f64 / 1e6,
        );
        counter(
            "kiln_download_total",
            "Crate downloads served.",
            self.downloads.load(Ordering::Relaxed) as f64,
        );
        for (name, help, samples) in gauges {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
            for (labels, value) in samples {
                let labels: Vec<String> =
                    labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
                out.push_str(&format!("{name}{{{}}} {value}\n", labels.join(",")));
            }
        }
        out
    }
}
