//! Output tracking: a correction of a model's output that learns from every labeled record,
//! one record at a time, between the model's own (chunked) training steps.
//!
//! Many real streams have errors that persist for a while: Elec2's price direction holds for
//! hours, a pollution reading stays high for a day, an outage makes a class frequent for a
//! few hundred events. A model trained in chunks cannot follow that from record to record; a
//! per-record SGD step on an additive output offset can, at almost no cost (one vector per
//! rate). How fast to follow is stream-dependent (on keystroke the next label is almost never
//! the last one, so following hurts), so the tracker runs one offset per rate in [`RATES`],
//! rate 0 being the model unchanged, and serves the one whose discounted prequential loss is
//! lowest (follow the leader). On a stream without such persistence rate 0 leads and the
//! served output is the model's own.
//!
//! - Classification: the offsets are added to the logits (`p ∝ p_model · exp(b)`), and each
//!   learns by SGD on its own cross-entropy: `b ← b + rate · (onehot(y) − p)`.
//! - Regression: the offset is in target standard deviations, `v = v_model + b · sd`, and
//!   learns on its own residual (clipped at ±[`RESIDUAL_CLIP`] sd): `b ← b + rate · r`. At
//!   rate 1 this serves the model plus its last error.

use serde::{Deserialize, Serialize};

/// Learning rates of the offsets, per record. Rate 0 is the model's own output.
pub const RATES: [f32; 5] = [0.0, 0.03, 0.1, 0.3, 1.0];

/// Discount of each offset's prequential loss per labeled record (a memory of about 1 /
/// (1 - DECAY) records).
pub const DECAY: f64 = 0.99;

/// A regression residual is clipped at this many target standard deviations before a step.
pub const RESIDUAL_CLIP: f32 = 3.0;

/// Losses are capped here (a cross-entropy of a probability under 1e-7).
const MAX_LOSS: f64 = 16.0;

/// The offsets at every rate and their discounted losses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tracker {
    /// Outputs per offset: the number of classes, or 1 for a regression value.
    width: usize,
    /// `offsets[k * width + j]`: output `j`'s offset at rate `RATES[k]`.
    offsets: Vec<f32>,
    /// Discounted prequential loss of each rate.
    losses: Vec<f64>,
}

/// The offset a tracker serves now, applied outside the loop (the HTTP API).
#[derive(Debug, Clone, PartialEq)]
pub struct Shift {
    pub offsets: Vec<f32>,
}

impl Tracker {
    /// A tracker for `width` outputs (classes, or 1 for regression), every offset at 0.
    pub fn new(width: usize) -> Tracker {
        let width = width.max(1);
        Tracker {
            width,
            offsets: vec![0.0; width * RATES.len()],
            losses: vec![0.0; RATES.len()],
        }
    }

    /// Outputs per offset.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The index in [`RATES`] of the rate served now: the lowest discounted loss, the lower
    /// rate on a tie (rate 0 until some offset did better).
    pub fn leader(&self) -> usize {
        let mut best = 0;
        for (k, &l) in self.losses.iter().enumerate() {
            if l < self.losses[best] {
                best = k;
            }
        }
        best
    }

    /// The offset served now.
    pub fn shift(&self) -> Shift {
        Shift {
            offsets: self.offsets_of(self.leader()).to_vec(),
        }
    }

    fn offsets_of(&self, k: usize) -> &[f32] {
        &self.offsets[k * self.width..(k + 1) * self.width]
    }

    /// Class probabilities `p` (the model's) with the leading offset applied, in place.
    pub fn adjust_probs(&self, p: &mut [f32]) {
        if p.len() == self.width {
            shift_probs(p, self.offsets_of(self.leader()));
        }
    }

    /// A regression value (the model's) with the leading offset applied.
    pub fn adjust_value(&self, v: f32, sd: f32) -> f32 {
        v + self.offsets_of(self.leader())[0] * sd
    }

    /// Learns from one labeled record: `p` are the model's own class probabilities (not
    /// adjusted), `label` the true class. Each rate is charged the cross-entropy of its own
    /// adjusted probabilities, then steps.
    pub fn learn_class(&mut self, p: &[f32], label: u32) {
        let (w, y) = (self.width, label as usize);
        if p.len() != w || y >= w {
            return;
        }
        for (k, &rate) in RATES.iter().enumerate() {
            let offsets = &mut self.offsets[k * w..(k + 1) * w];
            // Each class's adjusted probability needs only its own offset and the chunk-wide
            // normaliser, so the step runs in one pass without a buffer.
            let norm = Normaliser::of(p, offsets);
            let loss = -f64::from(norm.apply(p[y], offsets[y]).max(1e-7)).ln();
            self.losses[k] = DECAY * self.losses[k] + loss.min(MAX_LOSS);
            if rate > 0.0 {
                for (j, (b, &pj)) in offsets.iter_mut().zip(p).enumerate() {
                    let target = if j == y { 1.0 } else { 0.0 };
                    *b += rate * (target - norm.apply(pj, *b));
                }
                center(offsets);
            }
        }
    }

