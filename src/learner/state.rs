//! The loop's durable state in `Cf::Meta`: detectors, trigger state, the prequential window
//! and totals (`loop/state`, JSON), and the recent-record ring (`loop/recent/<slot>`). Both
//! are staged into the ingest batch, so they always match the stored offsets.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use super::config::LearnerConfig;
use super::LoopError;
use crate::drift::monitor::{ErrorDetectors, FeatureDrift};
use crate::drift::trigger::TriggerState;
use crate::drift::{Detector, DriftState};
use crate::learn::tracking::Tracker;
use crate::metrics::Metrics;
use crate::record::Record;
use crate::store::{Cf, KvStore, StoreError, WriteBatch};
use crate::totals::{deserialize_totals, Scored, Total};

/// The key of the loop's stored state (`relearn inspect` reads its totals).
pub const STATE_NAME: &str = "loop/state";
const STATE_KEY: &[u8] = STATE_NAME.as_bytes();
const RING_PREFIX: &str = "loop/recent/";

/// Everything the loop must remember across a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoopState {
    pub errors: ErrorDetectors,
    /// Last labeled predictions: (correct, cross-entropy).
    pub window: VecDeque<(bool, f32)>,
    /// Records pushed into the recent ring since the store was created.
    pub ring_pushed: u64,
    pub labeled_since_retrain: u64,
    pub records_since_check: u64,
    /// Detectors in alarm since the last retrain.
    pub alarms: BTreeSet<Detector>,
    pub trigger: TriggerState,
    /// The version the detectors are calibrated on.
    pub serving_version: Option<u64>,
    /// Retrains started.
    pub retrains: u64,
    /// Last per-feature comparison (schema order).
    pub features: Vec<FeatureDrift>,
    /// Last per-layer shift.
    pub layer_shifts: Vec<(String, f64)>,
    /// Counter totals (`predictions/correct`, `detections/adwin`, `triggers/drift`,
    /// `runs/promoted`...).
    #[serde(deserialize_with = "deserialize_totals")]
    pub totals: BTreeMap<Total, u64>,
    /// Totals already added to the metrics (not stored: restored from `totals`).
    #[serde(skip)]
    published: BTreeMap<Total, u64>,
    /// Whole-stream prequential scores (absent in state written before it existed).
    #[serde(default)]
    pub scores: Scoreboard,
    /// Labeled predictions by the model version that made them: (right, all), the last
    /// [`REALISED_VERSIONS`] versions (absent in state written before it existed).
    #[serde(default)]
    pub realised: BTreeMap<u64, (u64, u64)>,
    /// Versions whose realised-accuracy gauge was set (not stored).
    #[serde(skip)]
    realised_published: BTreeSet<u64>,
    /// The serving model's output tracking (`model.output_tracking`; absent in state
    /// written before it existed, and before the first model).
    #[serde(default)]
    pub tracker: Option<Tracker>,
    /// Per categorical field (schema order): the share of arriving records whose value had
    /// never been seen before, weighted over about `drift.window` records (absent in state
    /// written before it existed).
    #[serde(default)]
    pub new_category_rates: Vec<f64>,
    /// Retrains the gate rejected since the serving version last changed: each doubles the
    /// labeled records the next automatic trigger waits for, up to `triggers.max_backoff`
    /// times `triggers.min_new_labeled` (absent in state written before it existed).
    #[serde(default)]
    pub rejected_in_row: u32,
}

/// How many model versions keep a realised-accuracy tally.
pub const REALISED_VERSIONS: usize = 16;

