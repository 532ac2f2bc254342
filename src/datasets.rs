//! Real datasets for tests, benchmarks and the demo: the sklearn digits (embedded), MNIST from
//! IDX files, and the constructed drifts made from them (pixel permutations).

use std::io::Read;
use std::path::Path;

use crate::learn::{Dataset, Targets};
use crate::rng::Rng;

/// The UCI/sklearn digits: 1,797 8x8 images, pixels 0..16, gzip CSV (64 pixels, label).
pub const EMBEDDED_DIGITS: &[u8] = include_bytes!("../data/digits.csv.gz");

/// A dataset file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("dataset {name}: {reason}")]
pub struct DatasetError {
    pub name: String,
    pub reason: String,
}

fn fail(name: &str, reason: impl std::fmt::Display) -> DatasetError {
    DatasetError {
        name: name.to_string(),
        reason: reason.to_string(),
    }
}

/// The embedded digits dataset (64 features, 10 classes), in file order.
pub fn digits() -> Result<Dataset, DatasetError> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(EMBEDDED_DIGITS)
        .read_to_string(&mut text)
        .map_err(|e| fail("digits", e))?;
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for (n, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != 65 {
            return Err(fail(
                "digits",
                format!("line {} has {} fields", n + 1, fields.len()),
            ));
        }
        for f in &fields[..64] {
            x.push(f.trim().parse::<f32>().map_err(|e| fail("digits", e))?);
        }
        y.push(
            fields[64]
                .trim()
                .parse::<f32>()
                .map_err(|e| fail("digits", e))? as u32,
        );
    }
    Dataset::new(x, y, 64).map_err(|e| fail("digits", e))
}

/// MNIST from the original IDX files in `dir` (`train-*` or `t10k-*`, gzip), at most `limit`
/// images, pixels scaled to [0, 1].
pub fn mnist(dir: &Path, train: bool, limit: usize) -> Result<Dataset, DatasetError> {
    let prefix = if train { "train" } else { "t10k" };
    let read = |name: &str| -> Result<Vec<u8>, DatasetError> {
        let path = dir.join(name);
        let f = std::fs::File::open(&path).map_err(|e| fail(&path.display().to_string(), e))?;
        let mut buf = Vec::new();
        flate2::read::GzDecoder::new(f)
            .read_to_end(&mut buf)
            .map_err(|e| fail(&path.display().to_string(), e))?;
        Ok(buf)
    };
    let images = read(&format!("{prefix}-images-idx3-ubyte.gz"))?;
    let labels = read(&format!("{prefix}-labels-idx1-ubyte.gz"))?;
    let be = |b: &[u8], at: usize| -> usize {
        u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
    };
    if images.len() < 16 || be(&images, 0) != 2051 || labels.len() < 8 || be(&labels, 0) != 2049 {
        return Err(fail("mnist", "bad IDX magic numbers"));
    }
    let (n, rows, cols) = (be(&images, 4), be(&images, 8), be(&images, 12));
    if be(&labels, 4) != n || images.len() != 16 + n * rows * cols || labels.len() != 8 + n {
        return Err(fail("mnist", "IDX sizes do not match"));
    }
    let n = n.min(limit);
    let width = rows * cols;
    let x = images[16..16 + n * width]
        .iter()
        .map(|&p| p as f32 / 255.0)
        .collect();
    let y = labels[8..8 + n].iter().map(|&l| l as u32).collect();
    Dataset::new(x, y, width).map_err(|e| fail("mnist", e))
}

/// A fixed random permutation of the features (the "permuted" task construction).
pub fn permutation(width: usize, seed: u64) -> Vec<usize> {
    let mut rng = Rng::seeded(seed);
    Dataset::shuffled_indices(width, &mut rng)
}

/// `data` with its features reordered by `perm`.
pub fn permute(data: &Dataset, perm: &[usize]) -> Dataset {
    let mut x = Vec::with_capacity(data.x.len());
    for i in 0..data.len() {
        let row = data.row(i);
        x.extend(perm.iter().map(|&j| row[j]));
    }
    Dataset {
        x,
        y: data.y.clone(),
        width: data.width,
    }
}

/// Two domain-incremental tasks from the digits: A is the digits, B the same digits with a
/// fixed pixel permutation; each split 70/30 into train and test with `split_seed`.
#[derive(Debug, Clone)]
pub struct PermutedDigits {
    pub a_train: Dataset,
    pub a_test: Dataset,
    pub b_train: Dataset,
    pub b_test: Dataset,
}

