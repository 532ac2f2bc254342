//! DDM, the drift detection method of Gama et al. (2004), on a stream of 0/1 errors: a warning
//! when `p + s >= p_min + 2 s_min`, a drift (and reset) at `p_min + 3 s_min`.

use serde::{Deserialize, Serialize};

use super::{DriftState, StreamDetector};

/// DDM state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ddm {
    /// Errors seen before testing (default 30).
    pub warm_start: u64,
    /// Warning level in standard deviations (default 2).
    pub warning_threshold: f64,
    /// Drift level in standard deviations (default 3).
    pub drift_threshold: f64,
    n: u64,
    p: f64,
    #[serde(with = "super::nonfinite")]
    p_min: f64,
    #[serde(with = "super::nonfinite")]
    s_min: f64,
    #[serde(with = "super::nonfinite")]
    ps_min: f64,
}

impl Default for Ddm {
    fn default() -> Self {
        Ddm::new(30, 2.0, 3.0)
    }
}

impl Ddm {
    pub fn new(warm_start: u64, warning_threshold: f64, drift_threshold: f64) -> Ddm {
        Ddm {
            warm_start,
            warning_threshold,
            drift_threshold,
            n: 0,
            p: 0.0,
            p_min: f64::INFINITY,
            s_min: f64::INFINITY,
            ps_min: f64::INFINITY,
        }
    }

    fn s(&self) -> f64 {
        (self.p * (1.0 - self.p) / self.n.max(1) as f64).sqrt()
    }
}

impl StreamDetector for Ddm {
    /// `x` is 1 for an error, 0 for a hit.
    fn update(&mut self, x: f64) -> DriftState {
        self.n += 1;
        self.p += (x - self.p) / self.n as f64;
        let s = self.s();
        if self.n < self.warm_start {
            return DriftState::Stable;
        }
        if self.p + s <= self.ps_min {
            self.p_min = self.p;
            self.s_min = s;
            self.ps_min = self.p + s;
        }
        if self.p + s > self.p_min + self.drift_threshold * self.s_min {
            *self = Ddm::new(
                self.warm_start,
                self.warning_threshold,
                self.drift_threshold,
            );
            DriftState::Drift
        } else if self.p + s > self.p_min + self.warning_threshold * self.s_min {
            DriftState::Warning
        } else {
            DriftState::Stable
        }
    }

    /// `(p + s - p_min) / s_min`: how many minimal standard deviations the error rate rose.
    fn statistic(&self) -> f64 {
        if !self.s_min.is_finite() || self.s_min == 0.0 {
            return 0.0;
        }
        (self.p + self.s() - self.p_min) / self.s_min
    }

    fn threshold(&self) -> f64 {
        self.drift_threshold
    }

    fn observations(&self) -> u64 {
        self.n
    }
}
