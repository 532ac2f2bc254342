//! Online elastic weight consolidation (Schwarz et al. 2018, after Kirkpatrick et al. 2017).
//!
//! The diagonal Fisher information is the mean over examples of the squared gradient of the
//! log-likelihood of the example's label (the empirical Fisher). After each accepted task,
//! `F <- gamma * F + F_new` and `theta* <- theta`. Training then adds
//! `lambda / 2 * sum_i F_i * (theta_i - theta*_i)^2` over the trainable parameters to the loss.

use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::loss::likelihood_loss;
use super::model::{LayerSet, Mlp};
use super::{Dataset, LearnError, Model, ParamMap};
use crate::error::ConfigError;

/// The consolidated importance of each parameter and the values it is anchored to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Ewc {
    /// Penalty strength.
    pub lambda: f64,
    /// Decay of the old Fisher at each consolidation (1 = plain sum, 0 = only the newest).
    pub gamma: f64,
    /// Diagonal Fisher per parameter name; empty until the first consolidation.
    pub fisher: ParamMap,
    /// Anchor values per parameter name.
    pub theta_star: ParamMap,
}

/// One parameter's penalty constants on the model's device.
pub(crate) enum Term {
    Weight {
        layer: usize,
        fisher: Tensor<2>,
        star: Tensor<2>,
    },
    Bias {
        layer: usize,
        fisher: Tensor<1>,
        star: Tensor<1>,
    },
}

fn read<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, LearnError> {
    t.into_data().try_to_vec::<f32>().map_err(LearnError::Read)
}

impl Ewc {
    /// An empty EWC state (no penalty until `consolidate`).
    pub fn new(lambda: f64, gamma: f64) -> Ewc {
        Ewc {
            lambda,
            gamma,
            ..Ewc::default()
        }
    }

    /// The empirical diagonal Fisher of `model` on (at most `max_examples` of) `data`.
    pub fn fisher(
        model: &Model,
        data: &Dataset,
        max_examples: usize,
    ) -> Result<ParamMap, LearnError> {
        let net = match model.host_net() {
            Some(net) if data.width == model.spec.input => net,
            _ => return Ewc::fisher_per_row(model, data, max_examples),
        };
        let n = data.len().min(max_examples);
        if n == 0 {
            return Err(LearnError::Empty);
        }
        let x = model.norm.apply(&data.x[..n * data.width]);
        let per_layer = net.fisher(model, &x, &data.y.slice(0..n));
        let mut map = ParamMap::new();
        for ((name, (i, o)), (w, b)) in model
            .layer_names()
            .iter()
            .zip(model.spec.layer_dims())
            .zip(per_layer)
        {
            map.insert(format!("{name}.weight"), (vec![i, o], w));
            map.insert(format!("{name}.bias"), (vec![o], b));
        }
        Ok(map)
    }

    /// [`Ewc::fisher`] through burn's graph, one backward pass per row (any model: dropout,
    /// GELU, large ones).
    pub(crate) fn fisher_per_row(
        model: &Model,
        data: &Dataset,
        max_examples: usize,
    ) -> Result<ParamMap, LearnError> {
        if data.width != model.spec.input {
            return Err(LearnError::Width {
                got: data.width,
                expected: model.spec.input,
            });
        }
        let n = data.len().min(max_examples);
        if n == 0 {
            return Err(LearnError::Empty);
        }
        // Gradients without dropout: a copy of the module with dropout off.
        let net = model.gradient_net();
        let device = model.device.clone();
        let plain = device.clone().without_autodiff();
        let dims = model.spec.layer_dims();
        let mut acc_w: Vec<Tensor<2>> = dims
            .iter()
            .map(|&(i, o)| Tensor::zeros([i, o], &plain))
            .collect();
        let mut acc_b: Vec<Tensor<1>> = dims
            .iter()
            .map(|&(_, o)| Tensor::zeros([o], &plain))
            .collect();
        for e in 0..n {
            let x = model.input_tensor(data.row(e), 1, true);
            let logits = model.forward_from(&net, 0, x);
            let loss = likelihood_loss(model, logits, &data.y.slice(e..e + 1), &device);
            let grads = loss.backward();
            for (l, (aw, ab)) in acc_w.iter_mut().zip(acc_b.iter_mut()).enumerate() {
                let layer = net.layer(l);
                if let Some(g) = layer.weight.grad(&grads) {
                    *aw = aw.clone() + g.clone() * g;
                }
                if let Some(g) = layer.bias.as_ref().and_then(|b| b.grad(&grads)) {
                    *ab = ab.clone() + g.clone() * g;
                }
            }
        }
        let mut map = ParamMap::new();
        for (l, name) in model.layer_names().iter().enumerate() {
            let (i, o) = dims[l];
            let w = acc_w[l].clone().div_scalar(n as f32);
            let b = acc_b[l].clone().div_scalar(n as f32);
            map.insert(format!("{name}.weight"), (vec![i, o], read(w)?));
            map.insert(format!("{name}.bias"), (vec![o], read(b)?));
        }
        Ok(map)
    }