    /// Learns from one labeled record of a regression: `v` is the model's own value, `y` the
    /// target, `sd` the target's standard deviation. Each rate is charged its own absolute
    /// error in standard deviations, then steps.
    pub fn learn_value(&mut self, v: f32, y: f32, sd: f32) {
        let sd = if sd.is_finite() && sd > 0.0 { sd } else { 1.0 };
        if !v.is_finite() || !y.is_finite() {
            return;
        }
        for (k, &rate) in RATES.iter().enumerate() {
            let b = &mut self.offsets[k];
            let r = ((y - (v + *b * sd)) / sd).clamp(-RESIDUAL_CLIP, RESIDUAL_CLIP);
            self.losses[k] = DECAY * self.losses[k] + f64::from(r.abs()).min(MAX_LOSS);
            *b += rate * r;
        }
    }
}

impl Shift {
    /// Class probabilities with this offset applied, in place (a width mismatch leaves them).
    pub fn adjust_probs(&self, p: &mut [f32]) {
        if p.len() == self.offsets.len() {
            shift_probs(p, &self.offsets);
        }
    }

    /// A regression value with this offset applied.
    pub fn adjust_value(&self, v: f32, sd: f32) -> f32 {
        v + self.offsets.first().copied().unwrap_or(0.0) * sd
    }
}

/// What `softmax(ln p + b)` divides by: computed once per row, applied per class.
#[derive(Debug, Clone, Copy)]
struct Normaliser {
    /// All offsets 0: the probabilities stay as they are.
    identity: bool,
    top: f32,
    /// None: the weights do not sum to a positive finite number and are left undivided.
    sum: Option<f32>,
}

impl Normaliser {
    fn of(p: &[f32], b: &[f32]) -> Normaliser {
        let identity = b.iter().all(|&x| x == 0.0);
        let top = b.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0f32;
        if !identity {
            for (pj, &bj) in p.iter().zip(b) {
                sum += pj.max(0.0) * (bj - top).exp();
            }
        }
        Normaliser {
            identity,
            top,
            sum: (sum > 0.0 && sum.is_finite()).then_some(sum),
        }
    }

    /// The adjusted probability of a class whose model probability is `p` and offset `b`.
    fn apply(&self, p: f32, b: f32) -> f32 {
        if self.identity {
            return p;
        }
        let v = p.max(0.0) * (b - self.top).exp();
        match self.sum {
            Some(sum) => v / sum,
            None => v,
        }
    }
}

/// `p ← softmax(ln p + b)`.
fn shift_probs(p: &mut [f32], b: &[f32]) {
    let norm = Normaliser::of(p, b);
    for (pj, &bj) in p.iter_mut().zip(b) {
        *pj = norm.apply(*pj, bj);
    }
}

/// Offsets are defined up to a constant (softmax): keep their mean at 0 so they stay bounded.
fn center(b: &mut [f32]) {
    let mean = b.iter().sum::<f32>() / b.len().max(1) as f32;
    for x in b.iter_mut() {
        *x -= mean;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_persistence_the_model_is_served_unchanged() {
        // Labels alternate and the model says 50/50: no offset can do better than none.
        let mut t = Tracker::new(2);
        for i in 0..2000u32 {
            t.learn_class(&[0.5, 0.5], i % 2);
        }
        assert_eq!(t.leader(), 0, "{t:?}");
        let mut p = [0.5f32, 0.5];
        t.adjust_probs(&mut p);
        assert_eq!(p, [0.5, 0.5]);
    }

    #[test]
    fn runs_of_one_class_are_followed() {
        // Runs of 50 of one class; the model always says 50/50. Following the runs errs a
        // few times after each switch (the offset built up over a run must turn), chance
        // is 0.5.
        let mut t = Tracker::new(2);
        let (mut hits, mut n) = (0, 0);
        for i in 0..4000u32 {
            let y = (i / 50) % 2;
            let mut p = [0.5f32, 0.5];
            t.adjust_probs(&mut p);
            if i >= 1000 {
                n += 1;
                hits += usize::from((p[1] > p[0]) == (y == 1));
            }
            t.learn_class(&[0.5, 0.5], y);
        }
        assert!(t.leader() > 0, "{t:?}");
        let acc = hits as f64 / n as f64;
        assert!(acc > 0.9, "accuracy {acc}");
    }

    #[test]
    fn a_regression_offset_follows_a_level_shift() {
        // The model says 0 (sd 1); the target jumps to 2.5 and stays.
        let mut t = Tracker::new(1);
        for _ in 0..300 {
            t.learn_value(0.0, 2.5, 1.0);
        }
        let v = t.adjust_value(0.0, 1.0);
        assert!((v - 2.5).abs() < 0.05, "{v}");
        assert_eq!(t.shift().adjust_value(0.0, 1.0), v);
    }

    #[test]
    fn adjusted_probabilities_stay_a_distribution() {
        let mut t = Tracker::new(3);
        for _ in 0..500 {
            t.learn_class(&[0.2, 0.3, 0.5], 0);
        }
        let mut p = [0.2f32, 0.3, 0.5];
        t.adjust_probs(&mut p);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{p:?}");
        assert!(p[0] > 0.9, "{p:?}");
        // A class index out of range and a width mismatch are ignored.
        let before = t.clone();
        t.learn_class(&[0.5, 0.5], 0);
        t.learn_class(&[0.2, 0.3, 0.5], 7);
        assert_eq!(t, before);
    }
}
