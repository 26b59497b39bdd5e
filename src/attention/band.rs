//! FMMformer near field: softmax restricted to a band around the diagonal (SPEC C2).
//!
//! ```text
//! i' = i + (seq_len_kv − seq_len_q)                      (bottom-right alignment, C1)
//! bidirectional: keep j with |i' − j| ≤ bandwidth        (2·bandwidth + 1 diagonals)
//! causal:        keep j with i' − bandwidth ≤ j ≤ i'     (bandwidth + 1 keys)
//! D = softmax over the kept keys only;  O_near = D V
//! ```
//!
//! `bandwidth = 0` is the diagonal. The FMMformer code's `diag_size` equals `bandwidth + 1`
//! (its "Band_5" is bandwidth 4).
//!
//! # References
//! Nguyen, Suliafu, Osher, Chen, Wang, "FMMformer: Efficient and Flexible Transformer via
//! Decomposed Near-field and Far-field Attention", NeurIPS 2021 (arXiv 2108.02347), §3.1.

use std::ops::Range;

use ndarray::{Array2, Axis};
use rayon::prelude::*;

use super::softmax::softmax_in_place;
use super::{AttentionError, HeadInput, MatrixBudget};

/// Keys kept for query `i` by a band of `bandwidth` (C2), intersected with the key axis.
/// Empty when the band lies entirely off the key axis (C3).
pub fn band_keys(
    i: usize,
    seq_len_q: usize,
    seq_len_kv: usize,
    bandwidth: usize,
    causal: bool,
) -> Range<usize> {
    let pos = super::aligned_position(i, seq_len_q, seq_len_kv);
    let b = i64::try_from(bandwidth).unwrap_or(i64::MAX);
    let lo = pos.saturating_sub(b).max(0);
    let hi = if causal { pos } else { pos.saturating_add(b) }.min(seq_len_kv as i64 - 1);
    if hi < lo {
        0..0
    } else {
        lo as usize..hi as usize + 1
    }
}

/// Computes one row's band probabilities into `probs` (resized to the band) and returns the
/// band's key range.
fn band_row(
    head: &HeadInput<'_>,
    i: usize,
    bandwidth: usize,
    probs: &mut Vec<f32>,
) -> Range<usize> {
    let keys = band_keys(
        i,
        head.seq_len_q(),
        head.seq_len_kv(),
        bandwidth,
        head.causal,
    );
    probs.clear();
    let q = head.q.row(i);
    probs.extend(keys.clone().map(|j| {
        let k = head.k.row(j);
        q.iter().zip(k.iter()).map(|(a, b)| a * b).sum::<f32>() * head.scale
    }));
    softmax_in_place(probs);
    keys
}

/// Banded (near-field) attention output.
///
/// # Shapes
/// See [`HeadInput`]; returns `[seq_len_q, value_dim]`.
///
/// # Complexity
/// O(Lq·b·(d + d_v)) time with b = 2·bandwidth+1 (bidirectional) or bandwidth+1 (causal);
/// O(b) scratch per worker; no L×L buffer. Parallel over queries; deterministic.
///
/// ```
/// use ndarray::array;
/// use attnscope::attention::{HeadInput, band::band_attention};
/// // E5: Q = K = 0, V = 1..6, causal bandwidth 1 → row 5 averages keys 4 and 5.
/// let z = ndarray::Array2::<f32>::zeros((6, 1));
/// let v = array![[1.0_f32], [2.], [3.], [4.], [5.], [6.]];
/// let head = HeadInput::new(z.view(), z.view(), v.view(), None, true).unwrap();
/// assert_eq!(band_attention(&head, 1)[[5, 0]], 5.5);
/// ```
pub fn band_attention(head: &HeadInput<'_>, bandwidth: usize) -> Array2<f32> {
    let mut out = head.zero_output();
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each_init(Vec::new, |probs, (i, mut o)| {
            let keys = band_row(head, i, bandwidth, probs);
            for (p, j) in probs.iter().zip(keys) {
                o.scaled_add(*p, &head.v.row(j));
            }
        });
    out
}

/// The near field's effective matrix D `[seq_len_q, seq_len_kv]` (zero outside the band).
///
/// # Errors
/// [`AttentionError::OverBudget`] above the C8 budget.
///
/// # Complexity
/// O(Lq·Lk) memory for the result; O(Lq·b·d) time.
pub fn band_matrix(
    head: &HeadInput<'_>,
    bandwidth: usize,
    budget: MatrixBudget,
) -> Result<Array2<f32>, AttentionError> {
    budget.check(head.seq_len_q(), head.seq_len_kv())?;
    let mut m = Array2::<f32>::zeros((head.seq_len_q(), head.seq_len_kv()));
    m.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each_init(Vec::new, |probs, (i, mut row)| {
            let keys = band_row(head, i, bandwidth, probs);
            for (p, j) in probs.iter().zip(keys) {
                row[j] = *p;
            }
        });
    Ok(m)
}

/// Zeroes every entry of `matrix` outside the band of `bandwidth` (C2), keeping values as they
/// are inside it: `band_b(A)` of the near/far decomposition. Uses bottom-right alignment.
pub fn band_part(matrix: &Array2<f32>, bandwidth: usize, causal: bool) -> Array2<f32> {
    let (lq, lk) = matrix.dim();
    let mut out = Array2::<f32>::zeros((lq, lk));
    for i in 0..lq {
        for j in band_keys(i, lq, lk, bandwidth, causal) {
            out[[i, j]] = matrix[[i, j]];
        }
    }
    out
}
