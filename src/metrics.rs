//! Every Prometheus metric of the daemon, in one registry.
//!
//! Names follow `relearn_<stage>_<name>_<unit>[_total]`; labels are bounded (partition,
//! reason, kind, outcome, detector, feature, layer, trigger, run). The catalogue in README.md lists them.

use prometheus::{
    CounterVec, Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::drift::trigger::TriggerKind;
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
    pub ingest_missing: IntCounterVec,
    /// Categorical values seen for the first time, by field.
    pub ingest_new_categories: IntCounterVec,
    /// Records waiting for a label (delayed labels).
    pub ingest_labels_pending: IntGauge,
    /// What label records and expiries did, by `outcome` (`join::JoinOutcome`).
    pub ingest_label_joins: IntCounterVec,
    /// Seconds from a record's features to its label (wall clock at ingest), per join.
    pub ingest_label_delay_seconds: Histogram,
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
    /// Kafka client errors by `kind`: transient (retried by librdkafka: broker down, leader
    /// moved, coordinator loading) or fatal (the consumer is recreated).
    pub ingest_kafka_errors: IntCounterVec,
    /// Consumers recreated after a fatal error (a fenced static member, say).
    pub ingest_consumer_restarts: IntCounter,
    /// Records held by the replay buffer.
    pub store_replay_records: IntGauge,
    /// Labeled records offered to the replay buffer since the store was created.
    pub store_replay_seen: IntGauge,
    /// Failed store writes.
    pub store_write_errors: IntCounter,
    /// Prequential predictions by `outcome` (correct, incorrect, unlabeled).
    pub learn_predictions: IntCounterVec,
    /// Windowed prequential accuracy (test-then-train) of the serving model.
    pub learn_accuracy: Gauge,
    /// Windowed mean cross-entropy of the serving model on labeled records (regression: mean
    /// absolute error in target standard deviations).
    pub learn_loss: Gauge,
    /// Whole-stream prequential MAE and RMSE of a regression model, in the target's unit
    /// (0 for a classifier).
    pub learn_regression_mae: Gauge,
    pub learn_regression_rmse: Gauge,
    /// Whole-stream prequential R^2 of a regression model.
    pub learn_regression_r2: Gauge,
    /// The serving model version (0: none yet).
    pub learn_model_version: IntGauge,
    /// Realised accuracy of the predictions each model `version` made (the last 16 versions
    /// that made a labeled prediction; with delayed labels, counted when the label arrives).
    pub learn_realised_accuracy: GaugeVec,
    /// Challenger prequential predictions by `outcome` (correct, incorrect).
    pub learn_challenger_predictions: IntCounterVec,
    /// Accuracy of the champion and the challenger (`model`) on the same recent labeled
    /// records (the paired window).
    pub learn_paired_accuracy: GaugeVec,
    /// Challenger minus champion accuracy on the paired window.
    pub learn_paired_difference: Gauge,
    /// Labeled records the challenger did not learn from because its training would have
    /// taken more than `challenger.max_train_share` of the loop's time (Kafka).
    pub learn_challenger_skipped: IntCounter,
    /// Per-record learning rate of the output tracking offset that serves (0: the model's
    /// own output).
    pub learn_output_tracking_rate: Gauge,
    pub learn_output_tracking_persistence: Gauge,
    /// Versions promoted, by `reason` (challenger, or the trigger of a retrain).
    pub learn_promotions: IntCounterVec,
    /// Challenger resets from the champion, by `reason` (behind, diverged).
    pub learn_challenger_resets: IntCounterVec,
    /// Estimated FLOPs of online (challenger) training since start, by `run` (executed,
    /// full_estimate: the same steps with every layer trained).
    pub learn_online_flops: GaugeVec,
    /// Error-stream detectors' statistic, by `detector`.
    pub drift_statistic: GaugeVec,
    /// Error-stream detectors' threshold, by `detector`.
    pub drift_threshold: GaugeVec,
    /// Detector state by `detector` (0 stable, 1 warning, 2 drift), including feature_ks and
    /// layer_shift.
    pub drift_state: IntGaugeVec,
    /// Drift detections by `detector`.
    pub drift_detections: IntCounterVec,
    /// KS statistic of each `feature` against the serving version's reference.
    pub drift_feature_ks: GaugeVec,
    /// KS p-value of each `feature`.
    pub drift_feature_p: GaugeVec,
    /// Population stability index of each `feature`.
    pub drift_feature_psi: GaugeVec,
    /// Standardised activation shift of each hidden `layer`.
    pub drift_layer_shift: GaugeVec,
    /// Retrain trigger firings by `trigger`.
    pub retrain_triggers: IntCounterVec,
    /// Finished retrains by `outcome` (promoted, rejected, failed).
    pub retrain_runs: IntCounterVec,
    /// 1 while a retrain runs.
    pub retrain_running: IntGauge,
    /// Training seconds by `run`: executed (what ran) or full_estimate (a full retrain on the
    /// same data, scaled by FLOPs).
    pub retrain_seconds: CounterVec,
    /// Estimated training FLOPs by `run` (executed, full_estimate).
    pub retrain_flops: CounterVec,
    /// FLOPs of the last retrain over those of a full retrain on the same data.
    pub retrain_cost_ratio: Gauge,
    /// Old-knowledge accuracy lost by the last validated candidate (current - candidate).
    pub retrain_forgetting: Gauge,
    /// New-knowledge accuracy gained by the last validated candidate.
    pub retrain_gain: Gauge,
    /// Layers trained by retrains, by `layer`.
    pub retrain_layers: IntCounterVec,
    /// Records predicted over HTTP.
    pub serve_predictions: IntCounter,
    /// `/v1` requests by HTTP `code`.
    pub serve_requests: IntCounterVec,
    /// Seconds to answer a `/v1` request.
    pub serve_request_seconds: Histogram,
}