    /// Online update after `model` was accepted on `data`: `F <- gamma F + F_new`,
    /// `theta* <- theta`.
    pub fn consolidate(
        &mut self,
        model: &Model,
        data: &Dataset,
        max_examples: usize,
    ) -> Result<(), LearnError> {
        let new = Ewc::fisher(model, data, max_examples)?;
        for (name, (shape, values)) in new {
            match self.fisher.get_mut(&name) {
                Some((s, old)) if *s == shape => {
                    for (o, v) in old.iter_mut().zip(&values) {
                        *o = (self.gamma as f32) * *o + v;
                    }
                }
                _ => {
                    self.fisher.insert(name, (shape, values));
                }
            }
        }
        self.theta_star = model.params()?;
        Ok(())
    }

    /// Constants of the penalty for the parameters of `layers` that have a Fisher.
    pub(crate) fn penalty_terms(
        &self,
        model: &Model,
        layers: &LayerSet,
    ) -> Result<Vec<Term>, LearnError> {
        let names = model.layer_names();
        let device = &model.device;
        let mut terms = Vec::new();
        for l in layers.indices() {
            let w_name = format!("{}.weight", names[l]);
            let b_name = format!("{}.bias", names[l]);
            if let (Some((fs, fv)), Some((ss, sv))) =
                (self.fisher.get(&w_name), self.theta_star.get(&w_name))
            {
                if fs.len() != 2 || fs != ss {
                    return Err(LearnError::Weights(format!(
                        "EWC state for `{w_name}` has shape {fs:?}"
                    )));
                }
                terms.push(Term::Weight {
                    layer: l,
                    fisher: Tensor::from_data(TensorData::new(fv.clone(), [fs[0], fs[1]]), device),
                    star: Tensor::from_data(TensorData::new(sv.clone(), [ss[0], ss[1]]), device),
                });
            }
            if let (Some((fs, fv)), Some((_, sv))) =
                (self.fisher.get(&b_name), self.theta_star.get(&b_name))
            {
                terms.push(Term::Bias {
                    layer: l,
                    fisher: Tensor::from_data(TensorData::new(fv.clone(), [fs[0]]), device),
                    star: Tensor::from_data(TensorData::new(sv.clone(), [fs[0]]), device),
                });
            }
        }
        Ok(terms)
    }

    /// [`Ewc::penalty_terms`] as host arrays, for `host::HostNet::step_from`.
    pub(crate) fn host_penalty(
        &self,
        model: &Model,
        layers: &LayerSet,
    ) -> Result<super::model::host::HostPenalty, LearnError> {
        let names = model.layer_names();
        let dims = model.spec.layer_dims();
        let mut terms = Vec::new();
        for l in layers.indices() {
            let (i, o) = dims[l];
            for (bias, len) in [(false, i * o), (true, o)] {
                let name = format!("{}.{}", names[l], if bias { "bias" } else { "weight" });
                if let (Some((_, f)), Some((_, star))) =
                    (self.fisher.get(&name), self.theta_star.get(&name))
                {
                    if f.len() != len || star.len() != len {
                        return Err(LearnError::Weights(format!(
                            "EWC state for `{name}` has {} values, the layer {len}",
                            f.len()
                        )));
                    }
                    terms.push(super::model::host::PenaltyTerm {
                        layer: l,
                        bias,
                        fisher: f.clone(),
                        star: star.clone(),
                    });
                }
            }
        }
        Ok(super::model::host::HostPenalty {
            lambda: self.lambda as f32,
            terms,
        })
    }