/// Whole-stream prequential scores of the serving model: its confusion matrix, and the
/// no-change (previous label) and majority (most frequent label so far) baselines on the
/// same records, for Cohen's kappa and the temporal kappa of Zliobaite et al. (2015).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Scoreboard {
    pub classes: usize,
    /// `confusion[truth * classes + predicted]`.
    pub confusion: Vec<u64>,
    /// Scored records the previous label would have got right.
    pub nochange_hits: u64,
    /// Scored records the most frequent label so far would have got right.
    pub majority_hits: u64,
    /// Labels of every labeled record seen, scored or not.
    pub label_counts: Vec<u64>,
    pub last_label: Option<u32>,
    /// The same for a regression target (absent in state written before it existed).
    #[serde(default)]
    pub regression: RegressionScores,
    /// The challenger's regression errors on the records it scored (the challenger's own
    /// prequential MAE; what serving it directly would have scored).
    #[serde(default)]
    pub challenger_regression: RegressionScores,
}

/// Whole-stream prequential errors of a regression model, and of the no-change (previous
/// target) and mean (of every target seen so far) predictors on the same records.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegressionScores {
    /// Labeled records scored by a model.
    pub scored: u64,
    /// Labeled records seen, scored or not.
    pub seen: u64,
    /// Sums over the scored records: absolute error, squared error, target, squared target.
    pub abs_sum: f64,
    pub sq_sum: f64,
    pub y_sum: f64,
    pub y_sq: f64,
    /// Absolute errors of the baselines on the scored records.
    pub nochange_abs: f64,
    pub mean_abs: f64,
    /// Absolute error of the running mean on the records seen before the first model (what
    /// `mae_all` charges for them).
    pub unscored_abs: f64,
    /// Sum of every target seen, and the last one.
    pub seen_sum: f64,
    pub last: Option<f32>,
}

impl RegressionScores {
    fn running_mean(&self) -> Option<f64> {
        (self.seen > 0).then(|| self.seen_sum / self.seen as f64)
    }

    /// A labeled record that arrived before any model could score it.
    pub fn observe(&mut self, y: f32) {
        let y = f64::from(y);
        self.unscored_abs += (y - self.running_mean().unwrap_or(0.0)).abs();
        self.see(y);
    }

    fn see(&mut self, y: f64) {
        self.seen += 1;
        self.seen_sum += y;
        self.last = Some(y as f32);
    }

    /// A labeled record with target `y` that the serving model predicted as `predicted`.
    pub fn record(&mut self, y: f32, predicted: f32) {
        let (y, p) = (f64::from(y), f64::from(predicted));
        let e = y - p;
        self.scored += 1;
        self.abs_sum += e.abs();
        self.sq_sum += e * e;
        self.y_sum += y;
        self.y_sq += y * y;
        self.nochange_abs += (y - self.last.map_or(0.0, f64::from)).abs();
        self.mean_abs += (y - self.running_mean().unwrap_or(0.0)).abs();
        self.see(y);
    }

    fn per_scored(&self, sum: f64) -> Option<f64> {
        (self.scored > 0).then(|| sum / self.scored as f64)
    }

    /// Mean absolute error on the scored records.
    pub fn mae(&self) -> Option<f64> {
        self.per_scored(self.abs_sum)
    }

    /// Mean absolute error over every labeled record, those before the first model charged
    /// with the running mean's error (what a mean predictor would have served).
    pub fn mae_all(&self) -> Option<f64> {
        (self.seen > 0).then(|| (self.abs_sum + self.unscored_abs) / self.seen as f64)
    }

    pub fn rmse(&self) -> Option<f64> {
        self.per_scored(self.sq_sum).map(f64::sqrt)
    }

    /// Coefficient of determination on the scored records: 1 - SSE / SST.
    pub fn r2(&self) -> Option<f64> {
        let n = self.scored as f64;
        let sst = self.y_sq - self.y_sum * self.y_sum / n.max(1.0);
        (self.scored > 1 && sst > 0.0).then(|| 1.0 - self.sq_sum / sst)
    }

    pub fn nochange_mae(&self) -> Option<f64> {
        self.per_scored(self.nochange_abs)
    }

    pub fn mean_mae(&self) -> Option<f64> {
        self.per_scored(self.mean_abs)
    }
}

impl Scoreboard {
    fn ensure(&mut self, classes: usize) {
        if self.classes != classes {
            *self = Scoreboard {
                classes,
                confusion: vec![0; classes * classes],
                label_counts: vec![0; classes],
                ..Scoreboard::default()
            };
        }
    }

