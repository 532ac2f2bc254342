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

/// A two-sample comparison of category frequencies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CategoryShift {
    /// Total variation distance between the two frequency vectors, in [0, 1].
    pub distance: f64,
    /// Chi-square test of homogeneity: the p-value that both samples share one distribution.
    pub p_value: f64,
    /// Population stability index on the frequencies (each share floored at 1e-4).
    pub psi: f64,
}

/// Compares category counts `reference[k]` and `recent[k]` (the same categories, in order).
pub fn category_shift(reference: &[f64], recent: &[f64]) -> CategoryShift {
    let (na, nb) = (reference.iter().sum::<f64>(), recent.iter().sum::<f64>());
    if na <= 0.0 || nb <= 0.0 {
        return CategoryShift {
            distance: 0.0,
            p_value: 1.0,
            psi: 0.0,
        };
    }
    let n = na + nb;
    let (mut chi2, mut used, mut tv, mut psi) = (0.0, 0usize, 0.0, 0.0);
    for (&a, &b) in reference.iter().zip(recent) {
        let (p, q) = (a / na, b / nb);
        tv += (p - q).abs();
        let (pf, qf) = (p.max(1e-4), q.max(1e-4));
        psi += (qf - pf) * (qf / pf).ln();
        let total = a + b;
        if total <= 0.0 {
            continue;
        }
        used += 1;
        let (ea, eb) = (na * total / n, nb * total / n);
        chi2 += (a - ea) * (a - ea) / ea + (b - eb) * (b - eb) / eb;
    }
    let p_value = if used < 2 {
        1.0
    } else {
        chi_square_survival(chi2, (used - 1) as f64)
    };
    CategoryShift {
        distance: tv / 2.0,
        p_value,
        psi,
    }
}

/// `P(X > x)` for X chi-square with `df` degrees of freedom: `Q(df / 2, x / 2)`.
pub fn chi_square_survival(x: f64, df: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    gamma_q(df / 2.0, x / 2.0)
}

/// The regularized upper incomplete gamma function Q(a, x) (Numerical Recipes: the series
/// below a + 1, Lentz's continued fraction above).
fn gamma_q(a: f64, x: f64) -> f64 {
    let ln_front = a * x.ln() - x - ln_gamma(a);
    if x < a + 1.0 {
        let (mut sum, mut term, mut ap) = (1.0 / a, 1.0 / a, a);
        for _ in 0..500 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        (1.0 - sum * ln_front.exp()).clamp(0.0, 1.0)
    } else {
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..500 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-15 {
                break;
            }
        }
        (ln_front.exp() * h).clamp(0.0, 1.0)
    }
}

/// ln Gamma(x) for x > 0 (Lanczos, g = 7, 9 terms).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut acc = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        acc += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + acc.ln()
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

    #[test]
    fn chi_square_matches_tables() {
        // Critical values from standard chi-square tables.
        for (x, df, p) in [
            (3.841, 1.0, 0.05),
            (5.991, 2.0, 0.05),
            (16.919, 9.0, 0.05),
            (6.635, 1.0, 0.01),
            (0.0158, 1.0, 0.90),
            (30.578, 15.0, 0.01),
        ] {
            let got = chi_square_survival(x, df);
            assert!((got - p).abs() < 1e-3, "chi2 {x} df {df}: {got} vs {p}");
        }
    }

    #[test]
    fn category_shift_sees_a_moved_frequency_and_not_noise() {
        let same = category_shift(&[500.0, 300.0, 200.0, 0.0], &[250.0, 150.0, 100.0, 0.0]);
        assert!(same.p_value > 0.99 && same.distance < 1e-9 && same.psi.abs() < 1e-9);
        // A new category takes a fifth of the recent records.
        let moved = category_shift(&[500.0, 300.0, 200.0, 0.0], &[200.0, 120.0, 80.0, 100.0]);
        assert!(moved.p_value < 1e-6, "{moved:?}");
        assert!((moved.distance - 0.2).abs() < 1e-9, "{moved:?}");
        assert!(moved.psi > 0.2, "{moved:?}");
    }
}