    /// `lambda/2 * sum F (theta - theta*)^2` over `terms`, on the autodiff graph: `[1]`.
    pub(crate) fn penalty(&self, net: &Mlp, terms: &[Term]) -> Tensor<1> {
        let mut total: Option<Tensor<1>> = None;
        for t in terms {
            let s = match t {
                Term::Weight {
                    layer,
                    fisher,
                    star,
                } => {
                    let d = net.layer(*layer).weight.val() - star.clone();
                    (fisher.clone() * d.clone() * d).sum()
                }
                Term::Bias {
                    layer,
                    fisher,
                    star,
                } => {
                    let b = net
                        .layer(*layer)
                        .bias
                        .as_ref()
                        .expect("every layer has a bias")
                        .val();
                    let d = b - star.clone();
                    (fisher.clone() * d.clone() * d).sum()
                }
            };
            total = Some(match total {
                Some(acc) => acc + s,
                None => s,
            });
        }
        total
            .expect("penalty is only computed with at least one term")
            .mul_scalar(self.lambda as f32 / 2.0)
    }

    /// The penalty of `model` over every layer, as a number.
    pub fn penalty_value(&self, model: &Model) -> Result<f64, LearnError> {
        let terms = self.penalty_terms(model, &LayerSet::all(model))?;
        if terms.is_empty() {
            return Ok(0.0);
        }
        Ok(self.penalty(model.net(), &terms).into_scalar::<f32>() as f64)
    }
}

/// Online elastic weight consolidation.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EwcConfig {
    /// Penalty strength lambda (0 disables EWC).
    pub lambda: f64,
    /// Decay of the old Fisher at each promotion, in [0, 1]: `F <- gamma F + F_new`.
    pub gamma: f64,
    /// Examples the Fisher is estimated on (one backward pass each).
    pub fisher_examples: usize,
}

impl Default for EwcConfig {
    fn default() -> Self {
        Self {
            lambda: 100.0,
            gamma: 0.9,
            fisher_examples: 500,
        }
    }
}

