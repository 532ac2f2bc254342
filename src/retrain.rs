//! The retrain job: choose the layers, train a candidate with online EWC and replay, validate
//! it on old knowledge (a replay sample) and new knowledge (held-out recent records), and
//! decide. The job works on copies; the serving model is never modified.

use serde::{Deserialize, Serialize};

use crate::drift::layers::{select_layers, selection_shifts, LayerChoice};
use crate::learn::diagnostics::{activation_stats, relative_gradient_norms, ActivationStats};
use crate::learn::ewc::EwcConfig;
use crate::learn::train::{estimate_flops, train};
use crate::learn::{
    BackendKind, Dataset, Ewc, LayerSet, LearnError, Model, ModelSpec, Normalizer, TrainConfig,
    TrainReport,
};
use crate::rng::Rng;

/// Which layers a retrain changes: `"auto"`, `"all"`, or a list of names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LayerPolicy {
    /// `"auto"` or `"all"`.
    Keyword(String),
    /// Layer names (`["hidden.1", "head"]`).
    Named(Vec<String>),
}

/// Partial (the chosen layers) or full (every layer) retraining.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RetrainMode {
    Partial,
    Full,
}

/// Whether ingest waits for a running retrain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WaitPolicy {
    Auto,
    Always,
    Never,
}

/// `[retrain]`: layer choice and the validation gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrainConfig {
    /// `"auto"` (layer drift + Auto-RGN), `"all"`, or a list of layer names.
    pub layers: LayerPolicy,
    /// `partial` trains the chosen layers; `full` trains every layer (for comparison).
    pub mode: RetrainMode,
    /// Most layers auto selection picks.
    pub max_layers: usize,
    /// Auto selection picks layers whose combined score (relative shift and relative gradient
    /// norm, averaged) reaches this; the best layer is always picked.
    pub select_threshold: f64,
    /// Most a partial retrain may cost, as a fraction of the estimated FLOPs of a full retrain
    /// on the same data (1 = no limit). Auto selection keeps the chosen layers that fit, best
    /// first; what a dropped layer leaves goes to the best-scoring other layers that fit (up
    /// to `max_layers`). Training a low layer needs the backward pass through every layer
    /// above it, so under a tight budget an input-level shift is answered by the top layers.
    pub max_cost: f64,
    /// Fraction of the recent window held out for validation (new knowledge).
    pub holdout_fraction: f64,
    /// Replay records used to validate old knowledge (never records of the recent window).
    pub validation_replay: usize,
    /// Promote only if old-knowledge accuracy drops by at most this much.
    pub max_forgetting: f64,
    /// Promote only if new-knowledge accuracy improves by at least this much.
    pub min_gain: f64,
    /// Whether ingest waits while a retrain runs: `auto` waits when reading a file (a replay,
    /// reproducible run to run) and not when consuming Kafka; `always`; `never` (the retrain
    /// runs on its own thread and ingest keeps its rate).
    pub wait: WaitPolicy,
    /// Added to the ingest thread's nice value (`ingest.nice`) for the retrain thread (Linux;
    /// 0 to 19, the sum at most 19; 0 = the priority of ingest): a retrain takes the CPU
    /// that ingest and predict leave, so on a busy machine it takes longer instead of
    /// slowing them down.
    pub nice: i32,
}

/// The default `retrain.max_cost`. Measured with `relearn eval` (defaults, model seeds 1-4,
/// 2026-12-06, with the trigger's backoff after rejections): against no limit, mean accuracy
/// over seven development streams 0.9191 -> 0.9203 (Elec2 0.9094 -> 0.9181, bank marketing
/// 0.9121 -> 0.9108, KDD Cup 99 -0.01 points, the other four equal) at 0.65x (Elec2), 0.33x
/// (bank marketing) and 0.15x (KDD Cup 99) of the training FLOPs (the short streams spend
/// theirs in the challenger: equal), the four River-bundled streams within 0.02 points, the
/// first 20,000 MNIST images equal;
/// MAE on bike sharing -0.3%, PM2.5 -0.03%, metro traffic +0.8%, Trump approval equal. 0.5
/// scored the same on the classification streams at more cost and PM2.5 +0.3%, metro +1.0%;
/// 0.2 cost bank marketing 0.09 points more.
pub const DEFAULT_MAX_COST: f64 = 0.3;

