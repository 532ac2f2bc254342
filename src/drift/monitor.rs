//! `[drift]` and the detector bank the loop keeps: ADWIN, Page-Hinkley and DDM on the
//! prequential error stream, and the per-feature comparison (KS + PSI) of a recent window
//! against the serving version's reference sample. Pure logic; the state is serde so it lives
//! in the store next to the offsets.

use serde::{Deserialize, Serialize};

use super::{
    category_shift, ks_two_sample, psi, Adwin, Ddm, Detector, DriftState, PageHinkley,
    StreamDetector,
};

/// `[drift]`: windows and thresholds of the detectors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DriftConfig {
    /// Recent records kept (ring in the store): the recent window of the feature and layer
    /// detectors and the training data of a retrain.
    pub window: usize,
    /// Labeled predictions in the windowed prequential accuracy and loss.
    pub accuracy_window: usize,
    /// Records between two feature/layer drift checks.
    pub check_every: u64,
    /// Rows of the training window kept with a version as its feature reference.
    pub reference_rows: usize,
    /// A feature drifts when its KS p-value is under `ks_alpha / features` (Bonferroni) ...
    pub ks_alpha: f64,
    /// ... and its population stability index is at least this (0.25: a major shift).
    pub psi_threshold: f64,
    /// A hidden layer drifts when its standardised activation shift reaches this.
    pub layer_shift_threshold: f64,
    /// ADWIN confidence.
    pub adwin_delta: f64,
    /// Page-Hinkley alarm threshold (lambda) ...
    pub page_hinkley_threshold: f64,
    /// ... and tolerated change (delta).
    pub page_hinkley_delta: f64,
    /// DDM: standard deviations above the minimum error for a drift.
    pub ddm_drift_threshold: f64,
}

impl Default for DriftConfig {
    fn default() -> Self {
        Self {
            window: 2000,
            accuracy_window: 1000,
            check_every: 1000,
            reference_rows: 500,
            ks_alpha: 0.01,
            psi_threshold: 0.25,
            layer_shift_threshold: 1.0,
            adwin_delta: 0.002,
            page_hinkley_threshold: 50.0,
            page_hinkley_delta: 0.005,
            ddm_drift_threshold: 3.0,
        }
    }
}

impl DriftConfig {
    /// Refuses values that cannot work; returns the key at fault and why.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.window < 10 {
            return Err(("drift.window", "must be >= 10".into()));
        }
        if self.accuracy_window == 0 {
            return Err(("drift.accuracy_window", "must be > 0".into()));
        }
        if self.check_every == 0 {
            return Err(("drift.check_every", "must be > 0".into()));
        }
        if self.reference_rows < 10 {
            return Err(("drift.reference_rows", "must be >= 10".into()));
        }
        if !(self.ks_alpha > 0.0 && self.ks_alpha < 1.0) {
            return Err(("drift.ks_alpha", "must be in (0, 1)".into()));
        }
        if !(self.psi_threshold.is_finite() && self.psi_threshold >= 0.0) {
            return Err(("drift.psi_threshold", "must be a number >= 0".into()));
        }
        if !(self.layer_shift_threshold.is_finite() && self.layer_shift_threshold > 0.0) {
            return Err(("drift.layer_shift_threshold", "must be > 0".into()));
        }
        if !(self.adwin_delta > 0.0 && self.adwin_delta < 1.0) {
            return Err(("drift.adwin_delta", "must be in (0, 1)".into()));
        }
        if !(self.page_hinkley_threshold.is_finite() && self.page_hinkley_threshold > 0.0) {
            return Err(("drift.page_hinkley_threshold", "must be > 0".into()));
        }
        if !(self.page_hinkley_delta.is_finite() && self.page_hinkley_delta >= 0.0) {
            return Err(("drift.page_hinkley_delta", "must be >= 0".into()));
        }
        if !(self.ddm_drift_threshold.is_finite() && self.ddm_drift_threshold > 0.0) {
            return Err(("drift.ddm_drift_threshold", "must be > 0".into()));
        }
        Ok(())
    }
}

