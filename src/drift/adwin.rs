//! ADWIN, adaptive windowing (Bifet & Gavaldà 2007), with an exponential histogram of
//! buckets: a window of the recent stream that is cut whenever two sub-windows have means
//! that differ by more than a Hoeffding-style bound. Parameters and defaults follow River's
//! `drift.ADWIN` (delta 0.002, clock 32, 5 buckets per row, sub-windows of at least 5,
//! grace period 10).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::{DriftState, StreamDetector};

/// One bucket: the sum of its `2^row` values and their sum of squared deviations.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Bucket {
    total: f64,
    variance: f64,
}

/// ADWIN state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Adwin {
    /// Confidence of a cut (default 0.002).
    pub delta: f64,
    /// Cuts are tested every `clock` observations (default 32).
    pub clock: u64,
    /// Buckets per row before two are merged (default 5).
    pub max_buckets: usize,
    /// Smallest sub-window tested (default 5).
    pub min_window_length: u64,
    /// Observations before the first test (default 10).
    pub grace_period: u64,
    /// Start from an empty window at the update after a detection, as River's `ADWIN` does
    /// (default true); when false, keep the window ADWIN cut (the paper's behaviour).
    pub reset_after_drift: bool,
    drifted: bool,
    /// Row `i` holds buckets of `2^i` values, newest first; higher rows are older.
    rows: Vec<VecDeque<Bucket>>,
    width: u64,
    total: f64,
    variance: f64,
    tick: u64,
    detections: u64,
    /// Largest `|mean difference| / bound` of the last test (a cut when > 1).
    last_ratio: f64,
}

impl Default for Adwin {
    fn default() -> Self {
        Adwin::new(0.002)
    }
}

impl Adwin {
    pub fn new(delta: f64) -> Adwin {
        Adwin {
            delta,
            clock: 32,
            max_buckets: 5,
            min_window_length: 5,
            grace_period: 10,
            reset_after_drift: true,
            drifted: false,
            rows: vec![VecDeque::new()],
            width: 0,
            total: 0.0,
            variance: 0.0,
            tick: 0,
            detections: 0,
            last_ratio: 0.0,
        }
    }

    /// Mean of the current window.
    pub fn estimation(&self) -> f64 {
        if self.width == 0 {
            0.0
        } else {
            self.total / self.width as f64
        }
    }

    /// Length of the current window.
    pub fn width(&self) -> u64 {
        self.width
    }

    /// Detections so far.
    pub fn detections(&self) -> u64 {
        self.detections
    }

    fn insert(&mut self, x: f64) {
        self.width += 1;
        if self.width > 1 {
            let w = self.width as f64;
            let prev_mean = self.total / (w - 1.0);
            self.variance += (w - 1.0) / w * (x - prev_mean) * (x - prev_mean);
        }
        self.total += x;
        self.rows[0].push_front(Bucket {
            total: x,
            variance: 0.0,
        });
        let mut row = 0;
        while self.rows[row].len() > self.max_buckets {
            let b1 = self.rows[row].pop_back().expect("row over capacity");
            let b2 = self.rows[row].pop_back().expect("row over capacity");
            let n = (1u64 << row) as f64;
            let d = b1.total / n - b2.total / n;
            let merged = Bucket {
                total: b1.total + b2.total,
                variance: b1.variance + b2.variance + n * n * d * d / (2.0 * n),
            };
            if self.rows.len() == row + 1 {
                self.rows.push(VecDeque::new());
            }
            self.rows[row + 1].push_front(merged);
            row += 1;
        }
    }

    fn delete_oldest(&mut self) {
        let last = self.rows.len() - 1;
        let Some(b) = self.rows[last].pop_back() else {
            return;
        };
        let n = (1u64 << last) as f64;
        self.width -= 1u64 << last;
        self.total -= b.total;
        let w = self.width as f64;
        if self.width > 0 {
            let d = b.total / n - self.total / w;
            self.variance -= b.variance + n * w * d * d / (n + w);
            self.variance = self.variance.max(0.0);
        } else {
            self.variance = 0.0;
            self.total = 0.0;
        }
        if self.rows[last].is_empty() && last > 0 {
            self.rows.pop();
        }
    }

    fn bound(&self, n0: f64, n1: f64) -> f64 {
        let w = self.width as f64;
        let delta_prime = (2.0 * w.ln() / self.delta).ln();
        let m = self.min_window_length as f64;
        let m_recip = 1.0 / (n0 - m + 1.0) + 1.0 / (n1 - m + 1.0);
        let var = self.variance / w;
        (2.0 * m_recip * var * delta_prime).sqrt() + 2.0 / 3.0 * delta_prime * m_recip
    }

