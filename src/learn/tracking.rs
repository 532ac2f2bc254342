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
//!
//! Beside the offsets, linear corrections at [`LINEAR_RATES`] add weights on the inputs,
//! standardised with their running mean and variance: `a = b + W·x̂`, learned by the same
//! per-record SGD step (`W ← W + rate · (onehot(y) − p) x̂ᵀ`, or `rate · r · x̂ᵀ`). Starting
//! from the model's output, they are the online logistic (or linear) regression of the
//! model's residual: what a model trained in chunks, or bootstrapped on a few dozen
//! records, has not learned yet from the features, they learn from the first records on.

use relearn_kernels::axpy;
use serde::{Deserialize, Serialize};

use crate::record::{Label, Output};

/// Learning rates of the offsets alone, per record. Rate 0 is the model's own output.
pub const RATES: [f32; 5] = [0.0, 0.03, 0.1, 0.3, 1.0];

/// Learning rates of the linear corrections (an offset plus weights on the standardised
/// inputs, as an online logistic or linear regression learns them), per record. Chosen on
/// the development streams (relearn eval, defaults, 2026-12-03): one at 0.01 (River's
/// logistic regression's rate) against none gained on chess (+4.8 points), keystroke (+1.1),
/// Luxembourg (+0.5) and Elec2 (+1.0, within its run-to-run spread over bootstrap sizes)
/// and held shuttle and bank marketing within 0.1; adding one at 0.03 lost 2 points on Elec2,
/// and linear corrections with faster offsets (0.1 to 1) lost 2 on chess.
pub const LINEAR_RATES: [f32; 1] = [0.01];

/// Correction `k`'s learning rate, and whether it is a linear one (its offset and weights
/// learn at that rate).
fn rates_of(k: usize) -> (f32, bool) {
    match RATES.get(k) {
        Some(&r) => (r, false),
        None => (LINEAR_RATES[k - RATES.len()], true),
    }
}

/// Discount of each offset's prequential loss per labeled record (a memory of about 1 /
/// (1 - DECAY) records).
pub const DECAY: f64 = 0.99;

/// A regression residual is clipped at this many target standard deviations before a step.
pub const RESIDUAL_CLIP: f32 = 3.0;

/// A standardised input is clipped at this many standard deviations.
const INPUT_CLIP: f32 = 5.0;

/// How sharply a regression's persistence forecast and its leading correction are blended
/// by their discounted losses (in target standard deviations): the forecast's weight is
/// `1 / (1 + exp(eta · (L_persistence − L_correction)))`. Chosen on the four numeric-target
/// streams (relearn eval, defaults, 2026-12-03): 0.3 held or lowered the MAE on all four,
/// 1 (close to serving the better one alone) raised bike sharing's by 1%, 0.1 PM2.5's by 2%.
pub const PERSISTENCE_ETA: f64 = 0.3;

/// Losses are capped here (a cross-entropy of a probability under 1e-7).
const MAX_LOSS: f64 = 16.0;

/// The corrections at every rate and their discounted losses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tracker {
    /// Outputs per offset: the number of classes, or 1 for a regression value.
    width: usize,
    /// Inputs the linear corrections see (0: offsets alone; state written before them).
    #[serde(default)]
    inputs: usize,
    /// `offsets[k * width + j]`: output `j`'s offset in correction `k` (the offset-only
    /// corrections of [`RATES`], then the linear ones of [`LINEAR_RATES`]).
    offsets: Vec<f32>,
    /// `weights[(l * width + j) * inputs + i]`: linear correction `l`'s weight of input `i`
    /// on output `j`.
    #[serde(default)]
    weights: Vec<f32>,
    /// Discounted prequential loss of each correction.
    losses: Vec<f64>,
    /// Running mean and variance of each input.
    #[serde(default)]
    scaler: Scaler,
    /// Regression: the last target seen, and the discounted loss of serving it (the
    /// persistence forecast, no-change), which competes with the corrections.
    #[serde(default)]
    last: Option<f32>,
    #[serde(default)]
    persistence_loss: f64,
    /// Per-record buffers (not state).
    #[serde(skip)]
    scratch: Scratch,
}

#[derive(Debug, Clone, Default)]
struct Scratch {
    /// The record's standardised inputs.
    x: Vec<f32>,
    /// The model's own class probabilities for the record.
    raw: Vec<f32>,
    /// One correction's output adjustments.
    a: Vec<f32>,
}

