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

use std::borrow::Cow;

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use super::{AttentionError, HeadInput, MatrixBudget, simd, visible_keys};

/// Query rows per block (one rayon task) in the fast path.
pub const QUERY_BLOCK: usize = 64;

/// Keys per block of the online softmax in the fast path: the score block
/// `QUERY_BLOCK × KEY_BLOCK` f32 is 128 KiB and stays in L2.
pub const KEY_BLOCK: usize = 512;

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

/// Fast exact attention (the product path), equal to [`dense_reference`] up to f32 rounding.
///
/// Queries are split into blocks of [`QUERY_BLOCK`] rows, one rayon task each (callers may
/// already run heads in parallel; the tasks nest). Per block:
/// * without the matrix: an online (flash-style) softmax over key blocks of [`KEY_BLOCK`]:
///   `S = scale·Q_b K_jᵀ` by a faer matmul, a vectorised row max / `exp` / sum
///   ([`simd`]), rescaling of the running output, then `O_b += P V_j` by a faer matmul;
/// * with the matrix: the block's rows of the matrix are the score buffer (`S`, then the
///   softmax in place, then `O_b = P V`).
///
/// Masking follows [`HeadInput::visible_keys`] (C1, bottom-right): key blocks beyond a block's
/// last visible key are skipped; inside a block, each row's masked-out scores are set to 0
/// before `P V`. A query that sees no key gets a zero row (C3). A NaN/∞ in a key or value
/// hidden from a row never reaches it (C6): when the values of partly-masked keys are not all
/// finite, that key block's `P V` is done row by row over each row's visible keys only. The
/// row maximum is subtracted before `exp`, so large logits do not overflow (E17).
///
/// # Shapes
/// See [`HeadInput`] (views may be strided or transposed; they are copied to row-major when
/// not already); output `[seq_len_q, value_dim]`, matrix `[seq_len_q, seq_len_kv]`.
///
/// # Errors
/// [`AttentionError::OverBudget`] when `want_matrix` and the matrix exceeds `budget` (C8).
///
/// # Complexity
/// O(Lq·Lk·(d + d_v)) time (about half for causal, which skips hidden key blocks); scratch
/// O(QUERY_BLOCK·KEY_BLOCK) per worker without the matrix, plus the O(Lq·Lk) matrix when
/// requested. Deterministic for any thread count: each query block is computed by one task in
/// a fixed order, with sequential (`Par::Seq`) matmuls; results may differ in the last bits
/// between CPUs with different SIMD levels.
///
/// # References
/// Vaswani et al. 2017 (arXiv 1706.03762), eq. (1); online softmax: Milakov & Gimelshein
/// (arXiv 1805.02867), Dao et al., "FlashAttention" (arXiv 2205.14135), Alg. 1.
///
/// ```
/// use ndarray::array;
/// use attnscope::attention::{HeadInput, MatrixBudget, dense::full_attention};
/// // E1: Lq = 3, Lk = 1, causal: queries 0 and 1 see no key (C1, C3).
/// let (q, k, v) = (ndarray::Array2::<f32>::zeros((3, 2)), array![[0.0_f32, 0.0]], array![[5.0_f32, -5.0]]);
/// let head = HeadInput::new(q.view(), k.view(), v.view(), None, true).unwrap();
/// let (out, attn) = full_attention(&head, true, MatrixBudget::default()).unwrap();
/// assert_eq!(out, array![[0.0, 0.0], [0.0, 0.0], [5.0, -5.0]]);
/// assert_eq!(attn.unwrap(), array![[0.0], [0.0], [1.0]]);
/// ```
pub fn full_attention(
    head: &HeadInput<'_>,
    want_matrix: bool,
    budget: MatrixBudget,
) -> Result<(Array2<f32>, Option<Array2<f32>>), AttentionError> {
    let (lq, lk, dv) = (head.seq_len_q(), head.seq_len_kv(), head.value_dim());
    if want_matrix {
        budget.check(lq, lk)?;
    }
    if lq == 0 || lk == 0 {
        let matrix = want_matrix.then(|| Array2::<f32>::zeros((lq, lk)));
        return Ok((head.zero_output(), matrix));
    }
    let (q, k, v) = (row_major(head.q), row_major(head.k), row_major(head.v));
    let problem = Problem {
        q: &q,
        k: &k,
        v: &v,
        d: head.head_dim(),
        dv,
        lq,
        lk,
        scale: head.scale,
        causal: head.causal,
    };

    let mut out = vec![0.0_f32; lq * dv];
    let mut matrix = want_matrix.then(|| vec![0.0_f32; lq * lk]);
    let mut tasks = Vec::with_capacity(lq.div_ceil(QUERY_BLOCK));
    let mut out_rest: &mut [f32] = &mut out;
    let mut mat_rest: Option<&mut [f32]> = matrix.as_deref_mut();
    for i0 in (0..lq).step_by(QUERY_BLOCK) {
        let rows = QUERY_BLOCK.min(lq - i0);
        let (o, rest) = std::mem::take(&mut out_rest).split_at_mut(rows * dv);
        out_rest = rest;
        let m = mat_rest.take().map(|mr| {
            let (m, rest) = mr.split_at_mut(rows * lk);
            mat_rest = Some(rest);
            m
        });
        tasks.push((i0, rows, o, m));
    }
    tasks
        .into_par_iter()
        .for_each_init(Scratch::default, |scratch, (i0, rows, o, m)| match m {
            Some(m) => problem.matrix_block(i0, rows, o, m, scratch),
            None => problem.online_block(i0, rows, o, scratch),
        });

    let out = Array2::from_shape_vec((lq, dv), out).expect("buffer holds lq·dv elements");
    let matrix =
        matrix.map(|m| Array2::from_shape_vec((lq, lk), m).expect("buffer holds lq·lk elements"));
    Ok((out, matrix))
}