impl Default for RetrainConfig {
    fn default() -> Self {
        Self {
            layers: LayerPolicy::Keyword("auto".into()),
            mode: RetrainMode::Partial,
            max_layers: 2,
            select_threshold: 0.5,
            max_cost: DEFAULT_MAX_COST,
            holdout_fraction: 0.25,
            validation_replay: 1000,
            max_forgetting: 0.02,
            min_gain: 0.0,
            wait: WaitPolicy::Auto,
            nice: 10,
        }
    }
}

impl RetrainConfig {
    /// Refuses values that cannot work; returns the key at fault and why.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        match &self.layers {
            LayerPolicy::Keyword(k) if k != "auto" && k != "all" => {
                return Err((
                    "retrain.layers",
                    format!("`{k}` is neither \"auto\", \"all\" nor a list of layer names"),
                ))
            }
            LayerPolicy::Named(v) if v.is_empty() => {
                return Err(("retrain.layers", "the list of layers is empty".into()))
            }
            _ => {}
        }
        if self.max_layers == 0 {
            return Err(("retrain.max_layers", "must be > 0".into()));
        }
        if !(self.max_cost > 0.0 && self.max_cost <= 1.0) {
            return Err(("retrain.max_cost", "must be in (0, 1]".into()));
        }
        if !(0.0 < self.holdout_fraction && self.holdout_fraction < 1.0) {
            return Err(("retrain.holdout_fraction", "must be in (0, 1)".into()));
        }
        if !(0.0..=1.0).contains(&self.max_forgetting) {
            return Err(("retrain.max_forgetting", "must be in [0, 1]".into()));
        }
        if !(-1.0..=1.0).contains(&self.min_gain) {
            return Err(("retrain.min_gain", "must be in [-1, 1]".into()));
        }
        if !(0..=19).contains(&self.nice) {
            return Err(("retrain.nice", format!("{} is not in 0..=19", self.nice)));
        }
        Ok(())
    }
}

/// Examples a training run will process and rows its cached prefix will cover (the fresh rows
/// and the expected distinct replay rows drawn), for `fresh` new and `replay` replay rows.
fn training_size(config: &TrainConfig, fresh: usize, replay: usize) -> (f64, f64) {
    let ratio = if replay == 0 {
        0.0
    } else {
        config.replay_ratio
    };
    let new_examples = config.epochs as f64 * fresh as f64;
    let examples = new_examples / (1.0 - ratio).max(0.05);
    let r = replay as f64;
    let drawn = if r > 0.0 {
        r * (1.0 - (-(examples - new_examples) / r).exp())
    } else {
        0.0
    };
    (examples, fresh as f64 + drawn)
}

/// Estimated FLOPs of training `names` over those of training every layer on the same examples.
fn relative_cost(
    model: &Model,
    names: &[String],
    prefix_cache: bool,
    examples: f64,
    prefix: f64,
) -> Result<f64, LearnError> {
    let set = LayerSet::named(model, names)?;
    let cached = prefix_cache && set.first().is_some_and(|k| k > 0);
    let full = estimate_flops(model, &LayerSet::all(model), examples, false, 0.0);
    Ok(estimate_flops(model, &set, examples, cached, prefix) / full.max(1.0))
}