impl PartialEq for Scratch {
    fn eq(&self, _: &Scratch) -> bool {
        true
    }
}

/// Running mean and variance per input (Welford), as River's `StandardScaler`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    n: f64,
    mean: Vec<f64>,
    m2: Vec<f64>,
}

impl Scaler {
    fn new(inputs: usize) -> Scaler {
        Scaler {
            n: 0.0,
            mean: vec![0.0; inputs],
            m2: vec![0.0; inputs],
        }
    }

    fn observe(&mut self, x: &[f32]) {
        if x.len() != self.mean.len() || x.iter().any(|v| !v.is_finite()) {
            return;
        }
        self.n += 1.0;
        for ((m, s), &v) in self.mean.iter_mut().zip(&mut self.m2).zip(x) {
            let d = f64::from(v) - *m;
            *m += d / self.n;
            *s += d * (f64::from(v) - *m);
        }
    }

    /// The mean and standard deviation of each input (sd 0: the input is left out).
    fn moments(&self) -> (Vec<f32>, Vec<f32>) {
        let sd = self
            .m2
            .iter()
            .map(|&s| {
                let var = if self.n > 1.0 { s / self.n } else { 0.0 };
                if var > 1e-12 {
                    var.sqrt() as f32
                } else {
                    0.0
                }
            })
            .collect();
        (self.mean.iter().map(|&m| m as f32).collect(), sd)
    }

    fn standardise_into(&self, x: &[f32], out: &mut Vec<f32>) {
        out.clear();
        for (i, &v) in x.iter().enumerate() {
            let var = if self.n > 1.0 {
                self.m2[i] / self.n
            } else {
                0.0
            };
            out.push(if var > 1e-12 && v.is_finite() {
                (((f64::from(v) - self.mean[i]) / var.sqrt()) as f32).clamp(-INPUT_CLIP, INPUT_CLIP)
            } else {
                0.0
            });
        }
    }
}

/// The correction a tracker serves now, applied outside the loop (the HTTP API).
#[derive(Debug, Clone, PartialEq)]
pub struct Shift {
    /// Output offsets.
    pub offsets: Vec<f32>,
    /// Weights on the standardised inputs, `[output][input]` (empty: offsets alone).
    pub weights: Vec<f32>,
    /// Mean and standard deviation of each input (sd 0: left out).
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    /// Regression: the last target and its weight in the served value.
    pub persist: Option<(f32, f32)>,
}

impl Tracker {
    /// A tracker for `width` outputs (classes, or 1 for regression) of a model with
    /// `inputs` inputs, every correction at 0.
    pub fn new(width: usize, inputs: usize) -> Tracker {
        let width = width.max(1);
        let linear = if inputs > 0 { LINEAR_RATES.len() } else { 0 };
        let n = RATES.len() + linear;
        Tracker {
            width,
            inputs,
            offsets: vec![0.0; width * n],
            weights: vec![0.0; linear * width * inputs],
            losses: vec![0.0; n],
            scaler: Scaler::new(inputs),
            last: None,
            persistence_loss: 0.0,
            scratch: Scratch::default(),
        }
    }

    /// The weight of the persistence forecast in the served value: a regression's last
    /// target, blended with the leading correction by their discounted losses.
    pub fn persistence_weight(&self) -> f32 {
        if self.width != 1 || self.last.is_none() {
            return 0.0;
        }
        let d = PERSISTENCE_ETA * (self.persistence_loss - self.losses[self.leader()]);
        (1.0 / (1.0 + d.clamp(-50.0, 50.0).exp())) as f32
    }

    /// Whether this tracker corrects a model with `width` outputs and `inputs` inputs (a
    /// stored one from another shape, or from before the linear corrections, does not).
    pub fn fits(&self, width: usize, inputs: usize) -> bool {
        let n = RATES.len() + if inputs > 0 { LINEAR_RATES.len() } else { 0 };
        self.width == width.max(1)
            && self.inputs == inputs
            && self.losses.len() == n
            && self.offsets.len() == n * self.width
            && self.weights.len() == (n - RATES.len()) * self.width * inputs
            && self.scaler.mean.len() == inputs
            && self.scaler.m2.len() == inputs
    }

    /// Outputs per offset.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Inputs the linear corrections see (0: none).
    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// The index of the correction served now: the lowest discounted loss, the earlier one
    /// on a tie (the model's own output until some correction did better).
    pub fn leader(&self) -> usize {
        let mut best = 0;
        for (k, &l) in self.losses.iter().enumerate() {
            if l < self.losses[best] {
                best = k;
            }
        }
        best
    }

