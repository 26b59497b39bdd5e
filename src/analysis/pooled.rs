//! The near/far decomposition of very long inputs (C8, E15) without an L×L matrix.
//!
//! Above the budget, exact attention A is computed in row tiles (each tile is a
//! `rows × seq_len_kv` slab from [`full_attention`] on the tile's queries), split into
//! `band_b(A)` and `F = A − band_b(A)` with the C2 band rule ([`band_keys`]), and pooled on
//! the fly to at most `max_side` cells per side (block max or block mean,
//! [`pool_with_factor`]). Only one tile and the pooled images are alive at a time.
//!
//! The far field's SVD (`F_r`, reconstruction, signed error) needs the whole matrix and is not
//! computed here; the caller says so to the user.
//!
//! # References
//! Nguyen et al., "FMMformer", NeurIPS 2021 (arXiv 2108.02347), §2 (near/far split).

use std::sync::atomic::{AtomicBool, Ordering};

use ndarray::{Array2, Axis, s};

use super::AnalysisError;
use super::metrics::ErrorValue;
use crate::attention::band::band_keys;
use crate::attention::dense::{QUERY_BLOCK, full_attention};
use crate::attention::{HeadInput, MatrixBudget};
use crate::render::{PoolMode, Pooled, pool_factor, pool_with_factor};

/// Bytes of exact attention one tile may hold (three slabs of this size are alive: A, near, far).
pub const TILE_BYTES: usize = 16 * 1024 * 1024;

/// Cancellation and progress of a long computation.
#[derive(Clone, Copy, Default)]
pub struct TileControl<'a> {
    /// Checked before every tile; when set the computation stops with
    /// [`AnalysisError::Cancelled`].
    pub cancel: Option<&'a AtomicBool>,
    /// Called after every tile with the fraction of query rows done, in `[0, 1]`.
    pub progress: Option<&'a dyn Fn(f32)>,
}

impl std::fmt::Debug for TileControl<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TileControl")
            .field("cancel", &self.cancel)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl TileControl<'_> {
    fn cancelled(&self) -> bool {
        self.cancel.is_some_and(|c| c.load(Ordering::Relaxed))
    }
    fn report(&self, fraction: f32) {
        if let Some(p) = self.progress {
            p(fraction.clamp(0.0, 1.0));
        }
    }
}

/// The pooled near/far decomposition of one head.
#[derive(Debug, Clone)]
pub struct PooledDecomposition {
    /// Exact attention A, pooled.
    pub full: Pooled,
    /// `band_b(A)`, pooled.
    pub near: Pooled,
    /// `F = A − band_b(A)`, pooled.
    pub far: Pooled,
    /// Exact output `A·V`, `[seq_len_q, value_dim]`.
    pub output: Array2<f32>,
    /// Number of queries.
    pub seq_len_q: usize,
    /// Number of keys.
    pub seq_len_kv: usize,
    /// Bandwidth b (C2).
    pub bandwidth: usize,
    /// `Σ band_b(A) / Σ A`.
    pub band_mass: f64,
    /// `‖band_b(A) − A‖_F / ‖A‖_F = ‖F‖_F / ‖A‖_F`.
    pub band_only_error: ErrorValue,
    /// Rows that see no key (C3).
    pub empty_rows: Vec<usize>,
    /// What was not computed and why.
    pub notes: Vec<String>,
}

/// Rows per tile: a multiple of both the pooling factor (so every pooled block lies in one
/// tile) and the dense kernel's query block, holding about [`TILE_BYTES`] of A.
fn tile_rows(factor: usize, seq_len_kv: usize) -> usize {
    let unit = lcm(factor.max(1), QUERY_BLOCK);
    let unit_bytes = unit.saturating_mul(seq_len_kv.max(1)).saturating_mul(4);
    unit.saturating_mul((TILE_BYTES / unit_bytes.max(1)).max(1))
}

fn lcm(a: usize, b: usize) -> usize {
    let (mut x, mut y) = (a, b);
    while y != 0 {
        (x, y) = (y, x % y);
    }
    (a / x.max(1)).saturating_mul(b)
}

