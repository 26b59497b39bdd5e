//! Matrix → RGBA heatmap, with block pooling for matrices larger than a texture (E15).
//!
//! Row 0 (query 0) is the top row of the image; column 0 (key 0) the left column.

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use super::colormap::ColorScale;

/// How a k×k block of cells becomes one pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PoolMode {
    /// The entry of largest magnitude (its sign kept): never hides a peak.
    Max,
    /// The mean of the block's cells.
    Mean,
}

impl PoolMode {
    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            PoolMode::Max => "block max",
            PoolMode::Mean => "block mean",
        }
    }
}

/// A pooled matrix: `data[r, c]` summarises the `factor × factor` block at `(r·factor, c·factor)`
/// (edge blocks are smaller).
#[derive(Debug, Clone)]
pub struct Pooled {
    /// Pooled values `[⌈rows/factor⌉, ⌈cols/factor⌉]`.
    pub data: Array2<f32>,
    /// Block side (1 = exact cells).
    pub factor: usize,
    /// Pooling used.
    pub mode: PoolMode,
}

impl Pooled {
    /// "pooled k×k (block max)" when pooled, `None` for exact cells.
    pub fn label(&self) -> Option<String> {
        (self.factor > 1).then(|| format!("pooled {0}×{0} ({1})", self.factor, self.mode.name()))
    }
}

/// Pools `matrix` so that neither side exceeds `max_side` (≥ 1). A NaN in a block makes the
/// pooled cell NaN (it is drawn as non-finite, never hidden).
///
/// # Complexity
/// O(rows·cols) time, O(rows·cols/factor²) memory.
///
/// ```
/// use attnscope::render::{pool, PoolMode};
/// let a = ndarray::array![[1.0_f32, 0.0], [0.0, 1.0]];
/// assert_eq!(pool(a.view(), 1, PoolMode::Mean).data[[0, 0]], 0.5);
/// assert_eq!(pool(a.view(), 1, PoolMode::Max).data[[0, 0]], 1.0);
/// ```
pub fn pool(matrix: ArrayView2<'_, f32>, max_side: usize, mode: PoolMode) -> Pooled {
    let (rows, cols) = matrix.dim();
    pool_with_factor(matrix, pool_factor(rows, cols, max_side), mode)
}

/// The block side [`pool`] uses for a `rows × cols` matrix and `max_side`: the smallest k with
/// `⌈max(rows, cols)/k⌉ ≤ max_side` (1 = exact cells; `max_side = 0` is treated as 1).
pub fn pool_factor(rows: usize, cols: usize, max_side: usize) -> usize {
    rows.max(cols).div_ceil(max_side.max(1)).max(1)
}

/// Pools `matrix` in `factor × factor` blocks (`factor = 0` is treated as 1). Row tiles whose
/// first row is a multiple of `factor` pool to exactly the matching rows of the whole matrix's
/// pooled image (the tiled path of [`crate::analysis::pooled`] relies on this).
///
/// # Complexity
/// O(rows·cols) time, O(rows·cols/factor²) memory.
pub fn pool_with_factor(matrix: ArrayView2<'_, f32>, factor: usize, mode: PoolMode) -> Pooled {
    let (rows, cols) = matrix.dim();
    let factor = factor.max(1);
    if factor == 1 {
        return Pooled {
            data: matrix.to_owned(),
            factor,
            mode,
        };
    }
    let (pr, pc) = (rows.div_ceil(factor), cols.div_ceil(factor));
    let mut data = Array2::<f32>::zeros((pr, pc));
    for r in 0..pr {
        for c in 0..pc {
            let block = matrix.slice(ndarray::s![
                r * factor..((r + 1) * factor).min(rows),
                c * factor..((c + 1) * factor).min(cols)
            ]);
            data[[r, c]] = match mode {
                PoolMode::Max => block.iter().fold(0.0_f32, |m, &x| {
                    if x.is_nan() || m.is_nan() {
                        f32::NAN
                    } else if x.abs() > m.abs() {
                        x
                    } else {
                        m
                    }
                }),
                PoolMode::Mean => {
                    let n = block.len().max(1) as f64;
                    (block.iter().map(|&x| f64::from(x)).sum::<f64>() / n) as f32
                }
            };
        }
    }
    Pooled { data, factor, mode }
}

/// An RGBA8 image, row-major, `width × height × 4` bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Heatmap {
    /// Pixels across (= matrix columns).
    pub width: usize,
    /// Pixels down (= matrix rows).
    pub height: usize,
    /// RGBA bytes.
    pub rgba: Vec<u8>,
}

/// Colours every cell of `matrix` with `scale` (one pixel per cell; non-finite cells grey).
pub fn render(matrix: ArrayView2<'_, f32>, scale: &ColorScale) -> Heatmap {
    let (height, width) = matrix.dim();
    let mut rgba = Vec::with_capacity(width * height * 4);
    for &x in matrix.iter() {
        let [r, g, b] = scale.rgb(x);
        rgba.extend_from_slice(&[r, g, b, 255]);
    }
    Heatmap {
        width,
        height,
        rgba,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e15_pooling_identity_at_half_resolution() {
        let a = ndarray::Array2::<f32>::eye(4);
        let mean = pool(a.view(), 2, PoolMode::Mean);
        assert_eq!(mean.factor, 2);
        assert_eq!(mean.data, ndarray::array![[0.5, 0.0], [0.0, 0.5]]);
        let max = pool(a.view(), 2, PoolMode::Max);
        assert_eq!(max.data, ndarray::array![[1.0, 0.0], [0.0, 1.0]]);
        assert_eq!(max.label().unwrap(), "pooled 2×2 (block max)");
    }

    #[test]
    fn e15_pooling_odd_length_keeps_edge_blocks() {
        let a = ndarray::Array2::<f32>::ones((2049, 2049));
        let p = pool(a.view(), 1024, PoolMode::Mean);
        assert_eq!(p.factor, 3);
        assert_eq!(p.data.dim(), (683, 683));
        assert!(p.data.iter().all(|&x| (x - 1.0).abs() < 1e-6));
    }

    #[test]
    fn signed_max_pool_keeps_the_sign_of_the_peak() {
        let a = ndarray::array![[0.1_f32, -0.9], [0.2, 0.3]];
        assert_eq!(pool(a.view(), 1, PoolMode::Max).data[[0, 0]], -0.9);
        let n = ndarray::array![[0.1_f32, f32::NAN], [0.2, 0.3]];
        assert!(pool(n.view(), 1, PoolMode::Max).data[[0, 0]].is_nan());
    }
}