    /// A labeled record that arrived before any model could score it.
    pub fn observe(&mut self, label: u32, classes: usize) {
        self.ensure(classes);
        if let Some(c) = self.label_counts.get_mut(label as usize) {
            *c += 1;
        }
        self.last_label = Some(label);
    }

    /// A labeled record the serving model predicted as `predicted`.
    pub fn record(&mut self, label: u32, predicted: u32, classes: usize) {
        self.ensure(classes);
        if let Some(c) = self
            .confusion
            .get_mut(label as usize * classes + predicted as usize)
        {
            *c += 1;
        }
        if self.last_label == Some(label) {
            self.nochange_hits += 1;
        }
        let majority = self
            .label_counts
            .iter()
            .enumerate()
            .max_by_key(|(i, &n)| (n, std::cmp::Reverse(*i)))
            .filter(|(_, &n)| n > 0)
            .map(|(i, _)| i as u32);
        if majority == Some(label) {
            self.majority_hits += 1;
        }
        self.observe(label, classes);
    }

    /// Labeled records scored (classes or regression targets).
    pub fn scored(&self) -> u64 {
        self.confusion.iter().sum::<u64>() + self.regression.scored
    }

    fn rate(&self, hits: u64) -> Option<f64> {
        let n = self.scored();
        (n > 0).then(|| hits as f64 / n as f64)
    }

    pub fn accuracy(&self) -> Option<f64> {
        let k = self.classes;
        self.rate((0..k).map(|i| self.confusion[i * k + i]).sum())
    }

    /// Accuracy over every labeled record seen, those before the first model counted as
    /// errors (comparable with learners that predict from the first record).
    pub fn accuracy_all(&self) -> Option<f64> {
        let k = self.classes;
        let seen: u64 = self.label_counts.iter().sum();
        let hits: u64 = (0..k).map(|i| self.confusion[i * k + i]).sum();
        (seen > 0).then(|| hits as f64 / seen as f64)
    }

    pub fn nochange_accuracy(&self) -> Option<f64> {
        self.rate(self.nochange_hits)
    }

    pub fn majority_accuracy(&self) -> Option<f64> {
        self.rate(self.majority_hits)
    }

    /// Cohen's kappa: accuracy against the agreement expected by chance from the marginals.
    pub fn kappa(&self) -> Option<f64> {
        let k = self.classes;
        let n = self.scored() as f64;
        let acc = self.accuracy()?;
        let chance: f64 = (0..k)
            .map(|c| {
                let truth: u64 = (0..k).map(|p| self.confusion[c * k + p]).sum();
                let pred: u64 = (0..k).map(|t| self.confusion[t * k + c]).sum();
                (truth as f64 / n) * (pred as f64 / n)
            })
            .sum();
        (chance < 1.0).then(|| (acc - chance) / (1.0 - chance))
    }

    /// Temporal kappa: accuracy against the no-change baseline's on the same records.
    pub fn kappa_temporal(&self) -> Option<f64> {
        let acc = self.accuracy()?;
        let base = self.nochange_accuracy()?;
        (base < 1.0).then(|| (acc - base) / (1.0 - base))
    }
}

/// The whole-stream scores sampled as batches are written, for a plot of accuracy (or MAE)
/// over the stream: each point holds cumulative totals, so two points' difference is the
/// window between them. In memory only (what a run reports, not state): at most
/// [`Curve::MAX_POINTS`] points; when full, every other one goes and the spacing doubles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    /// Records processed between two points, at least.
    pub every: u64,
    pub points: Vec<CurvePoint>,
}

/// The scores as of one durable batch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Records processed (the source's count).
    pub records: u64,
    /// Labeled records scored, and how many the served class got right (classification).
    pub scored: u64,
    pub correct: u64,
    /// Sum of the absolute errors of the served values (regression).
    pub abs_error: f64,
}

