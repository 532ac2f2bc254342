//! Nearest neighbours over the most recent labeled records: a member of the served output
//! (`[neighbours]`) that learns from each labeled record at once and needs no training step.
//!
//! The network learns in chunks and needs many records before it knows a region of the
//! input space; a record's nearest recent neighbours know it from the first records on, and
//! follow a drift as fast as the window turns over. The served output weighs the networks'
//! output and the neighbours' vote by their recent losses (as the challenger is weighed
//! against the champion), so where the network predicts better the neighbours fade out.
//!
//! Distances are Euclidean over the inputs, each divided by its standard deviation over the
//! window (recomputed every [`RESCALE_EVERY`] records learned) and clipped at [`CLIP`]; an
//! input without spread, or missing (NaN) on either side, is left out. A classifier's vote weighs each of the `k` nearest by the inverse of its
//! distance and keeps [`SMOOTHING`] of the probability spread evenly (a class no neighbour
//! has costs a finite loss); a regression value is the neighbours' targets weighted the same
//! way.

use relearn_kernels::add_clipped_sq;
use serde::{Deserialize, Serialize};

/// Share of a classifier's probability spread evenly over the classes.
pub const SMOOTHING: f32 = 0.05;

/// Records learned between two recomputations of the inputs' scales.
pub const RESCALE_EVERY: usize = 32;

/// A scaled input difference counts at most this many standard deviations, so that no one
/// input (an outlier, a rare value, a noisy field) decides a distance alone. Measured with
/// `relearn eval` (defaults, model seeds 1-4, 2026-12-06), mean accuracy over ten
/// classification streams with the clip at 1, 1.5, 2, 3 and none: 0.9200, 0.9189, 0.9184,
/// 0.9165, 0.9143; 1 gained most on keystroke (0.9634, 0.9478 at 1.5, 0.9189 without) and
/// lost most on digits (0.9353, 0.9462 at 1.5, 0.9543 at 3): 1.5 gives up least on either.
pub const CLIP: f32 = 1.5;

thread_local! {
    /// A record's distances to the kept ones (a buffer reused across votes).
    static DISTANCES: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Added to a distance before it is inverted (an exact match weighs 1,000, not infinity).
const DISTANCE_FLOOR: f32 = 1e-3;

/// `[neighbours]`: the nearest-neighbour member of the served output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NeighboursConfig {
    /// Whether the served output blends in the neighbours' vote.
    pub enabled: bool,
    /// How many of the most recent labeled records are kept to vote.
    pub window: usize,
    /// How many of the nearest vote.
    pub k: usize,
    /// How sharply the networks' output and the neighbours' vote are weighed by their
    /// recent losses (as `challenger.blend`; 0: the networks alone). Unset: 0.3 for a
    /// classifier ([`BLEND_CLASSIFICATION`]), 1 for a regression ([`BLEND_REGRESSION`]).
    pub blend: Option<f64>,
    /// On Kafka, the share of the loop's wall time votes may take (over about the last 20
    /// chunks): behind a backlog, chunks beyond it are served without the vote (and still
    /// kept), counted in relearn_learn_neighbours_skipped_records_total, so ingest does not
    /// wait for the neighbours. A file replay votes on every record. In (0, 1]. Through a
    /// real broker (`scripts/kafka-load.sh`, 300,000 records of 54 inputs, 2026-12-06)
    /// ingest with learning on ran at 47,000 records/s at 0.1, 40,300 at 0.25, 51,100
    /// without the neighbours.
    pub max_share: f64,
}

/// The default `neighbours.blend` of a classifier (see [`NeighboursConfig::default`]);
/// sharper blends (1) gained less on the classification streams.
pub const BLEND_CLASSIFICATION: f64 = 0.3;

/// The default `neighbours.blend` of a regression. Measured with `relearn eval` (defaults,
/// model seeds 1-2, 2026-12-06), MAE without the neighbours -> at 0.3 -> at 1: bike sharing
/// 33.24 -> 31.59 -> 32.34, metro traffic 390.0 -> 384.4 -> 389.5, Beijing PM2.5 12.89 ->
/// 13.03 -> 12.88, Trump approval 0.1982 -> 0.1985 -> 0.1970: 1 is the one that raises none.
pub const BLEND_REGRESSION: f64 = 1.0;

