//! Online training: a model that learns from every labeled chunk of the stream, one pass,
//! with its Adam state kept from chunk to chunk, a running standardisation, and optional
//! replayed rows mixed into each step.
//!
//! This is what the loop's challenger runs after each chunk is scored (test, then train).
//! Only the layers of its `LayerSet` change; the others get no gradient and stay
//! bit-identical, as in `train::train`.

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Tensor, TensorData};

use super::loss::{check_targets, task_loss};
use super::model::host::HostAdam;
use super::train::estimate_flops;
use super::{Dataset, LayerSet, LearnError, Model, Normalizer, Targets};
use crate::rng::Rng;

/// Running per-feature mean and variance (Welford), the standardisation an online model
/// uses: it follows the stream instead of freezing what the first records showed.
#[derive(Debug, Clone, PartialEq)]
pub struct RunningScale {
    /// Values seen per feature (missing values, NaN, are skipped).
    n: Vec<f64>,
    mean: Vec<f64>,
    m2: Vec<f64>,
    lo: Vec<f64>,
    hi: Vec<f64>,
    /// Whether every value seen so far was 0 or 1 (passed through, as `Normalizer::fit` does).
    binary: Vec<bool>,
}

impl RunningScale {
    /// Starts from `norm` as if it had been fitted on `weight` rows (so the first chunks do
    /// not swing it) for `width` features.
    pub fn from_normalizer(norm: &Normalizer, weight: f64) -> RunningScale {
        let width = norm.mean.len();
        RunningScale {
            n: vec![weight; width],
            mean: norm.mean.iter().map(|&m| m as f64).collect(),
            m2: norm
                .std
                .iter()
                .map(|&s| (s as f64) * (s as f64) * weight)
                .collect(),
            lo: vec![f64::INFINITY; width],
            hi: vec![f64::NEG_INFINITY; width],
            binary: norm
                .mean
                .iter()
                .zip(&norm.std)
                .map(|(&m, &s)| m == 0.0 && s == 1.0)
                .collect(),
        }
    }

    /// Adds rows of raw features.
    pub fn update(&mut self, x: &[f32]) {
        let w = self.mean.len();
        for row in x.chunks_exact(w) {
            for (j, &v) in row.iter().enumerate() {
                if v.is_nan() {
                    continue;
                }
                self.binary[j] &= v == 0.0 || v == 1.0;
                let v = v as f64;
                self.n[j] += 1.0;
                let d = v - self.mean[j];
                self.mean[j] += d / self.n[j];
                self.m2[j] += d * (v - self.mean[j]);
                self.lo[j] = self.lo[j].min(v);
                self.hi[j] = self.hi[j].max(v);
            }
        }
    }

    /// The standardisation now, with the same floors as `Normalizer::fit`.
    pub fn normalizer(&self) -> Normalizer {
        let std = (0..self.mean.len())
            .map(|j| {
                if self.binary[j] {
                    return 1.0;
                }
                let sd = (self.m2[j] / self.n[j].max(1.0)).max(0.0).sqrt();
                // No row seen yet: lo > hi, no range.
                super::model::floored_std(sd, (self.hi[j] - self.lo[j]).max(0.0))
            })
            .collect();
        Normalizer {
            mean: self
                .mean
                .iter()
                .zip(&self.binary)
                .map(|(&m, &b)| if b { 0.0 } else { m as f32 })
                .collect(),
            std,
        }
    }
}

/// Hyper-parameters of online training.
#[derive(Debug, Clone, PartialEq)]
pub struct OnlineSettings {
    pub learning_rate: f64,
    /// Rows per step (new + replayed).
    pub batch_size: usize,
    pub seed: u64,
}

/// Rows to mix into each online step, and the fraction of the step's rows they make.
#[derive(Debug, Clone, Copy)]
pub struct Replay<'a> {
    pub rows: &'a Dataset,
    /// In [0, 1): replayed rows per step as a fraction of `batch_size`.
    pub ratio: f64,
}