/// One detector's last reading, for gauges and the status endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    pub statistic: f64,
    pub threshold: f64,
    pub state: DriftState,
    pub detections: u64,
}

/// ADWIN, Page-Hinkley and DDM fed with the same 0/1 error stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetectors {
    adwin: Adwin,
    page_hinkley: PageHinkley,
    ddm: Ddm,
    readings: [Reading; 3],
}

impl ErrorDetectors {
    pub fn new(config: &DriftConfig) -> ErrorDetectors {
        let d = Ddm::default();
        let adwin = Adwin::new(config.adwin_delta);
        let page_hinkley = PageHinkley::new(
            30,
            config.page_hinkley_delta,
            config.page_hinkley_threshold,
            1.0 - 1e-4,
        );
        let ddm = Ddm::new(
            d.warm_start,
            d.warning_threshold,
            config.ddm_drift_threshold,
        );
        let reading = |s: f64, t: f64| Reading {
            statistic: s,
            threshold: t,
            state: DriftState::Stable,
            detections: 0,
        };
        ErrorDetectors {
            readings: [
                reading(adwin.statistic(), adwin.threshold()),
                reading(page_hinkley.statistic(), page_hinkley.threshold()),
                reading(ddm.statistic(), ddm.threshold()),
            ],
            adwin,
            page_hinkley,
            ddm,
        }
    }

    /// Feeds one error (1.0 wrong, 0.0 right); returns the detectors that signalled drift.
    pub fn update(&mut self, error: f64) -> Vec<Detector> {
        let mut fired = Vec::new();
        let dets: [&mut dyn StreamDetector; 3] =
            [&mut self.adwin, &mut self.page_hinkley, &mut self.ddm];
        for (i, d) in dets.into_iter().enumerate() {
            let state = d.update(error);
            let r = &mut self.readings[i];
            r.statistic = d.statistic();
            r.threshold = d.threshold();
            r.state = state;
            if state == DriftState::Drift {
                r.detections += 1;
                fired.push(Detector::ERRORS[i]);
            }
        }
        fired
    }

    /// The last reading of each detector, named.
    pub fn readings(&self) -> impl Iterator<Item = (Detector, Reading)> + '_ {
        Detector::ERRORS.into_iter().zip(self.readings)
    }
}

/// One feature's comparison of the recent window with the reference.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FeatureDrift {
    pub ks_statistic: f64,
    pub ks_p_value: f64,
    pub psi: f64,
    /// p-value under the Bonferroni-corrected alpha and PSI at least the threshold.
    pub drifted: bool,
}

/// Model inputs whose drift is tested together: one numeric input, or the one-hot block of a
/// categorical field (`len` inputs from `start`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputGroup {
    Numeric(usize),
    Categorical { start: usize, len: usize },
}

/// Compares every feature (columns of row-major `[rows, width]` data) of `recent` with
/// `reference`, each column on its own.
pub fn feature_drift(
    reference: &[f32],
    recent: &[f32],
    width: usize,
    config: &DriftConfig,
) -> Vec<FeatureDrift> {
    let groups: Vec<InputGroup> = (0..width).map(InputGroup::Numeric).collect();
    grouped_drift(reference, recent, width, &groups, config)
}

