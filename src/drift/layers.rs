//! Per-layer drift and the choice of layers to retrain.
//!
//! A hidden layer's shift is the mean over its units of the standardised change in the unit's
//! mean activation, `|mu_now - mu_ref| / sqrt(var_ref + eps)`, between the reference stored
//! with the serving version and a recent window. Auto selection combines each layer's
//! relative shift with its relative gradient norm (Auto-RGN) on recent labeled data; when no
//! layer moved beyond sampling noise, the gradients alone decide.

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

/// The shift a layer that did not move shows from sampling alone: each unit's standardised
/// mean difference is about `N(0, 1/n_ref + 1/n_now)`, whose mean absolute value is
/// `sqrt(2/pi) * sqrt(1/n_ref + 1/n_now)` (0.037 for 500 reference rows against 7,500).
pub fn shift_noise(reference: &ActivationStats, current: &ActivationStats) -> f64 {
    if reference.count == 0 || current.count == 0 {
        return f64::INFINITY;
    }
    let var = 1.0 / reference.count as f64 + 1.0 / current.count as f64;
    (2.0 / std::f64::consts::PI).sqrt() * var.sqrt()
}

/// Each hidden layer's shift in `now` against its entry in `reference` (0 without one), for
/// auto selection; all 0 when no layer moved beyond sampling noise (3 x [`shift_noise`]).
/// Selection scores shifts relative to the largest, so without this the least quiet of
/// unmoved layers would score as the most shifted, and a concept drift at the output (the
/// inputs do not move, the labels do) would train hidden layers instead of the head.
pub fn selection_shifts(reference: &[ActivationStats], now: &[ActivationStats]) -> Vec<f64> {
    let mut moved = false;
    let shifts = now
        .iter()
        .map(|s| match reference.iter().find(|r| r.layer == s.layer) {
            Some(r) => {
                let shift = layer_shift(r, s);
                moved |= shift > 3.0 * shift_noise(r, s);
                shift
            }
            None => 0.0,
        })
        .collect();
    if moved {
        shifts
    } else {
        vec![0.0; now.len()]
    }
}

/// A layer's scores and whether it was chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerChoice {
    pub layer: String,
    /// Shift relative to the most shifted layer (the head has none: 0; all 0 when no layer
    /// moved beyond sampling noise, see [`selection_shifts`]).
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
    fn shifts_within_sampling_noise_do_not_count() {
        let layer = |name: &str, mean: Vec<f32>, count: usize| ActivationStats {
            layer: name.into(),
            count,
            var: vec![1.0; mean.len()],
            mean,
        };
        let reference = [
            layer("hidden.0", vec![0.0; 4], 500),
            layer("hidden.1", vec![0.0; 4], 500),
        ];
        let noise = shift_noise(&reference[0], &layer("hidden.0", vec![], 7500));
        assert!((noise - 0.0369).abs() < 1e-3, "{noise}");
        // Mean shifts of 0.035 and 0.02: both within 3 x 0.037, nothing moved.
        let quiet = [
            layer("hidden.0", vec![0.04, -0.03, 0.05, -0.02], 7500),
            layer("hidden.1", vec![0.02; 4], 7500),
        ];
        assert_eq!(selection_shifts(&reference, &quiet), [0.0, 0.0]);
        // One layer beyond the noise: every shift counts as measured.
        let moved = [
            layer("hidden.0", vec![0.5; 4], 7500),
            layer("hidden.1", vec![0.02; 4], 7500),
        ];
        let s = selection_shifts(&reference, &moved);
        assert!(
            (s[0] - 0.5).abs() < 1e-6 && (s[1] - 0.02).abs() < 1e-6,
            "{s:?}"
        );
        // A layer without reference, or no rows, measures nothing.
        assert_eq!(selection_shifts(&reference[..1], &moved)[1], 0.0);
        let empty = [layer("hidden.0", vec![0.5; 4], 0)];
        assert_eq!(selection_shifts(&reference, &empty), [0.0]);
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
