//! The labels' recent distribution: the last member of the served output (`[prior]`), the
//! class frequencies (or a numeric target's mean) discounted by [`DECAY`] per labeled record.
//! [`PriorMember`] passes it through output tracking of its own (`prior.tracking`), whose
//! linear correction makes this member an online logistic (or linear) regression on the
//! standardised inputs wherever that predicts better than the frequencies: the learner
//! River's users compare with first, kept beside the networks.
//!
//! Where the inputs say nothing about the label (a stock's next return, a rare event among
//! noise), every learner fits noise and predicts worse than the label's own distribution:
//! River's running mean beats its ARF and AMF on S&P 500 returns. The served output weighs
//! what the networks and the neighbours say against this prior by their recent losses, as
//! the challenger is weighed against the champion, so the prior takes over only where it
//! predicts better. It starts with the weight [`START_WEIGHT`], not an even share: on a young
//! stream the networks are still learning and the prior would cost them their first records.

use serde::{Deserialize, Serialize};

use crate::learn::tracking::{Shift, Tracker};
use crate::record::{Label, Output};

/// Per labeled record, the weight the prior keeps of what it counted before (a memory of
/// about 1,000 records, so that it follows a change in the labels' distribution).
pub const DECAY: f64 = 0.999;

/// The prior's weight in the served output before any label was seen; its handicap fades as
/// the blend discounts the losses (to a tenth in about 230 records).
pub const START_WEIGHT: f64 = 0.01;

/// The default `prior.blend` of a regression head. Measured with `relearn eval` (defaults,
/// 2026-12-07): S&P 500 returns (River's bundled `sp500`, a numeric target no input
/// predicts) MAE 0.5747 -> 0.5659 (River's ARF 0.5688, AMF 0.5696, the running mean 0.5612),
/// a normal target beside noise inputs 2.456 -> 2.424; on the four development regression
/// streams within 0.02% of MAE over model seeds 1-4 (PM2.5 and metro traffic), water flow
/// +0.17%, airline passengers +0.01%.
pub const BLEND_REGRESSION: f64 = 0.3;

/// The default `prior.blend` of a classifier, with the member's own tracking
/// (`prior.tracking`, which makes it an online logistic regression where that predicts
/// better than the frequencies). Measured with `relearn eval` (defaults, model seeds 1-4,
/// 2026-12-07), mean accuracy off -> 0.3: bank marketing with its string columns 0.9113 ->
/// 0.9122 (higher with every seed; River's `StandardScaler | LogisticRegression` 0.9116),
/// rotating hyperplane 0.9255 -> 0.9285, chess 0.7753 -> 0.7783, Waveform 0.8507 -> 0.8522,
/// LED 0.7581 -> 0.7592, SEA 0.8813 -> 0.8821, Elec2, keystroke, Luxembourg and Phishing
/// within 0.04, solar flares 0.8173 -> 0.8161; over 22 classification streams with seed 1
/// +0.014 points on the mean, none lower by more than 0.4 (chess, seed 1). 1 gained less.
/// Without the tracking (the frequencies alone) it cost bank marketing 0.04 points: off
/// then.
pub const BLEND_CLASSIFICATION: f64 = 0.3;

/// `[prior]`: the labels' distribution as a member of the served output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PriorConfig {
    /// Whether the served output blends in the labels' recent distribution.
    pub enabled: bool,
    /// How sharply the rest of the served output and the prior are weighed by their recent
    /// losses (as `challenger.blend`), >= 0; 0: off. Unset: 0.3 ([`BLEND_REGRESSION`],
    /// [`BLEND_CLASSIFICATION`]).
    pub blend: Option<f64>,
    /// The prior's output passes through output tracking of its own (`learn::tracking`:
    /// offsets at several rates and a linear correction on the standardised inputs, the one
    /// with the lowest recent loss served), so that this member is the best of the labels'
    /// frequencies, their recent shifts and an online logistic (or linear) regression on the
    /// inputs. false: the frequencies (or the mean) alone.
    pub tracking: bool,
}

impl Default for PriorConfig {
    fn default() -> Self {
        PriorConfig {
            enabled: true,
            blend: None,
            tracking: true,
        }
    }
}

impl PriorConfig {
    /// The blend's sharpness for a model of `task` (0: off).
    pub fn eta(&self, task: super::Task) -> f64 {
        let defaults = (BLEND_CLASSIFICATION, BLEND_REGRESSION);
        task.blend(self.enabled, self.blend, defaults)
    }

    /// Refuses values that cannot work; returns the key at fault and why.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if !self.blend.is_none_or(|b| b.is_finite() && b >= 0.0) {
            return Err(("prior.blend", "must be a number >= 0".into()));
        }
        Ok(())
    }
}