impl Default for NeighboursConfig {
    /// A window of 1,000 and 5 neighbours. Chosen with `relearn eval` on ten classification
    /// streams (model seeds 1-4, 2026-12-06, a first version that scaled by the whole
    /// stream's moments and clipped at 5): a window of 500 or 2,000 moved the mean accuracy
    /// by -0.15 and +0.11 points (2,000 doubles the cost), 3 or 10 neighbours by +0.05 and
    /// -0.3 (10 lost 0.8 points on keystroke and 1.4 on digits).
    fn default() -> Self {
        NeighboursConfig {
            enabled: true,
            window: 1000,
            k: 5,
            blend: None,
            max_share: 0.1,
        }
    }
}

/// The largest `neighbours.window`: every predicted record is compared with each of them.
pub const MAX_WINDOW: usize = 100_000;

impl NeighboursConfig {
    /// The blend's sharpness for a model of `task` (0 when disabled).
    pub fn eta(&self, task: super::Task) -> f64 {
        let defaults = (BLEND_CLASSIFICATION, BLEND_REGRESSION);
        task.blend(self.enabled, self.blend, defaults)
    }

    /// Refuses values that cannot work; returns the key at fault and why.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.window == 0 || self.window > MAX_WINDOW {
            return Err((
                "neighbours.window",
                format!("must be between 1 and {MAX_WINDOW} records"),
            ));
        }
        if self.k == 0 || self.k > self.window {
            return Err((
                "neighbours.k",
                format!("must be between 1 and neighbours.window ({})", self.window),
            ));
        }
        if !(self.max_share > 0.0 && self.max_share <= 1.0) {
            return Err(("neighbours.max_share", "must be in (0, 1]".into()));
        }
        if self.blend.is_some_and(|b| !(b >= 0.0 && b.is_finite())) {
            return Err((
                "neighbours.blend",
                "must be a finite number, 0 or more".into(),
            ));
        }
        Ok(())
    }
}

/// The most recent labeled records (inputs and label) in a ring, and the scales that put
/// their inputs on one footing.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbours {
    /// Outputs: the number of classes, or 1 for a regression value.
    width: usize,
    inputs: usize,
    capacity: usize,
    k: usize,
    /// `cols[i * capacity + slot]`: input `i` of the record kept in `slot` (one input's
    /// values side by side, so that a record's distances to all are computed an input at a
    /// time); `ys[slot]` its class index or target.
    cols: Vec<f32>,
    ys: Vec<f32>,
    /// The slot the next record goes to (once the ring is full).
    next: usize,
    /// `1 / sd` of each input over the window (0: no spread), and the records learned since.
    scales: Vec<f32>,
    since_rescale: usize,
    /// Per input, the count, sum and sum of squares of the finite values kept, updated as a
    /// record comes in and the one it replaces goes (a rescale costs an input each, not the
    /// whole window: it took 7% of the ingest thread on NYC flights' 101 inputs); summed
    /// afresh every `capacity` records, so rounding cannot build up.
    sums: Vec<[f64; 3]>,
    since_exact: usize,
}

impl Neighbours {
    /// An empty window for a model with `width` outputs and `inputs` inputs.
    pub fn new(width: usize, inputs: usize, config: &NeighboursConfig) -> Neighbours {
        Neighbours {
            width: width.max(1),
            inputs,
            capacity: config.window.max(1),
            k: config.k.max(1),
            cols: vec![0.0; inputs * config.window.max(1)],
            ys: Vec::new(),
            next: 0,
            scales: vec![0.0; inputs],
            since_rescale: 0,
            sums: vec![[0.0; 3]; inputs],
            since_exact: 0,
        }
    }

    /// Whether this window votes for a model with `width` outputs and `inputs` inputs.
    pub fn fits(&self, width: usize, inputs: usize) -> bool {
        self.width == width.max(1) && self.inputs == inputs
    }

    /// Records kept.
    pub fn len(&self) -> usize {
        self.ys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ys.is_empty()
    }

