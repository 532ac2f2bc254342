//! Drift detectors: on the error stream (ADWIN, Page-Hinkley, DDM) and on input features
//! (two-sample Kolmogorov-Smirnov, population stability index). Every detector's state is
//! serde-serialisable so it can be kept in the store and survive a restart.

pub mod adwin;
pub mod ddm;
pub mod eval;
pub mod layers;
pub mod page_hinkley;
pub mod trigger;
pub mod univariate;

pub use adwin::Adwin;
pub use ddm::Ddm;
pub use page_hinkley::PageHinkley;
pub use univariate::{ks_two_sample, psi, KsResult};

use serde::{Deserialize, Serialize};

/// A detector's verdict after an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriftState {
    Stable,
    Warning,
    Drift,
}

impl DriftState {
    /// A number for gauges: 0 stable, 1 warning, 2 drift.
    pub fn level(self) -> i64 {
        match self {
            DriftState::Stable => 0,
            DriftState::Warning => 1,
            DriftState::Drift => 2,
        }
    }
}

/// A streaming detector of change in a univariate stream.
pub trait StreamDetector {
    /// Adds one observation and returns the state after it. After `Drift` the detector has
    /// already adapted (dropped the old data or reset).
    fn update(&mut self, x: f64) -> DriftState;
    /// The current test statistic.
    fn statistic(&self) -> f64;
    /// The threshold the statistic is compared with.
    fn threshold(&self) -> f64;
    /// Observations since the last reset.
    fn observations(&self) -> u64;
}
