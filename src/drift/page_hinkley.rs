//! Page-Hinkley test (Page 1954) for a change in the mean, in both directions, with a fading
//! factor, as in River's `drift.PageHinkley` (same parameters and defaults).

use serde::{Deserialize, Serialize};

use super::{DriftState, StreamDetector};

/// Page-Hinkley state; resets after a detection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageHinkley {
    /// Observations needed before a detection (default 30).
    pub min_instances: u64,
    /// Tolerated magnitude of change (default 0.005).
    pub delta: f64,
    /// Detection threshold lambda (default 50).
    pub threshold: f64,
    /// Fading factor of the cumulative sums (default 1 - 1e-4).
    pub alpha: f64,
    n: u64,
    mean: f64,
    sum_up: f64,
    #[serde(with = "super::nonfinite")]
    min_up: f64,
    sum_down: f64,
    #[serde(with = "super::nonfinite")]
    max_down: f64,
}

impl Default for PageHinkley {
    fn default() -> Self {
        PageHinkley::new(30, 0.005, 50.0, 1.0 - 1e-4)
    }
}

impl PageHinkley {
    pub fn new(min_instances: u64, delta: f64, threshold: f64, alpha: f64) -> PageHinkley {
        PageHinkley {
            min_instances,
            delta,
            threshold,
            alpha,
            n: 0,
            mean: 0.0,
            sum_up: 0.0,
            min_up: f64::INFINITY,
            sum_down: 0.0,
            max_down: f64::NEG_INFINITY,
        }
    }

    fn reset(&mut self) {
        *self = PageHinkley::new(self.min_instances, self.delta, self.threshold, self.alpha);
    }
}

impl StreamDetector for PageHinkley {
    fn update(&mut self, x: f64) -> DriftState {
        self.n += 1;
        self.mean += (x - self.mean) / self.n as f64;
        let dev = x - self.mean;
        self.sum_up = self.alpha * self.sum_up + dev - self.delta;
        self.min_up = self.min_up.min(self.sum_up);
        self.sum_down = self.alpha * self.sum_down + dev + self.delta;
        self.max_down = self.max_down.max(self.sum_down);
        if self.n >= self.min_instances && self.statistic() > self.threshold {
            self.reset();
            return DriftState::Drift;
        }
        DriftState::Stable
    }

    fn statistic(&self) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        (self.sum_up - self.min_up).max(self.max_down - self.sum_down)
    }

    fn threshold(&self) -> f64 {
        self.threshold
    }

    fn observations(&self) -> u64 {
        self.n
    }
}
