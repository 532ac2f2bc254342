//! Partial training: only the chosen layers change; a frozen prefix is computed once.
//!
//! Frozen layers' parameters do not require gradients, so they get none and the optimizer
//! keeps no state for them; they stay bit-identical. The frozen layers below the lowest
//! trainable one (`hidden.0 .. hidden.k-1`) are computed once without autodiff and their
//! outputs reused across epochs; frozen layers above it still run forward and pass gradients
//! down. Each batch can mix replayed old records at a fixed ratio, and the
//! online EWC penalty is added to the loss.

use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::ewc::Term;
use super::loss::{check_targets, task_loss};
use super::model::host::{HostAdam, HostPenalty, Step};
use super::model::{LayerSet, Mlp};
use super::{Dataset, Ewc, LearnError, Model, Targets};
use crate::error::ConfigError;
use crate::rng::Rng;

/// A flag a training run checks before every step; set at shutdown so that a long retrain
/// ends within the shutdown budget. A runtime handle, not configuration: serde skips it and
/// equality ignores it.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Option<std::sync::Arc<std::sync::atomic::AtomicBool>>);

impl CancelFlag {
    /// A flag that reads `flag`.
    pub fn new(flag: std::sync::Arc<std::sync::atomic::AtomicBool>) -> CancelFlag {
        CancelFlag(Some(flag))
    }

    /// Whether training should stop now.
    pub fn is_set(&self) -> bool {
        self.0
            .as_ref()
            .is_some_and(|f| f.load(std::sync::atomic::Ordering::SeqCst))
    }
}

impl PartialEq for CancelFlag {
    fn eq(&self, _: &CancelFlag) -> bool {
        true
    }
}

/// Training hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Passes over the new data.
    pub epochs: usize,
    /// Examples per step (new + replayed).
    pub batch_size: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Fraction of each batch drawn from the replay data (0 = none).
    pub replay_ratio: f64,
    /// Compute the frozen layers below the lowest trainable one once and reuse their output
    /// across epochs.
    pub prefix_cache: bool,
    /// Seed of shuffling, replay draws and dropout.
    pub seed: u64,
    /// Set at shutdown: training stops before its next step with `LearnError::Cancelled`.
    #[serde(skip)]
    pub cancel: CancelFlag,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 5,
            batch_size: 64,
            learning_rate: 1e-3,
            replay_ratio: 0.0,
            prefix_cache: true,
            seed: 7,
            cancel: CancelFlag::default(),
        }
    }
}

/// What a training run did and cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// Layers that changed.
    pub layers: Vec<String>,
    /// Mean training loss (cross-entropy + EWC penalty) per epoch.
    pub epoch_loss: Vec<f64>,
    /// Mean EWC penalty per epoch (0 without EWC).
    pub epoch_penalty: Vec<f64>,
    pub wall_seconds: f64,
    /// Examples (new + replayed) processed per second, all epochs.
    pub examples_per_second: f64,
    pub trainable_params: usize,
    pub total_params: usize,
    /// Whether the frozen prefix was computed once.
    pub prefix_cached: bool,
    /// Estimated floating-point operations of this run (multiply-add = 2).
    pub flops: f64,
    /// Estimated FLOPs of the same run with every layer trainable and no cache.
    pub flops_full: f64,
}

/// Estimated FLOPs of training `examples` example-passes with `layers` trainable, plus the
/// one-off prefix pass over `prefix_examples` when cached. Forward of a layer is `2*in*out`;
/// backward adds `2*in*out` for its weight gradient if it trains and `2*in*out` for its input
/// gradient if a trainable layer lies below it.
pub fn estimate_flops(
    model: &Model,
    layers: &LayerSet,
    examples: f64,
    cached: bool,
    prefix_examples: f64,
) -> f64 {
    let dims = model.spec.layer_dims();
    let k = layers.first().unwrap_or(0);
    let mut per_example = 0.0;
    let mut prefix = 0.0;
    for (i, &(a, b)) in dims.iter().enumerate() {
        let f = 2.0 * (a * b) as f64;
        if i < k && cached {
            prefix += f;
            continue;
        }
        per_example += f;
        if layers.contains(i) {
            per_example += f;
        }
        if i > k {
            per_example += f;
        }
    }
    per_example * examples + prefix * prefix_examples
}