/// The row-major data of a view: borrowed when already in standard layout, else copied.
fn row_major(a: ArrayView2<'_, f32>) -> Cow<'_, [f32]> {
    match a.to_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(a.iter().copied().collect()),
    }
}

/// `dst = [dst +] alpha·lhs·rhs` with faer, sequentially, followed by the `vzeroupper` guard.
fn gemm(
    dst: MatMut<'_, f32>,
    accum: Accum,
    lhs: MatRef<'_, f32>,
    rhs: MatRef<'_, f32>,
    alpha: f32,
) {
    matmul(dst, accum, lhs, rhs, alpha, Par::Seq);
    crate::zero_upper();
}

/// Per-worker scratch of the fast path.
#[derive(Default)]
struct Scratch {
    /// Score / probability block, `rows × KEY_BLOCK`.
    scores: Vec<f32>,
    /// Running row maximum.
    max: Vec<f32>,
    /// Running row sum of `exp(s − max)`.
    sum: Vec<f64>,
    /// End of each row's visible key range (C1: visible keys are `0..end`).
    ends: Vec<usize>,
}

/// One head's data in row-major slices.
struct Problem<'a> {
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    d: usize,
    dv: usize,
    lq: usize,
    lk: usize,
    scale: f32,
    causal: bool,
}

