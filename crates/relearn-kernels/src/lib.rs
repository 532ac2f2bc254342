//! The innermost loops of relearn's host arithmetic (`relearn::learn::model::host`) over `f32`
//! slices: `axpy`, `dot`, the hidden activations, `softmax` and burn's Adam update.
//!
//! A crate of its own so that the workspace's debug profile can compile it optimised (see
//! the root `Cargo.toml`): the tests build the daemon unoptimised, and these loops, which
//! run for every record the challenger learns from, would otherwise be tens of times slower
//! there than in a release build. Nothing here allocates or panics on equal-length slices;
//! mismatched lengths stop at the shorter one.

/// `y += a x`.
pub fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

/// `x · y`, in eight independent sums (which the compiler can keep in one vector register).
pub fn dot(x: &[f32], y: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (a, b) in xc.zip(yc) {
        for k in 0..8 {
            acc[k] += a[k] * b[k];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (a, b) in xr.iter().zip(yr) {
        s += a * b;
    }
    s
}

/// `acc_r += min(|x - col_r| s, clip)²` for every row `r`: one input's share of the squared
/// distances of a record (whose value is `x`) to many, that input's values laid out in
/// `col`, scaled by `s` and clipped at `clip`. A row whose value is NaN (missing) adds
/// nothing.
///
/// The nearest-neighbour vote runs this for every input of every record it votes on, on the
/// loop and in requests: on an x86-64 CPU with AVX2 and FMA (detected at run time; the build
/// targets baseline x86-64) the same loop is compiled for eight lanes, about twice as fast
/// (a window of 1,000 records of 54 inputs: 11 us a vote with SSE2, 5 with AVX2, measured
/// 2026-12-06). Both give the same sums: the arithmetic is the same, element by element.
#[inline]
pub fn add_clipped_sq(x: f32, col: &[f32], s: f32, clip: f32, acc: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has AVX2 and FMA, checked just above.
            unsafe { add_clipped_sq_avx2(x, col, s, clip, acc) };
            return;
        }
    }
    add_clipped_sq_portable(x, col, s, clip, acc);
}

/// `add_clipped_sq` compiled for AVX2 and FMA.
///
/// # Safety
///
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn add_clipped_sq_avx2(x: f32, col: &[f32], s: f32, clip: f32, acc: &mut [f32]) {
    add_clipped_sq_portable(x, col, s, clip, acc);
}

/// `add_clipped_sq` for any CPU.
#[inline(always)]
fn add_clipped_sq_portable(x: f32, col: &[f32], s: f32, clip: f32, acc: &mut [f32]) {
    for (a, &c) in acc.iter_mut().zip(col) {
        // `min` would turn a NaN into `clip`: test first.
        let z = ((x - c) * s).abs();
        *a += if z.is_nan() {
            0.0
        } else {
            z.min(clip) * z.min(clip)
        };
    }
}

/// ReLU in place.
pub fn relu(x: &mut [f32]) {
    for v in x.iter_mut() {
        *v = v.max(0.0);
    }
}

/// tanh in place.
pub fn tanh(x: &mut [f32]) {
    for v in x.iter_mut() {
        *v = v.tanh();
    }
}

/// A row of logits into probabilities, in place (burn's `softmax`: `exp(x - max) / sum`).
pub fn softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f32;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in row.iter_mut() {
        *v /= sum;
    }
}

/// Adam's constants (burn's `AdamConfig`: no weight decay, no AMSGrad).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adam {
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
}