/// What online training has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OnlineCost {
    pub steps: u64,
    /// Rows (new + replayed) trained on.
    pub examples: u64,
    /// Estimated FLOPs spent, and what the same steps would cost with every layer trained.
    pub flops: f64,
    pub flops_full: f64,
}

/// Trains a model in place, chunk after chunk, keeping the optimizer state.
pub struct OnlineTrainer {
    optim: ModuleOptimizer,
    layers: LayerSet,
    settings: OnlineSettings,
    rng: Rng,
    scale: RunningScale,
    /// Running mean and variance of a regression target (Welford, `(n, mean, m2)`), which the
    /// head follows (`Model::rescale_target`).
    target: (f64, f64, f64),
    cost: OnlineCost,
    /// Steps run by the host loops (`host::supports` the model), with their Adam moments;
    /// `None`: through burn's graph and `optim`.
    host: Option<HostAdam>,
}

impl std::fmt::Debug for OnlineTrainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnlineTrainer")
            .field("layers", &self.layers)
            .field("cost", &self.cost)
            .finish()
    }
}

impl OnlineTrainer {
    /// Prepares `model` for online training of `layers`: the others stop requiring
    /// gradients. `prior_rows` weighs the model's own standardisation in the running one.
    pub fn new(
        model: &mut Model,
        layers: LayerSet,
        settings: OnlineSettings,
        prior_rows: f64,
    ) -> OnlineTrainer {
        let mut net = model.net().clone();
        for i in 0..model.num_layers() {
            let layer = net.layer(i).clone();
            *net.layer_mut(i) = if layers.contains(i) {
                layer.set_require_grad(true)
            } else {
                layer.no_grad()
            };
        }
        model.set_net(net);
        model.device.seed(settings.seed);
        OnlineTrainer {
            optim: AdamConfig::new().init(),
            rng: Rng::seeded(settings.seed),
            scale: RunningScale::from_normalizer(&model.norm, prior_rows),
            target: (
                prior_rows,
                f64::from(model.target.mean),
                f64::from(model.target.std).powi(2) * prior_rows,
            ),
            host: super::model::host::supports(model).then(HostAdam::default),
            layers,
            settings,
            cost: OnlineCost::default(),
        }
    }

    /// Runs the steps through the host loops (`true`, where `host::supports` the model) or
    /// through burn's graph (tests compare the two).
    #[cfg(test)]
    pub(crate) fn set_host(&mut self, on: bool) {
        self.host = on.then(HostAdam::default);
    }

    /// Takes the new regression targets into the running target scale and moves the model
    /// to it when it changed by more than 1% of a standard deviation, keeping its
    /// predictions (the head absorbs the change, as in Pop-Art, van Hasselt et al. 2016):
    /// a scale fitted on the first few records would otherwise leave later targets tens of
    /// standard deviations out, where Huber's gradient is capped and learning crawls.
    fn follow_target(&mut self, model: &mut Model, values: &[f32]) -> Result<(), LearnError> {
        let (n, mean, m2) = &mut self.target;
        for &v in values.iter().filter(|v| v.is_finite()) {
            let v = f64::from(v);
            *n += 1.0;
            let d = v - *mean;
            *mean += d / *n;
            *m2 += d * (v - *mean);
        }
        model.target.observe(values);
        let sd = (*m2 / n.max(1.0)).max(0.0).sqrt();
        if sd < 1e-6 {
            return Ok(());
        }
        let old = model.target;
        let moved = (*mean - f64::from(old.mean)).abs() > 0.01 * f64::from(old.std)
            || (sd / f64::from(old.std) - 1.0).abs() > 0.01;
        if moved {
            model.rescale_target(*mean as f32, sd as f32)?;
        }
        Ok(())
    }

    /// The layers that learn.
    pub fn layers(&self) -> &LayerSet {
        &self.layers
    }

