//! What a retrain (or a challenger's trip through the gate) did: the typed report stored in
//! the retrain log (`store::RetrainLog`) and with the version it promoted, served by
//! `/v1/status` and `/v1/models/{v}`. The JSON field names are the stored format: reports
//! written before this type existed read back as it.

use serde::{Deserialize, Serialize};

use crate::drift::layers::LayerChoice;
use crate::drift::trigger::TriggerKind;
use crate::learn::TrainReport;
use crate::retrain::Validation;

pub use crate::totals::RunOutcome;

/// What a triggered retrain cost, against the same run with every layer trainable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrainCost {
    pub wall_seconds: f64,
    pub flops: f64,
    pub full_flops: f64,
    pub full_wall_seconds_estimate: f64,
    /// `flops / full_flops` (1 when nothing was estimated).
    pub ratio: f64,
    pub trainable_params: usize,
    pub total_params: usize,
}

impl RetrainCost {
    /// The cost of a training run.
    pub fn of(t: &TrainReport) -> RetrainCost {
        RetrainCost {
            wall_seconds: t.wall_seconds,
            flops: t.flops,
            full_flops: t.flops_full,
            full_wall_seconds_estimate: if t.flops > 0.0 {
                t.wall_seconds * t.flops_full / t.flops
            } else {
                0.0
            },
            ratio: if t.flops_full > 0.0 {
                t.flops / t.flops_full
            } else {
                1.0
            },
            trainable_params: t.trainable_params,
            total_params: t.total_params,
        }
    }
}

/// What a challenger's online learning cost up to its trip through the gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnlineCostReport {
    pub steps: u64,
    pub examples: u64,
    pub flops: f64,
    pub full_flops: f64,
}

/// What is stored with a model version (`store::versions::VersionRecord::metadata`): the
/// report of the run that made it and the drift reference its detectors compare against.
/// Stored as the report's fields with `reference` beside them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionMeta {
    #[serde(flatten)]
    pub report: RetrainReport,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<crate::retrain::Reference>,
}

impl VersionMeta {
    /// Without the bulky parts (reference statistics, per-layer choice), for listings.
    pub fn listing(mut self) -> VersionMeta {
        self.reference = None;
        self.report.layer_choice.clear();
        self
    }
}

/// One entry of the retrain log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrainReport {
    /// Its sequence number (`LoopState::retrains` when it started).
    pub retrain: u64,
    pub trigger: TriggerKind,
    pub reason: String,
    pub outcome: RunOutcome,
    /// Why it was rejected or failed ("" when promoted).
    #[serde(default)]
    pub detail: String,
    /// The serving version it started from (None: the first model).
    #[serde(default)]
    pub parent: Option<u64>,
    /// The version it promoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// Layers trained.
    #[serde(default)]
    pub layers: Vec<String>,
    /// Per-layer scores of the automatic choice (triggered retrains).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layer_choice: Vec<LayerChoice>,
    #[serde(default)]
    pub validation: Option<Validation>,
    /// The training run (triggered retrains).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train: Option<TrainReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<RetrainCost>,
    /// The challenger's online cost (challenger promotions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online_cost: Option<OnlineCostReport>,
    /// The forgetting the gate allowed (challenger promotions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forgetting_allowed: Option<f64>,
    /// Records processed when it started.
    pub records_total: u64,
    /// Detectors in alarm, features that drifted and layer shifts when it started.
    #[serde(default)]
    pub alarms: Vec<crate::drift::Detector>,
    #[serde(default)]
    pub drifted_features: Vec<String>,
    /// Per categorical field, the share of recent records whose value was never seen before
    /// when it started (empty without categorical fields).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub new_category_rates: std::collections::BTreeMap<String, f64>,
    #[serde(default)]
    pub layer_shifts: Vec<(String, f64)>,
    /// Labeled records in the recent window it learned from (triggered retrains).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recent_records: Option<usize>,
    #[serde(default)]
    pub finished_ms: u64,
}

impl RetrainReport {
    /// The report as `/v1/status` shows the last one: without the per-layer choice and the
    /// training run's epochs (they are in `/v1/models/{v}`).
    pub fn summary(&self) -> RetrainReport {
        RetrainReport {
            layer_choice: Vec::new(),
            train: None,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report as the daemon wrote them before the type existed (`json!` in the worker)
    /// still reads, and writes back with the same fields.
    #[test]
    fn a_stored_report_reads_back() {
        let stored = r#"{"retrain":3,"trigger":"drift","reason":"drift alarm from adwin",
            "outcome":"rejected","detail":"gain -0.0020 < min_gain 0","parent":2,
            "layers":["hidden.0","head"],"layer_choice":[],"validation":{"new_current":0.858,
            "new_candidate":0.856,"old_current":0.813,"old_candidate":0.812,
            "forgetting":0.001,"gain":-0.002,"new_records":500,"old_records":1000},
            "train":null,"cost":{"wall_seconds":0.03,"flops":1.4e8,"full_flops":2.0e8,
            "full_wall_seconds_estimate":0.04,"ratio":0.7,"trainable_params":642,
            "total_params":4802},"records_total":19072,"alarms":["adwin"],
            "drifted_features":["vicprice"],"layer_shifts":[["hidden.0",0.4]],
            "recent_records":2000,"finished_ms":1}"#;
        let r: RetrainReport = serde_json::from_str(stored).unwrap();
        assert_eq!(r.trigger, TriggerKind::Drift);
        assert_eq!(r.outcome, RunOutcome::Rejected);
        assert_eq!(r.cost.as_ref().map(|c| c.trainable_params), Some(642));
        let back: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(back["outcome"], "rejected");
        assert_eq!(back["cost"]["ratio"], 0.7);
        assert!(back.get("version").is_none());
        let again: RetrainReport = serde_json::from_value(back).unwrap();
        assert_eq!(again, r);
        let challenger = r#"{"retrain":4,"trigger":"challenger","reason":"r","outcome":"promoted",
            "detail":"","parent":2,"layers":["head"],"validation":null,"online_cost":{"steps":1,
            "examples":8,"flops":1.0,"full_flops":2.0},"records_total":9,"forgetting_allowed":0.02,
            "finished_ms":5,"version":3}"#;
        let c: RetrainReport = serde_json::from_str(challenger).unwrap();
        assert_eq!(
            (c.trigger, c.version, c.forgetting_allowed),
            (TriggerKind::Challenger, Some(3), Some(0.02))
        );
        for o in RunOutcome::ALL {
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
    }

    /// The serde names (stored, served) are the metric label values.
    #[test]
    fn serde_names_are_the_metric_labels() {
        for t in TriggerKind::ALL {
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
    }
}