impl Adam {
    /// One update of parameters `p` by gradient `g` with moments `m`, `v` at step `time`
    /// (from 1), as burn's `AdaptiveMomentum::transform`: the bias corrections folded into
    /// one factor and the epsilon scaled by the second one.
    ///
    /// On an x86-64 CPU with AVX2 (detected at run time) the loop is compiled for eight
    /// lanes: the challenger's online steps (batches of 8) spend about a quarter of the
    /// ingest thread's time here (a profile of delayed labels through the broker,
    /// 2026-12-07: 26.6% of its samples with the baseline loop, 21.0% with this one; the
    /// square roots and divisions bound it). Same results on every CPU: the same
    /// operations element by element (square root and division are correctly rounded in
    /// every lane; nothing is fused).
    #[inline]
    pub fn update(
        &self,
        p: &mut [f32],
        g: &[f32],
        m: &mut [f32],
        v: &mut [f32],
        time: i32,
        lr: f32,
    ) {
        let step = AdamStep::new(self, time, lr);
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2, checked just above.
                unsafe { adam_avx2(&step, p, g, m, v) };
                return;
            }
        }
        adam_portable(&step, p, g, m, v);
    }
}

/// One Adam update's constants: the betas, the bias corrections folded into one factor, the
/// scaled epsilon and the learning rate.
struct AdamStep {
    b1: f32,
    b2: f32,
    factor: f32,
    eps: f32,
    lr: f32,
}

impl AdamStep {
    /// The constants of `adam`'s update at step `time` (from 1) with learning rate `lr`.
    fn new(adam: &Adam, time: i32, lr: f32) -> AdamStep {
        let c2 = (1.0 - adam.beta_2.powi(time)).sqrt();
        AdamStep {
            b1: adam.beta_1,
            b2: adam.beta_2,
            factor: c2 / (1.0 - adam.beta_1.powi(time)),
            eps: adam.epsilon * c2,
            lr,
        }
    }
}

/// `Adam::update` compiled for AVX2.
///
/// # Safety
///
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn adam_avx2(s: &AdamStep, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    adam_portable(s, p, g, m, v);
}