fn check(model: &Model, data: &Dataset) -> Result<(), LearnError> {
    if data.width != model.spec.input {
        return Err(LearnError::Width {
            got: data.width,
            expected: model.spec.input,
        });
    }
    check_targets(model, &data.y)
}

/// Rows of `[n, w]` features (already transformed) kept as a flat buffer.
struct Rows {
    x: Vec<f32>,
    width: usize,
}

impl Rows {
    fn gather(&self, idx: &[usize], out: &mut Vec<f32>) {
        for &i in idx {
            out.extend_from_slice(&self.x[i * self.width..(i + 1) * self.width]);
        }
    }
}

/// Trains `layers` of a copy of `model` on `data` (mixed with `replay` at
/// `config.replay_ratio`) with an optional EWC penalty. Returns the candidate and a report;
/// `model` itself is unchanged. A NaN or infinite loss is an error (`Diverged`).
pub fn train(
    model: &Model,
    data: &Dataset,
    replay: Option<&Dataset>,
    layers: &LayerSet,
    config: &TrainConfig,
    ewc: Option<&Ewc>,
) -> Result<(Model, TrainReport), LearnError> {
    let (k, replay) = checked(model, data, replay, layers, config)?;
    let started = Instant::now();
    let mut candidate = model.clone();
    candidate.device.seed(config.seed);
    let mut net = freeze_outside(candidate.net().clone(), layers);
    // Inputs to the first computed layer: the cached prefix output, or standardised features.
    let cached = config.prefix_cache && k > 0;
    let start_layer = if cached { k } else { 0 };
    let inputs = Inputs::prepare(&candidate, &net, k, cached, data, replay, config)?;
    // The host loops (where exact), with their own Adam and the penalty as arrays, or
    // burn's graph.
    let mut host = candidate
        .host_net()
        .map(|h| (h.clone(), HostAdam::default()));
    let (penalty_terms, host_penalty) = penalties(ewc, &candidate, layers, host.is_some())?;

    let host_step = Step {
        from: start_layer,
        layers,
        learning_rate: config.learning_rate as f32,
        penalty: host_penalty.as_ref(),
    };
    let mut graph = Graph {
        optim: AdamConfig::new().init(),
        from: start_layer,
        width: inputs.new_rows.width,
        learning_rate: config.learning_rate,
        ewc: ewc
            .filter(|_| !penalty_terms.is_empty())
            .map(|e| (e, &penalty_terms[..])),
    };
    let mut rng = Rng::seeded(config.seed);
    let (mut epoch_loss, mut epoch_penalty) = (Vec::new(), Vec::new());
    let mut examples = 0usize;
    let mut xbuf = Vec::new();
    let mut ybuf = data.y.empty_like();
    for epoch in 0..config.epochs {
        let order = Dataset::shuffled_indices(data.len(), &mut rng);
        let (mut loss_sum, mut pen_sum, mut steps) = (0.0, 0.0, 0usize);
        for chunk in order.chunks(inputs.new_per_batch) {
            if config.cancel.is_set() {
                return Err(LearnError::Cancelled);
            }
            inputs.fill(data, chunk, &mut rng, &mut xbuf, &mut ybuf);
            examples += ybuf.len();
            let (value, pen) = match host.as_mut() {
                Some((h, adam)) => h.step_from(&candidate, adam, &xbuf, &ybuf, &host_step),
                None => {
                    let (stepped, value, pen) = graph.step(&candidate, net, &xbuf, &ybuf);
                    net = stepped;
                    (value, pen)
                }
            };
            if !value.is_finite() {
                return Err(LearnError::Diverged(value, epoch));
            }
            loss_sum += value;
            pen_sum += pen;
            steps += 1;
        }
        epoch_loss.push(loss_sum / steps.max(1) as f64);
        epoch_penalty.push(pen_sum / steps.max(1) as f64);
    }

    // Hand the trained module back with every layer trainable again.
    match host {
        Some((h, _)) => candidate.set_host_net(h)?,
        None => candidate.set_net(net.set_require_grad(true)),
    }
    let report = TrainReport {
        layers: layers.names(&candidate),
        epoch_loss,
        epoch_penalty,
        ..TrainReport::cost(
            &candidate,
            layers,
            examples,
            (cached, data.len() + inputs.replay_prefix_rows),
            started.elapsed().as_secs_f64(),
        )
    };
    Ok((candidate, report))
}

