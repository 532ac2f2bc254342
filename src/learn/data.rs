//! Labeled examples as flat row-major buffers, and the splits and batches training uses.

use super::LearnError;
use crate::rng::Rng;

/// What each example is labeled with: a class index (classification) or a number
/// (regression, in the target's own unit).
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// Class index per example, `[n]`.
    Classes(Vec<u32>),
    /// Target value per example, `[n]`.
    Values(Vec<f32>),
}

impl Default for Targets {
    fn default() -> Self {
        Targets::Classes(Vec::new())
    }
}

impl Targets {
    pub fn len(&self) -> usize {
        match self {
            Targets::Classes(v) => v.len(),
            Targets::Values(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// No targets, of the same kind.
    pub fn empty_like(&self) -> Targets {
        match self {
            Targets::Classes(_) => Targets::Classes(Vec::new()),
            Targets::Values(_) => Targets::Values(Vec::new()),
        }
    }

    /// Appends target `i` of `from` (of the same kind; a target of the other kind is skipped,
    /// which `Dataset` never mixes).
    pub fn push_from(&mut self, from: &Targets, i: usize) {
        match (self, from) {
            (Targets::Classes(a), Targets::Classes(b)) => a.push(b[i]),
            (Targets::Values(a), Targets::Values(b)) => a.push(b[i]),
            _ => debug_assert!(false, "mixed target kinds"),
        }
    }

    /// Targets `range`, as a new list.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Targets {
        match self {
            Targets::Classes(v) => Targets::Classes(v[range].to_vec()),
            Targets::Values(v) => Targets::Values(v[range].to_vec()),
        }
    }

    /// Target `i` as 32 bits (the class index, or the value's bits), for hashing and exact
    /// comparison.
    pub fn bits(&self, i: usize) -> u32 {
        match self {
            Targets::Classes(v) => v[i],
            Targets::Values(v) => v[i].to_bits(),
        }
    }

    /// The class indices, for a classification dataset.
    pub fn classes(&self) -> Option<&[u32]> {
        match self {
            Targets::Classes(v) => Some(v),
            Targets::Values(_) => None,
        }
    }

    /// The values, for a regression dataset.
    pub fn values(&self) -> Option<&[f32]> {
        match self {
            Targets::Values(v) => Some(v),
            Targets::Classes(_) => None,
        }
    }

    /// Removes every target, keeping the kind.
    pub fn clear(&mut self) {
        match self {
            Targets::Classes(v) => v.clear(),
            Targets::Values(v) => v.clear(),
        }
    }
}

/// `n` examples of `width` features (row-major) with their targets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dataset {
    /// Features, `[n, width]` row-major.
    pub x: Vec<f32>,
    /// Target per example, `[n]`.
    pub y: Targets,
    /// Features per example.
    pub width: usize,
}

impl Dataset {
    /// A classification dataset from rows; every row must have `width` values.
    pub fn new(x: Vec<f32>, y: Vec<u32>, width: usize) -> Result<Dataset, LearnError> {
        Dataset::with_targets(x, Targets::Classes(y), width)
    }

    /// A dataset with any kind of targets.
    pub fn with_targets(x: Vec<f32>, y: Targets, width: usize) -> Result<Dataset, LearnError> {
        let n = y.len();
        if width == 0 || x.len() != n * width {
            return Err(LearnError::Width {
                got: if n == 0 { 0 } else { x.len() / n.max(1) },
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
        let mut y = self.y.empty_like();
        for &i in idx {
            x.extend_from_slice(self.row(i));
            y.push_from(&self.y, i);
        }
        Dataset {
            x,
            y,
            width: self.width,
        }
    }

    /// Appends `other`'s examples (of the same target kind).
    pub fn extend(&mut self, other: &Dataset) {
        self.x.extend_from_slice(&other.x);
        for i in 0..other.len() {
            self.y.push_from(&other.y, i);
        }
    }

    /// Removes every example, keeping the target kind.
    pub fn clear(&mut self) {
        self.x.clear();
        self.y.clear();
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
