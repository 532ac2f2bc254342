//! Host arithmetic for small MLPs: the forward pass, the backward pass, Adam and the
//! per-example squared gradients of the Fisher, written out in plain loops over `f32` slices.
//!
//! The online challenger takes a step every few records (8 rows through a 7-64-64-2 network
//! on Elec2): a few hundred thousand multiply-adds, where a framework's per-operation cost
//! (a graph node, an allocation and a dispatch for each of some hundred tensor operations of
//! forward, backward and Adam) is several times the arithmetic. The same for the Fisher of
//! online EWC, which needs one gradient per example. These loops do the same arithmetic as
//! the burn graph ([`super::Model`]'s `forward_from`, `loss::task_loss`,
//! `loss::likelihood_loss`, `AdamConfig::new()`), checked against it in the tests below;
//! the burn model stays the model (read before, written back after), everything else
//! (retrains, scoring, checkpoints, other backends) is burn's.
//!
//! Used where it is exact: no dropout, ReLU or tanh hidden layers, and at most
//! [`HOST_MAX_PARAMS`] parameters (beyond that, the framework's per-operation cost is small
//! next to the arithmetic, and a GPU backend does it better).

use relearn_kernels::{axpy, dot, Adam};

use super::{Activation, LayerSet, Model, ParamMap, RegressionLoss, HUBER_DELTA};
use crate::learn::data::Targets;
use crate::learn::LearnError;

/// The largest model the host loops run (parameters).
pub const HOST_MAX_PARAMS: usize = 1 << 18;

/// Adam's defaults in burn (`AdamConfig::new()`).
const ADAM: Adam = Adam {
    beta_1: 0.9,
    beta_2: 0.999,
    epsilon: 1e-5,
};

/// Whether the host loops compute exactly what the burn graph of `model` does.
pub fn supports(model: &Model) -> bool {
    model.spec.dropout == 0.0
        && matches!(model.spec.activation, Activation::Relu | Activation::Tanh)
        && model.num_params() <= HOST_MAX_PARAMS
}

/// One linear layer, `z = h W + b`, with `W` as `[input, output]` row-major (burn's layout).
#[derive(Debug, Clone)]
struct Layer {
    input: usize,
    output: usize,
    w: Vec<f32>,
    b: Vec<f32>,
}

/// A model's parameters on the host.
#[derive(Debug, Clone)]
pub struct HostNet {
    layers: Vec<Layer>,
    activation: Activation,
    loss: RegressionLoss,
}

/// What a forward pass keeps for the backward one: each layer's input, `[batch, input]`,
/// and the head's output.
#[derive(Debug, Default)]
struct Trace {
    inputs: Vec<Vec<f32>>,
    out: Vec<f32>,
}

/// What one step of [`HostNet::step_from`] trains.
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    /// The layer whose inputs the rows are.
    pub from: usize,
    /// The layers that change.
    pub layers: &'a LayerSet,
    pub learning_rate: f32,
    pub penalty: Option<&'a HostPenalty>,
}

/// EWC's penalty `lambda/2 * sum F (theta - theta*)^2` on the host, over the parameters of
/// the trained layers that have a Fisher.
#[derive(Debug, Clone, Default)]
pub struct HostPenalty {
    pub lambda: f32,
    pub terms: Vec<PenaltyTerm>,
}

/// One parameter tensor's penalty constants.
#[derive(Debug, Clone)]
pub struct PenaltyTerm {
    pub layer: usize,
    /// The layer's bias (else its weight).
    pub bias: bool,
    pub fisher: Vec<f32>,
    pub star: Vec<f32>,
}

/// Adam's moments of one trainable layer.
#[derive(Debug, Clone)]
struct Moments {
    m_w: Vec<f32>,
    v_w: Vec<f32>,
    m_b: Vec<f32>,
    v_b: Vec<f32>,
    time: i32,
}

/// Adam for a [`HostNet`], its moments kept from step to step (as burn's `ModuleOptimizer`
/// keeps them per parameter).
#[derive(Debug, Clone, Default)]
pub struct HostAdam {
    /// Per layer; `None` until the layer's first step.
    moments: Vec<Option<Moments>>,
}