/// Steps of burn's graph (where the host loops are not exact): Adam on the module's
/// trainable layers, from layer `from` on, with EWC's penalty terms if any.
struct Graph<'a> {
    optim: ModuleOptimizer,
    from: usize,
    /// Width of a row of `x` (the inputs of layer `from`).
    width: usize,
    learning_rate: f64,
    ewc: Option<(&'a Ewc, &'a [Term])>,
}

impl Graph<'_> {
    /// One step on a batch: the module after the update, the batch's loss (penalty
    /// included) and its penalty.
    fn step(&mut self, model: &Model, net: Mlp, x: &[f32], y: &Targets) -> (Mlp, f64, f64) {
        let device = &model.device;
        let x = Tensor::<2>::from_data(TensorData::new(x.to_vec(), [y.len(), self.width]), device);
        let out = model.forward_from(&net, self.from, x);
        let mut loss = task_loss(model, out, y, device);
        let mut penalty = 0.0;
        if let Some((ewc, terms)) = self.ewc {
            let pen = ewc.penalty(&net, terms);
            penalty = pen.clone().into_scalar::<f32>() as f64;
            loss = loss + pen;
        }
        let value = loss.clone().into_scalar::<f32>() as f64;
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        (
            self.optim.step(self.learning_rate, net, grads),
            value,
            penalty,
        )
    }
}

/// EWC's penalty on `layers` (none without EWC or at lambda 0): as arrays for the host
/// loops, or as burn terms for the graph.
fn penalties(
    ewc: Option<&Ewc>,
    model: &Model,
    layers: &LayerSet,
    on_host: bool,
) -> Result<(Vec<Term>, Option<HostPenalty>), LearnError> {
    Ok(match ewc {
        Some(e) if e.lambda > 0.0 && on_host => (Vec::new(), Some(e.host_penalty(model, layers)?)),
        Some(e) if e.lambda > 0.0 => (e.penalty_terms(model, layers)?, None),
        _ => (Vec::new(), None),
    })
}

/// Checks a training run's inputs against the model: the first trained layer, and the
/// replay set if it takes part (non-empty, a replay ratio above 0).
fn checked<'a>(
    model: &Model,
    data: &Dataset,
    replay: Option<&'a Dataset>,
    layers: &LayerSet,
    config: &TrainConfig,
) -> Result<(usize, Option<&'a Dataset>), LearnError> {
    check(model, data)?;
    if data.is_empty() {
        return Err(LearnError::Empty);
    }
    let replay = replay.filter(|r| !r.is_empty() && config.replay_ratio > 0.0);
    if let Some(r) = replay {
        check(model, r)?;
    }
    let k = layers.first().ok_or(LearnError::NoLayers)?;
    if layers.indices().iter().any(|&i| i >= model.num_layers()) {
        return Err(LearnError::NoLayers);
    }
    Ok((k, replay))
}