    /// The learning rate of the correction served now, and whether it is a linear one.
    pub fn leader_rate(&self) -> (f32, bool) {
        rates_of(self.leader())
    }

    /// The correction served now.
    pub fn shift(&self) -> Shift {
        let k = self.leader();
        let (mean, std) = self.scaler.moments();
        Shift {
            offsets: self.offsets_of(k).to_vec(),
            weights: self.weights_of(k).to_vec(),
            mean,
            std,
            persist: self.last.map(|l| (l, self.persistence_weight())),
        }
    }

    fn offsets_of(&self, k: usize) -> &[f32] {
        &self.offsets[k * self.width..(k + 1) * self.width]
    }

    /// Correction `k`'s weights (empty for an offset-only one).
    fn weights_of(&self, k: usize) -> &[f32] {
        let per = self.width * self.inputs;
        match k.checked_sub(RATES.len()) {
            Some(l) => &self.weights[l * per..(l + 1) * per],
            None => &[],
        }
    }

    /// Correction `k`'s output adjustments for the standardised inputs `xs`, into `a`.
    fn adjustments(&self, k: usize, xs: &[f32], a: &mut Vec<f32>) {
        adjust(self.offsets_of(k), self.weights_of(k), xs, a);
    }

    /// One record of a classifier, test then train: `p`, the model's class probabilities
    /// for raw inputs `x`, become the served ones (the leading correction applied, in
    /// place); then, when the record is labeled, every correction learns from the model's
    /// own `p` and the label.
    pub fn track_class(&mut self, p: &mut [f32], x: &[f32], label: Option<u32>) {
        if p.len() != self.width {
            return;
        }
        let mut s = std::mem::take(&mut self.scratch);
        self.standardised(x, &mut s.x);
        s.raw.clear();
        s.raw.extend_from_slice(p);
        self.adjustments(self.leader(), &s.x, &mut s.a);
        shift_probs(p, &s.a);
        if let Some(y) = label {
            self.learn_class_standardised(&mut s, y);
            if !s.x.is_empty() {
                self.scaler.observe(x);
            }
        }
        self.scratch = s;
    }

    /// One record of a regression, test then train: returns the value served for the
    /// model's value `v` at raw inputs `x` (the leading correction applied, blended with the
    /// persistence forecast); then, when the record is labeled with `y`, everything learns
    /// from it. `sd` is the target's standard deviation.
    pub fn track_value(&mut self, v: f32, x: &[f32], label: Option<f32>, sd: f32) -> f32 {
        let sd = if sd.is_finite() && sd > 0.0 { sd } else { 1.0 };
        let mut s = std::mem::take(&mut self.scratch);
        self.standardised(x, &mut s.x);
        self.adjustments(self.leader(), &s.x, &mut s.a);
        let corrected = v + s.a[0] * sd;
        let weight = self.persistence_weight();
        let served = weight * self.last.unwrap_or(0.0) + (1.0 - weight) * corrected;
        if let Some(y) = label.filter(|y| y.is_finite() && v.is_finite()) {
            self.learn_value_standardised(&mut s, v, y, sd);
            if !s.x.is_empty() {
                self.scaler.observe(x);
            }
        }
        self.scratch = s;
        served
    }

    /// One record of either task, test then train: `out` (the model's output for raw
    /// inputs `x`) becomes the served one (its class follows its probabilities), then the
    /// tracker learns from `label` when it is one of the output's task. `sd` is a
    /// regression target's standard deviation.
    pub fn track_output(&mut self, out: &mut Output, x: &[f32], label: Option<Label>, sd: f32) {
        match out {
            Output::Class {
                class,
                probabilities,
            } => {
                let y = match label {
                    Some(Label::Class(y)) => Some(y),
                    _ => None,
                };
                self.track_class(probabilities, x, y);
                *class = super::model::argmax(probabilities) as u32;
            }
            Output::Value(v) => {
                let y = match label {
                    Some(Label::Value(y)) => Some(y),
                    _ => None,
                };
                *v = self.track_value(*v, x, y, sd);
            }
        }
    }

    /// Class probabilities `p` (the model's, for raw inputs `x`) with the leading
    /// correction applied, in place.
    pub fn adjust_probs(&mut self, p: &mut [f32], x: &[f32]) {
        self.track_class(p, x, None);
    }

