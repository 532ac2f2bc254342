//! Learning-loop metrics: prequential scores of the serving model and of the challenger, the
//! paired comparison, promotions and resets, output tracking, online training cost.

use prometheus::{Gauge, GaugeVec, IntCounter, IntCounterVec, IntGauge};

use super::{Registrar, RUNS};
use crate::drift::trigger::TriggerKind;
use crate::totals::{ResetReason, Scored};

/// The loop's metrics (`relearn_learn_*`).
#[derive(Clone)]
pub struct LearnMetrics {
    /// Prequential predictions by `outcome` (correct, incorrect, unlabeled, unscored).
    pub predictions: IntCounterVec,
    /// Windowed prequential accuracy (test-then-train) of the serving model.
    pub accuracy: Gauge,
    /// Windowed mean cross-entropy of the serving model on labeled records (regression: mean
    /// absolute error in target standard deviations).
    pub loss: Gauge,
    /// Whole-stream prequential MAE and RMSE of a regression model, in the target's unit
    /// (0 for a classifier).
    pub regression_mae: Gauge,
    pub regression_rmse: Gauge,
    /// Whole-stream prequential R^2 of a regression model.
    pub regression_r2: Gauge,
    /// The serving model version (0: none yet).
    pub model_version: IntGauge,
    /// Realised accuracy of the predictions each model `version` made (the last 16 versions
    /// that made a labeled prediction; with delayed labels, counted when the label arrives).
    pub realised_accuracy: GaugeVec,
    /// Challenger prequential predictions by `outcome` (correct, incorrect).
    pub challenger_predictions: IntCounterVec,
    /// Accuracy of the champion and the challenger (`model`) on the same recent labeled
    /// records (the paired window).
    pub paired_accuracy: GaugeVec,
    /// Challenger minus champion accuracy on the paired window.
    pub paired_difference: Gauge,
    /// The challenger's weight in the served output (`challenger.blend`; 0: the champion
    /// alone serves).
    pub challenger_weight: Gauge,
    /// The neighbours' weight in the served output (`neighbours.blend`).
    pub neighbours_weight: Gauge,
    /// The labels' recent distribution's weight in the served output (`prior.blend`).
    pub prior_weight: Gauge,
    /// Records served without the neighbours' vote: voting would have taken more than
    /// `neighbours.max_share` of the loop's time (Kafka).
    pub neighbours_skipped: IntCounter,
    /// Labeled records the challenger did not learn from because its training would have
    /// taken more than `challenger.max_train_share` of the loop's time (Kafka).
    pub challenger_skipped: IntCounter,
    /// Labeled records the challenger did not learn from because it fits them already
    /// (`challenger.fitted_loss`).
    pub challenger_fitted: IntCounter,
    /// Per-record learning rate of the output tracking offset that serves (0: the model's
    /// own output).
    pub output_tracking_rate: Gauge,
    /// Regression: the persistence forecast's weight in the served value.
    pub output_tracking_persistence: Gauge,
    /// Versions promoted, by `reason` (challenger, or the trigger of a retrain).
    pub promotions: IntCounterVec,
    /// Challenger resets from the champion, by `reason` (behind, diverged).
    pub challenger_resets: IntCounterVec,
    /// Estimated FLOPs of online (challenger) training since start, by `run` (executed,
    /// full_estimate: the same steps with every layer trained).
    pub online_flops: GaugeVec,
}

