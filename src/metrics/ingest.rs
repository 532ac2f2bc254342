//! Ingest metrics: records consumed, decoded and dead-lettered, batches written, delayed-label
//! joins, and the Kafka consumer's lag, assignment, rebalances and errors.

use prometheus::{Histogram, IntCounter, IntCounterVec, IntGauge, IntGaugeVec};

use super::Registrar;
use crate::totals::JoinOutcome;
use crate::totals::Reason;

/// The ingest stage's metrics (`relearn_ingest_*`).
#[derive(Clone)]
pub struct IngestMetrics {
    /// Records consumed and durably processed (decoded or dead-lettered).
    pub records: IntCounter,
    /// Decoded records by `kind` (labeled, unlabeled, label).
    pub decoded: IntCounterVec,
    /// Malformed records by `reason`, each sent to the dead-letter sink.
    pub malformed: IntCounterVec,
    /// Missing values by schema `field`.
    pub missing: IntCounterVec,
    /// Categorical values seen for the first time, by field.
    pub new_categories: IntCounterVec,
    /// Records waiting for a label (delayed labels).
    pub labels_pending: IntGauge,
    /// What label records and expiries did, by `outcome` (`join::JoinOutcome`).
    pub label_joins: IntCounterVec,
    /// Seconds from a record's features to its label (wall clock at ingest), per join.
    pub label_delay_seconds: Histogram,
    /// Ingest batches written to the store.
    pub batches: IntCounter,
    /// Seconds to make one batch durable (dead letters acknowledged, store write).
    pub batch_seconds: Histogram,
    /// Records per written batch.
    pub batch_records: Histogram,
    /// Records behind the partition's high watermark, by `partition` (`topic/partition`).
    pub lag: IntGaugeVec,
    /// Partitions currently assigned to this consumer.
    pub assigned: IntGauge,
    /// Consumer group rebalances by `kind` (assign, revoke, error).
    pub rebalances: IntCounterVec,
    /// Errors of the dead-letter sink (a failed batch is retried after a restart).
    pub dead_letter_errors: IntCounter,
    /// Kafka client errors by `kind`: transient (retried by librdkafka: broker down, leader
    /// moved, coordinator loading) or fatal (the consumer is recreated).
    pub kafka_errors: IntCounterVec,
    /// Consumers recreated after a fatal error (a fenced static member, say).
    pub consumer_restarts: IntCounter,
    /// Offset commits to Kafka that failed (Kafka's committed offsets show lag to other
    /// tools; the offsets ingest resumes from are RocksDB's).
    pub commit_failures: IntCounter,
}

impl IngestMetrics {
    pub(super) fn register(r: &mut Registrar<'_>) -> IngestMetrics {
        IngestMetrics {
            records: r.counter(
                "relearn_ingest_records_total",
                "Records consumed and durably processed (decoded or dead-lettered).",
            ),
            decoded: r.counters(
                "relearn_ingest_decoded_records_total",
                "Decoded records by kind (labeled, unlabeled, label: a delayed label record).",
                "kind",
                &["labeled", "unlabeled", "label"],
            ),
            malformed: r.counters(
                "relearn_ingest_malformed_records_total",
                "Malformed records sent to the dead-letter sink, by reason.",
                "reason",
                &Reason::ALL.map(Reason::as_str),
            ),
            missing: r.counters(
                "relearn_ingest_missing_values_total",
                "Missing values in decoded records (imputed, or none of a categorical field's inputs set), by schema field.",
                "field",
                &[],
            ),
            new_categories: r.counters(
                "relearn_ingest_new_categories_total",
                "Categorical values seen for the first time (feature hashing has no out-of-vocabulary bucket), by field.",
                "field",
                &[],
            ),
            labels_pending: r.int_gauge(
                "relearn_ingest_labels_pending",
                "Records waiting for their label (labels.enabled), held in the store until joined or expired.",
            ),
            label_joins: r.counters(
                "relearn_ingest_label_joins_total",
                "Label records and expiries by outcome: joined, expired (no label within labels.max_delay_*), duplicate (first label wins), late (record expired), orphan (unknown key), superseded (a newer record with the key).",
                "outcome",
                &JoinOutcome::ALL.map(JoinOutcome::as_str),
            ),
            label_delay_seconds: r.histogram(
                "relearn_ingest_label_delay_seconds",
                "Seconds from a record's features to its label, per join (wall clock at ingest).",
                &[0.1, 1.0, 10.0, 60.0, 600.0, 3600.0, 21600.0, 86400.0, 604800.0],
            ),
            batches: r.counter(
                "relearn_ingest_batches_total",
                "Ingest batches written to the store.",
            ),
            batch_seconds: r.histogram(
                "relearn_ingest_batch_write_seconds",
                "Seconds to make one ingest batch durable.",
                &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0],
            ),
            batch_records: r.histogram(
                "relearn_ingest_batch_records",
                "Records per written ingest batch.",
                &[1.0, 10.0, 100.0, 500.0, 1000.0, 2000.0, 4096.0, 10000.0],
            ),
            lag: r.int_gauges(
                "relearn_ingest_consumer_lag_records",
                "Records between the next offset to process and the high watermark.",
                "partition",
                &[],
            ),
            assigned: r.int_gauge(
                "relearn_ingest_assigned_partitions",
                "Partitions currently assigned to this consumer.",
            ),
            rebalances: r.counters(
                "relearn_ingest_rebalances_total",
                "Consumer group rebalances by kind (assign, revoke, error).",
                "kind",
                &["assign", "revoke", "error"],
            ),
            dead_letter_errors: r.counter(
                "relearn_ingest_dead_letter_errors_total",
                "Dead-letter deliveries that failed.",
            ),
            kafka_errors: r.counters(
                "relearn_ingest_kafka_errors_total",
                "Kafka client errors by kind (transient: retried; fatal: consumer recreated).",
                "kind",
                &["transient", "fatal"],
            ),
            consumer_restarts: r.counter(
                "relearn_ingest_consumer_restarts_total",
                "Kafka consumers recreated after a fatal error.",
            ),
            commit_failures: r.counter(
                "relearn_ingest_kafka_commit_failures_total",
                "Offset commits to Kafka that failed (informational offsets; ingest resumes from the store's).",
            ),
        }
    }
}