    /// A regression value (the model's, for raw inputs `x`) as served.
    pub fn adjust_value(&mut self, v: f32, x: &[f32], sd: f32) -> f32 {
        self.track_value(v, x, None, sd)
    }

    /// Learns from one labeled record: `p` are the model's own class probabilities for raw
    /// inputs `x`, `label` the true class.
    pub fn learn_class(&mut self, p: &[f32], x: &[f32], label: u32) {
        let mut q = p.to_vec();
        self.track_class(&mut q, x, Some(label));
    }

    /// Learns from one labeled record of a regression: `v` is the model's own value for raw
    /// inputs `x`, `y` the target, `sd` the target's standard deviation.
    pub fn learn_value(&mut self, v: f32, x: &[f32], y: f32, sd: f32) {
        self.track_value(v, x, Some(y), sd);
    }

    /// Every correction is charged the cross-entropy of its own adjusted probabilities for
    /// the record in `s` (the model's `raw` probabilities, the standardised inputs `x`),
    /// then steps.
    fn learn_class_standardised(&mut self, s: &mut Scratch, label: u32) {
        let (w, y) = (self.width, label as usize);
        if y >= w {
            return;
        }
        let linear = !s.x.is_empty();
        for k in self.candidates(linear) {
            let (rate, is_linear) = rates_of(k);
            self.adjustments(k, &s.x, &mut s.a);
            // Each class's adjusted probability needs only its own adjustment and the
            // row's normaliser.
            let norm = Normaliser::of(&s.raw, &s.a);
            let loss = -f64::from(norm.apply(s.raw[y], s.a[y]).max(1e-7)).ln();
            self.losses[k] = DECAY * self.losses[k] + loss.min(MAX_LOSS);
            if rate == 0.0 {
                continue;
            }
            for (j, (&aj, &pj)) in s.a.iter().zip(&s.raw).enumerate() {
                let target = if j == y { 1.0 } else { 0.0 };
                let e = rate * (target - norm.apply(pj, aj));
                self.offsets[k * w + j] += e;
                if is_linear {
                    axpy(e, &s.x, self.weight_row_mut(k, j));
                }
            }
            center(&mut self.offsets[k * w..(k + 1) * w]);
            if is_linear {
                let per = self.width * self.inputs;
                let l = k - RATES.len();
                center_columns(&mut self.weights[l * per..(l + 1) * per], self.inputs);
            }
        }
    }

    /// The persistence forecast and every correction are charged their absolute error in
    /// standard deviations on the record in `s` (model value `v`, target `y`), then step.
    fn learn_value_standardised(&mut self, s: &mut Scratch, v: f32, y: f32, sd: f32) {
        let persistence = self
            .last
            .map_or(RESIDUAL_CLIP, |l| ((y - l) / sd).abs().min(RESIDUAL_CLIP));
        self.persistence_loss = DECAY * self.persistence_loss + f64::from(persistence);
        self.last = Some(y);
        let linear = !s.x.is_empty();
        for k in self.candidates(linear) {
            let (rate, is_linear) = rates_of(k);
            self.adjustments(k, &s.x, &mut s.a);
            let r = ((y - (v + s.a[0] * sd)) / sd).clamp(-RESIDUAL_CLIP, RESIDUAL_CLIP);
            self.losses[k] = DECAY * self.losses[k] + f64::from(r.abs()).min(MAX_LOSS);
            self.offsets[k] += rate * r;
            if is_linear {
                axpy(rate * r, &s.x, self.weight_row_mut(k, 0));
            }
        }
    }

    /// Linear correction `k`'s weights of output `j`.
    fn weight_row_mut(&mut self, k: usize, j: usize) -> &mut [f32] {
        let n = self.inputs;
        let at = ((k - RATES.len()) * self.width + j) * n;
        &mut self.weights[at..at + n]
    }

    /// The corrections that learn from a record: every one, or the offsets alone when the
    /// record's inputs are not `linear`ly usable (none, or another width).
    fn candidates(&self, linear: bool) -> impl Iterator<Item = usize> {
        (0..self.losses.len()).filter(move |&k| linear || k < RATES.len())
    }

    /// `x` standardised with the running moments (nothing without linear corrections, or
    /// for inputs of another width).
    fn standardised(&self, x: &[f32], out: &mut Vec<f32>) {
        if self.inputs > 0 && x.len() == self.inputs {
            self.scaler.standardise_into(x, out);
        } else {
            out.clear();
        }
    }
}