    /// Outputs per vote.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Inputs per record.
    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// The `k` nearest kept records to `x`: (squared scaled distance, slot), nearest first
    /// (the earlier slot on a tie).
    fn nearest(&self, x: &[f32]) -> Vec<(f32, usize)> {
        let n = self.ys.len();
        let mut d = DISTANCES.with_borrow_mut(std::mem::take);
        d.clear();
        d.resize(n, 0.0);
        for (i, (&v, &s)) in x.iter().zip(&self.scales).enumerate() {
            if s > 0.0 && !v.is_nan() {
                let col = &self.cols[i * self.capacity..i * self.capacity + n];
                add_clipped_sq(v, col, s, CLIP, &mut d);
            }
        }
        let mut best: Vec<(f32, usize)> = Vec::with_capacity(self.k + 1);
        // The k-th distance so far: most records are farther and cost one comparison.
        let mut worst = f32::INFINITY;
        for (slot, &d) in d.iter().enumerate() {
            if d >= worst {
                continue;
            }
            let at = best.partition_point(|b| b.0 <= d);
            best.insert(at, (d, slot));
            best.truncate(self.k);
            if best.len() == self.k {
                worst = best[self.k - 1].0;
            }
        }
        DISTANCES.with_borrow_mut(|buffer| *buffer = d);
        best
    }