/// Records each layer's cost alone and keeps the chosen layers that fit `max_cost` together,
/// best score first. When the budget drops a chosen layer, what is left of it goes to the
/// best-scoring other layers that still fit (up to `max_layers` in all), so a budget that cannot
/// pay for the first layer buys the top ones rather than the head alone; when nothing fits, the
/// cheapest layer trains.
fn fit_budget(
    model: &Model,
    choices: &mut [LayerChoice],
    budget: Budget,
    examples: f64,
    prefix: f64,
) -> Result<(), LearnError> {
    for c in choices.iter_mut() {
        c.cost = relative_cost(
            model,
            std::slice::from_ref(&c.layer),
            budget.prefix_cache,
            examples,
            prefix,
        )?;
    }
    if budget.max_cost >= 1.0 {
        return Ok(());
    }
    let mut order: Vec<usize> = (0..choices.len()).collect();
    order.sort_by(|&a, &b| choices[b].score.total_cmp(&choices[a].score));
    let mut picked: Vec<String> = Vec::new();
    let try_add = |picked: &mut Vec<String>, layer: &str| -> Result<(), LearnError> {
        let mut with = picked.clone();
        with.push(layer.to_string());
        if relative_cost(model, &with, budget.prefix_cache, examples, prefix)? <= budget.max_cost {
            *picked = with;
        }
        Ok(())
    };
    for &i in order.iter().filter(|&&i| choices[i].chosen) {
        try_add(&mut picked, &choices[i].layer)?;
    }
    if choices
        .iter()
        .any(|c| c.chosen && !picked.contains(&c.layer))
    {
        for &i in order.iter().filter(|&&i| !choices[i].chosen) {
            if picked.len() < budget.max_layers.max(1) {
                try_add(&mut picked, &choices[i].layer)?;
            }
        }
    }
    if picked.is_empty() {
        if let Some(c) = choices.iter().min_by(|a, b| a.cost.total_cmp(&b.cost)) {
            picked.push(c.layer.clone());
        }
    }
    for c in choices.iter_mut() {
        c.chosen = picked.contains(&c.layer);
    }
    Ok(())
}

/// What a partial retrain may spend: `retrain.max_cost`, `retrain.max_layers` and whether the
/// frozen prefix is cached (`train.prefix_cache`).
#[derive(Debug, Clone, Copy)]
struct Budget {
    max_cost: f64,
    max_layers: usize,
    prefix_cache: bool,
}

/// Accuracies of the serving model and the candidate on old and new knowledge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    pub new_current: f64,
    pub new_candidate: f64,
    pub old_current: f64,
    pub old_candidate: f64,
    /// `old_current - old_candidate`.
    pub forgetting: f64,
    /// `new_candidate - new_current`.
    pub gain: f64,
    pub new_records: usize,
    pub old_records: usize,
}

impl Validation {
    /// The scores on the new records `(current, candidate, records)` and on the old ones;
    /// forgetting and gain follow from them.
    pub fn of(new: (f64, f64, usize), old: (f64, f64, usize)) -> Validation {
        let ((new_current, new_candidate, new_records), (old_current, old_candidate, old_records)) =
            (new, old);
        Validation {
            new_current,
            new_candidate,
            old_current,
            old_candidate,
            forgetting: old_current - old_candidate,
            gain: new_candidate - new_current,
            new_records,
            old_records,
        }
    }
}

/// What the job decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum Outcome {
    Promoted,
    Rejected { reason: String },
}

/// Everything the job did; the candidate and its EWC state come back only when promoted.
#[derive(Debug, Clone)]
pub struct RetrainResult {
    pub layers: Vec<String>,
    /// Per-layer scores when layers were chosen automatically.
    pub choices: Vec<LayerChoice>,
    pub train: Option<TrainReport>,
    pub validation: Option<Validation>,
    pub outcome: Outcome,
    pub candidate: Option<Model>,
    pub ewc: Option<Ewc>,
    /// The records the candidate was trained on (its reference window), when promoted.
    pub trained_on: Option<Dataset>,
}

/// A run whose loss diverged: a rejection, not an error.
fn diverged(
    layers: Vec<String>,
    choices: Vec<LayerChoice>,
    loss: f64,
    epoch: usize,
) -> RetrainResult {
    RetrainResult {
        layers,
        choices,
        train: None,
        validation: None,
        outcome: Outcome::Rejected {
            reason: format!("training diverged: loss {loss} in epoch {epoch}"),
        },
        candidate: None,
        ewc: None,
        trained_on: None,
    }
}

/// What a version keeps to detect drift against: a sample of the raw feature rows it was
/// trained on, its hidden layers' activation statistics on them, and its held-out accuracy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    /// Raw feature rows, row-major `[rows, width]`.
    pub features: Vec<f32>,
    pub activations: Vec<ActivationStats>,
    /// Held-out (new knowledge) accuracy when the version was promoted.
    pub accuracy: Option<f64>,
}

