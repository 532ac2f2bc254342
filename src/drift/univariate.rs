//! Two-sample tests between a reference window and a recent window of one feature:
//! Kolmogorov-Smirnov (statistic and asymptotic p-value) and the population stability index.

/// A KS test result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KsResult {
    /// `sup |F_ref(x) - F_recent(x)|`.
    pub statistic: f64,
    /// Asymptotic p-value (Kolmogorov distribution with the effective sample size).
    pub p_value: f64,
}

/// The two-sample Kolmogorov-Smirnov test. NaNs must not be present (records are finite).
pub fn ks_two_sample(reference: &[f64], recent: &[f64]) -> KsResult {
    if reference.is_empty() || recent.is_empty() {
        return KsResult {
            statistic: 0.0,
            p_value: 1.0,
        };
    }
    let mut a = reference.to_vec();
    let mut b = recent.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / n - j as f64 / m).abs());
    }
    let en = (n * m / (n + m)).sqrt();
    KsResult {
        statistic: d,
        p_value: kolmogorov_q((en + 0.12 + 0.11 / en) * d),
    }
}

/// `Q_KS(lambda) = 2 sum_{k>=1} (-1)^{k-1} exp(-2 k^2 lambda^2)` (Numerical Recipes).
fn kolmogorov_q(lambda: f64) -> f64 {
    if lambda < 1e-3 {
        return 1.0;
    }
    let mut sum = 0.0;
    let mut sign = 1.0;
    let mut prev = 0.0f64;
    for k in 1..=100 {
        let term = sign * 2.0 * (-2.0 * (k * k) as f64 * lambda * lambda).exp();
        sum += term;
        if term.abs() <= 1e-10 * prev.abs() || term.abs() <= 1e-12 * sum.abs() {
            return sum.clamp(0.0, 1.0);
        }
        sign = -sign;
        prev = term;
    }
    1.0
}

/// Population stability index of `recent` against `reference`, with `bins` bins at the
/// reference's quantiles, one bin below the reference's minimum and one above its maximum (new
/// values: a feature that was constant and starts to vary lands there, on both sides), and a
/// floor of 1e-4 on each bin's share.
pub fn psi(reference: &[f64], recent: &[f64], bins: usize) -> f64 {
    if reference.is_empty() || recent.is_empty() || bins < 2 {
        return 0.0;
    }
    let mut sorted = reference.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut edges: Vec<f64> = (1..bins)
        .map(|k| sorted[(k * sorted.len() / bins).min(sorted.len() - 1)])
        .collect();
    edges.dedup();
    let (lo, hi) = (sorted[0], sorted[sorted.len() - 1]);
    let share = |xs: &[f64]| -> Vec<f64> {
        let mut counts = vec![0f64; edges.len() + 3];
        for &x in xs {
            let bin = if x < lo {
                0
            } else if x > hi {
                edges.len() + 2
            } else {
                1 + edges.partition_point(|&e| e < x)
            };
            counts[bin] += 1.0;
        }
        counts
            .iter()
            .map(|c| (c / xs.len() as f64).max(1e-4))
            .collect()
    };
    let (p, q) = (share(reference), share(recent));
    p.iter().zip(&q).map(|(p, q)| (q - p) * (q / p).ln()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn normal(rng: &mut Rng, mean: f64) -> f64 {
        // Box-Muller.
        let (u, v) = (rng.unit_f64().max(1e-12), rng.unit_f64());
        mean + (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    #[test]
    fn ks_matches_a_known_value_and_separates_shifts() {
        // scipy.stats.ks_2samp([1,2,3,4], [3,4,5,6]).statistic == 0.5
        let r = ks_two_sample(&[1.0, 2.0, 3.0, 4.0], &[3.0, 4.0, 5.0, 6.0]);
        assert!((r.statistic - 0.5).abs() < 1e-12);
        let mut rng = Rng::seeded(4);
        // Under the null the p-value is (close to) uniform: about 5% fall under 0.05.
        let mut rejections = 0;
        for _ in 0..400 {
            let a: Vec<f64> = (0..200).map(|_| normal(&mut rng, 0.0)).collect();
            let b: Vec<f64> = (0..200).map(|_| normal(&mut rng, 0.0)).collect();
            if ks_two_sample(&a, &b).p_value < 0.05 {
                rejections += 1;
            }
        }
        assert!(
            (6..=36).contains(&rejections),
            "{rejections} of 400 rejected at 5%"
        );
        let a: Vec<f64> = (0..500).map(|_| normal(&mut rng, 0.0)).collect();
        let same: Vec<f64> = (0..500).map(|_| normal(&mut rng, 0.0)).collect();
        let shifted: Vec<f64> = (0..500).map(|_| normal(&mut rng, 0.5)).collect();
        let d = ks_two_sample(&a, &shifted);
        assert!(d.p_value < 1e-6, "shifted by half a sd: {d:?}");
        assert!(psi(&a, &same, 10) < 0.1);
        assert!(psi(&a, &shifted, 10) > 0.1);
    }

    /// A feature that took two values starts to vary (Elec2's Victoria prices at row 17,425):
    /// values below the old minimum are new, not part of the lowest quantile bin.
    #[test]
    fn psi_sees_new_values_outside_the_reference_range() {
        let reference: Vec<f64> = (0..500).map(|i| [0.0032, 0.0035][i % 2]).collect();
        let mut rng = Rng::seeded(9);
        let recent: Vec<f64> = (0..2000)
            .map(|i| {
                if i % 4 == 0 {
                    0.002 + 0.0011 * rng.unit_f64()
                } else {
                    reference[i % 2]
                }
            })
            .collect();
        // A quarter of the records changed: a major shift (>= 0.25).
        let p = psi(&reference, &recent, 10);
        assert!(p >= 0.25, "{p}");
        assert!(psi(&reference, &reference, 10) < 1e-9);
    }
}