/// The discounted class counts, or the discounted sum of a numeric target.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prior {
    /// Per class (empty for a numeric target).
    counts: Vec<f64>,
    /// The discounted number of labels counted.
    weight: f64,
    /// The discounted sum of a numeric target.
    sum: f64,
}

impl Prior {
    /// A prior over `classes` classes (0: a numeric target) that has seen no label.
    pub fn new(classes: usize) -> Prior {
        Prior {
            counts: vec![0.0; classes],
            weight: 0.0,
            sum: 0.0,
        }
    }

    /// Whether it has counted a label.
    pub fn is_empty(&self) -> bool {
        self.weight <= 0.0
    }

    /// What it predicts: each class's discounted frequency with one record spread evenly over
    /// the classes (a class not seen yet costs a finite loss), or the target's discounted
    /// mean; None before the first label.
    pub fn output(&self) -> Option<Output> {
        if self.is_empty() {
            return None;
        }
        if self.counts.is_empty() {
            return Some(Output::Value((self.sum / self.weight) as f32));
        }
        let k = self.counts.len() as f64;
        let total = self.weight + 1.0;
        let probabilities: Vec<f32> = self
            .counts
            .iter()
            .map(|&n| ((n + 1.0 / k) / total) as f32)
            .collect();
        let class = super::model::argmax(&probabilities) as u32;
        Some(Output::Class {
            class,
            probabilities,
        })
    }

    /// Counts one label (a class out of range or a label of the other task is ignored).
    pub fn learn(&mut self, label: Label) {
        match label {
            Label::Class(c) if (c as usize) < self.counts.len() => {
                for n in &mut self.counts {
                    *n *= DECAY;
                }
                self.counts[c as usize] += 1.0;
            }
            Label::Value(v) if self.counts.is_empty() && v.is_finite() => {
                self.sum = DECAY * self.sum + f64::from(v);
            }
            _ => return,
        }
        self.weight = DECAY * self.weight + 1.0;
    }
}

/// The served output's last member: the prior, with its own output tracking
/// (`prior.tracking`).
#[derive(Debug, Clone, PartialEq)]
pub struct PriorMember {
    prior: Prior,
    tracker: Option<Tracker>,
}

impl PriorMember {
    /// A member over `classes` classes (0: a numeric target) whose tracking (when
    /// `tracking`) reads `inputs` inputs; nothing learned yet.
    pub fn new(classes: usize, inputs: usize, tracking: bool) -> PriorMember {
        PriorMember {
            prior: Prior::new(classes),
            tracker: tracking.then(|| Tracker::new(classes.max(1), inputs)),
        }
    }

    /// One record, test then train: what the member predicts for the record's inputs `x`
    /// (None before the first label), then it learns from `label`. `sd` is the target's
    /// standard deviation (the tracking's offsets are in its units).
    pub fn step(&mut self, x: &[f32], label: Option<Label>, sd: f32) -> Option<Output> {
        let out = self.prior.output().map(|mut out| {
            if let Some(t) = self.tracker.as_mut() {
                t.track_output(&mut out, x, label, sd);
            }
            out
        });
        if let Some(l) = label {
            self.prior.learn(l);
        }
        out
    }

    /// What the member predicts before its tracking's correction (None before the first
    /// label).
    pub fn output(&self) -> Option<Output> {
        self.prior.output()
    }