impl Reference {
    /// The reference of `model` from (at most `rows` of) the data it was trained on.
    pub fn of(
        model: &Model,
        data: &Dataset,
        rows: usize,
        accuracy: Option<f64>,
        seed: u64,
    ) -> Result<Reference, LearnError> {
        if data.is_empty() {
            return Err(LearnError::Empty);
        }
        let mut rng = Rng::seeded(seed);
        let idx = Dataset::shuffled_indices(data.len(), &mut rng);
        let sample = data.subset(&idx[..rows.min(data.len())]);
        Ok(Reference {
            activations: activation_stats(model, &sample.x)?,
            features: sample.x,
            accuracy,
        })
    }
}

/// Trains the first model (every layer, from scratch, standardised on the window) on the
/// recent labeled window. It is promoted unless training diverges; its held-out accuracy is
/// reported as `new_candidate`.
pub fn bootstrap(
    spec: ModelSpec,
    backend: BackendKind,
    seed: u64,
    recent: &Dataset,
    config: &RetrainConfig,
    train_config: &TrainConfig,
    ewc_config: &EwcConfig,
) -> Result<RetrainResult, LearnError> {
    let mut rng = Rng::seeded(seed);
    let (fresh, holdout) = recent.split(1.0 - config.holdout_fraction, &mut rng);
    if fresh.is_empty() || holdout.is_empty() {
        return Err(LearnError::Empty);
    }
    let norm = Normalizer::fit(&fresh.x, fresh.width);
    let mut model = Model::new(spec, norm, backend, seed)?;
    if let Some(values) = fresh.y.values() {
        model.target = crate::learn::TargetScale::fit(values);
    }
    let layers = LayerSet::all(&model);
    let layer_names = layers.names(&model);
    let (candidate, report) = match train(&model, &fresh, None, &layers, train_config, None) {
        Ok(x) => x,
        Err(LearnError::Diverged(loss, epoch)) => {
            return Ok(diverged(layer_names, Vec::new(), loss, epoch))
        }
        Err(e) => return Err(e),
    };
    let new_candidate = candidate.score(&holdout)?;
    let mut ewc = Ewc::new(ewc_config.lambda, ewc_config.gamma);
    ewc.consolidate(&candidate, &fresh, ewc_config.fisher_examples)?;
    Ok(RetrainResult {
        layers: layer_names,
        choices: Vec::new(),
        train: Some(report),
        validation: Some(Validation::of(
            (0.0, new_candidate, holdout.len()),
            (0.0, 0.0, 0),
        )),
        outcome: Outcome::Promoted,
        candidate: Some(candidate),
        ewc: Some(ewc),
        trained_on: Some(fresh),
    })
}

/// Inputs of one retrain.
pub struct RetrainInput<'a> {
    /// The serving model.
    pub current: &'a Model,
    /// Its online EWC state (None: no penalty yet).
    pub ewc: Option<&'a Ewc>,
    /// Activation statistics stored with the serving version (auto layer choice).
    pub reference: &'a [ActivationStats],
    /// The recent labeled window (split into train and held-out).
    pub recent: &'a Dataset,
    /// Replayed old records (training mix and old-knowledge validation). Rows also in `recent`
    /// (same features and label) are left out: the reservoir samples the whole stream, so it
    /// holds part of the recent window, which is new knowledge, not old.
    pub replay: &'a Dataset,
    pub seed: u64,
}

/// The rows of `replay` that are not rows of `recent` (same label and feature bits). Rows are
/// indexed by a hash and compared in full only when the hashes match.
fn not_in(replay: &Dataset, recent: &Dataset) -> Dataset {
    use std::hash::{Hash, Hasher};
    let hash = |d: &Dataset, i: usize| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        d.y.bits(i).hash(&mut h);
        d.row(i).iter().for_each(|v| v.to_bits().hash(&mut h));
        h.finish()
    };
    let same = |i: usize, j: usize| {
        replay.y.bits(i) == recent.y.bits(j)
            && replay
                .row(i)
                .iter()
                .zip(recent.row(j))
                .all(|(a, b)| a.to_bits() == b.to_bits())
    };
    let mut index: std::collections::HashMap<u64, Vec<usize>> = Default::default();
    for j in 0..recent.len() {
        index.entry(hash(recent, j)).or_default().push(j);
    }
    let keep: Vec<usize> = (0..replay.len())
        .filter(|&i| {
            index
                .get(&hash(replay, i))
                .is_none_or(|js| !js.iter().any(|&j| same(i, j)))
        })
        .collect();
    replay.subset(&keep)
}

