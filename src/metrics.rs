//! Every Prometheus metric of the daemon, in one registry.
//!
//! Names follow `relearn_<stage>_<name>_<unit>[_total]`; labels are bounded (partition,
//! reason, kind). The catalogue in README.md lists them.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::ingest::decode::Reason;

/// The registry and a typed handle to each metric.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Every registered metric name (a labelled family shows in `gather` only once it has a
    /// child; this lists it from the start).
    names: Vec<String>,
    /// Records consumed and durably processed (decoded or dead-lettered).
    pub ingest_records: IntCounter,
    /// Decoded records by `kind` (labeled, unlabeled).
    pub ingest_decoded: IntCounterVec,
    /// Malformed records by `reason`, each sent to the dead-letter sink.
    pub ingest_malformed: IntCounterVec,
    /// Ingest batches written to the store.
    pub ingest_batches: IntCounter,
    /// Seconds to make one batch durable (dead letters acknowledged, store write).
    pub ingest_batch_seconds: Histogram,
    /// Records per written batch.
    pub ingest_batch_records: Histogram,
    /// Records behind the partition's high watermark, by `partition` (`topic/partition`).
    pub ingest_lag: IntGaugeVec,
    /// Partitions currently assigned to this consumer.
    pub ingest_assigned: IntGauge,
    /// Consumer group rebalances by `kind` (assign, revoke, error).
    pub ingest_rebalances: IntCounterVec,
    /// Errors of the dead-letter sink (a failed batch is retried after a restart).
    pub ingest_dead_letter_errors: IntCounter,
    /// Records held by the replay buffer.
    pub store_replay_records: IntGauge,
    /// Labeled records offered to the replay buffer since the store was created.
    pub store_replay_seen: IntGauge,
    /// Failed store writes.
    pub store_write_errors: IntCounter,
}

fn histogram(name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
        .expect("histogram options are static and valid")
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let mut m = Metrics {
            ingest_records: IntCounter::new(
                "relearn_ingest_records_total",
                "Records consumed and durably processed (decoded or dead-lettered).",
            )
            .expect("valid metric"),
            ingest_decoded: IntCounterVec::new(
                Opts::new(
                    "relearn_ingest_decoded_records_total",
                    "Decoded records by kind (labeled, unlabeled).",
                ),
                &["kind"],
            )
            .expect("valid metric"),
            ingest_malformed: IntCounterVec::new(
                Opts::new(
                    "relearn_ingest_malformed_records_total",
                    "Malformed records sent to the dead-letter sink, by reason.",
                ),
                &["reason"],
            )
            .expect("valid metric"),
            ingest_batches: IntCounter::new(
                "relearn_ingest_batches_total",
                "Ingest batches written to the store.",
            )
            .expect("valid metric"),
            ingest_batch_seconds: histogram(
                "relearn_ingest_batch_write_seconds",
                "Seconds to make one ingest batch durable.",
                vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
                ],
            ),
            ingest_batch_records: histogram(
                "relearn_ingest_batch_records",
                "Records per written ingest batch.",
                vec![1.0, 10.0, 100.0, 500.0, 1000.0, 2000.0, 4096.0, 10000.0],
            ),
            ingest_lag: IntGaugeVec::new(
                Opts::new(
                    "relearn_ingest_consumer_lag_records",
                    "Records between the next offset to process and the high watermark.",
                ),
                &["partition"],
            )
            .expect("valid metric"),
            ingest_assigned: IntGauge::new(
                "relearn_ingest_assigned_partitions",
                "Partitions currently assigned to this consumer.",
            )
            .expect("valid metric"),
            ingest_rebalances: IntCounterVec::new(
                Opts::new(
                    "relearn_ingest_rebalances_total",
                    "Consumer group rebalances by kind (assign, revoke, error).",
                ),
                &["kind"],
            )
            .expect("valid metric"),
            ingest_dead_letter_errors: IntCounter::new(
                "relearn_ingest_dead_letter_errors_total",
                "Dead-letter deliveries that failed.",
            )
            .expect("valid metric"),
            store_replay_records: IntGauge::new(
                "relearn_store_replay_records",
                "Records held by the replay buffer.",
            )
            .expect("valid metric"),
            store_replay_seen: IntGauge::new(
                "relearn_store_replay_seen_records",
                "Labeled records offered to the replay buffer since the store was created.",
            )
            .expect("valid metric"),
            store_write_errors: IntCounter::new(
                "relearn_store_write_errors_total",
                "Failed store writes.",
            )
            .expect("valid metric"),
            registry,
            names: Vec::new(),
        };
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(m.ingest_records.clone()),
            Box::new(m.ingest_decoded.clone()),
            Box::new(m.ingest_malformed.clone()),
            Box::new(m.ingest_batches.clone()),
            Box::new(m.ingest_batch_seconds.clone()),
            Box::new(m.ingest_batch_records.clone()),
            Box::new(m.ingest_lag.clone()),
            Box::new(m.ingest_assigned.clone()),
            Box::new(m.ingest_rebalances.clone()),
            Box::new(m.ingest_dead_letter_errors.clone()),
            Box::new(m.store_replay_records.clone()),
            Box::new(m.store_replay_seen.clone()),
            Box::new(m.store_write_errors.clone()),
        ];
        for c in collectors {
            m.names.extend(c.desc().iter().map(|d| d.fq_name.clone()));
            m.registry
                .register(c)
                .expect("metric names are unique within the registry");
        }
        // Every reason and kind shows from the start, at zero, so rates and alerts have data.
        for r in Reason::ALL {
            m.ingest_malformed.with_label_values(&[r.as_str()]);
        }
        for k in ["labeled", "unlabeled"] {
            m.ingest_decoded.with_label_values(&[k]);
        }
        for k in ["assign", "revoke", "error"] {
            m.ingest_rebalances.with_label_values(&[k]);
        }
        m
    }

    /// Every registered metric name.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The registry, for serving and tests.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
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

    /// The metric table in README.md and the registry list the same metrics, and every name
    /// follows `relearn_<stage>_<name>[_<unit>][_total]`.
    #[test]
    fn readme_catalogue_matches_the_registry() {
        let readme = include_str!("../README.md");
        let documented: BTreeSet<String> = readme
            .lines()
            .filter_map(|l| l.strip_prefix("| `relearn_"))
            .filter_map(|l| l.split('`').next())
            .map(|n| format!("relearn_{n}"))
            .collect();
        let m = Metrics::new();
        m.ingest_lag.with_label_values(&["t/0"]).set(0);
        let families = m.registry().gather();
        let registered: BTreeSet<String> = m.names().iter().cloned().collect();
        assert_eq!(families.len(), registered.len(), "every family gathered");
        assert_eq!(documented, registered, "README metric table vs registry");
        for f in &families {
            let name = f.name();
            let stage = name.split('_').nth(1).unwrap_or("");
            assert!(
                ["ingest", "store", "learn", "drift", "retrain", "serve"].contains(&stage),
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