/// Why a challenger was reset from the champion.
pub const RESETS: [&str; 2] = ["behind", "diverged"];
/// Retrain outcomes (label values known up front; `learner::RunOutcome`'s names, which a test
/// checks: `learner` depends on this module, not the other way). Trigger labels are
/// `drift::trigger::TriggerKind::ALL`'s names.
pub const OUTCOMES: [&str; 3] = ["promoted", "rejected", "failed"];

fn gauge_vec(name: &str, help: &str, label: &str) -> GaugeVec {
    GaugeVec::new(Opts::new(name, help), &[label]).expect("valid metric")
}

fn int_counter_vec(name: &str, help: &str, label: &str) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric")
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
                    "Decoded records by kind (labeled, unlabeled, label: a delayed label record).",
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
            ingest_missing: IntCounterVec::new(
                Opts::new(
                    "relearn_ingest_missing_values_total",
                    "Missing values in decoded records (imputed, or none of a categorical field's inputs set), by schema field.",
                ),
                &["field"],
            )
            .expect("valid metric"),
            ingest_new_categories: IntCounterVec::new(
                Opts::new(
                    "relearn_ingest_new_categories_total",
                    "Categorical values seen for the first time (feature hashing has no out-of-vocabulary bucket), by field.",
                ),
                &["field"],
            )
            .expect("valid metric"),
            ingest_labels_pending: IntGauge::new(
                "relearn_ingest_labels_pending",
                "Records waiting for their label (labels.enabled), held in the store until joined or expired.",
            )
            .expect("valid metric"),
            ingest_label_joins: int_counter_vec(
                "relearn_ingest_label_joins_total",
                "Label records and expiries by outcome: joined, expired (no label within labels.max_delay_*), duplicate (first label wins), late (record expired), orphan (unknown key), superseded (a newer record with the key).",
                "outcome",
            ),
            ingest_label_delay_seconds: histogram(
                "relearn_ingest_label_delay_seconds",
                "Seconds from a record's features to its label, per join (wall clock at ingest).",
                vec![
                    0.1, 1.0, 10.0, 60.0, 600.0, 3600.0, 21600.0, 86400.0, 604800.0,
                ],
            ),
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
            ingest_kafka_errors: IntCounterVec::new(
                Opts::new(
                    "relearn_ingest_kafka_errors_total",
                    "Kafka client errors by kind (transient: retried; fatal: consumer recreated).",
                ),
                &["kind"],
            )
            .expect("valid metric"),
            ingest_consumer_restarts: IntCounter::new(
                "relearn_ingest_consumer_restarts_total",
                "Kafka consumers recreated after a fatal error.",
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
            learn_predictions: int_counter_vec(
                "relearn_learn_predictions_total",
                "Prequential predictions by outcome (correct, incorrect, unlabeled).",
                "outcome",
            ),
            learn_accuracy: Gauge::new(
                "relearn_learn_prequential_accuracy_ratio",
                "Windowed prequential accuracy (test-then-train) of the serving model.",
            )
            .expect("valid metric"),
            learn_loss: Gauge::new(
                "relearn_learn_prequential_loss_nats",
                "Windowed mean cross-entropy of the serving model on labeled records.",
            )
            .expect("valid metric"),
            learn_regression_mae: Gauge::new(
                "relearn_learn_prequential_mae",
                "Whole-stream prequential mean absolute error of a regression model (target units).",
            )
            .expect("valid metric"),
            learn_regression_rmse: Gauge::new(
                "relearn_learn_prequential_rmse",
                "Whole-stream prequential root mean squared error of a regression model (target units).",
            )
            .expect("valid metric"),
            learn_regression_r2: Gauge::new(
                "relearn_learn_prequential_r2_ratio",
                "Whole-stream prequential coefficient of determination of a regression model.",
            )
            .expect("valid metric"),
            learn_realised_accuracy: GaugeVec::new(
                Opts::new(
                    "relearn_learn_realised_accuracy_ratio",
                    "Accuracy of the predictions made by each model version (regression: within half a target standard deviation), counted when the label arrives; the last 16 versions.",
                ),
                &["version"],
            )
            .expect("valid metric"),
            learn_model_version: IntGauge::new(
                "relearn_learn_model_version",
                "The serving model version (0: none yet).",
            )
            .expect("valid metric"),
            learn_challenger_predictions: int_counter_vec(
                "relearn_learn_challenger_predictions_total",
                "Challenger prequential predictions by outcome.",
                "outcome",
            ),
            learn_paired_accuracy: gauge_vec(
                "relearn_learn_paired_accuracy",
                "Champion and challenger accuracy on the same recent labeled records.",
                "model",
            ),
            learn_paired_difference: Gauge::new(
                "relearn_learn_paired_accuracy_difference",
                "Challenger minus champion accuracy on the paired window.",
            )
            .expect("valid metric"),
            learn_challenger_skipped: IntCounter::new(
                "relearn_learn_challenger_skipped_records_total",
                "Labeled records the challenger did not learn from: its training would have taken more than challenger.max_train_share of the loop's time.",
            )
            .expect("valid metric"),
            learn_output_tracking_rate: Gauge::new(
                "relearn_learn_output_tracking_rate",
                "Per-record learning rate of the output tracking offset that serves (0: the model's own output).",
            )
            .expect("valid metric"),
            learn_output_tracking_persistence: Gauge::new(
                "relearn_learn_output_tracking_persistence_ratio",
                "Regression: weight of the persistence forecast (the last target) in the served value, blended with the corrected model output by their recent losses.",
            )
            .expect("valid metric"),
            learn_promotions: int_counter_vec(
                "relearn_learn_promotions_total",
                "Versions promoted, by reason (challenger or the retrain's trigger).",
                "reason",
            ),
            learn_challenger_resets: int_counter_vec(
                "relearn_learn_challenger_resets_total",
                "Challenger resets from the champion, by reason.",
                "reason",
            ),
            learn_online_flops: gauge_vec(
                "relearn_learn_online_flops",
                "Estimated FLOPs of online training since start (executed, full_estimate).",
                "run",
            ),
            drift_statistic: gauge_vec(
                "relearn_drift_detector_statistic",
                "Error-stream detector statistic.",
                "detector",
            ),
            drift_threshold: gauge_vec(
                "relearn_drift_detector_threshold",
                "Error-stream detector threshold.",
                "detector",
            ),
            drift_state: IntGaugeVec::new(
                Opts::new(
                    "relearn_drift_detector_state",
                    "Detector state: 0 stable, 1 warning, 2 drift (alarm not yet addressed).",
                ),
                &["detector"],
            )
            .expect("valid metric"),
            drift_detections: int_counter_vec(
                "relearn_drift_detections_total",
                "Drift detections by detector.",
                "detector",
            ),
            drift_feature_ks: gauge_vec(
                "relearn_drift_feature_ks_statistic",
                "KS statistic of a feature, recent window vs the serving version's reference.",
                "feature",
            ),
            drift_feature_p: gauge_vec(
                "relearn_drift_feature_ks_p_value",
                "KS p-value of a feature, recent window vs the serving version's reference.",
                "feature",
            ),
            drift_feature_psi: gauge_vec(
                "relearn_drift_feature_psi",
                "Population stability index of a feature against the reference.",
                "feature",
            ),
            drift_layer_shift: gauge_vec(
                "relearn_drift_layer_shift",
                "Standardised activation shift of a hidden layer against the reference.",
                "layer",
            ),
            retrain_triggers: int_counter_vec(
                "relearn_retrain_triggers_total",
                "Retrain trigger firings by trigger.",
                "trigger",
            ),
            retrain_runs: int_counter_vec(
                "relearn_retrain_runs_total",
                "Finished retrains by outcome (promoted, rejected, failed).",
                "outcome",
            ),
            retrain_running: IntGauge::new(
                "relearn_retrain_running",
                "1 while a retrain runs.",
            )
            .expect("valid metric"),
            retrain_seconds: CounterVec::new(
                Opts::new(
                    "relearn_retrain_train_seconds_total",
                    "Training seconds by run: executed, or full_estimate (a full retrain on the same data, scaled by FLOPs).",
                ),
                &["run"],
            )
            .expect("valid metric"),
            retrain_flops: CounterVec::new(
                Opts::new(
                    "relearn_retrain_flops_total",
                    "Estimated training FLOPs by run (executed, full_estimate).",
                ),
                &["run"],
            )
            .expect("valid metric"),
            retrain_cost_ratio: Gauge::new(
                "relearn_retrain_cost_ratio",
                "FLOPs of the last retrain over those of a full retrain on the same data.",
            )
            .expect("valid metric"),
            retrain_forgetting: Gauge::new(
                "relearn_retrain_forgetting_ratio",
                "Old-knowledge accuracy lost by the last validated candidate.",
            )
            .expect("valid metric"),
            retrain_gain: Gauge::new(
                "relearn_retrain_gain_ratio",
                "New-knowledge accuracy gained by the last validated candidate.",
            )
            .expect("valid metric"),
            retrain_layers: int_counter_vec(
                "relearn_retrain_layers_trained_total",
                "Layers trained by retrains, by layer.",
                "layer",
            ),
            serve_predictions: IntCounter::new(
                "relearn_serve_predictions_total",
                "Records predicted over HTTP.",
            )
            .expect("valid metric"),
            serve_requests: int_counter_vec(
                "relearn_serve_requests_total",
                "/v1 requests by HTTP status code.",
                "code",
            ),
            serve_request_seconds: histogram(
                "relearn_serve_request_duration_seconds",
                "Seconds to answer a /v1 request.",
                vec![
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0,
                ],
            ),
            registry,
            names: Vec::new(),
        };
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(m.ingest_records.clone()),
            Box::new(m.ingest_decoded.clone()),
            Box::new(m.ingest_malformed.clone()),
            Box::new(m.ingest_missing.clone()),
            Box::new(m.ingest_new_categories.clone()),
            Box::new(m.ingest_labels_pending.clone()),
            Box::new(m.ingest_label_joins.clone()),
            Box::new(m.ingest_label_delay_seconds.clone()),
            Box::new(m.ingest_batches.clone()),
            Box::new(m.ingest_batch_seconds.clone()),
            Box::new(m.ingest_batch_records.clone()),
            Box::new(m.ingest_lag.clone()),
            Box::new(m.ingest_assigned.clone()),
            Box::new(m.ingest_rebalances.clone()),
            Box::new(m.ingest_dead_letter_errors.clone()),
            Box::new(m.ingest_kafka_errors.clone()),
            Box::new(m.ingest_consumer_restarts.clone()),
            Box::new(m.store_replay_records.clone()),
            Box::new(m.store_replay_seen.clone()),
            Box::new(m.store_write_errors.clone()),
            Box::new(m.learn_predictions.clone()),
            Box::new(m.learn_accuracy.clone()),
            Box::new(m.learn_loss.clone()),
            Box::new(m.learn_regression_mae.clone()),
            Box::new(m.learn_regression_rmse.clone()),
            Box::new(m.learn_regression_r2.clone()),
            Box::new(m.learn_model_version.clone()),
            Box::new(m.learn_realised_accuracy.clone()),
            Box::new(m.learn_challenger_predictions.clone()),
            Box::new(m.learn_paired_accuracy.clone()),
            Box::new(m.learn_paired_difference.clone()),
            Box::new(m.learn_output_tracking_rate.clone()),
            Box::new(m.learn_output_tracking_persistence.clone()),
            Box::new(m.learn_challenger_skipped.clone()),
            Box::new(m.learn_promotions.clone()),
            Box::new(m.learn_challenger_resets.clone()),
            Box::new(m.learn_online_flops.clone()),
            Box::new(m.drift_statistic.clone()),
            Box::new(m.drift_threshold.clone()),
            Box::new(m.drift_state.clone()),
            Box::new(m.drift_detections.clone()),
            Box::new(m.drift_feature_ks.clone()),
            Box::new(m.drift_feature_p.clone()),
            Box::new(m.drift_feature_psi.clone()),
            Box::new(m.drift_layer_shift.clone()),
            Box::new(m.retrain_triggers.clone()),
            Box::new(m.retrain_runs.clone()),
            Box::new(m.retrain_running.clone()),
            Box::new(m.retrain_seconds.clone()),
            Box::new(m.retrain_flops.clone()),
            Box::new(m.retrain_cost_ratio.clone()),
            Box::new(m.retrain_forgetting.clone()),
            Box::new(m.retrain_gain.clone()),
            Box::new(m.retrain_layers.clone()),
            Box::new(m.serve_predictions.clone()),
            Box::new(m.serve_requests.clone()),
            Box::new(m.serve_request_seconds.clone()),
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
        for k in ["labeled", "unlabeled", "label"] {
            m.ingest_decoded.with_label_values(&[k]);
        }
        for o in crate::ingest::join::JoinOutcome::ALL {
            m.ingest_label_joins.with_label_values(&[o.as_str()]);
        }
        for k in ["assign", "revoke", "error"] {
            m.ingest_rebalances.with_label_values(&[k]);
        }
        for k in ["transient", "fatal"] {
            m.ingest_kafka_errors.with_label_values(&[k]);
        }
        for k in ["correct", "incorrect", "unlabeled", "unscored"] {
            m.learn_predictions.with_label_values(&[k]);
        }
        for k in ["correct", "incorrect"] {
            m.learn_challenger_predictions.with_label_values(&[k]);
        }
        for k in ["champion", "challenger"] {
            m.learn_paired_accuracy.with_label_values(&[k]);
        }
        for t in TriggerKind::ALL {
            m.learn_promotions.with_label_values(&[t.as_str()]);
        }
        for r in RESETS {
            m.learn_challenger_resets.with_label_values(&[r]);
        }
        for r in ["executed", "full_estimate"] {
            m.learn_online_flops.with_label_values(&[r]);
        }
        for d in crate::drift::Detector::ALL {
            m.drift_state.with_label_values(&[d.as_str()]);
            m.drift_detections.with_label_values(&[d.as_str()]);
        }
        for t in TriggerKind::ALL {
            m.retrain_triggers.with_label_values(&[t.as_str()]);
        }
        for o in OUTCOMES {
            m.retrain_runs.with_label_values(&[o]);
        }
        for r in ["executed", "full_estimate"] {
            m.retrain_seconds.with_label_values(&[r]);
            m.retrain_flops.with_label_values(&[r]);
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
        m.drift_statistic.with_label_values(&["adwin"]).set(0.0);
        m.drift_threshold.with_label_values(&["adwin"]).set(0.0);
        m.drift_feature_ks.with_label_values(&["f"]).set(0.0);
        m.drift_feature_p.with_label_values(&["f"]).set(1.0);
        m.drift_feature_psi.with_label_values(&["f"]).set(0.0);
        m.drift_layer_shift
            .with_label_values(&["hidden.0"])
            .set(0.0);
        m.retrain_layers.with_label_values(&["head"]).inc();
        m.serve_requests.with_label_values(&["200"]).inc();
        m.ingest_missing.with_label_values(&["f"]).inc();
        m.ingest_new_categories.with_label_values(&["f"]).inc();
        m.learn_realised_accuracy.with_label_values(&["1"]).set(0.5);
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