    /// Scans the splits from the oldest bucket; drops the oldest bucket while a cut exists.
    fn detect(&mut self) -> bool {
        let mut changed = false;
        loop {
            let (mut n0, mut u0) = (0f64, 0f64);
            let (mut n1, mut u1) = (self.width as f64, self.total);
            let mut cut = false;
            let mut max_ratio = 0f64;
            let rows = self.rows.len();
            'scan: for row in (0..rows).rev() {
                let len = self.rows[row].len();
                for k in (0..len).rev() {
                    // The newest bucket never forms W0 on its own side.
                    if row == 0 && k == 0 {
                        break 'scan;
                    }
                    let b = self.rows[row][k];
                    let n = (1u64 << row) as f64;
                    n0 += n;
                    n1 -= n;
                    u0 += b.total;
                    u1 -= b.total;
                    let m = self.min_window_length as f64;
                    if n0 >= m && n1 >= m {
                        let diff = (u0 / n0 - u1 / n1).abs();
                        let eps = self.bound(n0, n1);
                        if eps > 0.0 {
                            max_ratio = max_ratio.max(diff / eps);
                        }
                        if diff > eps {
                            cut = true;
                            break 'scan;
                        }
                    }
                }
            }
            self.last_ratio = max_ratio;
            if !cut {
                return changed;
            }
            changed = true;
            self.delete_oldest();
        }
    }
}

impl StreamDetector for Adwin {
    fn update(&mut self, x: f64) -> DriftState {
        if std::mem::take(&mut self.drifted) && self.reset_after_drift {
            let detections = self.detections;
            *self = Adwin {
                detections,
                ..Adwin {
                    clock: self.clock,
                    max_buckets: self.max_buckets,
                    min_window_length: self.min_window_length,
                    grace_period: self.grace_period,
                    reset_after_drift: self.reset_after_drift,
                    ..Adwin::new(self.delta)
                }
            };
        }
        self.tick += 1;
        self.insert(x);
        if self.tick % self.clock == 0 && self.width > self.grace_period && self.detect() {
            self.detections += 1;
            self.drifted = true;
            return DriftState::Drift;
        }
        DriftState::Stable
    }

    fn statistic(&self) -> f64 {
        self.last_ratio
    }

    fn threshold(&self) -> f64 {
        1.0
    }

    fn observations(&self) -> u64 {
        self.width
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::{Ddm, PageHinkley};
    use crate::rng::Rng;

    fn bernoulli(rng: &mut Rng, p: f64) -> f64 {
        if rng.unit_f64() < p {
            1.0
        } else {
            0.0
        }
    }

    #[test]
    fn adwin_keeps_the_window_consistent() {
        let mut a = Adwin::default();
        let mut rng = Rng::seeded(1);
        let mut xs = Vec::new();
        for _ in 0..5000 {
            let x = rng.unit_f64();
            xs.push(x);
            a.update(x);
        }
        // Without change the window keeps (almost) everything and its sums are exact.
        let w = a.width() as usize;
        assert!(w > 4900, "window shrank without a change: {w}");
        let tail = &xs[xs.len() - w..];
        let mean = tail.iter().sum::<f64>() / w as f64;
        assert!((a.estimation() - mean).abs() < 1e-9);
        let var: f64 = tail.iter().map(|x| (x - mean).powi(2)).sum();
        assert!(
            (a.variance - var).abs() < 1e-6 * var,
            "{} vs {var}",
            a.variance
        );
    }

    #[test]
    fn detectors_find_an_abrupt_error_rate_change_and_not_noise() {
        for seed in 0..5 {
            let mut rng = Rng::seeded(seed);
            let mut adwin = Adwin::default();
            let mut ph = PageHinkley::default();
            let mut ddm = Ddm::default();
            let (mut a_at, mut p_at, mut d_at) = (Vec::new(), Vec::new(), Vec::new());
            for i in 0..4000 {
                let x = bernoulli(&mut rng, if i < 2000 { 0.1 } else { 0.5 });
                if adwin.update(x) == DriftState::Drift {
                    a_at.push(i);
                }
                if ph.update(x) == DriftState::Drift {
                    p_at.push(i);
                }
                if ddm.update(x) == DriftState::Drift {
                    d_at.push(i);
                }
            }
            // DDM (as published, and as in River) can raise alarms right after its warm start of 30,
            // while p_min and s_min rest on few errors.
            for (name, at, false_alarms) in [
                ("adwin", a_at, 0),
                ("page-hinkley", p_at, 0),
                ("ddm", d_at, 3),
            ] {
                let before = at.iter().filter(|&&i| i < 2000).count();
                assert!(
                    before <= false_alarms,
                    "{name}: {before} alarms before the change (seed {seed}): {at:?}"
                );
                let first = at.iter().find(|&&i| i >= 2000).copied();
                let first =
                    first.unwrap_or_else(|| panic!("{name} missed the change (seed {seed})"));
                assert!(first < 2400, "{name} fired at {first} (seed {seed})");
            }
        }
    }

    #[test]
    fn state_round_trips_through_serde() {
        let mut a = Adwin::default();
        for i in 0..1000 {
            a.update((i % 7) as f64 / 7.0);
        }
        let json = serde_json::to_string(&a).unwrap();
        let mut b: Adwin = serde_json::from_str(&json).unwrap();
        assert_eq!(a, b);
        a.update(0.3);
        b.update(0.3);
        assert_eq!(a, b);
    }
}