impl TrainReport {
    /// The cost part of a report: `examples` rows through `layers` of `model` in `wall`
    /// seconds, with the FLOPs of the run (`prefix`: whether the frozen prefix was cached,
    /// and over how many rows it was computed once) and of the same run on every layer.
    fn cost(
        model: &Model,
        layers: &LayerSet,
        examples: usize,
        prefix: (bool, usize),
        wall: f64,
    ) -> TrainReport {
        let dims = model.spec.layer_params();
        let all = LayerSet::all(model);
        let (cached, prefix_rows) = prefix;
        TrainReport {
            layers: Vec::new(),
            epoch_loss: Vec::new(),
            epoch_penalty: Vec::new(),
            wall_seconds: wall,
            examples_per_second: examples as f64 / wall.max(1e-9),
            trainable_params: layers.indices().iter().map(|&i| dims[i]).sum(),
            total_params: model.num_params(),
            prefix_cached: cached,
            flops: estimate_flops(model, layers, examples as f64, cached, prefix_rows as f64),
            flops_full: estimate_flops(model, &all, examples as f64, false, 0.0),
        }
    }
}

/// What one training run draws its batches from: the new records and the replay buffer as
/// inputs of the first trained layer, and how many of each a batch takes.
struct Inputs<'a> {
    new_rows: Rows,
    new_per_batch: usize,
    replay: Option<ReplayRows<'a>>,
    replay_per_batch: usize,
    /// Replay rows that went through the frozen prefix (for the FLOPs estimate).
    replay_prefix_rows: usize,
}

/// The replay buffer's rows as inputs of the first trained layer.
struct ReplayRows<'a> {
    data: &'a Dataset,
    rows: Rows,
    /// With a cached prefix only the rows training will draw go through it: `slot[i]` is
    /// replay row i's position in `rows`.
    slot: Option<Vec<usize>>,
}

impl<'a> Inputs<'a> {
    fn prepare(
        candidate: &Model,
        net: &super::model::Mlp,
        k: usize,
        cached: bool,
        data: &Dataset,
        replay: Option<&'a Dataset>,
        config: &TrainConfig,
    ) -> Result<Inputs<'a>, LearnError> {
        let transform = |d: &Dataset| -> Result<Rows, LearnError> {
            if !cached {
                return Ok(Rows {
                    x: candidate.norm.apply(&d.x),
                    width: d.width,
                });
            }
            let h = candidate.forward_until(
                &net.valid(),
                k,
                candidate.input_tensor(&d.x, d.len(), false),
            );
            let width = h.dims()[1];
            let x = h
                .into_data()
                .try_to_vec::<f32>()
                .map_err(LearnError::Read)?;
            Ok(Rows { x, width })
        };
        let batch = config.batch_size.max(1);
        let replay_per_batch = match replay {
            Some(_) => ((batch as f64 * config.replay_ratio).round() as usize).min(batch - 1),
            None => 0,
        };
        let new_per_batch = batch - replay_per_batch;
        let new_rows = transform(data)?;
        // With a cached prefix the draws are made up front on a copy of the generator, so
        // training sees the same sequence.
        let (replay, replay_prefix_rows) = match replay {
            Some(r) if cached && replay_per_batch > 0 => {
                let rows =
                    replay_draws(r.len(), data.len(), new_per_batch, replay_per_batch, config);
                let mut slot = vec![usize::MAX; r.len()];
                for (k, &i) in rows.iter().enumerate() {
                    slot[i] = k;
                }
                let replay = ReplayRows {
                    data: r,
                    rows: transform(&r.subset(&rows))?,
                    slot: Some(slot),
                };
                (Some(replay), rows.len())
            }
            Some(r) => {
                let replay = ReplayRows {
                    data: r,
                    rows: transform(r)?,
                    slot: None,
                };
                (Some(replay), r.len())
            }
            None => (None, 0),
        };
        Ok(Inputs {
            new_rows,
            new_per_batch,
            replay,
            replay_per_batch,
            replay_prefix_rows,
        })
    }

    /// One batch: the new records at `chunk`, then `replay_per_batch` replay rows drawn at
    /// random.
    fn fill(
        &self,
        data: &Dataset,
        chunk: &[usize],
        rng: &mut Rng,
        x: &mut Vec<f32>,
        y: &mut Targets,
    ) {
        x.clear();
        y.clear();
        self.new_rows.gather(chunk, x);
        for &i in chunk {
            y.push_from(&data.y, i);
        }
        let Some(r) = &self.replay else {
            return;
        };
        let picks: Vec<usize> = (0..self.replay_per_batch)
            .map(|_| rng.below(r.data.len() as u64) as usize)
            .collect();
        match &r.slot {
            Some(slot) => {
                let at: Vec<usize> = picks.iter().map(|&i| slot[i]).collect();
                r.rows.gather(&at, x);
            }
            None => r.rows.gather(&picks, x),
        }
        for &i in &picks {
            y.push_from(&r.data.y, i);
        }
    }
}