impl Problem<'_> {
    /// Fills `ends` with the visible-key ends of queries `i0..i0+rows`; returns the largest.
    fn visible_ends(&self, i0: usize, rows: usize, ends: &mut Vec<usize>) -> usize {
        ends.clear();
        ends.extend((i0..i0 + rows).map(|i| {
            let vis = visible_keys(i, self.lq, self.lk, self.causal);
            debug_assert_eq!(vis.start, 0, "C1 visible keys are a prefix");
            vis.end
        }));
        ends.iter().copied().max().unwrap_or(0)
    }

    fn queries(&self, i0: usize, rows: usize) -> MatRef<'_, f32> {
        MatRef::from_row_major_slice(&self.q[i0 * self.d..(i0 + rows) * self.d], rows, self.d)
    }

    /// `K[a..b]ᵀ`, `[d, b − a]`.
    fn keys_t(&self, a: usize, b: usize) -> MatRef<'_, f32> {
        MatRef::from_row_major_slice(&self.k[a * self.d..b * self.d], b - a, self.d).transpose()
    }

    /// `V[a..b]`, `[b − a, d_v]`.
    fn values(&self, a: usize, b: usize) -> MatRef<'_, f32> {
        MatRef::from_row_major_slice(&self.v[a * self.dv..b * self.dv], b - a, self.dv)
    }

    fn values_finite(&self, a: usize, b: usize) -> bool {
        self.v[a * self.dv..b * self.dv]
            .iter()
            .all(|x| x.is_finite())
    }

    /// `out[r] += Σ_{c < len_r} p[r, c] · V[kb0 + c]` with `len_r = ends[r] − kb0` clipped to
    /// `0..width`: the product restricted to each row's visible keys (never touches a hidden
    /// value, so a NaN there cannot leak).
    fn add_visible_products(
        &self,
        p: &[f32],
        p_stride: usize,
        width: usize,
        kb0: usize,
        ends: &[usize],
        out: &mut [f32],
    ) {
        let dv = self.dv;
        for (r, &end) in ends.iter().enumerate() {
            let len = end.saturating_sub(kb0).min(width);
            let o = &mut out[r * dv..(r + 1) * dv];
            for (c, &pc) in p[r * p_stride..r * p_stride + len].iter().enumerate() {
                let vrow = &self.v[(kb0 + c) * dv..(kb0 + c + 1) * dv];
                o.iter_mut().zip(vrow).for_each(|(o, &x)| *o += pc * x);
            }
        }
    }

    /// `O_b += P V[kb0..kb0+width]` where the rows of `p` are already zero beyond each row's
    /// visible keys; falls back to [`Self::add_visible_products`] when a value of a key hidden
    /// from some row is not finite (0·NaN = NaN would leak, C6).
    fn add_pv(
        &self,
        p: MatRef<'_, f32>,
        p_slice: &[f32],
        p_stride: usize,
        kb0: usize,
        ends: &[usize],
        out: &mut [f32],
    ) {
        let (rows, width) = (p.nrows(), p.ncols());
        let all_see = ends[0].saturating_sub(kb0).min(width);
        if all_see == width || self.values_finite(kb0 + all_see, kb0 + width) {
            let dst = MatMut::from_row_major_slice_mut(out, rows, self.dv);
            gemm(dst, Accum::Add, p, self.values(kb0, kb0 + width), 1.0);
        } else {
            self.add_visible_products(p_slice, p_stride, width, kb0, ends, out);
        }
    }

    /// Output rows `i0..i0+rows` by the online softmax over key blocks.
    fn online_block(&self, i0: usize, rows: usize, out: &mut [f32], sc: &mut Scratch) {
        let key_end = self.visible_ends(i0, rows, &mut sc.ends);
        if key_end == 0 {
            return;
        }
        let dv = self.dv;
        sc.max.clear();
        sc.max.resize(rows, f32::NEG_INFINITY);
        sc.sum.clear();
        sc.sum.resize(rows, 0.0);
        sc.scores.resize(QUERY_BLOCK * KEY_BLOCK, 0.0);
        let q_blk = self.queries(i0, rows);
        for kb0 in (0..key_end).step_by(KEY_BLOCK) {
            let kb1 = (kb0 + KEY_BLOCK).min(key_end);
            let w = kb1 - kb0;
            let s = &mut sc.scores[..rows * w];
            let dst = MatMut::from_row_major_slice_mut(&mut *s, rows, w);
            gemm(
                dst,
                Accum::Replace,
                q_blk,
                self.keys_t(kb0, kb1),
                self.scale,
            );
            for (r, row) in s.chunks_exact_mut(w).enumerate() {
                let len = sc.ends[r].saturating_sub(kb0).min(w);
                let (vis, hidden) = row.split_at_mut(len);
                hidden.fill(0.0);
                if len == 0 {
                    continue;
                }
                let m_old = sc.max[r];
                let block_max = simd::row_max(vis);
                let m_new = if block_max.is_nan() || m_old.is_nan() {
                    f32::NAN
                } else {
                    m_old.max(block_max)
                };
                let block_sum = f64::from(simd::exp_shifted_sum(vis, m_new));
                if m_old == f32::NEG_INFINITY {
                    sc.sum[r] = block_sum;
                } else {
                    let alpha = (m_old - m_new).exp();
                    sc.sum[r] = sc.sum[r] * f64::from(alpha) + block_sum;
                    if alpha != 1.0 {
                        out[r * dv..(r + 1) * dv]
                            .iter_mut()
                            .for_each(|o| *o *= alpha);
                    }
                }
                sc.max[r] = m_new;
            }
            let p = MatRef::from_row_major_slice(&*s, rows, w);
            self.add_pv(p, s, w, kb0, &sc.ends, out);
        }
        for (r, o) in out.chunks_exact_mut(dv.max(1)).enumerate().take(rows) {
            if sc.ends[r] > 0 {
                let inv = (1.0 / sc.sum[r]) as f32;
                o.iter_mut().for_each(|x| *x *= inv);
            }
        }
    }

    /// Output rows `i0..i0+rows` and the same rows of the attention matrix (`mat`,
    /// `rows × seq_len_kv`, zero on entry), using the matrix rows as the score buffer.
    fn matrix_block(
        &self,
        i0: usize,
        rows: usize,
        out: &mut [f32],
        mat: &mut [f32],
        sc: &mut Scratch,
    ) {
        let key_end = self.visible_ends(i0, rows, &mut sc.ends);
        if key_end == 0 {
            return;
        }
        let lk = self.lk;
        // faer 0.24.4's `from_row_major_slice_with_stride_mut` builds a column-major view (unit
        // row stride) with a row-major length check; build the row-major view as a transpose.
        let dst = MatMut::from_column_major_slice_with_stride_mut(&mut *mat, key_end, rows, lk)
            .transpose_mut();
        gemm(
            dst,
            Accum::Replace,
            self.queries(i0, rows),
            self.keys_t(0, key_end),
            self.scale,
        );
        for (r, row) in mat.chunks_exact_mut(lk).enumerate() {
            let len = sc.ends[r];
            let (vis, hidden) = row.split_at_mut(len);
            hidden.fill(0.0);
            if len == 0 {
                continue;
            }
            let max = simd::row_max(vis);
            // Sum per key block in f64 so long rows keep full f32 accuracy.
            let sum: f64 = vis
                .chunks_mut(KEY_BLOCK)
                .map(|c| f64::from(simd::exp_shifted_sum(c, max)))
                .sum();
            let inv = (1.0 / sum) as f32;
            vis.iter_mut().for_each(|x| *x *= inv);
        }
        let p = MatRef::from_row_major_slice_with_stride(&*mat, rows, key_end, lk);
        self.add_pv(p, mat, lk, 0, &sc.ends, out);
    }
}