    /// Each neighbour's weight: the inverse of its distance.
    fn weights(near: &[(f32, usize)]) -> impl Iterator<Item = (f32, usize)> + '_ {
        near.iter()
            .map(|&(d, slot)| (1.0 / (d.max(0.0).sqrt() + DISTANCE_FLOOR), slot))
    }

    /// The class probabilities of the vote for raw inputs `x`, into `p`; false (and `p`
    /// left) when nothing is kept yet or the shapes differ.
    pub fn predict_class(&self, x: &[f32], p: &mut [f32]) -> bool {
        if self.is_empty() || x.len() != self.inputs || p.len() != self.width {
            return false;
        }
        let near = self.nearest(x);
        p.iter_mut().for_each(|v| *v = 0.0);
        let mut total = 0.0;
        for (w, slot) in Self::weights(&near) {
            if let Some(v) = p.get_mut(self.ys[slot] as usize) {
                *v += w;
                total += w;
            }
        }
        let even = 1.0 / self.width as f32;
        for v in p.iter_mut() {
            let share = if total > 0.0 { *v / total } else { even };
            *v = (1.0 - SMOOTHING) * share + SMOOTHING * even;
        }
        true
    }

    /// The regression value of the vote for raw inputs `x` (None when nothing is kept yet
    /// or the shapes differ).
    pub fn predict_value(&self, x: &[f32]) -> Option<f32> {
        if self.is_empty() || x.len() != self.inputs {
            return None;
        }
        let near = self.nearest(x);
        let (mut sum, mut total) = (0.0, 0.0);
        for (w, slot) in Self::weights(&near) {
            sum += w * self.ys[slot];
            total += w;
        }
        (total > 0.0).then(|| sum / total)
    }

    /// Keeps a labeled record (`y`: its class index, or its target), in place of the oldest
    /// once the window is full. A record without a finite target is not kept; a missing
    /// (NaN) input is left out of its distances.
    pub fn learn(&mut self, x: &[f32], y: f32) {
        if x.len() != self.inputs || !y.is_finite() {
            return;
        }
        let full = self.ys.len() == self.capacity;
        let at = if !full {
            self.ys.push(y);
            self.ys.len() - 1
        } else {
            let at = self.next;
            self.ys[at] = y;
            self.next = (at + 1) % self.capacity;
            at
        };
        for (i, &v) in x.iter().enumerate() {
            let cell = &mut self.cols[i * self.capacity + at];
            let sums = &mut self.sums[i];
            if full && cell.is_finite() {
                let old = f64::from(*cell);
                sums[0] -= 1.0;
                sums[1] -= old;
                sums[2] -= old * old;
            }
            if v.is_finite() {
                let new = f64::from(v);
                sums[0] += 1.0;
                sums[1] += new;
                sums[2] += new * new;
            }
            *cell = v;
        }
        self.since_exact += 1;
        if self.since_exact >= self.capacity {
            self.since_exact = 0;
            self.sum_afresh();
        }
        self.since_rescale += 1;
        if self.since_rescale >= RESCALE_EVERY || self.ys.len() <= RESCALE_EVERY {
            self.rescale();
        }
    }

    /// Sums each input's finite values kept, in slot order.
    fn sum_afresh(&mut self) {
        let kept = self.ys.len();
        for (i, sums) in self.sums.iter_mut().enumerate() {
            *sums = [0.0; 3];
            for &v in &self.cols[i * self.capacity..i * self.capacity + kept] {
                if v.is_finite() {
                    sums[0] += 1.0;
                    sums[1] += f64::from(v);
                    sums[2] += f64::from(v) * f64::from(v);
                }
            }
        }
    }

    /// Recomputes each input's scale from the finite values kept (their running sums).
    fn rescale(&mut self) {
        self.since_rescale = 0;
        for (scale, &[n, s, q]) in self.scales.iter_mut().zip(&self.sums) {
            let mean = if n > 0.0 { s / n } else { 0.0 };
            let var = if n > 1.0 {
                (q / n - mean * mean).max(0.0)
            } else {
                0.0
            };
            // Below 1e-10 of the second moment a variance is the sums' rounding (a window
            // of equal values after a varying one), not spread.
            *scale = if var > 1e-12 && var > 1e-10 * q / n.max(1.0) {
                (1.0 / var.sqrt()) as f32
            } else {
                0.0
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(window: usize, k: usize) -> NeighboursConfig {
        NeighboursConfig {
            window,
            k,
            ..NeighboursConfig::default()
        }
    }

    #[test]
    fn the_nearest_records_vote_by_inverse_distance() {
        // One input with values 0, 1, 2, 10 (classes 0, 0, 1, 1); sd over the window:
        // mean 3.25, variance (10.5625 + 5.0625 + 1.5625 + 45.5625) / 4 = 15.6875.
        let mut n = Neighbours::new(2, 1, &config(10, 2));
        for (x, y) in [(0.0, 0.0), (1.0, 0.0), (2.0, 1.0), (10.0, 1.0)] {
            n.learn(&[x], y);
        }
        let sd = 15.6875f32.sqrt();
        // x = 1.4: the nearest are 1 (0.4 away, class 0) and 2 (0.6 away, class 1).
        let (w0, w1) = (1.0 / (0.4 / sd + 1e-3), 1.0 / (0.6 / sd + 1e-3));
        let mut p = [0.0f32; 2];
        assert!(n.predict_class(&[1.4], &mut p));
        let expected = 0.95 * w0 / (w0 + w1) + 0.025;
        assert!((p[0] - expected).abs() < 1e-4, "{p:?} against {expected}");
        assert!((p[0] + p[1] - 1.0).abs() < 1e-6);
        // A regression vote: the same weights on the targets.
        let v = n.predict_value(&[1.4]).unwrap_or(f32::NAN);
        let expected = (w0 * 0.0 + w1 * 1.0) / (w0 + w1);
        assert!((v - expected).abs() < 1e-4, "{v} against {expected}");
        // Wrong shapes vote nothing.
        assert!(!n.predict_class(&[1.0, 2.0], &mut p));
        assert!(!n.predict_class(&[1.0], &mut [0.0; 3]));
        assert_eq!(n.predict_value(&[]), None);
    }

    #[test]
    fn running_scales_match_the_window_summed_afresh() {
        // Window 50 over 1,037 records (wrapping many times between exact sums): input 0
        // drifts upwards with a gap every 7th record, input 1 is constant but for a burst.
        let mut n = Neighbours::new(2, 2, &config(50, 3));
        for i in 0..1_037usize {
            let a = if i % 7 == 0 {
                f32::NAN
            } else {
                1_000.0 + i as f32 * 0.5 + (i % 5) as f32
            };
            let b = if (400..420).contains(&i) {
                9_300.7
            } else {
                2_100.1
            };
            n.learn(&[a, b], (i % 2) as f32);
            if i % 32 == 31 {
                // The same window's values, summed directly, in f64.
                let col = |k: usize| -> Vec<f64> {
                    n.cols[k * 50..k * 50 + n.len()]
                        .iter()
                        .filter(|v| v.is_finite())
                        .map(|&v| f64::from(v))
                        .collect()
                };
                let sd = |v: &[f64]| {
                    let m = v.iter().sum::<f64>() / v.len() as f64;
                    (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64).sqrt()
                };
                let a = sd(&col(0));
                let got = f64::from(n.scales[0]);
                assert!(
                    (got * a - 1.0).abs() < 1e-4,
                    "record {i}: 1/sd {got}, sd {a}"
                );
                // Input 1 has no spread outside the burst's reach: left out, not 1/rounding.
                let b = sd(&col(1));
                if b == 0.0 {
                    assert_eq!(n.scales[1], 0.0, "record {i}");
                } else {
                    assert!(
                        (f64::from(n.scales[1]) * b - 1.0).abs() < 1e-4,
                        "record {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_window_keeps_the_most_recent_records() {
        // Window 3: after 0, 1, 2, 3, 4 (class = value % 2) it holds 2, 3, 4.
        let mut n = Neighbours::new(2, 1, &config(3, 1));
        for i in 0..5 {
            n.learn(&[i as f32], (i % 2) as f32);
        }
        assert_eq!(n.len(), 3);
        let mut p = [0.0f32; 2];
        // 0 and 1 are no longer kept: the nearest to 0.9 is 2 (class 0), to 3.1 it is 3
        // (sd 0.816: 1.1 / 0.816 = 1.35 is under the clip, the others are clipped at 1.5).
        assert!(n.predict_class(&[0.9], &mut p));
        assert!(p[0] > 0.9, "{p:?}");
        assert!(n.predict_class(&[3.1], &mut p));
        assert!(p[1] > 0.9, "{p:?}");
        // A record without a finite target is not kept.
        n.learn(&[1.0], f32::INFINITY);
        assert_eq!(n.len(), 3);
        assert!(n.fits(2, 1) && !n.fits(3, 1) && !n.fits(2, 2));
    }

    #[test]
    fn an_input_without_spread_is_left_out_and_others_are_scaled() {
        // Input 0 spans 0..100 and decides the class; input 1 is constant. Scaled, a
        // difference of 1 in input 0 is small.
        let mut n = Neighbours::new(2, 2, &config(100, 1));
        for i in 0..100 {
            n.learn(&[i as f32, 5.0], if i < 50 { 0.0 } else { 1.0 });
        }
        let mut p = [0.0f32; 2];
        // Input 1 far off changes nothing: it has no spread.
        assert!(n.predict_class(&[80.0, -1000.0], &mut p));
        assert!(p[1] > 0.9, "{p:?}");
        assert!(n.predict_class(&[10.0, 1000.0], &mut p));
        assert!(p[0] > 0.9, "{p:?}");
    }

    #[test]
    fn a_missing_input_is_left_out_of_the_distance() {
        // Input 1 is missing (NaN) in the kept record of class 1 and in the query: input 0
        // alone decides.
        let mut n = Neighbours::new(2, 2, &config(10, 1));
        n.learn(&[0.0, 0.0], 0.0);
        n.learn(&[4.0, f32::NAN], 1.0);
        n.learn(&[1.0, 8.0], 0.0);
        let mut p = [0.0f32; 2];
        assert!(n.predict_class(&[3.5, f32::NAN], &mut p));
        assert!(p[1] > 0.9, "{p:?}");
        assert!(n.predict_class(&[0.2, 0.0], &mut p));
        assert!(p[0] > 0.9, "{p:?}");
    }

    #[test]
    fn bad_config_names_the_key() {
        assert!(NeighboursConfig::default().check().is_ok());
        let key = |c: NeighboursConfig| c.check().err().map(|e| e.0);
        assert_eq!(key(config(0, 1)), Some("neighbours.window"));
        assert_eq!(key(config(10, 11)), Some("neighbours.k"));
        assert_eq!(key(config(10, 0)), Some("neighbours.k"));
        let blend = NeighboursConfig {
            blend: Some(f64::NAN),
            ..NeighboursConfig::default()
        };
        assert_eq!(key(blend), Some("neighbours.blend"));
        let share = NeighboursConfig {
            max_share: 0.0,
            ..NeighboursConfig::default()
        };
        assert_eq!(key(share), Some("neighbours.max_share"));
        let off = NeighboursConfig {
            enabled: false,
            ..NeighboursConfig::default()
        };
        assert_eq!(off.eta(crate::learn::Task::Classification), 0.0);
        let on = NeighboursConfig::default();
        assert_eq!(on.eta(crate::learn::Task::Classification), 0.3);
        assert_eq!(on.eta(crate::learn::Task::Regression), 1.0);
    }
}
