//! Drift detectors: on the error stream (ADWIN, Page-Hinkley, DDM) and on input features
//! (two-sample Kolmogorov-Smirnov, population stability index). Every detector's state is
//! serde-serialisable so it can be kept in the store and survive a restart.

pub mod adwin;
pub mod ddm;
pub mod eval;
pub mod layers;
pub mod monitor;
pub mod page_hinkley;
pub mod trigger;
pub mod univariate;

pub use adwin::Adwin;
pub use ddm::Ddm;
pub use page_hinkley::PageHinkley;
pub use univariate::{category_shift, ks_two_sample, psi, CategoryShift, KsResult};

use serde::{Deserialize, Serialize};

/// A drift detector: the name of its alarms in the loop state, the retrain report, the
/// `triggers.drift_detectors` config and the `detector` metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Detector {
    /// ADWIN on the error stream.
    Adwin,
    /// Page-Hinkley on the error stream.
    PageHinkley,
    /// DDM on the error stream.
    Ddm,
    /// A feature's KS and PSI against the serving version's reference.
    FeatureKs,
    /// A hidden layer's activation shift.
    LayerShift,
}

impl Detector {
    pub const ALL: [Detector; 5] = [
        Detector::Adwin,
        Detector::PageHinkley,
        Detector::Ddm,
        Detector::FeatureKs,
        Detector::LayerShift,
    ];

    /// The detectors on the error stream, in `monitor::ErrorDetectors`' order.
    pub const ERRORS: [Detector; 3] = [Detector::Adwin, Detector::PageHinkley, Detector::Ddm];

    pub fn as_str(self) -> &'static str {
        match self {
            Detector::Adwin => "adwin",
            Detector::PageHinkley => "page_hinkley",
            Detector::Ddm => "ddm",
            Detector::FeatureKs => "feature_ks",
            Detector::LayerShift => "layer_shift",
        }
    }
}

impl std::fmt::Display for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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

/// Serde for an `f64` that may be infinite (a detector's initial minimum): JSON has no
/// infinity, so non-finite values are written as the strings `"inf"`, `"-inf"`, `"nan"`.
pub(crate) mod nonfinite {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else if v.is_nan() {
            s.serialize_str("nan")
        } else if *v > 0.0 {
            s.serialize_str("inf")
        } else {
            s.serialize_str("-inf")
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Num(f64),
        Str(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        match Repr::deserialize(d)? {
            Repr::Num(v) => Ok(v),
            Repr::Str(s) => match s.as_str() {
                "inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                "nan" => Ok(f64::NAN),
                other => Err(serde::de::Error::custom(format!(
                    "`{other}` is not a number"
                ))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Detector;

    #[test]
    fn a_detector_is_stored_and_labelled_by_its_name() {
        for d in Detector::ALL {
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(json, format!("\"{}\"", d.as_str()));
            assert_eq!(serde_json::from_str::<Detector>(&json).unwrap(), d);
        }
        // Loop state and retrain reports written when alarms were strings still open.
        let alarms: Vec<Detector> =
            serde_json::from_str(r#"["adwin", "page_hinkley", "layer_shift"]"#).unwrap();
        assert_eq!(
            alarms,
            [Detector::Adwin, Detector::PageHinkley, Detector::LayerShift]
        );
        assert!(serde_json::from_str::<Detector>("\"magic\"").is_err());
    }
}