/// `net` with every layer outside `layers` frozen (no gradient, no optimizer state) and
/// every layer inside it trainable.
fn freeze_outside(mut net: super::model::Mlp, layers: &LayerSet) -> super::model::Mlp {
    for i in 0..=net.hidden.len() {
        let layer = net.layer(i).clone();
        *net.layer_mut(i) = if layers.contains(i) {
            layer.set_require_grad(true)
        } else {
            layer.no_grad()
        };
    }
    net
}

/// The replay rows (of `replay_len`) that training will draw, in order: the draws made up
/// front on a copy of training's generator (seeded alike, shuffling `data_len` rows per epoch
/// first), so that only these go through a cached prefix and training sees the same
/// sequence.
fn replay_draws(
    replay_len: usize,
    data_len: usize,
    new_per_batch: usize,
    replay_per_batch: usize,
    config: &TrainConfig,
) -> Vec<usize> {
    let mut sim = Rng::seeded(config.seed);
    let mut drawn = vec![false; replay_len];
    for _ in 0..config.epochs {
        let steps = data_len.div_ceil(new_per_batch);
        let _ = Dataset::shuffled_indices(data_len, &mut sim);
        for _ in 0..steps * replay_per_batch {
            drawn[sim.below(replay_len as u64) as usize] = true;
        }
    }
    (0..replay_len).filter(|&i| drawn[i]).collect()
}

