//! Every Prometheus metric of the daemon, in one registry: one struct per stage (`ingest`,
//! `store`, `learn`, `drift`, `retrain`, `serve`, `process`, each in its own file), registered through a
//! `Registrar` that creates the label values known up front.
//!
//! Names follow `relearn_<stage>_<name>_<unit>[_total]`; labels are bounded (partition,
//! reason, kind, outcome, detector, feature, layer, trigger, run). The catalogue in README.md lists them.

use std::sync::{Arc, RwLock};

use prometheus::core::{Collector, MetricVec, MetricVecBuilder};
use prometheus::{
    CounterVec, Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

mod drift;
mod ingest;
mod learn;
mod process;
mod retrain;
mod serve;
mod store;

pub use drift::DriftMetrics;
pub use ingest::IngestMetrics;
pub use learn::LearnMetrics;
pub use process::ProcessMetrics;
pub use retrain::RetrainMetrics;
pub use serve::ServeMetrics;
pub use store::StoreMetrics;

/// Reads a value that lives elsewhere (the store engine's memory) into its metric when the
/// metrics are rendered.
pub type RenderHook = Box<dyn Fn(&Metrics) + Send + Sync>;

/// The registry and each stage's metrics, shared: a clone is one reference count (the HTTP
/// API clones them for every request, the loop and the source for every batch).
#[derive(Clone)]
pub struct Metrics(Arc<MetricsInner>);

/// What every clone of a [`Metrics`] shares (reached through `Deref`: `metrics.learn`).
pub struct MetricsInner {
    registry: Registry,
    /// Run by `render` before it gathers.
    hooks: RwLock<Vec<RenderHook>>,
    /// Every registered metric name (a labelled family shows in `gather` only once it has a
    /// child; this lists it from the start).
    names: Vec<String>,
    pub ingest: IngestMetrics,
    pub store: StoreMetrics,
    pub learn: LearnMetrics,
    pub drift: DriftMetrics,
    pub retrain: RetrainMetrics,
    pub serve: ServeMetrics,
    pub process: ProcessMetrics,
}

impl std::ops::Deref for Metrics {
    type Target = MetricsInner;

    fn deref(&self) -> &MetricsInner {
        &self.0
    }
}

/// What a training cost counts: what ran, or the same work with every layer trained.
pub const RUNS: [&str; 2] = ["executed", "full_estimate"];

/// Creates metrics and registers each at once, with its label values known up front created
/// at zero (so rates and alerts have data from the start).
pub(crate) struct Registrar<'a> {
    registry: &'a Registry,
    names: &'a mut Vec<String>,
}