impl Default for Curve {
    fn default() -> Curve {
        Curve {
            every: Curve::FIRST_EVERY,
            points: Vec::new(),
        }
    }
}

impl Curve {
    /// Points kept at most.
    pub const MAX_POINTS: usize = 1024;
    /// Spacing of the points (records) until the curve first fills.
    pub const FIRST_EVERY: u64 = 100;

    /// Samples `scores` after `records` records, when at least `every` records have passed
    /// since the last point.
    pub fn observe(&mut self, records: u64, scores: &Scoreboard) {
        if self
            .points
            .last()
            .is_some_and(|p| records < p.records.saturating_add(self.every))
        {
            return;
        }
        self.push(records, scores);
        if self.points.len() > Curve::MAX_POINTS {
            let mut i = 0;
            self.points.retain(|_| {
                i += 1;
                i % 2 == 0
            });
            self.every = self.every.saturating_mul(2);
        }
    }

    /// Samples `scores` at the end of a run (the last point, whatever the spacing).
    pub fn close(&mut self, records: u64, scores: &Scoreboard) {
        if self.points.last().is_none_or(|p| p.records != records) {
            self.push(records, scores);
        }
    }

    fn push(&mut self, records: u64, scores: &Scoreboard) {
        let k = scores.classes;
        self.points.push(CurvePoint {
            records,
            scored: scores.scored(),
            correct: (0..k).map(|i| scores.confusion[i * k + i]).sum(),
            abs_error: scores.regression.abs_sum,
        });
    }

    /// Accuracy (or, for `regression`, MAE) over consecutive windows of at least `span`
    /// records (the last one may be shorter): `(records at the window's end, score)`, for
    /// windows in which some record was scored.
    pub fn windows(&self, span: u64, regression: bool) -> Vec<(u64, f64)> {
        let mut out = Vec::new();
        let mut from = CurvePoint {
            records: 0,
            scored: 0,
            correct: 0,
            abs_error: 0.0,
        };
        for (i, p) in self.points.iter().enumerate() {
            let last = i + 1 == self.points.len();
            if p.records < from.records.saturating_add(span) && !last {
                continue;
            }
            let scored = p.scored.saturating_sub(from.scored);
            if scored > 0 {
                let score = if regression {
                    (p.abs_error - from.abs_error) / scored as f64
                } else {
                    p.correct.saturating_sub(from.correct) as f64 / scored as f64
                };
                out.push((p.records, score));
            }
            from = *p;
        }
        out
    }
}

impl LoopState {
    pub fn new(config: &LearnerConfig) -> LoopState {
        LoopState {
            errors: ErrorDetectors::new(&config.drift),
            window: VecDeque::new(),
            ring_pushed: 0,
            labeled_since_retrain: 0,
            records_since_check: 0,
            alarms: BTreeSet::new(),
            trigger: TriggerState::default(),
            serving_version: None,
            retrains: 0,
            features: Vec::new(),
            layer_shifts: Vec::new(),
            totals: BTreeMap::new(),
            published: BTreeMap::new(),
            realised: BTreeMap::new(),
            realised_published: BTreeSet::new(),
            tracker: None,
            new_category_rates: Vec::new(),
            scores: Scoreboard::default(),
            rejected_in_row: 0,
        }
    }

    pub fn add_total(&mut self, total: Total, n: u64) {
        *self.totals.entry(total).or_default() += n;
    }

    pub fn total(&self, total: Total) -> u64 {
        self.totals.get(&total).copied().unwrap_or(0)
    }

    /// Labeled records the serving model scored (right or wrong).
    pub fn scored(&self) -> u64 {
        self.total(Total::Prediction(Scored::Correct))
            + self.total(Total::Prediction(Scored::Incorrect))
    }

    /// Folds one arriving record's new-category flags (bit `k`: field `k` of `fields`) into
    /// the rates, each an exponentially weighted mean over about `window` records.
    pub fn observe_new_categories(&mut self, fields: usize, flags: u64, window: usize) {
        if self.new_category_rates.len() != fields {
            self.new_category_rates = vec![0.0; fields];
        }
        let w = 1.0 / window.max(1) as f64;
        for (k, rate) in self.new_category_rates.iter_mut().enumerate() {
            let new = k < 64 && flags & (1 << k) != 0;
            *rate += w * (f64::from(u8::from(new)) - *rate);
        }
    }