/// Compares each group of inputs of `recent` with `reference`. A numeric input: the
/// two-sample KS test and PSI on its values. A categorical block: the chi-square test of
/// homogeneity on its category frequencies (the block's set input, or none set for a missing
/// value), reported as `ks_p_value`, with the total variation distance between the two
/// frequency vectors as `ks_statistic` and PSI on the frequencies. A group drifts when its
/// p-value is under `ks_alpha / groups` (Bonferroni) and its PSI reaches `psi_threshold`.
pub fn grouped_drift(
    reference: &[f32],
    recent: &[f32],
    width: usize,
    groups: &[InputGroup],
    config: &DriftConfig,
) -> Vec<FeatureDrift> {
    if width == 0 || groups.is_empty() {
        return Vec::new();
    }
    let alpha = config.ks_alpha / groups.len() as f64;
    // A missing value (NaN) is an atom below every value: a change in a feature's missing
    // rate moves its CDF at the bottom (KS) and its below-minimum bin (PSI).
    let column = |x: &[f32], j: usize| -> Vec<f64> {
        x.chunks_exact(width)
            .map(|r| {
                if r[j].is_nan() {
                    f64::NEG_INFINITY
                } else {
                    f64::from(r[j])
                }
            })
            .collect()
    };
    // Category counts of a block: one per input, the last for "none set".
    let counts = |x: &[f32], start: usize, len: usize| -> Vec<f64> {
        let mut c = vec![0f64; len + 1];
        for r in x.chunks_exact(width) {
            match r[start..start + len].iter().position(|&v| v > 0.5) {
                Some(k) => c[k] += 1.0,
                None => c[len] += 1.0,
            }
        }
        c
    };
    groups
        .iter()
        .map(|g| match *g {
            InputGroup::Numeric(j) => {
                let (a, b) = (column(reference, j), column(recent, j));
                let ks = ks_two_sample(&a, &b);
                let p = psi(&a, &b, 10);
                FeatureDrift {
                    ks_statistic: ks.statistic,
                    ks_p_value: ks.p_value,
                    psi: p,
                    drifted: ks.p_value < alpha && p >= config.psi_threshold,
                }
            }
            InputGroup::Categorical { start, len } => {
                let (a, b) = (counts(reference, start, len), counts(recent, start, len));
                let c = category_shift(&a, &b);
                FeatureDrift {
                    ks_statistic: c.distance,
                    ks_p_value: c.p_value,
                    psi: c.psi,
                    drifted: c.p_value < alpha && c.psi >= config.psi_threshold,
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn a_constant_feature_that_starts_moving_drifts_others_do_not() {
        let mut rng = Rng::seeded(3);
        let c = DriftConfig::default();
        // Two features: the first is noise in both windows, the second constant then noise
        // (Elec2's vicprice before and after the Victoria data starts).
        let mut reference = Vec::new();
        let mut recent = Vec::new();
        for _ in 0..500 {
            reference.extend([rng.unit_f64() as f32, 0.0035]);
            recent.extend([rng.unit_f64() as f32, rng.unit_f64() as f32]);
        }
        let d = feature_drift(&reference, &recent, 2, &c);
        assert!(!d[0].drifted, "{:?}", d[0]);
        assert!(d[1].drifted, "{:?}", d[1]);
        assert!(d[1].ks_p_value < 1e-6 && d[1].psi > 1.0, "{:?}", d[1]);
    }

    #[test]
    fn error_detectors_report_a_jump_in_the_error_rate() {
        let c = DriftConfig::default();
        let mut d = ErrorDetectors::new(&c);
        let mut rng = Rng::seeded(5);
        let mut fired = std::collections::BTreeSet::new();
        for i in 0..4000 {
            let p = if i < 2000 { 0.1 } else { 0.6 };
            let e = if rng.unit_f64() < p { 1.0 } else { 0.0 };
            let f = d.update(e);
            if i < 2000 {
                assert!(!f.contains(&Detector::Adwin), "false ADWIN alarm at {i}");
            }
            fired.extend(f);
        }
        assert!(
            fired.contains(&Detector::Adwin) && fired.contains(&Detector::Ddm),
            "{fired:?}"
        );
        let r: Vec<_> = d.readings().collect();
        assert_eq!(r.len(), 3);
        assert!(r.iter().all(|(_, r)| r.threshold.is_finite()));
        let json = serde_json::to_string(&d).unwrap();
        let back: ErrorDetectors = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d, "state survives a store round trip");
    }

    #[test]
    fn fresh_detectors_with_infinite_minima_survive_json() {
        let d = ErrorDetectors::new(&DriftConfig::default());
        let json = serde_json::to_string(&d).unwrap();
        let back: ErrorDetectors = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn config_check_names_the_key() {
        assert!(DriftConfig::default().check().is_ok());
        let c = DriftConfig {
            ks_alpha: 0.0,
            ..DriftConfig::default()
        };
        assert_eq!(c.check().unwrap_err().0, "drift.ks_alpha");
    }
}