    /// The correction its tracking serves now (None: `prior.tracking` off).
    pub fn shift(&self) -> Option<Shift> {
        self.tracker.as_ref().map(Tracker::shift)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probabilities(p: &Prior) -> Vec<f32> {
        match p.output() {
            Some(Output::Class { probabilities, .. }) => probabilities,
            other => panic!("not a class output: {other:?}"),
        }
    }

    #[test]
    fn class_frequencies_with_one_record_spread_evenly() {
        let mut p = Prior::new(2);
        assert_eq!(p.output(), None);
        p.learn(Label::Class(1));
        // 1 of class 1, plus half a record each, over 2: 0.25 and 0.75.
        let q = probabilities(&p);
        assert!(
            (q[0] - 0.25).abs() < 1e-6 && (q[1] - 0.75).abs() < 1e-6,
            "{q:?}"
        );
        for _ in 0..3 {
            p.learn(Label::Class(0));
        }
        let Some(Output::Class { class, .. }) = p.output() else {
            panic!("a class output");
        };
        assert_eq!(class, 0);
        // A class index out of range and a numeric label are not counted.
        let before = p.clone();
        p.learn(Label::Class(2));
        p.learn(Label::Value(3.0));
        assert_eq!(p, before);
    }

    #[test]
    fn old_labels_fade() {
        // 2,000 of class 0, then 3,000 of class 1: with a memory of about 1,000 records the
        // prior has moved to class 1. Class 0 counts (1 - 0.999^2000) / 0.001 = 864.9, times
        // 0.999^3000 = 0.0497 after: 43.0; class 1 (1 - 0.999^3000) / 0.001 = 950.3; so
        // class 1 has (950.3 + 0.5) / (993.3 + 1) = 0.956.
        let mut p = Prior::new(2);
        for _ in 0..2000 {
            p.learn(Label::Class(0));
        }
        for _ in 0..3000 {
            p.learn(Label::Class(1));
        }
        let q = probabilities(&p);
        assert!((q[1] - 0.956).abs() < 0.001, "{q:?}");
    }

    #[test]
    fn a_numeric_target_gives_its_discounted_mean() {
        let mut p = Prior::new(0);
        for v in [2.0, 4.0] {
            p.learn(Label::Value(v));
        }
        // (0.999 * 2 + 4) / (0.999 + 1)
        let Some(Output::Value(v)) = p.output() else {
            panic!("a value");
        };
        assert!((v - 5.998 / 1.999).abs() < 1e-5, "{v}");
        p.learn(Label::Class(0));
        assert!(matches!(p.output(), Some(Output::Value(w)) if w == v));
    }

    #[test]
    fn the_tracked_member_learns_a_linear_concept_the_frequencies_cannot() {
        // Class 1 when the first input is above 0 (its sign alternates with a second,
        // irrelevant input): the frequencies stay near 0.5, the tracking's linear
        // correction (an online logistic regression) learns the boundary.
        let (mut tracked, mut bare) = (PriorMember::new(2, 2, true), PriorMember::new(2, 2, false));
        let (mut hits_tracked, mut hits_bare) = (0, 0);
        for i in 0..2000u32 {
            let a = ((i * 7919) % 200) as f32 / 100.0 - 1.0;
            let x = [a, (i % 3) as f32];
            let y = u32::from(a > 0.0);
            let label = Some(Label::Class(y));
            let hit =
                |o: Option<Output>| matches!(o, Some(Output::Class { class, .. }) if class == y);
            if i >= 1000 {
                hits_tracked += u32::from(hit(tracked.step(&x, label, 1.0)));
                hits_bare += u32::from(hit(bare.step(&x, label, 1.0)));
            } else {
                tracked.step(&x, label, 1.0);
                bare.step(&x, label, 1.0);
            }
        }
        assert!(hits_tracked >= 950, "tracked: {hits_tracked} of 1000");
        assert!(hits_bare <= 600, "frequencies alone: {hits_bare} of 1000");
        // Its correction is what /v1/predict applies: the same class for the same inputs.
        let shift = tracked.shift().expect("tracking on");
        let Some(Output::Class {
            mut probabilities, ..
        }) = tracked.output()
        else {
            panic!("a class output");
        };
        shift.adjust_probs(&mut probabilities, &[0.8, 1.0]);
        assert!(probabilities[1] > 0.9, "{probabilities:?}");
        assert!(bare.shift().is_none());
    }

    #[test]
    fn the_tracked_member_follows_a_numeric_target_of_the_inputs() {
        // y = 3 x: the running mean's error stays near the target's spread, the tracked
        // member's falls well under it.
        let mut m = PriorMember::new(0, 1, true);
        let mut err = 0.0;
        for i in 0..3000u32 {
            let x = ((i * 7919) % 100) as f32 / 50.0 - 1.0;
            let y = 3.0 * x;
            let out = m.step(&[x], Some(Label::Value(y)), 1.7);
            if i >= 2000 {
                let Some(Output::Value(v)) = out else {
                    panic!("a value");
                };
                err += (v - y).abs() / 1000.0;
            }
        }
        // The mean's MAE here is 1.5 (|3x| over x uniform in [-1, 1]).
        assert!(err < 0.3, "MAE {err}");
    }

    #[test]
    fn the_blend_is_a_number_at_least_zero_and_on_by_default() {
        use crate::learn::Task;
        let default = PriorConfig::default();
        assert!(default.check().is_ok());
        assert_eq!(default.eta(Task::Regression), 0.3);
        assert_eq!(default.eta(Task::Classification), 0.3);
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            let c = PriorConfig {
                blend: Some(bad),
                ..PriorConfig::default()
            };
            assert_eq!(c.check().unwrap_err().0, "prior.blend");
        }
        let set = PriorConfig {
            blend: Some(1.0),
            ..PriorConfig::default()
        };
        assert_eq!(set.eta(Task::Classification), 1.0);
        let off = PriorConfig {
            enabled: false,
            ..set
        };
        assert_eq!(off.eta(Task::Regression), 0.0);
    }
}
