//! Real data for the daemon's tests and the bench: the sklearn digits (embedded) and the
//! drift constructed from them (a pixel permutation). The bench's MNIST tasks are in the
//! `relearn-bench` crate.

use std::io::Read;

use crate::learn::Dataset;
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

impl DatasetError {
    /// `name` could not be read, because of `reason`.
    pub fn new(name: &str, reason: impl std::fmt::Display) -> DatasetError {
        DatasetError {
            name: name.to_string(),
            reason: reason.to_string(),
        }
    }
}

fn fail(name: &str, reason: impl std::fmt::Display) -> DatasetError {
    DatasetError::new(name, reason)
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