impl EwcConfig {
    /// Refuses values of this section that cannot work, naming the key.
    pub fn check(&self) -> Result<(), ConfigError> {
        if !(self.lambda.is_finite() && self.lambda >= 0.0) {
            return Err(ConfigError::key("ewc.lambda", "must be a number >= 0"));
        }
        if !(0.0..=1.0).contains(&self.gamma) {
            return Err(ConfigError::key("ewc.gamma", "must be in [0, 1]"));
        }
        if self.fisher_examples == 0 {
            return Err(ConfigError::key("ewc.fisher_examples", "must be > 0"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::{Activation, BackendKind, ModelSpec, Normalizer};

    fn model(input: usize, hidden: Vec<usize>, classes: usize) -> Model {
        let spec = ModelSpec {
            input,
            hidden,
            classes,
            task: Default::default(),
            loss: Default::default(),
            activation: Activation::Tanh,
            dropout: 0.0,
        };
        Model::new(
            spec,
            Normalizer::identity(input),
            BackendKind::from_env(),
            3,
        )
        .unwrap()
    }

    /// Softmax regression (no hidden layer): the gradient of log p(y|x) is
    /// `x_j (1[c = y] - p_c)` for `W[j][c]` and `1[c = y] - p_c` for `b[c]`.
    #[test]
    fn fisher_of_a_logistic_model_matches_the_hand_computation() {
        let mut m = model(2, vec![], 2);
        let w = vec![0.5f32, -0.3, 0.2, 0.8]; // [in=2, out=2]
        let b = vec![0.1f32, -0.2];
        let mut p = ParamMap::new();
        p.insert("head.weight".into(), (vec![2, 2], w.clone()));
        p.insert("head.bias".into(), (vec![2], b.clone()));
        m.set_params(&p).unwrap();
        let x = vec![1.0f32, 2.0, -1.0, 0.5, 0.3, -2.0];
        let y = vec![0u32, 1, 1];
        let data = Dataset::new(x.clone(), y.clone(), 2).unwrap();
        let f = Ewc::fisher(&m, &data, 100).unwrap();

        let mut fw = [0f64; 4];
        let mut fb = [0f64; 2];
        for e in 0..3 {
            let xe = [x[2 * e] as f64, x[2 * e + 1] as f64];
            let z: Vec<f64> = (0..2)
                .map(|c| xe[0] * w[c] as f64 + xe[1] * w[2 + c] as f64 + b[c] as f64)
                .collect();
            let mx = z[0].max(z[1]);
            let s: f64 = z.iter().map(|v| (v - mx).exp()).sum();
            for c in 0..2 {
                let pc = (z[c] - mx).exp() / s;
                let d = if c as u32 == y[e] { 1.0 } else { 0.0 } - pc;
                for j in 0..2 {
                    fw[j * 2 + c] += (xe[j] * d).powi(2) / 3.0;
                }
                fb[c] += d * d / 3.0;
            }
        }
        let (_, got_w) = &f["head.weight"];
        let (_, got_b) = &f["head.bias"];
        for (g, e) in got_w.iter().zip(fw) {
            assert!(
                (*g as f64 - e).abs() < 1e-5,
                "weight fisher {got_w:?} vs {fw:?}"
            );
        }
        for (g, e) in got_b.iter().zip(fb) {
            assert!(
                (*g as f64 - e).abs() < 1e-5,
                "bias fisher {got_b:?} vs {fb:?}"
            );
        }
    }

    #[test]
    fn penalty_is_zero_at_the_anchor_and_its_gradient_points_back() {
        let mut m = model(3, vec![4], 2);
        let data = Dataset::new(
            (0..30).map(|i| ((i * 7 % 11) as f32) / 5.0 - 1.0).collect(),
            (0..10).map(|i| i % 2).collect(),
            3,
        )
        .unwrap();
        let mut ewc = Ewc::new(50.0, 1.0);
        ewc.consolidate(&m, &data, 100).unwrap();
        assert_eq!(ewc.penalty_value(&m).unwrap(), 0.0);

        // Move every parameter away from the anchor by a known offset.
        let star = ewc.theta_star.clone();
        let mut moved = ParamMap::new();
        let mut expect = 0f64;
        for (name, (shape, v)) in &star {
            let f = &ewc.fisher[name].1;
            let nv: Vec<f32> = v
                .iter()
                .enumerate()
                .map(|(i, x)| x + 0.05 * ((i % 5) as f32 - 2.0))
                .collect();
            for i in 0..v.len() {
                let d = (nv[i] - v[i]) as f64;
                expect += 25.0 * f[i] as f64 * d * d;
            }
            moved.insert(name.clone(), (shape.clone(), nv));
        }
        m.set_params(&moved).unwrap();
        let got = ewc.penalty_value(&m).unwrap();
        assert!(expect > 0.0);
        assert!(
            (got - expect).abs() < 1e-4 * expect.max(1.0),
            "{got} vs {expect}"
        );

        // Autodiff gradient = lambda F (theta - theta*), and a step against it moves back.
        let terms = ewc.penalty_terms(&m, &LayerSet::all(&m)).unwrap();
        let pen = ewc.penalty(m.net(), &terms);
        let grads = pen.backward();
        let g = read(m.net().head.weight.grad(&grads).unwrap()).unwrap();
        let (_, theta) = &moved["head.weight"];
        let (_, anchor) = &star["head.weight"];
        let (_, f) = &ewc.fisher["head.weight"];
        let mut toward = 0f64;
        for i in 0..g.len() {
            let d = (theta[i] - anchor[i]) as f64;
            let want = 50.0 * f[i] as f64 * d;
            assert!(
                (g[i] as f64 - want).abs() < 1e-4 + 1e-3 * want.abs(),
                "grad {i}"
            );
            toward += -(g[i] as f64) * d;
        }
        assert!(
            toward < 0.0 || g.iter().all(|v| *v == 0.0),
            "descent moves toward theta*"
        );
        // Finite differences on one coordinate agree with the autodiff gradient.
        let i = g
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .map(|(i, _)| i)
            .unwrap();
        let h = 1e-2f32;
        let at = |delta: f32| {
            let mut p = moved.clone();
            p.get_mut("head.weight").unwrap().1[i] += delta;
            let mut mm = m.clone();
            mm.set_params(&p).unwrap();
            ewc.penalty_value(&mm).unwrap()
        };
        let numeric = (at(h) - at(-h)) / (2.0 * h as f64);
        assert!(
            (numeric - g[i] as f64).abs() < 1e-2 * (g[i] as f64).abs().max(1e-3),
            "numeric {numeric} vs autodiff {}",
            g[i]
        );
    }

    #[test]
    fn online_update_decays_the_old_fisher() {
        let m = model(3, vec![], 2);
        let data = Dataset::new(vec![1.0, 0.0, -1.0, 0.5, 0.5, 0.5], vec![0, 1], 3).unwrap();
        let one = Ewc::fisher(&m, &data, 10).unwrap();
        let mut ewc = Ewc::new(1.0, 0.5);
        ewc.consolidate(&m, &data, 10).unwrap();
        ewc.consolidate(&m, &data, 10).unwrap();
        for (name, (_, v)) in &one {
            for (a, b) in ewc.fisher[name].1.iter().zip(v) {
                assert!((a - 1.5 * b).abs() < 1e-6, "{name}: 0.5 F + F = 1.5 F");
            }
        }
    }
}