    /// The rates by categorical field name (`schema.categorical`).
    pub fn new_category_rates(&self, config: &LearnerConfig) -> BTreeMap<String, f64> {
        config
            .categorical
            .iter()
            .cloned()
            .zip(self.new_category_rates.iter().copied())
            .collect()
    }

    /// Raises a detector's alarm (until the next retrain) and counts the detection.
    pub fn alarm(&mut self, detector: Detector) {
        self.add_total(Total::Detection(detector), 1);
        if self.alarms.insert(detector) {
            tracing::info!(detector = detector.as_str(), "drift alarm");
        }
    }

    /// Counts a labeled prediction of model `version` (realised accuracy per version).
    pub fn count_realised(&mut self, version: u64, hit: bool) {
        let t = self.realised.entry(version).or_default();
        t.0 += u64::from(hit);
        t.1 += 1;
        while self.realised.len() > REALISED_VERSIONS {
            self.realised.pop_first();
        }
    }

    pub fn push_prediction(&mut self, hit: bool, loss: f32, window: usize) {
        self.window.push_back((hit, loss));
        while self.window.len() > window {
            self.window.pop_front();
        }
    }

    pub fn window_accuracy(&self) -> Option<f64> {
        if self.window.is_empty() {
            return None;
        }
        Some(self.window.iter().filter(|(h, _)| *h).count() as f64 / self.window.len() as f64)
    }

    pub fn window_loss(&self) -> Option<f64> {
        if self.window.is_empty() {
            return None;
        }
        Some(self.window.iter().map(|(_, l)| f64::from(*l)).sum::<f64>() / self.window.len() as f64)
    }

    /// A new serving version: detectors start over against it, alarms are addressed.
    pub fn on_new_version(&mut self, config: &LearnerConfig, version: Option<u64>, now_ms: u64) {
        self.serving_version = version;
        self.rejected_in_row = 0;
        self.errors = ErrorDetectors::new(&config.drift);
        self.alarms.clear();
        self.features.clear();
        self.layer_shifts.clear();
        self.records_since_check = 0;
        self.labeled_since_retrain = 0;
        crate::drift::trigger::record_retrain(&mut self.trigger, now_ms);
    }

    /// Marks a total as already in the metrics (the worker moves the retrain counters itself,
    /// the moment a retrain ends).
    pub fn mark_published(&mut self, total: Total) {
        self.published.insert(total, self.total(total));
    }

    /// Starts the counters from the stored totals (after a restart).
    pub fn restore_metrics(&mut self, metrics: &Metrics, config: &LearnerConfig) {
        self.published.clear();
        self.publish_metrics(metrics, config);
    }

    /// Moves counters by what the totals gained since the last call and sets the gauges.
    pub fn publish_metrics(&mut self, m: &Metrics, config: &LearnerConfig) {
        self.publish_totals(m);
        self.publish_learning(m);
        self.publish_drift(m, config);
    }

    /// Moves each total's counter by what it gained since the last call.
    fn publish_totals(&mut self, m: &Metrics) {
        for (&key, &total) in &self.totals {
            let done = self.published.get(&key).copied().unwrap_or(0);
            if total <= done {
                continue;
            }
            let delta = total - done;
            let label = key.label();
            match key {
                Total::Prediction(_) => m
                    .learn
                    .predictions
                    .with_label_values(&[label])
                    .inc_by(delta),
                Total::Detection(_) => m.drift.detections.with_label_values(&[label]).inc_by(delta),
                Total::Trigger(_) => m.retrain.triggers.with_label_values(&[label]).inc_by(delta),
                Total::Run(_) => m.retrain.runs.with_label_values(&[label]).inc_by(delta),
                Total::Challenger(_) => m
                    .learn
                    .challenger_predictions
                    .with_label_values(&[label])
                    .inc_by(delta),
                Total::Promotion(_) => m.learn.promotions.with_label_values(&[label]).inc_by(delta),
                Total::Reset(_) => m
                    .learn
                    .challenger_resets
                    .with_label_values(&[label])
                    .inc_by(delta),
                Total::SkippedForBudget => m.learn.challenger_skipped.inc_by(delta),
                Total::SkippedFitted => m.learn.challenger_fitted.inc_by(delta),
            }
            self.published.insert(key, total);
        }
    }