impl HostNet {
    /// Reads `model`'s parameters.
    pub fn read(model: &Model) -> Result<HostNet, LearnError> {
        let mut params = model.params()?;
        let mut layers = Vec::with_capacity(model.num_layers());
        for (name, (input, output)) in model.layer_names().iter().zip(model.spec.layer_dims()) {
            let mut take = |key: String, len: usize| -> Result<Vec<f32>, LearnError> {
                match params.remove(&key) {
                    Some((_, v)) if v.len() == len => Ok(v),
                    _ => Err(LearnError::Weights(format!(
                        "tensor `{key}` is missing or of the wrong size"
                    ))),
                }
            };
            let w = take(format!("{name}.weight"), input * output)?;
            let b = take(format!("{name}.bias"), output)?;
            layers.push(Layer {
                input,
                output,
                w,
                b,
            });
        }
        Ok(HostNet {
            layers,
            activation: model.spec.activation,
            loss: model.spec.loss,
        })
    }

    /// Writes the parameters back into `model` (same architecture).
    pub fn write(&self, model: &mut Model) -> Result<(), LearnError> {
        let mut map = ParamMap::new();
        for (name, l) in model.layer_names().iter().zip(&self.layers) {
            map.insert(
                format!("{name}.weight"),
                (vec![l.input, l.output], l.w.clone()),
            );
            map.insert(format!("{name}.bias"), (vec![l.output], l.b.clone()));
        }
        model.set_params(&map)
    }