/// Output adjustments `a_j = b_j + w_j · xs` into `a` (offsets alone when `weights` or `xs`
/// is empty).
fn adjust(offsets: &[f32], weights: &[f32], xs: &[f32], a: &mut Vec<f32>) {
    a.clear();
    a.extend_from_slice(offsets);
    if weights.is_empty() || xs.is_empty() {
        return;
    }
    for (aj, row) in a.iter_mut().zip(weights.chunks_exact(xs.len())) {
        *aj += row.iter().zip(xs).map(|(w, x)| w * x).sum::<f32>();
    }
}

impl Shift {
    /// The output adjustments for raw inputs `x`.
    fn adjustments(&self, x: &[f32]) -> Vec<f32> {
        let mut xs = Vec::new();
        if !self.weights.is_empty() && x.len() == self.mean.len() {
            xs.extend(
                x.iter()
                    .zip(&self.mean)
                    .zip(&self.std)
                    .map(|((&v, &m), &s)| {
                        if s > 0.0 && v.is_finite() {
                            ((v - m) / s).clamp(-INPUT_CLIP, INPUT_CLIP)
                        } else {
                            0.0
                        }
                    }),
            );
        }
        let mut a = Vec::with_capacity(self.offsets.len());
        adjust(&self.offsets, &self.weights, &xs, &mut a);
        a
    }

    /// Class probabilities for raw inputs `x` with this correction applied, in place (a
    /// width mismatch leaves them).
    pub fn adjust_probs(&self, p: &mut [f32], x: &[f32]) {
        if p.len() == self.offsets.len() {
            shift_probs(p, &self.adjustments(x));
        }
    }