impl Registrar<'_> {
    fn add<C: Collector + Clone + 'static>(&mut self, c: C) -> C {
        self.names
            .extend(c.desc().iter().map(|d| d.fq_name.clone()));
        self.registry
            .register(Box::new(c.clone()))
            .expect("metric names are unique within the registry");
        c
    }

    /// Registers a labelled family with a child at zero for each of `values`.
    fn labelled<T: MetricVecBuilder + 'static>(
        &mut self,
        family: MetricVec<T>,
        values: &[&str],
    ) -> MetricVec<T> {
        for v in values {
            family.with_label_values(&[v]);
        }
        self.add(family)
    }

    fn counter(&mut self, name: &str, help: &str) -> IntCounter {
        self.add(IntCounter::new(name, help).expect("valid metric"))
    }

    fn counters(&mut self, name: &str, help: &str, label: &str, values: &[&str]) -> IntCounterVec {
        self.labelled(
            IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric"),
            values,
        )
    }

    fn float_counters(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        values: &[&str],
    ) -> CounterVec {
        self.labelled(
            CounterVec::new(Opts::new(name, help), &[label]).expect("valid metric"),
            values,
        )
    }

    fn gauge(&mut self, name: &str, help: &str) -> Gauge {
        self.add(Gauge::new(name, help).expect("valid metric"))
    }

    fn int_gauge(&mut self, name: &str, help: &str) -> IntGauge {
        self.add(IntGauge::new(name, help).expect("valid metric"))
    }

    fn gauges(&mut self, name: &str, help: &str, label: &str, values: &[&str]) -> GaugeVec {
        self.labelled(
            GaugeVec::new(Opts::new(name, help), &[label]).expect("valid metric"),
            values,
        )
    }

    fn int_gauges(&mut self, name: &str, help: &str, label: &str, values: &[&str]) -> IntGaugeVec {
        self.labelled(
            IntGaugeVec::new(Opts::new(name, help), &[label]).expect("valid metric"),
            values,
        )
    }

    fn histogram(&mut self, name: &str, help: &str, buckets: &[f64]) -> Histogram {
        self.add(
            Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))
                .expect("histogram options are static and valid"),
        )
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let mut names = Vec::new();
        let mut r = Registrar {
            registry: &registry,
            names: &mut names,
        };
        let (ingest, store, learn) = (
            IngestMetrics::register(&mut r),
            StoreMetrics::register(&mut r),
            LearnMetrics::register(&mut r),
        );
        let (drift, retrain, serve) = (
            DriftMetrics::register(&mut r),
            RetrainMetrics::register(&mut r),
            ServeMetrics::register(&mut r),
        );
        let process = ProcessMetrics::register(&mut r);
        Metrics(Arc::new(MetricsInner {
            registry,
            hooks: RwLock::default(),
            names,
            ingest,
            store,
            learn,
            drift,
            retrain,
            serve,
            process,
        }))
    }

    /// Every registered metric name.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The registry, for serving and tests.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Runs `hook` before every later `render` (in every clone of these metrics).
    pub fn on_render(&self, hook: RenderHook) {
        self.hooks
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(hook);
    }

    /// The Prometheus text exposition of every metric, after the render hooks ran.
    pub fn render(&self) -> String {
        for hook in self.hooks.read().unwrap_or_else(|p| p.into_inner()).iter() {
            hook(self);
        }
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding of gathered metrics cannot fail");
        String::from_utf8(buf).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The metric table in README.md and the registry list the same metrics, with the same
    /// types and label names, and every name follows `relearn_<stage>_<name>[_<unit>][_total]`.
    #[test]
    fn readme_catalogue_matches_the_registry() {
        let readme = include_str!("../../README.md");
        // `| `name` | type | `label` (values) | meaning |`
        let documented: BTreeSet<(String, String, String)> = readme
            .lines()
            .filter(|l| l.starts_with("| `relearn_"))
            .map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                let name = cells[1].trim_matches('`').to_string();
                let label = cells[3].split('`').nth(1).unwrap_or("").to_string();
                (name, cells[2].to_string(), label)
            })
            .collect();
        let m = Metrics::new();
        m.ingest.lag.with_label_values(&["t/0"]).set(0);
        m.drift.statistic.with_label_values(&["adwin"]).set(0.0);
        m.drift.threshold.with_label_values(&["adwin"]).set(0.0);
        m.drift.feature_ks.with_label_values(&["f"]).set(0.0);
        m.drift.feature_p.with_label_values(&["f"]).set(1.0);
        m.drift.feature_psi.with_label_values(&["f"]).set(0.0);
        m.drift
            .layer_shift
            .with_label_values(&["hidden.0"])
            .set(0.0);
        m.retrain.layers.with_label_values(&["head"]).inc();
        m.serve.requests.with_label_values(&["200"]).inc();
        m.ingest.missing.with_label_values(&["f"]).inc();
        m.ingest.new_categories.with_label_values(&["f"]).inc();
        m.drift
            .new_category_ratio
            .with_label_values(&["f"])
            .set(0.0);
        m.learn.realised_accuracy.with_label_values(&["1"]).set(0.5);
        let families = m.registry().gather();
        let names: BTreeSet<String> = m.names().iter().cloned().collect();
        assert_eq!(families.len(), names.len(), "every family gathered");
        let registered: BTreeSet<(String, String, String)> = families
            .iter()
            .map(|f| {
                use prometheus::proto::MetricType;
                let kind = match f.get_field_type() {
                    MetricType::COUNTER => "counter",
                    MetricType::GAUGE => "gauge",
                    MetricType::HISTOGRAM => "histogram",
                    other => panic!("{}: unexpected type {other:?}", f.name()),
                };
                let label = f.get_metric()[0]
                    .get_label()
                    .first()
                    .map_or(String::new(), |l| l.name().to_string());
                (f.name().to_string(), kind.to_string(), label)
            })
            .collect();
        assert_eq!(
            documented, registered,
            "README metric table vs registry (name, type, label)"
        );
        for f in &families {
            let name = f.name();
            let stage = name.split('_').nth(1).unwrap_or("");
            assert!(
                ["ingest", "store", "learn", "drift", "retrain", "serve", "process"]
                    .contains(&stage),
                "{name}: unknown stage"
            );
            let is_counter = f.get_field_type() == prometheus::proto::MetricType::COUNTER;
            assert_eq!(
                is_counter,
                name.ends_with("_total"),
                "{name}: _total iff counter"
            );
        }
    }
}
