//! Retrain metrics: trigger firings, finished runs by outcome, training time and FLOPs
//! against a full retrain's, the last candidate's forgetting and gain, layers trained.

use prometheus::{CounterVec, Gauge, IntCounterVec, IntGauge};

use super::{Registrar, RUNS};
use crate::drift::trigger::TriggerKind;
use crate::totals::RunOutcome;

/// The retrains' metrics (`relearn_retrain_*`).
#[derive(Clone)]
pub struct RetrainMetrics {
    /// Retrain trigger firings by `trigger`.
    pub triggers: IntCounterVec,
    /// Finished retrains by `outcome` (promoted, rejected, failed).
    pub runs: IntCounterVec,
    /// 1 while a retrain runs.
    pub running: IntGauge,
    /// Training seconds by `run`: executed (what ran) or full_estimate (a full retrain on the
    /// same data, scaled by FLOPs).
    pub seconds: CounterVec,
    /// Estimated training FLOPs by `run` (executed, full_estimate).
    pub flops: CounterVec,
    /// FLOPs of the last retrain over those of a full retrain on the same data.
    pub cost_ratio: Gauge,
    /// Old-knowledge accuracy lost by the last validated candidate (current - candidate).
    pub forgetting: Gauge,
    /// New-knowledge accuracy gained by the last validated candidate.
    pub gain: Gauge,
    /// Layers trained by retrains, by `layer`.
    pub layers: IntCounterVec,
}

impl RetrainMetrics {
    pub(super) fn register(r: &mut Registrar<'_>) -> RetrainMetrics {
        RetrainMetrics {
            triggers: r.counters(
                "relearn_retrain_triggers_total",
                "Retrain trigger firings by trigger.",
                "trigger",
                &TriggerKind::ALL.map(|t| t.as_str()),
            ),
            runs: r.counters(
                "relearn_retrain_runs_total",
                "Finished retrains by outcome (promoted, rejected, failed).",
                "outcome",
                &RunOutcome::ALL.map(RunOutcome::as_str),
            ),
            running: r.int_gauge("relearn_retrain_running", "1 while a retrain runs."),
            seconds: r.float_counters(
                "relearn_retrain_train_seconds_total",
                "Training seconds by run: executed, or full_estimate (a full retrain on the same data, scaled by FLOPs).",
                "run",
                &RUNS,
            ),
            flops: r.float_counters(
                "relearn_retrain_flops_total",
                "Estimated training FLOPs by run (executed, full_estimate).",
                "run",
                &RUNS,
            ),
            cost_ratio: r.gauge(
                "relearn_retrain_cost_ratio",
                "FLOPs of the last retrain over those of a full retrain on the same data.",
            ),
            forgetting: r.gauge(
                "relearn_retrain_forgetting_ratio",
                "Old-knowledge accuracy lost by the last validated candidate.",
            ),
            gain: r.gauge(
                "relearn_retrain_gain_ratio",
                "New-knowledge accuracy gained by the last validated candidate.",
            ),
            layers: r.counters(
                "relearn_retrain_layers_trained_total",
                "Layers trained by retrains, by layer.",
                "layer",
                &[],
            ),
        }
    }
}