    /// A regression value for raw inputs `x` with this correction applied.
    pub fn adjust_value(&self, v: f32, x: &[f32], sd: f32) -> f32 {
        let out = v + self.adjustments(x).first().copied().unwrap_or(0.0) * sd;
        match self.persist {
            Some((last, w)) => w * last + (1.0 - w) * out,
            None => out,
        }
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

/// The same for each input's weights across the outputs (`w[j * inputs + i]`).
fn center_columns(w: &mut [f32], inputs: usize) {
    if inputs == 0 {
        return;
    }
    let rows = w.len() / inputs;
    if rows < 2 {
        return;
    }
    for i in 0..inputs {
        let mean = (0..rows).map(|j| w[j * inputs + i]).sum::<f32>() / rows as f32;
        for j in 0..rows {
            w[j * inputs + i] -= mean;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_persistence_the_model_is_served_unchanged() {
        // Labels alternate and the model says 50/50: no offset can do better than none.
        let mut t = Tracker::new(2, 0);
        for i in 0..2000u32 {
            t.learn_class(&[0.5, 0.5], &[], i % 2);
        }
        assert_eq!(t.leader(), 0, "{t:?}");
        let mut p = [0.5f32, 0.5];
        t.adjust_probs(&mut p, &[]);
        assert_eq!(p, [0.5, 0.5]);
    }

    #[test]
    fn runs_of_one_class_are_followed() {
        // Runs of 50 of one class; the model always says 50/50. Following the runs errs a
        // few times after each switch (the offset built up over a run must turn), chance
        // is 0.5.
        let mut t = Tracker::new(2, 0);
        let (mut hits, mut n) = (0, 0);
        for i in 0..4000u32 {
            let y = (i / 50) % 2;
            let mut p = [0.5f32, 0.5];
            t.adjust_probs(&mut p, &[]);
            if i >= 1000 {
                n += 1;
                hits += usize::from((p[1] > p[0]) == (y == 1));
            }
            t.learn_class(&[0.5, 0.5], &[], y);
        }
        assert!(t.leader() > 0, "{t:?}");
        let acc = hits as f64 / n as f64;
        assert!(acc > 0.9, "accuracy {acc}");
    }

    #[test]
    fn a_linear_correction_learns_what_the_model_missed() {
        // The label is the sign of the first input; the model says 50/50 everywhere, so no
        // offset alone beats chance. Inputs alternate in sign with magnitudes that vary.
        let mut t = Tracker::new(2, 2);
        let (mut hits, mut n) = (0, 0);
        for i in 0..3000u32 {
            let m = 0.5 + (i % 7) as f32;
            let x = if i % 2 == 0 { [m, 3.0] } else { [-m, 3.0] };
            let y = u32::from(x[0] > 0.0);
            let mut p = [0.5f32, 0.5];
            t.adjust_probs(&mut p, &x);
            if i >= 500 {
                n += 1;
                hits += usize::from((p[1] > p[0]) == (y == 1));
            }
            t.learn_class(&[0.5, 0.5], &x, y);
        }
        assert!(t.leader_rate().1, "a linear correction serves: {t:?}");
        let acc = hits as f64 / n as f64;
        assert!(acc > 0.99, "accuracy {acc}");
        // The served shift gives the same probabilities outside the loop.
        let (mut a, mut b) = ([0.5f32, 0.5], [0.5f32, 0.5]);
        t.adjust_probs(&mut a, &[2.0, 3.0]);
        t.shift().adjust_probs(&mut b, &[2.0, 3.0]);
        assert!((a[1] - b[1]).abs() < 1e-6 && a[1] > 0.8, "{a:?} {b:?}");
        // A regression: the target is twice the input, the model says 0.
        let mut r = Tracker::new(1, 1);
        for i in 0..4000u32 {
            let x = [(i % 11) as f32 - 5.0];
            r.learn_value(0.0, &x, 2.0 * x[0], 4.0);
        }
        let v = r.adjust_value(0.0, &[3.0], 4.0);
        assert!((v - 6.0).abs() < 0.5, "{v}");
        assert!(r.fits(1, 1) && !r.fits(1, 0) && !r.fits(2, 1));
    }

    #[test]
    fn a_regression_offset_follows_a_level_shift() {
        // The model says 0 (sd 1); the target jumps to 2.5 and stays.
        let mut t = Tracker::new(1, 0);
        for _ in 0..300 {
            t.learn_value(0.0, &[], 2.5, 1.0);
        }
        let v = t.adjust_value(0.0, &[], 1.0);
        assert!((v - 2.5).abs() < 0.05, "{v}");
        assert_eq!(t.shift().adjust_value(0.0, &[], 1.0), v);
    }

    #[test]
    fn a_random_walk_is_served_by_persistence_and_noise_by_the_model() {
        // The target walks (steps of +-1 sd from a fixed pseudo-random sequence); the model's
        // value alternates between -1 and +1 and knows nothing: the last target is the best
        // forecast (an offset at rate 1, the model plus its last error, adds the model's
        // swing of 2 to it).
        let mut t = Tracker::new(1, 0);
        let (mut y, mut seed) = (0.0f32, 7u64);
        let mut step = || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            if (seed >> 33) % 2 == 0 {
                1.0
            } else {
                -1.0
            }
        };
        let model = |i: u32| if i % 2 == 0 { -1.0 } else { 1.0 };
        for i in 0..2000 {
            y += step();
            t.learn_value(model(i), &[], y, 1.0);
        }
        assert!(t.persistence_weight() > 0.95, "{}", t.persistence_weight());
        let served = t.adjust_value(model(2000), &[], 1.0);
        assert!((served - y).abs() < 0.1, "served {served}, last {y}");
        assert_eq!(t.shift().adjust_value(model(2000), &[], 1.0), served);
        // Noise of -1, 0 or +1 around the model's value 0: the last target is a worse
        // forecast than the model (mean absolute error 8/9 against 2/3), so it gets almost
        // no weight.
        let mut n = Tracker::new(1, 0);
        let mut s = 11u64;
        for _ in 0..2000 {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            n.learn_value(0.0, &[], ((s >> 33) % 3) as f32 - 1.0, 1.0);
        }
        assert!(n.persistence_weight() < 0.05, "{}", n.persistence_weight());
        // A classifier has none.
        assert_eq!(Tracker::new(2, 0).persistence_weight(), 0.0);
    }

    #[test]
    fn adjusted_probabilities_stay_a_distribution() {
        let mut t = Tracker::new(3, 0);
        for _ in 0..500 {
            t.learn_class(&[0.2, 0.3, 0.5], &[], 0);
        }
        let mut p = [0.2f32, 0.3, 0.5];
        t.adjust_probs(&mut p, &[]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{p:?}");
        assert!(p[0] > 0.9, "{p:?}");
        // A class index out of range and a width mismatch are ignored.
        let before = t.clone();
        t.learn_class(&[0.5, 0.5], &[], 0);
        t.learn_class(&[0.2, 0.3, 0.5], &[], 7);
        assert_eq!(t, before);
    }
}