/// Builds [`PermutedDigits`] (`perm_seed` picks the permutation).
pub fn permuted_digits(split_seed: u64, perm_seed: u64) -> Result<PermutedDigits, DatasetError> {
    let (a_train, a_test) = digits()?.split(0.7, &mut Rng::seeded(split_seed));
    let perm = permutation(64, perm_seed);
    Ok(PermutedDigits {
        b_train: permute(&a_train, &perm),
        b_test: permute(&a_test, &perm),
        a_train,
        a_test,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_load() {
        let d = digits().unwrap();
        assert_eq!(d.len(), 1797);
        assert_eq!(d.width, 64);
        assert!(d.y.classes().unwrap().iter().all(|&y| y < 10));
        assert!(d.x.iter().all(|&v| (0.0..=16.0).contains(&v)));
    }

    #[test]
    fn permutation_is_a_bijection() {
        let p = permutation(64, 3);
        let mut s = p.clone();
        s.sort();
        assert_eq!(s, (0..64).collect::<Vec<_>>());
        let d = digits().unwrap();
        let q = permute(&d, &p);
        assert_eq!(q.row(5)[0], d.row(5)[p[0]]);
    }
}

/// Every image of `data` (square, `side x side`, row-major) rotated by `degrees` about its
/// centre, bilinear, zero outside (the "rotated" task construction).
pub fn rotate(data: &Dataset, side: usize, degrees: f64) -> Dataset {
    let (s, c) = degrees.to_radians().sin_cos();
    let mid = (side as f64 - 1.0) / 2.0;
    let mut x = Vec::with_capacity(data.x.len());
    for img in data.x.chunks_exact(side * side) {
        for r in 0..side {
            for col in 0..side {
                // Inverse mapping: where in the source this output pixel comes from.
                let (dy, dx) = (r as f64 - mid, col as f64 - mid);
                let sy = c * dy + s * dx + mid;
                let sx = -s * dy + c * dx + mid;
                let (y0, x0) = (sy.floor(), sx.floor());
                let (fy, fx) = (sy - y0, sx - x0);
                let px = |yy: f64, xx: f64| -> f64 {
                    if yy < 0.0 || xx < 0.0 || yy >= side as f64 || xx >= side as f64 {
                        0.0
                    } else {
                        f64::from(img[yy as usize * side + xx as usize])
                    }
                };
                let v = px(y0, x0) * (1.0 - fy) * (1.0 - fx)
                    + px(y0, x0 + 1.0) * (1.0 - fy) * fx
                    + px(y0 + 1.0, x0) * fy * (1.0 - fx)
                    + px(y0 + 1.0, x0 + 1.0) * fy * fx;
                x.push(v as f32);
            }
        }
    }
    Dataset {
        x,
        y: data.y.clone(),
        width: data.width,
    }
}

/// `data` with every label `y` replaced by `map[y]` (the "remapped" task construction: the
/// inputs stay, the concept moves). Labels outside `map` keep their value.
pub fn relabel(data: &Dataset, map: &[u32]) -> Dataset {
    Dataset {
        x: data.x.clone(),
        y: match &data.y {
            Targets::Classes(c) => Targets::Classes(
                c.iter()
                    .map(|&y| map.get(y as usize).copied().unwrap_or(y))
                    .collect(),
            ),
            values => values.clone(),
        },
        width: data.width,
    }
}

/// The rows of `data` whose label is in `classes`.
pub fn with_classes(data: &Dataset, classes: &[u32]) -> Dataset {
    let idx: Vec<usize> = (0..data.len())
        .filter(|&i| data.y.classes().is_some_and(|c| classes.contains(&c[i])))
        .collect();
    data.subset(&idx)
}

#[cfg(test)]
mod rotate_tests {
    use super::*;

    #[test]
    fn rotation_by_zero_is_identity_and_by_90_moves_pixels() {
        // 3x3 image with one bright pixel at row 0, column 1 (top middle).
        let mut x = vec![0f32; 9];
        x[1] = 1.0;
        let d = Dataset::new(x.clone(), vec![0], 9).unwrap();
        assert_eq!(rotate(&d, 3, 0.0).x, x);
        let r = rotate(&d, 3, 90.0).x;
        let hot: Vec<usize> = (0..9).filter(|&i| r[i] > 0.5).collect();
        assert_eq!(hot.len(), 1, "{r:?}");
        assert!(
            hot[0] == 3 || hot[0] == 5,
            "moved to the middle row's side: {r:?}"
        );
        let total: f32 = r.iter().sum();
        assert!((total - 1.0).abs() < 1e-5);
    }
}