/// Decomposes the exact attention of `head` at `bandwidth` tile by tile, pooling A, `band_b(A)`
/// and F to at most `max_side` cells per side with `mode`. The result equals pooling the
/// materialised matrices (up to f32 rounding of the dense kernel on a different row tiling).
///
/// # Errors
/// [`AnalysisError::Cancelled`] when `control.cancel` is set;
/// [`AnalysisError::Attention`] from the dense kernel.
///
/// # Complexity
/// O(Lq·Lk·(d + d_v)) time like exact attention; O(tile·Lk + (L/k)²) memory where the tile
/// holds about [`TILE_BYTES`] and k is the pooling factor. Deterministic for a fixed input.
///
/// ```
/// use attnscope::analysis::pooled::{TileControl, pooled_decomposition};
/// use attnscope::attention::HeadInput;
/// use attnscope::render::PoolMode;
/// let q = ndarray::Array2::<f32>::zeros((4, 2));
/// let head = HeadInput::new(q.view(), q.view(), q.view(), None, false).unwrap();
/// // Uniform attention 1/4 everywhere; bandwidth 0 keeps the diagonal: band mass 1/4.
/// let d = pooled_decomposition(&head, 0, 2, PoolMode::Mean, TileControl::default()).unwrap();
/// assert_eq!(d.full.factor, 2);
/// assert!((d.full.data[[0, 0]] - 0.25).abs() < 1e-7);
/// assert!((d.band_mass - 0.25).abs() < 1e-7);
/// ```
pub fn pooled_decomposition(
    head: &HeadInput<'_>,
    bandwidth: usize,
    max_side: usize,
    mode: PoolMode,
    control: TileControl<'_>,
) -> Result<PooledDecomposition, AnalysisError> {
    let (lq, lk, dv) = (head.seq_len_q(), head.seq_len_kv(), head.value_dim());
    let factor = pool_factor(lq, lk, max_side);
    let (pr, pc) = (lq.div_ceil(factor), lk.div_ceil(factor));
    let mut full = Array2::<f32>::zeros((pr, pc));
    let mut near = Array2::<f32>::zeros((pr, pc));
    let mut far = Array2::<f32>::zeros((pr, pc));
    let mut output = Array2::<f32>::zeros((lq, dv));
    let (mut total, mut in_band, mut sq_full, mut sq_far) = (0.0_f64, 0.0_f64, 0.0_f64, 0.0_f64);
    let mut non_finite = false;
    let step = tile_rows(factor, lk);
    let unlimited = MatrixBudget { bytes: usize::MAX };
    let mut i0 = 0;
    control.report(0.0);
    while i0 < lq {
        if control.cancelled() {
            return Err(AnalysisError::Cancelled);
        }
        let i1 = (i0 + step).min(lq);
        let rows = i1 - i0;
        // Keys any query of the tile may see: all when bidirectional; causal (C1) query i sees
        // keys ≤ i + Lk − Lq, so the tile's last query bounds them. The sub-head keeps the
        // global alignment: its offset kv_end − rows equals i0 + Lk − Lq.
        let kv_end = if head.causal {
            (i1 as i64 + lk as i64 - lq as i64).clamp(0, lk as i64) as usize
        } else {
            lk
        };
        let mut a = Array2::<f32>::zeros((rows, lk));
        if kv_end > 0 && lk > 0 {
            let sub = HeadInput {
                q: head.q.slice(s![i0..i1, ..]),
                k: head.k.slice(s![..kv_end, ..]),
                v: head.v.slice(s![..kv_end, ..]),
                scale: head.scale,
                causal: head.causal,
            };
            let (out, m) = full_attention(&sub, true, unlimited)?;
            output.slice_mut(s![i0..i1, ..]).assign(&out);
            if let Some(m) = m {
                a.slice_mut(s![.., ..kv_end]).assign(&m);
            }
        }
        let mut n = Array2::<f32>::zeros((rows, lk));
        for (t, (a_row, mut n_row)) in a
            .axis_iter(Axis(0))
            .zip(n.axis_iter_mut(Axis(0)))
            .enumerate()
        {
            for j in band_keys(i0 + t, lq, lk, bandwidth, head.causal) {
                n_row[j] = a_row[j];
            }
        }
        let f = &a - &n;
        for ((&x, &y), &z) in a.iter().zip(n.iter()).zip(f.iter()) {
            non_finite |= !x.is_finite();
            total += f64::from(x);
            in_band += f64::from(y);
            sq_full += f64::from(x) * f64::from(x);
            sq_far += f64::from(z) * f64::from(z);
        }
        let (p0, p1) = (i0 / factor, i1.div_ceil(factor));
        for (dst, src) in [(&mut full, &a), (&mut near, &n), (&mut far, &f)] {
            let pooled = pool_with_factor(src.view(), factor, mode);
            dst.slice_mut(s![p0..p1, ..]).assign(&pooled.data);
        }
        i0 = i1;
        control.report(i0 as f32 / lq.max(1) as f32);
    }
    control.report(1.0);
    let band_only_error = if non_finite {
        ErrorValue::NonFinite
    } else if sq_full > 0.0 {
        ErrorValue::Relative((sq_far / sq_full).sqrt())
    } else {
        ErrorValue::Absolute(sq_far.sqrt())
    };
    let empty_rows = (0..lq)
        .filter(|&i| head.visible_keys(i).is_empty())
        .collect();
    let wrap = |data| Pooled { data, factor, mode };
    Ok(PooledDecomposition {
        full: wrap(full),
        near: wrap(near),
        far: wrap(far),
        output,
        seq_len_q: lq,
        seq_len_kv: lk,
        bandwidth,
        band_mass: if total > 0.0 { in_band / total } else { 0.0 },
        band_only_error,
        empty_rows,
        notes: vec![format!(
            "{lq}×{lk} exceeds the matrix budget: A, near and far field computed in row tiles and \
             pooled {factor}×{factor} ({}); the far field's rank-r SVD, the reconstruction and \
             the signed error need the full matrix and are not computed (raise the budget or \
             shorten the input)",
            mode.name()
        )],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_rows_are_multiples_of_factor_and_query_block() {
        for factor in [1, 2, 3, 9, 64, 100] {
            let t = tile_rows(factor, 16385);
            assert_eq!(t % factor, 0, "factor {factor}");
            assert_eq!(t % QUERY_BLOCK, 0, "factor {factor}");
        }
        assert_eq!(lcm(9, 64), 576);
    }

    #[test]
    fn cancelled_before_the_first_tile() {
        let q = Array2::<f32>::zeros((5, 2));
        let head = HeadInput::new(q.view(), q.view(), q.view(), None, true).unwrap();
        let cancel = AtomicBool::new(true);
        let control = TileControl {
            cancel: Some(&cancel),
            progress: None,
        };
        let r = pooled_decomposition(&head, 1, 4, PoolMode::Max, control);
        assert!(matches!(r, Err(AnalysisError::Cancelled)));
    }
}
