//! Labeled examples as flat row-major buffers, and the splits and batches training uses.

use super::LearnError;
use crate::rng::Rng;

/// `n` examples of `width` features (row-major) with class labels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dataset {
    /// Features, `[n, width]` row-major.
    pub x: Vec<f32>,
    /// Class index per example, `[n]`.
    pub y: Vec<u32>,
    /// Features per example.
    pub width: usize,
}

impl Dataset {
    /// A dataset from rows; every row must have `width` values.
    pub fn new(x: Vec<f32>, y: Vec<u32>, width: usize) -> Result<Dataset, LearnError> {
        if width == 0 || x.len() != y.len() * width {
            return Err(LearnError::Width {
                got: if y.is_empty() {
                    0
                } else {
                    x.len() / y.len().max(1)
                },
                expected: width,
            });
        }
        Ok(Dataset { x, y, width })
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// Row `i`'s features.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.width..(i + 1) * self.width]
    }

    /// The examples at `idx`, in that order.
    pub fn subset(&self, idx: &[usize]) -> Dataset {
        let mut x = Vec::with_capacity(idx.len() * self.width);
        let mut y = Vec::with_capacity(idx.len());
        for &i in idx {
            x.extend_from_slice(self.row(i));
            y.push(self.y[i]);
        }
        Dataset {
            x,
            y,
            width: self.width,
        }
    }

    /// Appends `other`'s examples.
    pub fn extend(&mut self, other: &Dataset) {
        self.x.extend_from_slice(&other.x);
        self.y.extend_from_slice(&other.y);
    }

    /// A seeded shuffle of `0..n`.
    pub fn shuffled_indices(n: usize, rng: &mut Rng) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            idx.swap(i, j);
        }
        idx
    }

    /// Splits into (first, second) with `fraction` of the examples (shuffled) in the first.
    pub fn split(&self, fraction: f64, rng: &mut Rng) -> (Dataset, Dataset) {
        let idx = Self::shuffled_indices(self.len(), rng);
        let cut = ((self.len() as f64) * fraction).round() as usize;
        (self.subset(&idx[..cut]), self.subset(&idx[cut..]))
    }
}