    /// The learning gauges: recent accuracy and loss, realised accuracy per version (a
    /// version no longer tracked loses its series), the regression scores.
    fn publish_learning(&mut self, m: &Metrics) {
        if let Some(a) = self.window_accuracy() {
            m.learn.accuracy.set(a);
        }
        if let Some(l) = self.window_loss() {
            m.learn.loss.set(l);
        }
        for (v, (hits, n)) in &self.realised {
            if *n > 0 {
                m.learn
                    .realised_accuracy
                    .with_label_values(&[&v.to_string()])
                    .set(*hits as f64 / *n as f64);
            }
        }
        for v in std::mem::take(&mut self.realised_published) {
            if !self.realised.contains_key(&v) {
                // Best effort: the child exists unless it was never set.
                let _ = m
                    .learn
                    .realised_accuracy
                    .remove_label_values(&[&v.to_string()]);
            }
        }
        self.realised_published = self.realised.keys().copied().collect();
        let r = &self.scores.regression;
        if let (Some(mae), Some(rmse)) = (r.mae(), r.rmse()) {
            m.learn.regression_mae.set(mae);
            m.learn.regression_rmse.set(rmse);
        }
        if let Some(r2) = r.r2() {
            m.learn.regression_r2.set(r2);
        }
    }

    /// The drift gauges: new-category rates, each detector's statistic, threshold and state
    /// (an alarm holds until the next retrain), each input group's and layer's shift.
    fn publish_drift(&self, m: &Metrics, config: &LearnerConfig) {
        for (field, rate) in self.new_category_rates(config) {
            m.drift
                .new_category_ratio
                .with_label_values(&[&field])
                .set(rate);
        }
        let sticky = |d: Detector, s: DriftState| {
            if self.alarms.contains(&d) {
                DriftState::Drift.level()
            } else {
                s.level()
            }
        };
        for (d, r) in self.errors.readings() {
            let name = d.as_str();
            m.drift
                .statistic
                .with_label_values(&[name])
                .set(r.statistic);
            m.drift
                .threshold
                .with_label_values(&[name])
                .set(r.threshold);
            m.drift
                .state
                .with_label_values(&[name])
                .set(sticky(d, r.state));
        }
        for d in [Detector::FeatureKs, Detector::LayerShift] {
            m.drift
                .state
                .with_label_values(&[d.as_str()])
                .set(sticky(d, DriftState::Stable));
        }
        for ((f, _), d) in config.drift_groups.iter().zip(&self.features) {
            m.drift
                .feature_ks
                .with_label_values(&[f])
                .set(d.ks_statistic);
            m.drift.feature_p.with_label_values(&[f]).set(d.ks_p_value);
            m.drift.feature_psi.with_label_values(&[f]).set(d.psi);
        }
        for (l, s) in &self.layer_shifts {
            m.drift.layer_shift.with_label_values(&[l]).set(*s);
        }
    }
}

/// The stored state, or a fresh one.
pub fn load(store: &dyn KvStore, config: &LearnerConfig) -> Result<LoopState, LoopError> {
    match store.get(Cf::Meta, STATE_KEY)? {
        None => Ok(LoopState::new(config)),
        Some(b) => serde_json::from_slice(&b).map_err(|e| StoreError::codec(STATE_NAME, e).into()),
    }
}

