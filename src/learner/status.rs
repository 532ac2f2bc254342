//! The loop's status snapshot, refreshed after every durable batch and served by
//! `/v1/status` (with what the API adds: the last retrain, lag, record counts).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::drift::monitor::Reading;
use crate::drift::trigger::TriggerConfig;
use crate::drift::Detector;
use crate::totals::Total;

/// What the loop knows now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoopStatus {
    /// The version the detectors are calibrated on (None before the first model).
    pub serving_version: Option<u64>,
    /// Accuracy and mean loss over the last `drift.accuracy_window` labeled predictions.
    pub window_accuracy: Option<f64>,
    pub window_loss: Option<f64>,
    pub labeled_since_retrain: u64,
    pub retrains_started: u64,
    pub retrain_running: bool,
    /// Detectors in alarm since the last retrain.
    pub alarms: BTreeSet<crate::drift::Detector>,
    /// Each error-stream detector's last reading, by name.
    pub detectors: BTreeMap<Detector, Reading>,
    /// Input groups whose last check drifted.
    pub drifted_features: Vec<String>,
    /// Per categorical field: the share of recent records whose value was never seen before
    /// (weighted over about `drift.window` records).
    #[serde(default)]
    pub new_category_rates: BTreeMap<String, f64>,
    pub layer_shifts: Vec<(String, f64)>,
    pub triggers: TriggerStatus,
    /// Counter totals (`predictions/correct`, `runs/promoted`, ...).
    pub totals: BTreeMap<Total, u64>,
    /// The challenger, when one learns.
    pub challenger: Option<ChallengerStatus>,
    /// The serving model's output tracking (`model.output_tracking`; None when off or
    /// before the first model).
    pub output_tracking: Option<TrackingStatus>,
}

/// The output offset served now (see `learn::tracking`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackingStatus {
    /// The per-record learning rate of the offset that serves (0: the model's own output).
    pub rate: f32,
    /// Whether it is a linear correction (an offset plus weights on the standardised inputs)
    /// rather than an offset alone.
    pub linear: bool,
    /// Regression: the weight of the persistence forecast (the last target) in the served
    /// value (0 for a classifier).
    pub persistence_weight: f32,
    /// Its offsets: one per class (added to the logits), or one regression offset in target
    /// standard deviations.
    pub offsets: Vec<f32>,
}

/// The triggers as configured and when the last retrain ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TriggerStatus {
    pub config: TriggerConfig,
    pub last_retrain_ms: Option<u64>,
}

/// The challenger beside the champion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChallengerStatus {
    /// The champion version it was copied from.
    pub parent: Option<u64>,
    pub layers: Vec<String>,
    /// Paired predictions in the test window, and both accuracies on them.
    pub paired_records: usize,
    pub champion_accuracy: Option<f64>,
    pub challenger_accuracy: Option<f64>,
    /// McNemar's p-value on the paired errors.
    pub mcnemar_p: f64,
}
