//! Drift metrics: the detectors' statistics, thresholds, states and detections, input drift
//! per feature, activation shift per hidden layer.

use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec};

use super::Registrar;
use crate::drift::Detector;

/// The drift monitors' metrics (`relearn_drift_*`).
#[derive(Clone)]
pub struct DriftMetrics {
    /// Error-stream detectors' statistic, by `detector`.
    pub statistic: GaugeVec,
    /// Error-stream detectors' threshold, by `detector`.
    pub threshold: GaugeVec,
    /// Detector state by `detector` (0 stable, 1 warning, 2 drift), including feature_ks and
    /// layer_shift.
    pub state: IntGaugeVec,
    /// Drift detections by `detector`.
    pub detections: IntCounterVec,
    /// KS statistic of each `feature` against the serving version's reference.
    pub feature_ks: GaugeVec,
    /// KS p-value of each `feature`.
    pub feature_p: GaugeVec,
    /// Population stability index of each `feature`.
    pub feature_psi: GaugeVec,
    /// Standardised activation shift of each hidden `layer`.
    pub layer_shift: GaugeVec,
    /// Share of recent records whose categorical `field` held a value never seen before.
    pub new_category_ratio: GaugeVec,
}

impl DriftMetrics {
    pub(super) fn register(r: &mut Registrar<'_>) -> DriftMetrics {
        let detectors = Detector::ALL.map(Detector::as_str);
        DriftMetrics {
            statistic: r.gauges(
                "relearn_drift_detector_statistic",
                "Error-stream detector statistic.",
                "detector",
                &[],
            ),
            threshold: r.gauges(
                "relearn_drift_detector_threshold",
                "Error-stream detector threshold.",
                "detector",
                &[],
            ),
            state: r.int_gauges(
                "relearn_drift_detector_state",
                "Detector state: 0 stable, 1 warning, 2 drift (alarm not yet addressed).",
                "detector",
                &detectors,
            ),
            detections: r.counters(
                "relearn_drift_detections_total",
                "Drift detections by detector.",
                "detector",
                &detectors,
            ),
            feature_ks: r.gauges(
                "relearn_drift_feature_ks_statistic",
                "KS statistic of a feature, recent window vs the serving version's reference.",
                "feature",
                &[],
            ),
            feature_p: r.gauges(
                "relearn_drift_feature_ks_p_value",
                "KS p-value of a feature, recent window vs the serving version's reference.",
                "feature",
                &[],
            ),
            feature_psi: r.gauges(
                "relearn_drift_feature_psi",
                "Population stability index of a feature against the reference.",
                "feature",
                &[],
            ),
            layer_shift: r.gauges(
                "relearn_drift_layer_shift",
                "Standardised activation shift of a hidden layer against the reference.",
                "layer",
                &[],
            ),
            new_category_ratio: r.gauges(
                "relearn_drift_new_category_ratio",
                "Share of recent records (about drift.window) whose categorical field held a value never seen before.",
                "field",
                &[],
            ),
        }
    }
}