impl LearnMetrics {
    pub(super) fn register(r: &mut Registrar<'_>) -> LearnMetrics {
        LearnMetrics {
            predictions: r.counters(
                "relearn_learn_predictions_total",
                "Prequential predictions by outcome (correct, incorrect, unlabeled).",
                "outcome",
                &Scored::ALL.map(Scored::as_str),
            ),
            accuracy: r.gauge(
                "relearn_learn_prequential_accuracy_ratio",
                "Windowed prequential accuracy (test-then-train) of the serving model.",
            ),
            loss: r.gauge(
                "relearn_learn_prequential_loss_nats",
                "Windowed mean cross-entropy of the serving model on labeled records.",
            ),
            regression_mae: r.gauge(
                "relearn_learn_prequential_mae",
                "Whole-stream prequential mean absolute error of a regression model (target units).",
            ),
            regression_rmse: r.gauge(
                "relearn_learn_prequential_rmse",
                "Whole-stream prequential root mean squared error of a regression model (target units).",
            ),
            regression_r2: r.gauge(
                "relearn_learn_prequential_r2_ratio",
                "Whole-stream prequential coefficient of determination of a regression model.",
            ),
            realised_accuracy: r.gauges(
                "relearn_learn_realised_accuracy_ratio",
                "Accuracy of the predictions made by each model version (regression: within half a target standard deviation), counted when the label arrives; the last 16 versions.",
                "version",
                &[],
            ),
            model_version: r.int_gauge(
                "relearn_learn_model_version",
                "The serving model version (0: none yet).",
            ),
            challenger_predictions: r.counters(
                "relearn_learn_challenger_predictions_total",
                "Challenger prequential predictions by outcome.",
                "outcome",
                &Scored::PAIRED.map(Scored::as_str),
            ),
            paired_accuracy: r.gauges(
                "relearn_learn_paired_accuracy",
                "Champion and challenger accuracy on the same recent labeled records.",
                "model",
                &["champion", "challenger"],
            ),
            paired_difference: r.gauge(
                "relearn_learn_paired_accuracy_difference",
                "Challenger minus champion accuracy on the paired window.",
            ),
            challenger_weight: r.gauge(
                "relearn_learn_challenger_weight_ratio",
                "The challenger's weight in the served output (challenger.blend; 0: the champion alone serves).",
            ),
            neighbours_weight: r.gauge(
                "relearn_learn_neighbours_weight_ratio",
                "The nearest neighbours' weight in the served output (neighbours.blend), against the champion blended with the challenger.",
            ),
            prior_weight: r.gauge(
                "relearn_learn_prior_weight_ratio",
                "The labels' recent distribution's weight in the served output (prior.blend), against the rest of it (the champion, the challenger and the neighbours blended): near 1 where the inputs predict nothing.",
            ),
            neighbours_skipped: r.counter(
                "relearn_learn_neighbours_skipped_records_total",
                "Records served without the nearest neighbours' vote: voting would have taken more than neighbours.max_share of the loop's time (Kafka); they are still kept.",
            ),
            challenger_skipped: r.counter(
                "relearn_learn_challenger_skipped_records_total",
                "Labeled records the challenger did not learn from: its training would have taken more than challenger.max_train_share of the loop's time.",
            ),
            challenger_fitted: r.counter(
                "relearn_learn_challenger_fitted_records_total",
                "Labeled records the challenger did not learn from: its own loss on them was below challenger.fitted_loss.",
            ),
            output_tracking_rate: r.gauge(
                "relearn_learn_output_tracking_rate",
                "Per-record learning rate of the output tracking offset that serves (0: the model's own output).",
            ),
            output_tracking_persistence: r.gauge(
                "relearn_learn_output_tracking_persistence_ratio",
                "Regression: weight of the persistence forecast (the last target) in the served value, blended with the corrected model output by their recent losses.",
            ),
            promotions: r.counters(
                "relearn_learn_promotions_total",
                "Versions promoted, by reason (challenger or the retrain's trigger).",
                "reason",
                &TriggerKind::ALL.map(|t| t.as_str()),
            ),
            challenger_resets: r.counters(
                "relearn_learn_challenger_resets_total",
                "Challenger resets from the champion, by reason.",
                "reason",
                &ResetReason::ALL.map(ResetReason::as_str),
            ),
            online_flops: r.gauges(
                "relearn_learn_online_flops",
                "Estimated FLOPs of online training since start (executed, full_estimate).",
                "run",
                &RUNS,
            ),
        }
    }
}