/// `Adam::update` for any CPU.
#[inline(always)]
fn adam_portable(s: &AdamStep, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    let n = p.len().min(g.len()).min(m.len()).min(v.len());
    let (p, g, m, v) = (&mut p[..n], &g[..n], &mut m[..n], &mut v[..n]);
    for i in 0..n {
        let gi = g[i];
        m[i] = m[i] * s.b1 + gi * (1.0 - s.b1);
        v[i] = v[i] * s.b2 + gi * gi * (1.0 - s.b2);
        p[i] -= s.lr * (m[i] * s.factor / (v[i].sqrt() + s.eps));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adam_gives_the_portable_results_on_every_cpu() {
        // Whichever loop this CPU runs, parameters and moments equal the portable loop's
        // bit for bit over several steps, on a length that is not a multiple of the lanes.
        let adam = Adam {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-5,
        };
        let n = 1003;
        let mut fast = (vec![0.5f32; n], vec![0.0f32; n], vec![0.0f32; n]);
        let mut plain = fast.clone();
        for t in 1..=5 {
            let g: Vec<f32> = (0..n)
                .map(|i| ((i * t) as f32 * 0.37).sin() * (1 + i % 5) as f32)
                .collect();
            adam.update(&mut fast.0, &g, &mut fast.1, &mut fast.2, t as i32, 0.01);
            let step = AdamStep::new(&adam, t as i32, 0.01);
            adam_portable(&step, &mut plain.0, &g, &mut plain.1, &mut plain.2);
        }
        assert_eq!(fast, plain);
        // The first step moves each parameter by about the learning rate against its
        // gradient's sign (m / sqrt(v) is the sign once bias-corrected).
        let mut p = vec![1.0f32, 1.0];
        let (mut m, mut v) = (vec![0.0f32; 2], vec![0.0f32; 2]);
        adam.update(&mut p, &[2.0, -3.0], &mut m, &mut v, 1, 0.01);
        assert!(
            (p[0] - 0.99).abs() < 1e-4 && (p[1] - 1.01).abs() < 1e-4,
            "{p:?}"
        );
    }

    #[test]
    fn add_clipped_sq_adds_each_rows_share() {
        let mut acc = vec![1.0f32; 11];
        let col: Vec<f32> = (0..11).map(|r| r as f32).collect();
        // x = 4, scale 0.5, clip 2: |4 - r| / 2 clipped at 2, squared, plus 1.
        add_clipped_sq(4.0, &col, 0.5, 2.0, &mut acc);
        let expected: Vec<f32> = (0..11)
            .map(|r| {
                let z = ((4.0 - r as f32) * 0.5f32).abs().min(2.0);
                1.0 + z * z
            })
            .collect();
        assert_eq!(acc, expected);
        assert_eq!(acc[0], 5.0);
        assert_eq!(acc[10], 5.0);
        // A missing value adds nothing.
        let mut acc = [0.0f32; 2];
        add_clipped_sq(1.0, &[f32::NAN, 3.0], 1.0, 5.0, &mut acc);
        assert_eq!(acc, [0.0, 4.0]);
    }

    #[test]
    fn add_clipped_sq_gives_the_portable_sums_on_every_cpu() {
        // Whichever loop this CPU runs, the sums equal the portable loop's bit for bit, on
        // rows that are near, far (clipped), missing and not a multiple of the lanes long.
        let col: Vec<f32> = (0..1003)
            .map(|r| match r % 7 {
                0 => f32::NAN,
                k => (r as f32 * 0.37).sin() * k as f32,
            })
            .collect();
        let mut fast = vec![0.25f32; col.len()];
        let mut plain = fast.clone();
        for (x, s) in [(0.3f32, 1.7f32), (-2.0, 2.0), (5.0, 3.0)] {
            add_clipped_sq(x, &col, s, 1.5, &mut fast);
            add_clipped_sq_portable(x, &col, s, 1.5, &mut plain);
        }
        assert_eq!(fast, plain);
        // Every seventh row is missing: only the starting value.
        assert_eq!(fast[7], 0.25);
        // Row 1 (0.37 sin(0.37)): |0.3 - v| 1.7 is under the clip; -2 and 5 are clipped.
        let v = 0.37f32.sin();
        let z = ((0.3 - v) * 1.7f32).abs();
        assert!(z < 1.5);
        assert_eq!(fast[1], 0.25 + z * z + 2.25 + 2.25);
    }

    #[test]
    fn dot_and_axpy_match_the_plain_sums() {
        let x: Vec<f32> = (0..19).map(|i| i as f32 * 0.5 - 3.0).collect();
        let y: Vec<f32> = (0..19).map(|i| 1.0 - i as f32 * 0.25).collect();
        let plain: f32 = x.iter().zip(&y).map(|(a, b)| a * b).sum();
        assert!(
            (dot(&x, &y) - plain).abs() < 1e-4,
            "{} vs {plain}",
            dot(&x, &y)
        );
        let mut z = y.clone();
        axpy(2.0, &x, &mut z);
        for ((zi, xi), yi) in z.iter().zip(&x).zip(&y) {
            assert_eq!(*zi, yi + 2.0 * xi);
        }
    }

    #[test]
    fn softmax_is_a_distribution_that_keeps_the_order() {
        let mut row = [2.0f32, -1.0, 0.5, 9.0];
        softmax(&mut row);
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6, "{row:?}");
        assert!(
            row[3] > 0.99 && row[0] > row[2] && row[2] > row[1] && row[1] > 0.0,
            "{row:?}"
        );
        // A huge logit does not overflow: the maximum is subtracted first.
        let mut wide = [0.0f32, 900.0];
        softmax(&mut wide);
        assert_eq!(wide, [0.0, 1.0]);
    }

    #[test]
    fn adams_first_step_moves_each_parameter_by_the_learning_rate() {
        // At step 1 the corrected update is g / (|g| + eps): about lr against the sign of g.
        let adam = Adam {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-5,
        };
        let (mut p, g) = (vec![1.0f32, 1.0], vec![0.5f32, -2.0]);
        let (mut m, mut v) = (vec![0.0; 2], vec![0.0; 2]);
        adam.update(&mut p, &g, &mut m, &mut v, 1, 0.01);
        assert!(
            (p[0] - 0.99).abs() < 1e-5 && (p[1] - 1.01).abs() < 1e-5,
            "{p:?}"
        );
    }
}