/// Stages the state into the ingest batch.
pub fn stage(batch: &mut WriteBatch, state: &LoopState) -> Result<(), LoopError> {
    let bytes = serde_json::to_vec(state).map_err(|e| StoreError::codec(STATE_NAME, e))?;
    batch.put(Cf::Meta, STATE_KEY.to_vec(), bytes);
    Ok(())
}

fn ring_key(slot: usize) -> Vec<u8> {
    format!("{RING_PREFIX}{slot:010}").into_bytes()
}

pub fn stage_ring_slot(batch: &mut WriteBatch, slot: usize, record: &Record) {
    batch.put(Cf::Meta, ring_key(slot), record.encode());
}

/// The stored ring in slot order (at most `window` slots).
pub fn load_ring(store: &dyn KvStore, window: usize) -> Result<Vec<Record>, LoopError> {
    let mut out = Vec::new();
    for (k, v) in store.scan_prefix(Cf::Meta, RING_PREFIX.as_bytes())? {
        if out.len() >= window {
            break;
        }
        out.push(
            Record::decode(&v).map_err(|e| StoreError::codec(String::from_utf8_lossy(&k), e))?,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{Curve, Scoreboard};

    #[test]
    fn curve_windows_are_differences_and_the_curve_stays_bounded() {
        let mut scores = Scoreboard::default();
        let mut curve = Curve::default();
        // 300 records, each labeled and scored: the first 200 right, the last 100 wrong.
        for n in 1..=300u64 {
            scores.record(0, if n <= 200 { 0 } else { 1 }, 2);
            curve.observe(n, &scores);
        }
        // Points every 100 records: after the first record, then 101, 201.
        let at: Vec<u64> = curve.points.iter().map(|p| p.records).collect();
        assert_eq!(at, vec![1, 101, 201]);
        curve.close(300, &scores);
        curve.close(300, &scores);
        assert_eq!(curve.points.len(), 4, "closing twice adds one point");
        // Windows of 150 records: 1..=201 (200 right of 201), then 202..=300 (all wrong).
        let w = curve.windows(150, false);
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].0, 201);
        assert!((w[0].1 - 200.0 / 201.0).abs() < 1e-12, "{w:?}");
        assert_eq!(w[1], (300, 0.0));
        // A long stream halves the points and doubles the spacing when full.
        let mut long = Curve::default();
        for n in 1..=200_000u64 {
            long.observe(n, &scores);
        }
        assert!(long.points.len() <= Curve::MAX_POINTS);
        assert!(long.points.len() > Curve::MAX_POINTS / 2);
        assert!(long.every > Curve::FIRST_EVERY);
        assert!(long.points.windows(2).all(|p| p[1].records > p[0].records));
    }

    #[test]
    fn scoreboard_kappas_from_hand_counts() {
        let mut s = Scoreboard::default();
        // Labels 0 0 1 1 0; the first is only observed (no model yet).
        s.observe(0, 2);
        // Predictions: 0 (right), 0 (wrong), 1 (right), 0 (right).
        s.record(0, 0, 2);
        s.record(1, 0, 2);
        s.record(1, 1, 2);
        s.record(0, 0, 2);
        assert_eq!(s.scored(), 4);
        assert_eq!(s.accuracy(), Some(0.75));
        // Five labels seen, three predicted right.
        assert_eq!(s.accuracy_all(), Some(0.6));
        // No-change predicts 0,0,1,1 for truths 0,1,1,0: right twice.
        assert_eq!(s.nochange_accuracy(), Some(0.5));
        // kappa_t = (0.75 - 0.5) / (1 - 0.5).
        assert_eq!(s.kappa_temporal(), Some(0.5));
        // Majority so far predicts 0,0,0,0 (ties to the lower class) for 0,1,1,0: right twice.
        assert_eq!(s.majority_accuracy(), Some(0.5));
        // Chance agreement: truth marginals (0.5, 0.5), predicted (0.75, 0.25) -> 0.5;
        // kappa = (0.75 - 0.5) / 0.5.
        assert!((s.kappa().unwrap() - 0.5).abs() < 1e-12);
    }
}
