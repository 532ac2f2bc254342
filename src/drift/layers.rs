//! Per-layer drift and the choice of layers to retrain.
//!
//! A hidden layer's shift is the mean over its units of the standardised change in the unit's
//! mean activation, `|mu_now - mu_ref| / sqrt(var_ref + eps)`, between the reference stored
//! with the serving version and a recent window. Auto selection combines each layer's
//! relative shift with its relative gradient norm (Auto-RGN) on recent labeled data.

use serde::{Deserialize, Serialize};

use crate::learn::diagnostics::{ActivationStats, LayerGradient};

/// The standardised mean shift of one layer's units.
pub fn layer_shift(reference: &ActivationStats, current: &ActivationStats) -> f64 {
    let n = reference.mean.len().min(current.mean.len());
    if n == 0 {
        return 0.0;
    }
    (0..n)
        .map(|u| {
            let sd = (reference.var[u] as f64 + 1e-6).sqrt();
            (current.mean[u] as f64 - reference.mean[u] as f64).abs() / sd
        })
        .sum::<f64>()
        / n as f64
}

/// A layer's scores and whether it was chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerChoice {
    pub layer: String,
    /// Shift relative to the most shifted layer (the head has none: 0).
    pub shift: f64,
    /// Relative gradient norm relative to the largest.
    pub gradient: f64,
    /// `(shift + gradient) / 2`.
    pub score: f64,
    /// Estimated cost of training this layer alone, as a fraction of a full retrain (0 when
    /// not estimated).
    #[serde(default)]
    pub cost: f64,
    pub chosen: bool,
}

/// Picks the layers whose combined score is at least `threshold`, best first, at most
/// `max_layers`; the best layer is always chosen. `shifts` are per hidden layer, in order;
/// `gradients` cover every layer (hidden then head).
pub fn select_layers(
    shifts: &[f64],
    gradients: &[LayerGradient],
    threshold: f64,
    max_layers: usize,
) -> Vec<LayerChoice> {
    let max_shift = shifts.iter().copied().fold(0.0, f64::max);
    let mut choices: Vec<LayerChoice> = gradients
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let shift = match shifts.get(i) {
                Some(s) if max_shift > 0.0 => s / max_shift,
                _ => 0.0,
            };
            LayerChoice {
                layer: g.layer.clone(),
                shift,
                gradient: g.relative,
                score: (shift + g.relative) / 2.0,
                cost: 0.0,
                chosen: false,
            }
        })
        .collect();
    let mut order: Vec<usize> = (0..choices.len()).collect();
    order.sort_by(|&a, &b| choices[b].score.total_cmp(&choices[a].score));
    for (rank, &i) in order.iter().enumerate() {
        if rank < max_layers.max(1) && (rank == 0 || choices[i].score >= threshold) {
            choices[i].chosen = true;
        }
    }
    choices
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(mean: Vec<f32>, var: Vec<f32>) -> ActivationStats {
        ActivationStats {
            layer: "hidden.0".into(),
            count: 10,
            mean,
            var,
        }
    }

    fn grad(layer: &str, relative: f64) -> LayerGradient {
        LayerGradient {
            layer: layer.into(),
            rgn: relative,
            relative,
        }
    }

    #[test]
    fn shift_is_standardised() {
        let r = stats(vec![0.0, 1.0], vec![4.0, 1.0]);
        assert_eq!(layer_shift(&r, &r), 0.0);
        let c = stats(vec![2.0, 1.0], vec![4.0, 1.0]);
        assert!((layer_shift(&r, &c) - 0.5).abs() < 1e-3, "(2/2 + 0) / 2");
    }

    #[test]
    fn selection_respects_threshold_and_cap() {
        let g = vec![
            grad("hidden.0", 1.0),
            grad("hidden.1", 0.2),
            grad("head", 0.6),
        ];
        let c = select_layers(&[2.0, 0.1], &g, 0.5, 2);
        let chosen: Vec<&str> = c
            .iter()
            .filter(|c| c.chosen)
            .map(|c| c.layer.as_str())
            .collect();
        assert_eq!(chosen, vec!["hidden.0"], "head scores 0.3 < 0.5");
        let c = select_layers(&[2.0, 0.1], &g, 0.25, 1);
        assert_eq!(c.iter().filter(|c| c.chosen).count(), 1, "capped at one");
        let c = select_layers(&[0.0, 0.0], &g, 0.9, 3);
        assert_eq!(
            c.iter().filter(|c| c.chosen).count(),
            1,
            "the best is always chosen"
        );
    }
}