    /// The cost so far.
    pub fn cost(&self) -> OnlineCost {
        self.cost
    }

    /// One pass over the labeled rows `x`/`y` (raw features) in steps of `batch_size`, each
    /// step mixed with rows drawn from `replay` at its ratio. The standardisation first takes in the new
    /// rows. Returns the mean loss; a non-finite loss is `Diverged` (the caller resets).
    pub fn learn(
        &mut self,
        model: &mut Model,
        x: &[f32],
        y: &Targets,
        replay: Option<Replay<'_>>,
    ) -> Result<f64, LearnError> {
        self.learn_kept(model, x, y, None, replay)
    }

    /// [`OnlineTrainer::learn`], where only the rows `keep` marks are learned from (all
    /// when `None`); every row moves the running standardisation.
    pub fn learn_kept(
        &mut self,
        model: &mut Model,
        x: &[f32],
        y: &Targets,
        keep: Option<&[bool]>,
        replay: Option<Replay<'_>>,
    ) -> Result<f64, LearnError> {
        let width = model.spec.input;
        if y.is_empty() {
            return Ok(0.0);
        }
        if x.len() != y.len() * width {
            return Err(LearnError::Width {
                got: x.len() / y.len().max(1),
                expected: width,
            });
        }
        check_targets(model, y)?;
        self.scale.update(x);
        if let Some(v) = y.values() {
            self.follow_target(model, v)?;
        }
        model.norm = self.scale.normalizer();
        let replay = replay.filter(|r| {
            !r.rows.is_empty()
                && r.rows.width == width
                && std::mem::discriminant(&r.rows.y) == std::mem::discriminant(y)
        });
        let batch = self.settings.batch_size.max(1);
        let per_replay = match replay {
            Some(r) => ((batch as f64 * r.ratio).round() as usize).min(batch.saturating_sub(1)),
            None => 0,
        };
        let replay = replay.map(|r| r.rows);
        let per_new = batch - per_replay;
        let device = model.device.clone();
        let (mut loss_sum, mut steps) = (0.0, 0usize);
        let mut xs = Vec::with_capacity(batch * width);
        let mut ys = y.empty_like();
        let rows = y.len();
        let mut net = match (&self.host, model.host_net()) {
            (Some(_), Some(net)) => Some(net.clone()),
            _ => None,
        };
        let mut learned = 0usize;
        let mut start = 0;
        while start < rows {
            let end = (start + per_new).min(rows);
            xs.clear();
            ys.clear();
            for i in start..end {
                if keep.is_none_or(|k| k.get(i).copied().unwrap_or(true)) {
                    xs.extend_from_slice(&x[i * width..(i + 1) * width]);
                    ys.push_from(y, i);
                }
            }
            // A step whose rows are all left out is not taken; the others keep the steps
            // (and the order) of learning from every row.
            if ys.is_empty() {
                start = end;
                continue;
            }
            learned += ys.len();
            if let Some(r) = replay {
                for _ in 0..per_replay {
                    let i = self.rng.below(r.len() as u64) as usize;
                    xs.extend_from_slice(&r.x[i * width..(i + 1) * width]);
                    ys.push_from(&r.y, i);
                }
            }
            start = end;
            let b = ys.len();
            if let (Some(net), Some(adam)) = (net.as_mut(), self.host.as_mut()) {
                let xn = model.norm.apply(&xs);
                let lr = self.settings.learning_rate as f32;
                let value = net.step(model, adam, &xn, &ys, &self.layers, lr);
                if !value.is_finite() {
                    return Err(LearnError::Diverged(value, 0));
                }
                loss_sum += value;
                steps += 1;
                self.cost.examples += b as u64;
                continue;
            }
            let input =
                Tensor::<2>::from_data(TensorData::new(model.norm.apply(&xs), [b, width]), &device);
            let logits = model.forward_from(model.net(), 0, input);
            let loss = task_loss(model, logits, &ys, &device);
            let value = loss.clone().into_scalar::<f32>() as f64;
            if !value.is_finite() {
                return Err(LearnError::Diverged(value, 0));
            }
            loss_sum += value;
            steps += 1;
            let grads = GradientsParams::from_grads(loss.backward(), model.net());
            let net = model.net().clone();
            model.set_net(self.optim.step(self.settings.learning_rate, net, grads));
            self.cost.examples += b as u64;
        }
        if let Some(net) = net {
            model.set_host_net(net)?;
        }
        self.cost.steps += steps as u64;
        let examples = (learned + steps * per_replay) as f64;
        self.cost.flops += estimate_flops(model, &self.layers, examples, false, 0.0);
        self.cost.flops_full += estimate_flops(model, &LayerSet::all(model), examples, false, 0.0);
        Ok(loss_sum / steps.max(1) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets;
    use crate::learn::{BackendKind, ModelSpec, ParamMap};

    fn model(data: &Dataset) -> Model {
        let spec = ModelSpec::classifier(64, vec![32], 10);
        let norm = Normalizer::fit(&data.x[..64 * 50], 64);
        Model::new(spec, norm, BackendKind::from_env(), 3).unwrap()
    }

    fn settings() -> OnlineSettings {
        OnlineSettings {
            learning_rate: 0.01,
            batch_size: 32,
            seed: 5,
        }
    }

    #[test]
    fn one_pass_over_a_stream_learns_digits() {
        let data = datasets::digits().unwrap();
        let mut m = model(&data);
        let before = m.accuracy(&data).unwrap();
        let all = LayerSet::all(&m);
        let mut t = OnlineTrainer::new(&mut m, all, settings(), 50.0);
        let labels = data.y.classes().unwrap();
        for (xc, yc) in data.x.chunks(64 * 128).zip(labels.chunks(128)) {
            t.learn(&mut m, xc, &Targets::Classes(yc.to_vec()), None)
                .unwrap();
        }
        let after = m.accuracy(&data).unwrap();
        // 1,797 digits seen once: a one-pass online MLP reaches well above chance (0.1).
        assert!(before < 0.3, "untrained accuracy {before}");
        assert!(after > 0.85, "one online pass reached only {after}");
        let c = t.cost();
        assert_eq!(c.examples, data.len() as u64);
        assert!(c.flops > 0.0 && (c.flops - c.flops_full).abs() < 1e-6);
    }

    #[test]
    fn frozen_layers_stay_bit_identical_and_cost_less() {
        let data = datasets::digits().unwrap();
        let mut m = model(&data);
        let bits =
            |p: &ParamMap, n: &str| -> Vec<u32> { p[n].1.iter().map(|v| v.to_bits()).collect() };
        let p0 = m.params().unwrap();
        let head = LayerSet::named(&m, &["head"]).unwrap();
        let mut t = OnlineTrainer::new(&mut m, head, settings(), 50.0);
        t.learn(&mut m, &data.x[..64 * 256], &data.y.slice(0..256), None)
            .unwrap();
        let p1 = m.params().unwrap();
        assert_eq!(bits(&p0, "hidden.0.weight"), bits(&p1, "hidden.0.weight"));
        assert_ne!(bits(&p0, "head.weight"), bits(&p1, "head.weight"));
        let c = t.cost();
        assert!(c.flops < c.flops_full, "{c:?}");
    }

    /// A model of `data` and a trainer of every layer in steps of 8 rows.
    fn batches_of_8(data: &Dataset) -> (Model, OnlineTrainer) {
        let mut m = model(data);
        let all = LayerSet::all(&m);
        let settings = OnlineSettings {
            batch_size: 8,
            ..settings()
        };
        let t = OnlineTrainer::new(&mut m, all, settings, 50.0);
        (m, t)
    }

    #[test]
    fn replayed_rows_join_each_step_at_their_ratio() {
        let data = datasets::digits().unwrap();
        let (x, y) = (&data.x[..64 * 64], data.y.slice(0..64));
        let old = data.subset(&(1000..1200).collect::<Vec<_>>());
        let run = |replay: Option<Replay<'_>>| {
            let (mut m, mut t) = batches_of_8(&data);
            t.learn(&mut m, x, &y, replay).unwrap();
            (t.cost(), m.params().unwrap())
        };
        let (plain, p0) = run(None);
        let (mixed, p1) = run(Some(Replay {
            rows: &old,
            ratio: 0.5,
        }));
        // 64 new rows, 4 per step of 8: 16 steps, each with 4 replayed rows.
        assert_eq!((plain.steps, plain.examples), (8, 64));
        assert_eq!((mixed.steps, mixed.examples), (16, 128));
        assert_ne!(p0["head.weight"].1, p1["head.weight"].1);
    }

    #[test]
    fn rows_left_out_move_the_scale_but_are_not_learned_from() {
        let data = datasets::digits().unwrap();
        let (x, y) = (&data.x[..64 * 64], data.y.slice(0..64));
        let run = |keep: &[bool]| {
            let (mut m, mut t) = batches_of_8(&data);
            let before = m.params().unwrap();
            t.learn_kept(&mut m, x, &y, Some(keep), None).unwrap();
            let moved = before["head.weight"].1 != m.params().unwrap()["head.weight"].1;
            (t.cost(), moved, m.norm.clone())
        };
        let (none, moved, scale_none) = run(&[false; 64]);
        assert_eq!((none.steps, none.examples, none.flops), (0, 0, 0.0));
        assert!(!moved, "nothing learned");
        // Every fourth row of 64 in steps of 8: 8 steps of 2 rows.
        let quarter: Vec<bool> = (0..64).map(|i| i % 4 == 0).collect();
        let (some, moved, scale_some) = run(&quarter);
        assert_eq!((some.steps, some.examples), (8, 16));
        assert!(moved, "the kept rows are learned from");
        // The standardisation took in all 64 rows either way.
        assert_eq!(scale_none, scale_some);
        let (all, _, scale_all) = run(&[true; 64]);
        assert_eq!((all.steps, all.examples), (8, 64));
        assert_eq!(scale_none, scale_all);
        assert_ne!(scale_all, model(&data).norm, "the scale moved");
    }

    #[test]
    fn running_scale_follows_the_stream() {
        let mut s = RunningScale::from_normalizer(&Normalizer::identity(1), 1.0);
        let x: Vec<f32> = (0..1000).map(|i| 10.0 + (i % 2) as f32 * 4.0).collect();
        s.update(&x);
        let n = s.normalizer();
        assert!((n.mean[0] - 12.0).abs() < 0.05, "{n:?}");
        assert!((n.std[0] - 2.0).abs() < 0.1, "{n:?}");
    }

    #[test]
    fn running_scale_skips_missing_values_and_passes_zero_one_inputs() {
        let mut s = RunningScale::from_normalizer(&Normalizer::identity(2), 1.0);
        let x: Vec<f32> = (0..1000)
            .flat_map(|i| {
                let v = if i % 2 == 0 { f32::NAN } else { 20.0 };
                [v, (i % 5 == 0) as u8 as f32]
            })
            .collect();
        s.update(&x);
        let n = s.normalizer();
        // 500 values of 20 after a prior of weight 1 at 0: the NaNs do not pull the mean.
        assert!((n.mean[0] - 20.0 * 500.0 / 501.0).abs() < 1e-3, "{n:?}");
        assert_eq!(
            (n.mean[1], n.std[1]),
            (0.0, 1.0),
            "a 0/1 input passes through"
        );
        s.update(&[3.0, 0.5]);
        assert_ne!(s.normalizer().std[1], 1.0, "not 0/1 any more: standardised");
    }
}
