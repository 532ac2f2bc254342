//! The bench's task constructions from real data: MNIST from its IDX files, rotated images,
//! remapped labels, class subsets (the embedded digits and pixel permutations are
//! `relearn::datasets`, which the daemon's own tests use too).

use std::io::Read;
use std::path::Path;

use relearn::datasets::DatasetError;
use relearn::learn::{Dataset, Targets};

/// MNIST from the original IDX files in `dir` (`train-*` or `t10k-*`, gzip), at most `limit`
/// images, pixels scaled to [0, 1].
pub fn mnist(dir: &Path, train: bool, limit: usize) -> Result<Dataset, DatasetError> {
    let prefix = if train { "train" } else { "t10k" };
    let read = |name: &str| -> Result<Vec<u8>, DatasetError> {
        let path = dir.join(name);
        let f = std::fs::File::open(&path)
            .map_err(|e| DatasetError::new(&path.display().to_string(), e))?;
        let mut buf = Vec::new();
        flate2::read::GzDecoder::new(f)
            .read_to_end(&mut buf)
            .map_err(|e| DatasetError::new(&path.display().to_string(), e))?;
        Ok(buf)
    };
    let images = read(&format!("{prefix}-images-idx3-ubyte.gz"))?;
    let labels = read(&format!("{prefix}-labels-idx1-ubyte.gz"))?;
    let be = |b: &[u8], at: usize| -> usize {
        u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
    };
    if images.len() < 16 || be(&images, 0) != 2051 || labels.len() < 8 || be(&labels, 0) != 2049 {
        return Err(DatasetError::new("mnist", "bad IDX magic numbers"));
    }
    let (n, rows, cols) = (be(&images, 4), be(&images, 8), be(&images, 12));
    if be(&labels, 4) != n || images.len() != 16 + n * rows * cols || labels.len() != 8 + n {
        return Err(DatasetError::new("mnist", "IDX sizes do not match"));
    }
    let n = n.min(limit);
    let width = rows * cols;
    let x = images[16..16 + n * width]
        .iter()
        .map(|&p| p as f32 / 255.0)
        .collect();
    let y = labels[8..8 + n].iter().map(|&l| l as u32).collect();
    Dataset::new(x, y, width).map_err(|e| DatasetError::new("mnist", e))
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
