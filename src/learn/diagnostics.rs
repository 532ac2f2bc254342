//! Layer diagnostics for choosing what to retrain: relative gradient norms (Auto-RGN, Lee et
//! al. 2023, "Surgical Fine-Tuning") and per-unit activation statistics (the drift reference).

use serde::{Deserialize, Serialize};

use super::loss::task_loss;
use super::{Dataset, LearnError, Model};

/// A layer's relative gradient norm on some labeled data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerGradient {
    pub layer: String,
    /// `||grad|| / ||theta||` over the layer's weight and bias.
    pub rgn: f64,
    /// `rgn / max(rgn)`: 1 for the layer that the data pulls hardest (Auto-RGN's weight).
    pub relative: f64,
}

/// Per-layer relative gradient norms of the mean loss on (at most `max_examples` of) `data`.
pub fn relative_gradient_norms(
    model: &Model,
    data: &Dataset,
    max_examples: usize,
) -> Result<Vec<LayerGradient>, LearnError> {
    let n = data.len().min(max_examples);
    if n == 0 {
        return Err(LearnError::Empty);
    }
    let net = model.gradient_net();
    let x = model.input_tensor(&data.x[..n * data.width], n, true);
    let logits = model.forward_from(&net, 0, x);
    let grads = task_loss(model, logits, &data.y.slice(0..n), model.device()).backward();
    let mut out = Vec::new();
    for (i, name) in model.layer_names().iter().enumerate() {
        let layer = net.layer(i);
        let mut g2 = 0f64;
        let mut p2 = 0f64;
        if let Some(g) = layer.weight.grad(&grads) {
            g2 += (g.clone() * g).sum().into_scalar::<f32>() as f64;
        }
        let w = layer.weight.val();
        p2 += (w.clone() * w).sum().into_scalar::<f32>() as f64;
        if let Some(b) = &layer.bias {
            if let Some(g) = b.grad(&grads) {
                g2 += (g.clone() * g).sum().into_scalar::<f32>() as f64;
            }
            let v = b.val();
            p2 += (v.clone() * v).sum().into_scalar::<f32>() as f64;
        }
        out.push(LayerGradient {
            layer: name.clone(),
            rgn: g2.sqrt() / p2.sqrt().max(1e-12),
            relative: 0.0,
        });
    }
    let max = out.iter().map(|l| l.rgn).fold(0.0, f64::max);
    for l in &mut out {
        l.relative = if max > 0.0 { l.rgn / max } else { 0.0 };
    }
    Ok(out)
}

/// Per-unit mean and variance of a hidden layer's output (after its activation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivationStats {
    pub layer: String,
    /// Examples the statistics were computed on.
    pub count: usize,
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
}

/// Per-unit mean and (population) variance of hidden layer `i`'s `n` rows `h`, summed in f64.
fn host_stats(i: usize, h: &[f32], n: usize) -> ActivationStats {
    let units = h.len() / n;
    let mut sum = vec![0f64; units];
    for row in h.chunks_exact(units) {
        for (s, &v) in sum.iter_mut().zip(row) {
            *s += f64::from(v);
        }
    }
    let mean: Vec<f64> = sum.iter().map(|s| s / n as f64).collect();
    let mut sq = vec![0f64; units];
    for row in h.chunks_exact(units) {
        for ((s, &v), m) in sq.iter_mut().zip(row).zip(&mean) {
            let d = f64::from(v) - m;
            *s += d * d;
        }
    }
    ActivationStats {
        layer: format!("hidden.{i}"),
        count: n,
        mean: mean.iter().map(|&m| m as f32).collect(),
        var: sq.iter().map(|&s| (s / n as f64) as f32).collect(),
    }
}

/// Activation statistics of every hidden layer on rows of raw features (from the host loops
/// where they compute the model, else burn's graph).
pub fn activation_stats(model: &Model, x: &[f32]) -> Result<Vec<ActivationStats>, LearnError> {
    let n = x.len() / model.spec.input;
    if n == 0 || x.len() != n * model.spec.input {
        return Err(LearnError::Width {
            got: x.len(),
            expected: model.spec.input,
        });
    }
    if let Some(layers) = model.host_hidden_activations(x, n) {
        return Ok(layers
            .iter()
            .enumerate()
            .map(|(i, h)| host_stats(i, h, n))
            .collect());
    }
    let mut out = Vec::new();
    for (i, h) in model.hidden_activations(x, n).into_iter().enumerate() {
        // h: [n, units]
        let mean = h.clone().mean_dim(0); // [1, units]
        let centred = h - mean.clone();
        let var = (centred.clone() * centred).mean_dim(0); // [1, units]
        let read = |t: burn::tensor::Tensor<2>| {
            t.into_data().try_to_vec::<f32>().map_err(LearnError::Read)
        };
        out.push(ActivationStats {
            layer: format!("hidden.{i}"),
            count: n,
            mean: read(mean)?,
            var: read(var)?,
        });
    }
    Ok(out)
}

/// The hidden activations of a window of records (the learner's recent ring, by slot), kept
/// for the model version that computed them: a drift check computes only the records that
/// arrived since the last check, not the whole window (a check every 1,000 records over a
/// 2,000-record window computed every record twice). The statistics are those of
/// [`activation_stats`]: the host loops compute each row on its own, and the sums run over
/// the same rows in the same order.
#[derive(Debug, Default)]
pub struct ActivationCache {
    version: Option<u64>,
    /// Per slot, every hidden layer's activations one after the other; empty: not computed.
    slots: Vec<Vec<f32>>,
}

impl ActivationCache {
    /// The record in `slot` changed.
    pub fn forget(&mut self, slot: usize) {
        if let Some(row) = self.slots.get_mut(slot) {
            row.clear();
        }
    }

    /// [`activation_stats`] of `model` (serving as `version`) on the rows `x`, row `i` being
    /// slot `i`.
    pub fn stats(
        &mut self,
        version: u64,
        model: &Model,
        x: &[f32],
    ) -> Result<Vec<ActivationStats>, LearnError> {
        let width = model.spec.input;
        let units = &model.spec.hidden;
        let n = x.len() / width.max(1);
        if n == 0 || x.len() != n * width || units.contains(&0) {
            return activation_stats(model, x);
        }
        if self.version != Some(version) {
            self.version = Some(version);
            self.slots.clear();
        }
        self.slots.resize(n, Vec::new());
        let missing: Vec<usize> = (0..n).filter(|&i| self.slots[i].is_empty()).collect();
        if !missing.is_empty() {
            let rows: Vec<f32> = missing
                .iter()
                .flat_map(|&i| x[i * width..(i + 1) * width].iter().copied())
                .collect();
            let Some(layers) = model.host_hidden_activations(&rows, missing.len()) else {
                self.version = None;
                return activation_stats(model, x);
            };
            for (j, &i) in missing.iter().enumerate() {
                let row = &mut self.slots[i];
                for (h, &u) in layers.iter().zip(units) {
                    row.extend_from_slice(&h[j * u..(j + 1) * u]);
                }
            }
        }
        let mut out = Vec::with_capacity(units.len());
        let mut offset = 0;
        for (l, &u) in units.iter().enumerate() {
            let mut h = Vec::with_capacity(n * u);
            for row in &self.slots {
                h.extend_from_slice(&row[offset..offset + u]);
            }
            out.push(host_stats(l, &h, n));
            offset += u;
        }
        Ok(out)
    }
}