impl TrainConfig {
    /// Refuses values of this section that cannot work, naming the key.
    pub fn check(&self) -> Result<(), ConfigError> {
        let t = self;
        if t.epochs == 0 {
            return Err(ConfigError::key("train.epochs", "must be > 0"));
        }
        if t.batch_size < 2 {
            return Err(ConfigError::key("train.batch_size", "must be >= 2"));
        }
        if !(t.learning_rate.is_finite() && t.learning_rate > 0.0) {
            return Err(ConfigError::key(
                "train.learning_rate",
                "must be a positive number",
            ));
        }
        if !(0.0..1.0).contains(&t.replay_ratio) {
            return Err(ConfigError::key("train.replay_ratio", "must be in [0, 1)"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets;
    use crate::learn::{Activation, BackendKind, ModelSpec, Normalizer, ParamMap, Task};

    fn setup() -> (Model, Dataset) {
        let mut data = datasets::digits().unwrap();
        data = data.subset(&(0..400).collect::<Vec<_>>());
        let spec = ModelSpec {
            input: 64,
            hidden: vec![32, 16],
            classes: 10,
            task: Default::default(),
            loss: Default::default(),
            activation: Activation::Relu,
            dropout: 0.1,
        };
        let norm = Normalizer::fit(&data.x, 64);
        (
            Model::new(spec, norm, BackendKind::from_env(), 5).unwrap(),
            data,
        )
    }

    fn bits(p: &ParamMap, name: &str) -> Vec<u32> {
        p[name].1.iter().map(|v| v.to_bits()).collect()
    }

    fn config() -> TrainConfig {
        TrainConfig {
            epochs: 2,
            batch_size: 32,
            ..TrainConfig::default()
        }
    }

    #[test]
    fn host_training_is_burn_graph_training() {
        let (m, data) = setup();
        let mut m2 = Model::new(
            ModelSpec {
                dropout: 0.0,
                ..m.spec.clone()
            },
            m.norm.clone(),
            BackendKind::from_env(),
            5,
        )
        .unwrap();
        assert!(m2.host_net().is_some());
        // An EWC anchor away from the start, so the penalty pulls.
        let mut ewc = Ewc::new(100.0, 0.9);
        ewc.consolidate(&m2, &data.subset(&(300..400).collect::<Vec<_>>()), 100)
            .unwrap();
        let mut p = m2.params().unwrap();
        for v in p.values_mut() {
            v.1.iter_mut().for_each(|x| *x *= 0.9);
        }
        m2.set_params(&p).unwrap();
        let new = data.subset(&(0..200).collect::<Vec<_>>());
        let old = data.subset(&(200..400).collect::<Vec<_>>());
        let config = TrainConfig {
            replay_ratio: 0.25,
            ..config()
        };
        for names in [
            vec!["hidden.1", "head"],
            vec!["hidden.0", "hidden.1", "head"],
        ] {
            let layers = LayerSet::named(&m2, &names).unwrap();
            let run = |m: &Model| train(m, &new, Some(&old), &layers, &config, Some(&ewc)).unwrap();
            let ((graph, rg), (host, rh)) = (run(&m2.clone().without_host()), run(&m2));
            let (pg, ph) = (graph.params().unwrap(), host.params().unwrap());
            for (name, (_, g)) in &pg {
                let scale = g.iter().fold(0f32, |a, v| a.max(v.abs()));
                for (a, b) in g.iter().zip(&ph[name].1) {
                    assert!(
                        (a - b).abs() <= 2e-4 * scale,
                        "{names:?} {name}: {a} vs {b}"
                    );
                }
            }
            for (a, b) in rg.epoch_loss.iter().zip(&rh.epoch_loss) {
                assert!((a - b).abs() < 1e-3 * a.abs().max(1.0), "loss {a} vs {b}");
            }
            for (a, b) in rg.epoch_penalty.iter().zip(&rh.epoch_penalty) {
                assert!(*a > 0.0 && (a - b).abs() < 1e-3 * a, "penalty {a} vs {b}");
            }
        }
    }

    #[test]
    fn a_regression_head_learns_a_noisy_linear_target() {
        // y = 300 + 40 x0 - 25 x1 + noise (sd 5): the standardised target and Huber loss must
        // bring the MAE near the noise, far below the mean predictor's.
        let mut rng = Rng::seeded(11);
        let n = 2000;
        let mut x = Vec::with_capacity(2 * n);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let (a, b) = (rng.unit_f64() * 4.0 - 2.0, rng.unit_f64() * 4.0 - 2.0);
            let noise = (rng.unit_f64() - 0.5) * 10.0 * 3f64.sqrt();
            x.extend([a as f32, b as f32]);
            y.push((300.0 + 40.0 * a - 25.0 * b + noise) as f32);
        }
        let data = Dataset::with_targets(x, Targets::Values(y.clone()), 2).unwrap();
        let spec = ModelSpec {
            input: 2,
            hidden: vec![16],
            classes: 1,
            task: Task::Regression,
            loss: Default::default(),
            activation: crate::learn::Activation::Relu,
            dropout: 0.0,
        };
        let norm = crate::learn::Normalizer::fit(&data.x, 2);
        let mut model = Model::new(spec, norm, crate::learn::BackendKind::from_env(), 3).unwrap();
        model.target = crate::learn::TargetScale::fit(&y);
        assert!(
            (model.target.mean - 300.0).abs() < 5.0,
            "{:?}",
            model.target
        );
        let mean_mae = model_mean_mae(&y);
        let cfg = TrainConfig {
            epochs: 20,
            batch_size: 32,
            learning_rate: 5e-3,
            ..TrainConfig::default()
        };
        let (trained, report) =
            train(&model, &data, None, &LayerSet::all(&model), &cfg, None).unwrap();
        let mae = trained.mae(&data).unwrap();
        assert!(report.epoch_loss.last() < report.epoch_loss.first());
        // The noise alone has MAE 2.5; the mean predictor's is about 31 here.
        assert!(mae < 6.0, "MAE {mae} (mean predictor {mean_mae})");
        assert!(mean_mae > 25.0, "{mean_mae}");
        let score = trained.score(&data).unwrap();
        assert!((score + mae / model.target.std as f64).abs() < 1e-9);
        // The squared loss learns it too.
        let mut squared = model.clone();
        squared.spec.loss = crate::learn::RegressionLoss::Squared;
        let (trained, _) =
            train(&squared, &data, None, &LayerSet::all(&squared), &cfg, None).unwrap();
        let mae = trained.mae(&data).unwrap();
        assert!(mae < 6.0, "squared loss: MAE {mae}");
        // Classes are refused by a regression model, and the reverse.
        let classes = Dataset::new(vec![0.0; 4], vec![0, 0], 2).unwrap();
        assert!(matches!(
            train(&model, &classes, None, &LayerSet::all(&model), &cfg, None),
            Err(LearnError::Task(Task::Regression))
        ));
        let bad = Dataset::with_targets(vec![0.0; 2], Targets::Values(vec![f32::NAN]), 2).unwrap();
        assert!(matches!(
            train(&model, &bad, None, &LayerSet::all(&model), &cfg, None),
            Err(LearnError::Target)
        ));
    }

    fn model_mean_mae(y: &[f32]) -> f64 {
        let m = y.iter().map(|&v| v as f64).sum::<f64>() / y.len() as f64;
        y.iter().map(|&v| (v as f64 - m).abs()).sum::<f64>() / y.len() as f64
    }

    #[test]
    fn frozen_layers_stay_bit_identical() {
        let (model, data) = setup();
        let before = model.params().unwrap();
        for (layers, cached) in [
            (vec!["hidden.1"], true),
            (vec!["head"], true),
            (vec!["hidden.1", "head"], true),
            (vec!["hidden.0", "head"], false),
        ] {
            let set = LayerSet::named(&model, &layers).unwrap();
            let (cand, report) = train(&model, &data, None, &set, &config(), None).unwrap();
            assert_eq!(report.prefix_cached, cached, "{layers:?}");
            assert_eq!(report.epoch_loss.len(), 2);
            let after = cand.params().unwrap();
            for name in model.layer_names() {
                for p in ["weight", "bias"] {
                    let key = format!("{name}.{p}");
                    let same = bits(&before, &key) == bits(&after, &key);
                    assert_eq!(
                        same,
                        !layers.contains(&name.as_str()),
                        "{key} when training {layers:?}"
                    );
                }
            }
            assert!(report.flops < report.flops_full, "{layers:?}");
            assert_eq!(
                report.trainable_params,
                set.indices()
                    .iter()
                    .map(|&i| model.spec.layer_params()[i])
                    .sum::<usize>()
            );
        }
        // The model that was trained from is untouched.
        assert_eq!(
            bits(&before, "head.weight"),
            bits(&model.params().unwrap(), "head.weight")
        );
    }

    #[test]
    fn training_lowers_the_loss_and_replay_mixes_in() {
        let (model, data) = setup();
        let (a, b) = data.split(0.5, &mut Rng::seeded(1));
        let cfg = TrainConfig {
            epochs: 4,
            replay_ratio: 0.25,
            ..config()
        };
        let (cand, report) =
            train(&model, &a, Some(&b), &LayerSet::all(&model), &cfg, None).unwrap();
        assert!(
            report.epoch_loss[3] < report.epoch_loss[0],
            "{:?}",
            report.epoch_loss
        );
        assert!(cand.accuracy(&a).unwrap() > model.accuracy(&a).unwrap());
        assert!(report.examples_per_second > 0.0);
    }

    #[test]
    fn a_cached_prefix_covers_only_the_replay_rows_drawn() {
        let (model, data) = setup();
        // No dropout: the cached prefix is computed without it, so only then are the two runs
        // the same computation.
        let spec = ModelSpec {
            dropout: 0.0,
            ..model.spec.clone()
        };
        let model = Model::new(spec, model.norm.clone(), BackendKind::from_env(), 5).unwrap();
        let (new, old) = (
            data.subset(&(0..100).collect::<Vec<_>>()),
            data.subset(&(100..400).collect::<Vec<_>>()),
        );
        let set = LayerSet::named(&model, &["hidden.1", "head"]).unwrap();
        let run = |cache: bool| {
            let c = TrainConfig {
                replay_ratio: 0.25,
                prefix_cache: cache,
                ..config()
            };
            train(&model, &new, Some(&old), &set, &c, None).unwrap()
        };
        let (cached, report) = run(true);
        let (plain, _) = run(false);
        assert!(report.prefix_cached);
        // Batches of 24 new + 8 replayed: 2 epochs x 5 steps x 8 = 80 draws from 300 rows, so
        // the one-off prefix pass covers the 100 new rows and at most 80 replayed ones.
        let examples = 2.0 * 100.0 + 80.0;
        let bound = |rows: f64| estimate_flops(&model, &set, examples, true, rows);
        assert!(
            report.flops <= bound(180.0),
            "{} vs {}",
            report.flops,
            bound(180.0)
        );
        assert!(report.flops > bound(100.0));
        // Same batches as without the cache: the same training up to rounding.
        let (a, b) = (cached.params().unwrap(), plain.params().unwrap());
        for (name, (_, va)) in &a {
            let vb = &b[name].1;
            let diff = va
                .iter()
                .zip(vb)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            assert!(diff < 1e-3, "{name}: {diff}");
        }
    }

    #[test]
    fn a_diverging_run_is_an_error() {
        let (model, data) = setup();
        let cfg = TrainConfig {
            learning_rate: 1e30,
            epochs: 3,
            ..config()
        };
        let e = train(&model, &data, None, &LayerSet::all(&model), &cfg, None).unwrap_err();
        assert!(matches!(e, LearnError::Diverged(..)), "{e}");
    }

    #[test]
    fn bad_inputs_are_refused() {
        let (model, data) = setup();
        assert!(LayerSet::named(&model, &["hidden.9"]).is_err());
        let narrow = Dataset::new(vec![0.0; 10], vec![0; 5], 2).unwrap();
        assert!(train(
            &model,
            &narrow,
            None,
            &LayerSet::all(&model),
            &config(),
            None
        )
        .is_err());
        let mut bad = data.subset(&[0, 1]);
        bad.y = Targets::Classes(vec![10, bad.y.bits(1)]);
        assert!(matches!(
            train(&model, &bad, None, &LayerSet::all(&model), &config(), None),
            Err(LearnError::Label { .. })
        ));
    }

    #[test]
    fn head_only_costs_less_than_full() {
        let (model, _) = setup();
        let head = LayerSet::named(&model, &["head"]).unwrap();
        let all = LayerSet::all(&model);
        let n = 1000.0;
        let partial = estimate_flops(&model, &head, n, true, n / 5.0);
        let full = estimate_flops(&model, &all, n, false, 0.0);
        // head 16x10: fwd+bwd per example 2*160*2 = 640; prefix (64*32 + 32*16)*2 once per
        // example = 5120 for n/5 examples. Full: 3 layers fwd 5440, bwd weights 5440, bwd
        // input for layers above the first 2*(512+160) = 1344.
        assert_eq!(partial, 640.0 * n + 5120.0 * n / 5.0);
        assert_eq!(full, (5440.0 + 5440.0 + 1344.0) * n);
    }
}