/// Runs one retrain and decides. Errors are for bad inputs; a diverging candidate is a
/// rejection, not an error.
pub fn run(
    input: &RetrainInput<'_>,
    config: &RetrainConfig,
    train_config: &TrainConfig,
    ewc_config: &EwcConfig,
) -> Result<RetrainResult, LearnError> {
    let current = input.current;
    let mut rng = Rng::seeded(input.seed);
    let (fresh, holdout) = input.recent.split(1.0 - config.holdout_fraction, &mut rng);
    if fresh.is_empty() || holdout.is_empty() {
        return Err(LearnError::Empty);
    }
    let older = not_in(input.replay, input.recent);
    let idx = Dataset::shuffled_indices(older.len(), &mut rng);
    let cut = config.validation_replay.min(older.len() / 2);
    let old = older.subset(&idx[..cut]);
    let replay_train = older.subset(&idx[cut..]);

    let mut choices = Vec::new();
    let layers = match (&config.mode, &config.layers) {
        (RetrainMode::Full, _) => LayerSet::all(current),
        (_, LayerPolicy::Named(names)) => LayerSet::named(current, names)?,
        (_, LayerPolicy::Keyword(k)) if k == "all" => LayerSet::all(current),
        (_, LayerPolicy::Keyword(_)) => {
            let now = activation_stats(current, &fresh.x)?;
            let shifts = selection_shifts(input.reference, &now);
            let grads = relative_gradient_norms(current, &fresh, 512)?;
            choices = select_layers(&shifts, &grads, config.select_threshold, config.max_layers);
            let (examples, prefix) = training_size(train_config, fresh.len(), replay_train.len());
            let budget = Budget {
                max_cost: config.max_cost,
                max_layers: config.max_layers,
                prefix_cache: train_config.prefix_cache,
            };
            fit_budget(current, &mut choices, budget, examples, prefix)?;
            let names: Vec<String> = choices
                .iter()
                .filter(|c| c.chosen)
                .map(|c| c.layer.clone())
                .collect();
            LayerSet::named(current, &names)?
        }
    };
    let layer_names = layers.names(current);
    let ewc = input.ewc.filter(|_| ewc_config.lambda > 0.0);
    let replay = (!replay_train.is_empty()).then_some(&replay_train);
    let (candidate, report) = match train(current, &fresh, replay, &layers, train_config, ewc) {
        Ok(x) => x,
        Err(LearnError::Diverged(loss, epoch)) => {
            return Ok(diverged(layer_names, choices, loss, epoch))
        }
        Err(e) => return Err(e),
    };
    let (old_current, old_candidate) = if old.is_empty() {
        (0.0, 0.0)
    } else {
        (current.score(&old)?, candidate.score(&old)?)
    };
    let (new_current, new_candidate) = (current.score(&holdout)?, candidate.score(&holdout)?);
    let validation = Validation::of(
        (new_current, new_candidate, holdout.len()),
        (old_current, old_candidate, old.len()),
    );
    let outcome = if validation.forgetting > config.max_forgetting {
        Outcome::Rejected {
            reason: format!(
                "forgetting {:.4} > max_forgetting {}",
                validation.forgetting, config.max_forgetting
            ),
        }
    } else if validation.gain < config.min_gain {
        Outcome::Rejected {
            reason: format!("gain {:.4} < min_gain {}", validation.gain, config.min_gain),
        }
    } else {
        Outcome::Promoted
    };
    let (candidate, ewc, trained_on) = if outcome == Outcome::Promoted {
        let mut next = input
            .ewc
            .cloned()
            .unwrap_or_else(|| Ewc::new(ewc_config.lambda, ewc_config.gamma));
        next.lambda = ewc_config.lambda;
        next.gamma = ewc_config.gamma;
        next.consolidate(&candidate, &fresh, ewc_config.fisher_examples)?;
        (Some(candidate), Some(next), Some(fresh))
    } else {
        (None, None, None)
    };
    Ok(RetrainResult {
        layers: layer_names,
        choices,
        train: Some(report),
        validation: Some(validation),
        outcome,
        candidate,
        ewc,
        trained_on,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Model {
        let spec = ModelSpec::classifier(784, vec![256, 256], 10);
        Model::new(spec, Normalizer::identity(784), BackendKind::from_env(), 1).unwrap()
    }

    fn choice(layer: &str, score: f64, chosen: bool) -> LayerChoice {
        LayerChoice {
            layer: layer.into(),
            shift: score,
            gradient: score,
            score,
            cost: 0.0,
            chosen,
        }
    }

    fn chosen(c: &[LayerChoice]) -> Vec<&str> {
        c.iter()
            .filter(|c| c.chosen)
            .map(|c| c.layer.as_str())
            .collect()
    }

    #[test]
    fn the_budget_keeps_the_best_layers_that_fit() {
        let m = model();
        let budget = |max_cost| Budget {
            max_cost,
            max_layers: 2,
            prefix_cache: true,
        };
        let all = || {
            vec![
                choice("hidden.0", 1.0, true),
                choice("hidden.1", 0.8, true),
                choice("head", 0.6, false),
            ]
        };
        // No limit: the selection stands, each layer's cost alone is recorded.
        let mut c = all();
        fit_budget(&m, &mut c, budget(1.0), 30_000.0, 10_000.0).unwrap();
        assert_eq!(chosen(&c), ["hidden.0", "hidden.1"]);
        // The first layer needs the whole backward pass; the head alone is cheap.
        assert!(c[0].cost > 0.8, "{c:?}");
        assert!(c[2].cost < 0.2, "{c:?}");
        assert!(c[1].cost > c[2].cost);
        // 0.5: hidden.0 does not fit, hidden.1 does, and what is left buys the head too.
        let mut c = all();
        fit_budget(&m, &mut c, budget(0.5), 30_000.0, 10_000.0).unwrap();
        assert_eq!(chosen(&c), ["hidden.1", "head"]);
        // ... but never more layers than max_layers.
        let mut c = all();
        let one = Budget {
            max_layers: 1,
            ..budget(0.5)
        };
        fit_budget(&m, &mut c, one, 30_000.0, 10_000.0).unwrap();
        assert_eq!(chosen(&c), ["hidden.1"]);
        // 0.2: neither chosen layer fits; the best-scoring layer that fits alone is the head.
        let mut c = all();
        fit_budget(&m, &mut c, budget(0.2), 30_000.0, 10_000.0).unwrap();
        assert_eq!(chosen(&c), ["head"]);
        // Below anything: the cheapest layer still trains.
        let mut c = all();
        fit_budget(&m, &mut c, budget(0.001), 30_000.0, 10_000.0).unwrap();
        assert_eq!(chosen(&c), ["head"]);
        // The estimate is the one training reports: hidden.1 + head with the cached prefix.
        let names = vec!["hidden.1".to_string(), "head".to_string()];
        let cost = relative_cost(&m, &names, true, 30_000.0, 10_000.0).unwrap();
        let set = LayerSet::named(&m, &names).unwrap();
        let expected = estimate_flops(&m, &set, 30_000.0, true, 10_000.0)
            / estimate_flops(&m, &LayerSet::all(&m), 30_000.0, false, 0.0);
        assert!((cost - expected).abs() < 1e-12);
    }

    #[test]
    fn max_cost_is_checked() {
        let c = RetrainConfig {
            max_cost: 0.0,
            ..RetrainConfig::default()
        };
        assert_eq!(c.check().unwrap_err().0, "retrain.max_cost");
        let c = RetrainConfig {
            max_cost: 1.5,
            ..RetrainConfig::default()
        };
        assert_eq!(c.check().unwrap_err().0, "retrain.max_cost");
    }
}
