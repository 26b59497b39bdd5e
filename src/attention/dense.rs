//! Exact softmax attention: the slow, obviously-correct oracle every test compares against,
//! and the fast row-blocked path used by the product.
//!
//! ```text
//! S = scale · Q Kᵀ            [seq_len_q, seq_len_kv]
//! A = softmax_row(S ⊙ mask)   masked entries removed (C1, C3, C6)
//! O = A V                     [seq_len_q, value_dim]
//! ```
//!
//! # References
//! Vaswani et al., "Attention Is All You Need", NeurIPS 2017 (arXiv 1706.03762), eq. (1).

use ndarray::{Array2, ArrayViewMut2, Axis, s};
use rayon::prelude::*;

use super::softmax::softmax_in_place;
use super::{AttentionError, HeadInput, MatrixBudget};

/// Query rows per block in the fast path (keeps a 64 × seq_len_kv score block in L2).
pub const QUERY_BLOCK: usize = 64;

/// The dense oracle: exact attention computed row by row in f64, returning
/// `(output [seq_len_q, value_dim], attention [seq_len_q, seq_len_kv])`.
///
/// A query that sees no key (C1/C3) gets a zero output row and a zero attention row; a NaN in a
/// masked-out key or value never reaches a visible row (C6). Always materialises the full
/// matrix: meant for tests and small inputs.
///
/// # Complexity
/// O(Lq·Lk·(d + d_v)) time, O(Lq·Lk) memory. Single-threaded, deterministic.
///
/// ```
/// use ndarray::array;
/// use attnscope::attention::{HeadInput, dense::dense_reference};
/// let (q, k, v) = (array![[0.0_f32]], array![[0.0_f32], [0.0]], array![[1.0_f32], [3.0]]);
/// let head = HeadInput::new(q.view(), k.view(), v.view(), None, false).unwrap();
/// let (out, attn) = dense_reference(&head);
/// assert_eq!(out[[0, 0]], 2.0);
/// assert_eq!(attn[[0, 1]], 0.5);
/// ```
pub fn dense_reference(head: &HeadInput<'_>) -> (Array2<f32>, Array2<f32>) {
    let (lq, lk, dv) = (head.seq_len_q(), head.seq_len_kv(), head.value_dim());
    let mut out = Array2::<f32>::zeros((lq, dv));
    let mut attn = Array2::<f32>::zeros((lq, lk));
    let scale = f64::from(head.scale);
    for i in 0..lq {
        let vis = head.visible_keys(i);
        if vis.is_empty() {
            continue;
        }
        let logits: Vec<f64> = vis
            .clone()
            .map(|j| {
                let dot: f64 = head
                    .q
                    .row(i)
                    .iter()
                    .zip(head.k.row(j))
                    .map(|(&a, &b)| f64::from(a) * f64::from(b))
                    .sum();
                dot * scale
            })
            .collect();
        let max = logits.iter().copied().fold(f64::NEG_INFINITY, |m, x| {
            if x.is_nan() || m.is_nan() {
                f64::NAN
            } else {
                m.max(x)
            }
        });
        let weights: Vec<f64> = logits.iter().map(|s| (s - max).exp()).collect();
        let sum: f64 = weights.iter().sum();
        for (c, j) in vis.enumerate() {
            let p = weights[c] / sum;
            attn[[i, j]] = p as f32;
        }
        for t in 0..dv {
            let acc: f64 = head
                .visible_keys(i)
                .enumerate()
                .map(|(c, j)| weights[c] / sum * f64::from(head.v[[j, t]]))
                .sum();
            out[[i, t]] = acc as f32;
        }
    }
    (out, attn)
}

/// Fast exact attention: row blocks of [`QUERY_BLOCK`] queries, scores for the block by a
/// matrix product, the shared softmax over each row's visible keys, then `P·V`. Parallel over
/// query blocks with rayon. Returns the output and, when `want_matrix`, the attention matrix.
///
/// # Shapes
/// See [`HeadInput`]; output `[seq_len_q, value_dim]`, matrix `[seq_len_q, seq_len_kv]`.
///
/// # Errors
/// [`AttentionError::OverBudget`] when `want_matrix` and the matrix exceeds `budget` (C8).
///
/// # Complexity
/// O(Lq·Lk·(d + d_v)) time; O(QUERY_BLOCK·Lk) scratch per worker (plus the matrix if
/// requested). Deterministic for any thread count: each row is reduced by one thread in a
/// fixed order.
pub fn full_attention(
    head: &HeadInput<'_>,
    want_matrix: bool,
    budget: MatrixBudget,
) -> Result<(Array2<f32>, Option<Array2<f32>>), AttentionError> {
    let (lq, lk) = (head.seq_len_q(), head.seq_len_kv());
    if want_matrix {
        budget.check(lq, lk)?;
    }
    let mut out = head.zero_output();
    let mut matrix = want_matrix.then(|| Array2::<f32>::zeros((lq, lk)));
    if lq == 0 || lk == 0 {
        return Ok((out, matrix));
    }
    let kt = head.k.t();
    let process = |block_idx: usize,
                   mut out_blk: ArrayViewMut2<'_, f32>,
                   mat_blk: Option<ArrayViewMut2<'_, f32>>| {
        let i0 = block_idx * QUERY_BLOCK;
        let rows = out_blk.nrows();
        let q_blk = head.q.slice(s![i0..i0 + rows, ..]);
        let mut scores = q_blk.dot(&kt);
        for (r, mut row) in scores.axis_iter_mut(Axis(0)).enumerate() {
            let vis = head.visible_keys(i0 + r);
            let slice = row.as_slice_mut().expect("fresh array is contiguous");
            for x in &mut slice[vis.clone()] {
                *x *= head.scale;
            }
            softmax_in_place(&mut slice[vis.clone()]);
            slice[..vis.start].iter_mut().for_each(|x| *x = 0.0);
            slice[vis.end..].iter_mut().for_each(|x| *x = 0.0);
        }
        // Columns outside every row's visible range are zero in `scores`, but a NaN value in a
        // masked key would still poison 0·NaN; multiply only the visible prefix per row.
        for (r, mut o) in out_blk.axis_iter_mut(Axis(0)).enumerate() {
            let vis = head.visible_keys(i0 + r);
            if vis.is_empty() {
                continue;
            }
            let p = scores.slice(s![r, vis.clone()]);
            o.assign(&p.dot(&head.v.slice(s![vis, ..])));
        }
        if let Some(mut m) = mat_blk {
            m.assign(&scores);
        }
    };
    match matrix.as_mut() {
        Some(m) => {
            out.axis_chunks_iter_mut(Axis(0), QUERY_BLOCK)
                .into_par_iter()
                .zip(m.axis_chunks_iter_mut(Axis(0), QUERY_BLOCK).into_par_iter())
                .enumerate()
                .for_each(|(b, (o, mb))| process(b, o, Some(mb)));
        }
        None => {
            out.axis_chunks_iter_mut(Axis(0), QUERY_BLOCK)
                .into_par_iter()
                .enumerate()
                .for_each(|(b, o)| process(b, o, None));
        }
    }
    Ok((out, matrix))
}
