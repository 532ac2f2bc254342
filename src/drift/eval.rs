//! Scoring change-point detections against human annotations, as in van den Burg & Williams
//! (2020), "An Evaluation of Change Point Detection Algorithms" (TCPDBench's `f_measure`):
//! every set includes index 0, a detection within `margin` of an annotation is a true
//! positive (each detection used once), precision is against the union of annotators and
//! recall is the mean over annotators.

use std::collections::BTreeSet;

/// Annotations that `predictions` recover within `margin` (each prediction used once).
fn true_positives(truth: &BTreeSet<usize>, predictions: &BTreeSet<usize>, margin: usize) -> usize {
    let mut left = predictions.clone();
    let mut tp = 0;
    for &tau in truth {
        let best = left
            .iter()
            .filter(|&&x| x.abs_diff(tau) <= margin)
            .min_by_key(|&&x| (x.abs_diff(tau), x))
            .copied();
        if let Some(x) = best {
            left.remove(&x);
            tp += 1;
        }
    }
    tp
}

/// Precision, recall and F1 of `predictions` against per-annotator change points.
pub fn f_measure(
    annotators: &[Vec<usize>],
    predictions: &[usize],
    margin: usize,
) -> (f64, f64, f64) {
    let mut x: BTreeSet<usize> = predictions.iter().copied().collect();
    x.insert(0);
    let tks: Vec<BTreeSet<usize>> = annotators
        .iter()
        .map(|a| a.iter().copied().chain(std::iter::once(0)).collect())
        .collect();
    let tstar: BTreeSet<usize> = tks.iter().flatten().copied().collect();
    let precision = true_positives(&tstar, &x, margin) as f64 / x.len() as f64;
    let recall = if tks.is_empty() {
        0.0
    } else {
        tks.iter()
            .map(|t| true_positives(t, &x, margin) as f64 / t.len() as f64)
            .sum::<f64>()
            / tks.len() as f64
    };
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    (precision, recall, f1)
}

/// Mean delay from each annotated change point (union of annotators, 0 excluded) to the first
/// detection at or after it and before the next one, and the fraction of change points
/// detected that way.
pub fn detection_delay(annotators: &[Vec<usize>], predictions: &[usize]) -> (Option<f64>, f64) {
    let truth: Vec<usize> = annotators
        .iter()
        .flatten()
        .copied()
        .filter(|&t| t > 0)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if truth.is_empty() {
        return (None, 0.0);
    }
    let mut delays = Vec::new();
    for (i, &tau) in truth.iter().enumerate() {
        let next = truth.get(i + 1).copied().unwrap_or(usize::MAX);
        if let Some(&x) = predictions.iter().find(|&&x| x >= tau && x < next) {
            delays.push((x - tau) as f64);
        }
    }
    let found = delays.len() as f64 / truth.len() as f64;
    let mean = (!delays.is_empty()).then(|| delays.iter().sum::<f64>() / delays.len() as f64);
    (mean, found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The examples in TCPDBench's metrics.py docstrings (values checked against its
    /// Python implementation).
    #[test]
    fn matches_tcpdbench_examples() {
        let ann = vec![vec![10, 20], vec![11, 20], vec![10], vec![0, 5]];
        let (_, _, f) = f_measure(&ann, &[10, 20], 5);
        assert!((f - 1.0).abs() < 1e-12, "{f}");
        let ann = vec![vec![], vec![10], vec![50]];
        let (_, _, f) = f_measure(&ann, &[10], 5);
        assert!((f - 0.9090909090909091).abs() < 1e-12, "{f}");
        let (_, _, f) = f_measure(&ann, &[], 5);
        assert!((f - 0.8).abs() < 1e-12, "{f}");
        let (d, found) = detection_delay(&[vec![100, 200]], &[103, 260]);
        assert_eq!(d, Some(31.5));
        assert_eq!(found, 1.0);
    }
}