    /// The activation's derivative from its output `a`.
    fn act_grad(&self, a: f32) -> f32 {
        match self.activation {
            Activation::Tanh => 1.0 - a * a,
            _ => {
                if a > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }

    /// The head's outputs (logits, or a regression's standardised value) of `n`
    /// standardised rows `x`, `[n * classes]`.
    pub fn outputs(&self, x: &[f32], n: usize) -> Vec<f32> {
        self.forward(0, x, n).out
    }

    /// Every hidden layer's post-activation output for `n` standardised rows `x`,
    /// `[n * units]` per hidden layer.
    pub fn hidden_activations(&self, x: &[f32], n: usize) -> Vec<Vec<f32>> {
        let mut inputs = self.forward(0, x, n).inputs;
        inputs.remove(0);
        inputs
    }

    /// Forward pass of `n` rows `x` that are the inputs of layer `from` (standardised
    /// features for layer 0), `[n, input of from]`.
    fn forward(&self, from: usize, x: &[f32], n: usize) -> Trace {
        let mut trace = Trace {
            inputs: vec![Vec::new(); from],
            out: Vec::new(),
        };
        let mut h = x.to_vec();
        let last = self.layers.len() - 1;
        for (l, layer) in self.layers.iter().enumerate().skip(from) {
            let mut z = vec![0f32; n * layer.output];
            for (zr, hr) in z
                .chunks_exact_mut(layer.output)
                .zip(h.chunks_exact(layer.input))
            {
                zr.copy_from_slice(&layer.b);
                for (&hk, wk) in hr.iter().zip(layer.w.chunks_exact(layer.output)) {
                    if hk != 0.0 {
                        axpy(hk, wk, zr);
                    }
                }
            }
            if l < last {
                match self.activation {
                    Activation::Tanh => relearn_kernels::tanh(&mut z),
                    // ReLU; `supports` keeps GELU on burn.
                    _ => relearn_kernels::relu(&mut z),
                }
            }
            trace.inputs.push(std::mem::replace(&mut h, z));
        }
        trace.out = h;
        trace
    }

    /// The loss of head outputs `out` against `y` per row, and its gradient with respect to
    /// each row's output (per row, not divided by the batch size). `fisher`: the Gaussian
    /// likelihood's loss for values (as `loss::likelihood_loss`), else the training loss
    /// (`loss::task_loss`).
    fn loss_grad(&self, model: &Model, out: &[f32], y: &Targets, fisher: bool) -> (f64, Vec<f32>) {
        let mut grad = vec![0f32; out.len()];
        let mut total = 0f64;
        match y {
            Targets::Classes(c) => {
                let k = self.layers[self.layers.len() - 1].output;
                for ((o, g), &label) in out.chunks_exact(k).zip(grad.chunks_exact_mut(k)).zip(c) {
                    let max = o.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let sum: f32 = o.iter().map(|v| (v - max).exp()).sum();
                    let log_sum = sum.ln();
                    for (j, (gj, &oj)) in g.iter_mut().zip(o).enumerate() {
                        let p = (oj - max - log_sum).exp();
                        *gj = p - if j == label as usize { 1.0 } else { 0.0 };
                    }
                    total -= f64::from(o[label as usize] - max - log_sum);
                }
            }
            Targets::Values(v) => {
                let huber = !fisher && self.loss == RegressionLoss::Huber;
                for ((&o, g), &t) in out.iter().zip(grad.iter_mut()).zip(v) {
                    let r = o - model.target.apply(t);
                    let a = r.abs();
                    if huber && a > HUBER_DELTA {
                        total += f64::from(HUBER_DELTA * (a - 0.5 * HUBER_DELTA));
                        *g = HUBER_DELTA * r.signum();
                    } else {
                        total += f64::from(0.5 * r * r);
                        *g = r;
                    }
                }
            }
        }
        (total, grad)
    }

    /// Back-propagates the per-row output gradient `g` (`[n, classes]`) and calls
    /// `visit(layer, layer_input, delta)` for each layer in `layers`, from the head down, with
    /// `delta` the gradient at the layer's output, `[n, output]`. Stops below the lowest layer
    /// of `layers`.
    fn backward(
        &self,
        trace: &Trace,
        mut g: Vec<f32>,
        n: usize,
        layers: &LayerSet,
        mut visit: impl FnMut(usize, &[f32], &[f32]),
    ) {
        let lowest = (0..self.layers.len()).find(|&l| layers.contains(l));
        let Some(lowest) = lowest else {
            return;
        };
        for l in (lowest..self.layers.len()).rev() {
            let layer = &self.layers[l];
            let h = &trace.inputs[l];
            if layers.contains(l) {
                visit(l, h, &g);
            }
            if l == lowest {
                break;
            }
            // Gradient at this layer's input (the layer below's activation output).
            let mut gh = vec![0f32; n * layer.input];
            for ((ghr, gr), hr) in gh
                .chunks_exact_mut(layer.input)
                .zip(g.chunks_exact(layer.output))
                .zip(h.chunks_exact(layer.input))
            {
                for ((v, wk), &a) in ghr
                    .iter_mut()
                    .zip(layer.w.chunks_exact(layer.output))
                    .zip(hr)
                {
                    let d = self.act_grad(a);
                    *v = if d == 0.0 { 0.0 } else { dot(gr, wk) * d };
                }
            }
            g = gh;
        }
    }

    /// One Adam step on `n` standardised rows `x` against `y` (the training loss, averaged
    /// over the rows, as `loss::task_loss`), changing only `layers`. Returns the loss.
    pub fn step(
        &mut self,
        model: &Model,
        adam: &mut HostAdam,
        x: &[f32],
        y: &Targets,
        layers: &LayerSet,
        learning_rate: f32,
    ) -> f64 {
        let step = Step {
            from: 0,
            layers,
            learning_rate,
            penalty: None,
        };
        self.step_from(model, adam, x, y, &step).0
    }

    /// One Adam step of `step.layers` (all at or above `step.from`) on `n` rows `x` that are
    /// the inputs of layer `step.from`, against `y`: the training loss averaged over the rows
    /// plus EWC's penalty (as `train::train` builds it on burn's graph). Returns the loss
    /// with the penalty, and the penalty, both before the step.
    pub fn step_from(
        &mut self,
        model: &Model,
        adam: &mut HostAdam,
        x: &[f32],
        y: &Targets,
        step: &Step<'_>,
    ) -> (f64, f64) {
        let (layers, learning_rate) = (step.layers, step.learning_rate);
        let n = y.len();
        if n == 0 {
            return (0.0, 0.0);
        }
        let trace = self.forward(step.from, x, n);
        let (total, mut g) = self.loss_grad(model, &trace.out, y, false);
        let scale = 1.0 / n as f32;
        for v in g.iter_mut() {
            *v *= scale;
        }
        let mut grads: Vec<Option<(Vec<f32>, Vec<f32>)>> = vec![None; self.layers.len()];
        self.backward(&trace, g, n, layers, |l, h, delta| {
            let layer = &self.layers[l];
            let mut gw = vec![0f32; layer.input * layer.output];
            let mut gb = vec![0f32; layer.output];
            for (hr, dr) in h
                .chunks_exact(layer.input)
                .zip(delta.chunks_exact(layer.output))
            {
                for (&hk, gwk) in hr.iter().zip(gw.chunks_exact_mut(layer.output)) {
                    if hk != 0.0 {
                        axpy(hk, dr, gwk);
                    }
                }
                axpy(1.0, dr, &mut gb);
            }
            grads[l] = Some((gw, gb));
        });
        let mut pen = 0f64;
        if let Some(p) = step.penalty {
            for t in &p.terms {
                let (Some((gw, gb)), Some(layer)) =
                    (grads[t.layer].as_mut(), self.layers.get(t.layer))
                else {
                    continue;
                };
                let (theta, grad) = if t.bias {
                    (&layer.b, gb)
                } else {
                    (&layer.w, gw)
                };
                for (((g, &th), &f), &st) in grad.iter_mut().zip(theta).zip(&t.fisher).zip(&t.star)
                {
                    let d = th - st;
                    pen += f64::from(f * d * d);
                    *g += p.lambda * f * d;
                }
            }
            pen *= f64::from(p.lambda) / 2.0;
        }
        if adam.moments.len() != self.layers.len() {
            adam.moments = vec![None; self.layers.len()];
        }
        for (l, grad) in grads.into_iter().enumerate() {
            if let Some((gw, gb)) = grad {
                let layer = &mut self.layers[l];
                let m = adam.moments[l].get_or_insert_with(|| Moments {
                    m_w: vec![0.0; gw.len()],
                    v_w: vec![0.0; gw.len()],
                    m_b: vec![0.0; gb.len()],
                    v_b: vec![0.0; gb.len()],
                    time: 0,
                });
                m.time += 1;
                ADAM.update(
                    &mut layer.w,
                    &gw,
                    &mut m.m_w,
                    &mut m.v_w,
                    m.time,
                    learning_rate,
                );
                ADAM.update(
                    &mut layer.b,
                    &gb,
                    &mut m.m_b,
                    &mut m.v_b,
                    m.time,
                    learning_rate,
                );
            }
        }
        (total / n as f64 + pen, pen)
    }

    /// The diagonal Fisher (the mean over rows of each parameter's squared per-row gradient
    /// of the likelihood, as `ewc::Ewc::fisher` computes one row at a time) of `n`
    /// standardised rows: per layer, `(weight [input * output], bias [output])`.
    pub fn fisher(&self, model: &Model, x: &[f32], y: &Targets) -> Vec<(Vec<f32>, Vec<f32>)> {
        let n = y.len();
        let mut out: Vec<(Vec<f32>, Vec<f32>)> = self
            .layers
            .iter()
            .map(|l| (vec![0f32; l.input * l.output], vec![0f32; l.output]))
            .collect();
        if n == 0 {
            return out;
        }
        let trace = self.forward(0, x, n);
        let (_, g) = self.loss_grad(model, &trace.out, y, true);
        let all = LayerSet::all(model);
        self.backward(&trace, g, n, &all, |l, h, delta| {
            let layer = &self.layers[l];
            let (fw, fb) = &mut out[l];
            let mut d2 = vec![0f32; layer.output];
            for (hr, dr) in h
                .chunks_exact(layer.input)
                .zip(delta.chunks_exact(layer.output))
            {
                for (s, &d) in d2.iter_mut().zip(dr) {
                    *s = d * d;
                }
                for (&hk, fwk) in hr.iter().zip(fw.chunks_exact_mut(layer.output)) {
                    if hk != 0.0 {
                        axpy(hk * hk, &d2, fwk);
                    }
                }
                axpy(1.0, &d2, fb);
            }
        });
        let inv = 1.0 / n as f32;
        for (fw, fb) in out.iter_mut() {
            fw.iter_mut().chain(fb.iter_mut()).for_each(|v| *v *= inv);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::online::{OnlineSettings, OnlineTrainer};
    use crate::learn::{BackendKind, Dataset, Ewc, ModelSpec, Normalizer, Task};
    use crate::rng::Rng;

    fn spec(task: Task, activation: Activation, loss: RegressionLoss) -> ModelSpec {
        let mut s = ModelSpec::classifier(5, vec![16, 12], 3);
        s.activation = activation;
        if task == Task::Regression {
            s.task = Task::Regression;
            s.classes = 1;
            s.loss = loss;
        }
        s
    }

    fn data(task: Task, n: usize, seed: u64) -> (Vec<f32>, Targets) {
        let mut rng = Rng::seeded(seed);
        let x: Vec<f32> = (0..n * 5)
            .map(|_| rng.unit_f64() as f32 * 4.0 - 2.0)
            .collect();
        let y = match task {
            Task::Classification => Targets::Classes(
                x.chunks(5)
                    .map(|r| ((r[0] + r[1] * r[2]).abs() * 1.3) as u32 % 3)
                    .collect(),
            ),
            // Wide targets: Huber's linear part is reached.
            Task::Regression => Targets::Values(
                x.chunks(5)
                    .map(|r| 10.0 + 4.0 * r[0] * r[1] + 3.0 * r[3])
                    .collect(),
            ),
        };
        (x, y)
    }

    /// Runs the same chunks through the online trainer twice, burn's graph and the host
    /// loops, and compares every parameter.
    fn same_training(task: Task, activation: Activation, loss: RegressionLoss, layers: &[&str]) {
        let spec = spec(task, activation, loss);
        let run = |host: bool| -> ParamMap {
            let mut m = Model::new(
                spec.clone(),
                Normalizer::identity(5),
                BackendKind::from_env(),
                4,
            )
            .unwrap();
            let set = if layers.is_empty() {
                LayerSet::all(&m)
            } else {
                LayerSet::named(&m, layers).unwrap()
            };
            let settings = OnlineSettings {
                learning_rate: 0.01,
                batch_size: 8,
                seed: 3,
            };
            let mut t = OnlineTrainer::new(&mut m, set, settings, 20.0);
            t.set_host(host);
            for c in 0..12 {
                let (x, y) = data(task, 32, 100 + c);
                t.learn(&mut m, &x, &y, None).unwrap();
            }
            m.params().unwrap()
        };
        let (graph, host) = (run(false), run(true));
        for (name, (_, g)) in &graph {
            let what = format!("{task:?} {activation:?} {loss:?} {layers:?}: {name}");
            assert_close(g, &host[name].1, 2e-4, 1e-3, &what);
        }
    }

    /// Every `got` within `rel` of the largest `want` (at least `floor`) of its `want`.
    fn assert_close(want: &[f32], got: &[f32], rel: f32, floor: f32, what: &str) {
        assert_eq!(want.len(), got.len(), "{what}");
        let scale = want.iter().fold(0f32, |a, v| a.max(v.abs())).max(floor);
        for (a, b) in want.iter().zip(got) {
            assert!((a - b).abs() <= rel * scale, "{what}: burn {a}, host {b}");
        }
    }

    #[test]
    fn host_steps_train_as_the_burn_graph_does() {
        use Activation::{Relu, Tanh};
        use RegressionLoss::{Huber, Squared};
        same_training(Task::Classification, Relu, Huber, &[]);
        same_training(Task::Classification, Tanh, Huber, &[]);
        same_training(Task::Classification, Relu, Huber, &["hidden.0", "head"]);
        same_training(Task::Classification, Relu, Huber, &["hidden.1"]);
        same_training(Task::Regression, Relu, Huber, &[]);
        same_training(Task::Regression, Tanh, Squared, &["head"]);
    }

    #[test]
    fn host_fisher_is_the_per_row_fisher() {
        for (task, loss) in [
            (Task::Classification, RegressionLoss::Huber),
            (Task::Regression, RegressionLoss::Huber),
        ] {
            let m = Model::new(
                spec(task, Activation::Relu, loss),
                Normalizer::identity(5),
                BackendKind::from_env(),
                9,
            )
            .unwrap();
            let (x, y) = data(task, 40, 7);
            let ds = Dataset::with_targets(x.clone(), y.clone(), 5).unwrap();
            let per_row = Ewc::fisher_per_row(&m, &ds, 40).unwrap();
            let host = HostNet::read(&m).unwrap().fisher(&m, &m.norm.apply(&x), &y);
            for (l, name) in m.layer_names().iter().enumerate() {
                for (key, got) in [("weight", &host[l].0), ("bias", &host[l].1)] {
                    let want = &per_row[&format!("{name}.{key}")].1;
                    assert_close(want, got, 1e-4, 1e-6, &format!("{task:?} {name}.{key}"));
                }
            }
        }
    }

    /// The drift check's cache gives exactly `activation_stats` of the rows as they are now,
    /// as long as it is told which rows changed; a new version computes every row again.
    #[test]
    fn the_activation_cache_gives_the_statistics_of_the_current_rows() {
        use crate::learn::diagnostics::{activation_stats, ActivationCache};
        let model = |seed| {
            Model::new(
                spec(
                    Task::Classification,
                    Activation::Relu,
                    RegressionLoss::Huber,
                ),
                Normalizer::identity(5),
                BackendKind::from_env(),
                seed,
            )
            .unwrap()
        };
        let (m1, m2) = (model(3), model(4));
        let (mut x, _) = data(Task::Classification, 300, 11);
        let (other, _) = data(Task::Classification, 3, 12);
        let mut cache = ActivationCache::default();
        assert_eq!(
            cache.stats(1, &m1, &x).unwrap(),
            activation_stats(&m1, &x).unwrap()
        );
        let before = x.clone();
        for (k, slot) in [5usize, 77, 299].into_iter().enumerate() {
            x[slot * 5..(slot + 1) * 5].copy_from_slice(&other[k * 5..(k + 1) * 5]);
            cache.forget(slot);
        }
        let now = activation_stats(&m1, &x).unwrap();
        assert_ne!(now, activation_stats(&m1, &before).unwrap());
        assert_eq!(cache.stats(1, &m1, &x).unwrap(), now);
        // A row changed without `forget` keeps its old activations: the cache is what answers.
        let kept = x.clone();
        x[10 * 5..11 * 5].copy_from_slice(&other[..5]);
        assert_eq!(cache.stats(1, &m1, &x).unwrap(), now);
        assert_eq!(now, activation_stats(&m1, &kept).unwrap());
        // Another version: every row again.
        assert_eq!(
            cache.stats(2, &m2, &x).unwrap(),
            activation_stats(&m2, &x).unwrap()
        );
        // A longer window (the ring filling up) adds rows.
        let (longer, _) = data(Task::Classification, 320, 11);
        let mut fresh = ActivationCache::default();
        fresh.stats(2, &m2, &longer[..300 * 5]).unwrap();
        assert_eq!(
            fresh.stats(2, &m2, &longer).unwrap(),
            activation_stats(&m2, &longer).unwrap()
        );
    }

    /// Every hidden layer's activations, and the drift reference's statistics of them, as
    /// burn's graph computes them (ReLU and tanh).
    #[test]
    fn host_hidden_activations_are_burns() {
        for activation in [Activation::Relu, Activation::Tanh] {
            let m = Model::new(
                spec(Task::Classification, activation, RegressionLoss::Huber),
                Normalizer::identity(5),
                BackendKind::from_env(),
                3,
            )
            .unwrap();
            let (x, _) = data(Task::Classification, 300, 11);
            let host = m.host_hidden_activations(&x, 300).expect("on the host");
            let burn = m.hidden_activations(&x, 300);
            assert_eq!(host.len(), 2);
            for (i, (h, b)) in host.iter().zip(burn).enumerate() {
                let b = b.into_data().try_to_vec::<f32>().unwrap();
                assert_close(&b, h, 1e-5, 1e-6, &format!("{activation:?} hidden.{i}"));
            }
            let stats = crate::learn::diagnostics::activation_stats(&m, &x).unwrap();
            for (s, h) in stats.iter().zip(&host) {
                let units = s.mean.len();
                for u in 0..units {
                    let col: Vec<f64> = h
                        .iter()
                        .skip(u)
                        .step_by(units)
                        .map(|&v| f64::from(v))
                        .collect();
                    let mean = col.iter().sum::<f64>() / 300.0;
                    let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 300.0;
                    assert!(
                        (f64::from(s.mean[u]) - mean).abs() < 1e-5,
                        "{} mean {u}",
                        s.layer
                    );
                    assert!(
                        (f64::from(s.var[u]) - var).abs() < 1e-5,
                        "{} var {u}",
                        s.layer
                    );
                }
            }
        }
    }

    #[test]
    fn gelu_and_dropout_stay_on_burn() {
        let gelu = spec(
            Task::Classification,
            Activation::Gelu,
            RegressionLoss::Huber,
        );
        let dropout = ModelSpec {
            dropout: 0.1,
            ..spec(
                Task::Classification,
                Activation::Relu,
                RegressionLoss::Huber,
            )
        };
        let plain = spec(Task::Regression, Activation::Tanh, RegressionLoss::Huber);
        let on = |s: ModelSpec| {
            supports(&Model::new(s, Normalizer::identity(5), BackendKind::from_env(), 1).unwrap())
        };
        assert!(!on(gelu));
        assert!(!on(dropout));
        assert!(on(plain));
    }
}
