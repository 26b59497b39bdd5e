//! Nyströmformer: attention through m segment-mean landmarks and a pseudo-inverse.
//!
//! ```text
//! segments: s_j = [⌊j·L/m⌋, ⌊(j+1)·L/m⌋), j = 0..m   (uneven when m ∤ L; never empty, no padding)
//! q̃_j = mean_{i∈s_j} q_i (over Lq),  k̃_j = mean_{t∈s_j} k_t (over Lk)
//! F = softmax(scale·Q K̃ᵀ) [Lq, m],  A_S = softmax(scale·Q̃ K̃ᵀ) [m, m],  B = softmax(scale·Q̃ Kᵀ) [m, Lk]
//! Z ≈ A_S⁺:  Z_0 = A_Sᵀ / (‖A_S‖_1·‖A_S‖_∞)   (per matrix)
//!           Z_{t+1} = ¼ Z_t (13I − A_S Z_t (15I − A_S Z_t (7I − A_S Z_t)))   6 iterations
//!           or the Moore–Penrose pseudo-inverse (faer SVD, σ below f32 rounding dropped)
//!           when `exact_pinv`
//! Â = F·Z·B  (rank ≤ m; entries may be negative; rows sum to 1 with the exact inverse)
//! O = F·(Z·(B·V))
//! ```
//!
//! The number of landmarks is clamped to `min(Lq, Lk)` by [`super::compute`] (with a note), so
//! every segment holds at least one token: an input that is not a multiple of m is split into
//! uneven segments rather than padded, and padding can never act as a key (E8).
//!
//! Bidirectional only: segment means mix future tokens, so causal attention is not defined.
//!
//! # References
//! Xiong et al., "Nyströmformer: A Nyström-Based Algorithm for Approximating Self-Attention",
//! AAAI 2021 (arXiv 2102.03902), eqs. (13)–(15) and the iterative inverse (their eq. 16,
//! from Razavi et al. 2014); the per-matrix initialisation follows mlpen/Nystromformer #3, #6.

use ndarray::{Array2, ArrayView2, Axis};

use super::softmax::softmax_in_place;
use super::{AttentionError, HeadInput, MatrixBudget};
use crate::with_faer;

/// Iterations of the Newton–Schulz-type pseudo-inverse (the reference code's 6).
pub const PINV_ITERATIONS: usize = 6;

/// Segment `j` of `m` segments over `len` tokens: `⌊j·len/m⌋ .. ⌊(j+1)·len/m⌋`.
/// Every segment is non-empty when `1 <= m <= len`; sizes differ by at most one.
pub fn segment(j: usize, m: usize, len: usize) -> std::ops::Range<usize> {
    let lo = (j as u128 * len as u128 / m.max(1) as u128) as usize;
    let hi = ((j as u128 + 1) * len as u128 / m.max(1) as u128) as usize;
    lo..hi
}

/// Segment means of the rows of `x [len, d]` over `m` uneven segments (see [`segment`]),
/// `[m, d]` in f32 (summed in f64).
pub fn segment_means(x: ArrayView2<'_, f32>, m: usize) -> Array2<f32> {
    let (len, d) = x.dim();
    let mut out = Array2::<f32>::zeros((m, d));
    for (j, mut row) in out.axis_iter_mut(Axis(0)).enumerate() {
        let seg = segment(j, m, len);
        let n = seg.len().max(1) as f64;
        for t in 0..d {
            let s: f64 = seg.clone().map(|i| f64::from(x[[i, t]])).sum();
            row[t] = (s / n) as f32;
        }
    }
    out
}

/// Row softmax of `scale·a bᵀ` `[a.rows, b.rows]` through the shared softmax, as f64.
fn softmax_scores(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>, scale: f32) -> Array2<f64> {
    let mut s = a.dot(&b.t()) * scale;
    for mut row in s.axis_iter_mut(Axis(0)) {
        if let Some(slice) = row.as_slice_mut() {
            softmax_in_place(slice);
        }
    }
    s.mapv(f64::from)
}

/// The 6-step iterative pseudo-inverse of a square matrix `a_s` `[m, m]` with the per-matrix
/// start `Z_0 = A_Sᵀ/(‖A_S‖_1·‖A_S‖_∞)` (max column sum × max row sum of |A_S|).
///
/// Converges for row-stochastic `A_S` (post-softmax); for general matrices it may not
/// (mlpen/Nystromformer #6). A zero matrix gives a zero result.
///
/// # Complexity
/// O(iterations·m³) time, O(m²) memory. Deterministic.
pub fn iterative_pinv(a_s: &Array2<f64>, iterations: usize) -> Array2<f64> {
    let m = a_s.nrows();
    let norm_1 = (0..a_s.ncols())
        .map(|j| a_s.column(j).iter().map(|x| x.abs()).sum::<f64>())
        .fold(0.0, f64::max);
    let norm_inf = (0..m)
        .map(|i| a_s.row(i).iter().map(|x| x.abs()).sum::<f64>())
        .fold(0.0, f64::max);
    let denom = norm_1 * norm_inf;
    if denom == 0.0 || !denom.is_finite() {
        return Array2::zeros((a_s.ncols(), m));
    }
    let eye = Array2::<f64>::eye(m);
    let mut z = a_s.t().to_owned() / denom;
    for _ in 0..iterations {
        let az = a_s.dot(&z);
        let inner = &eye * 7.0 - &az;
        let mid = &eye * 15.0 - az.dot(&inner);
        let outer = &eye * 13.0 - az.dot(&mid);
        z = z.dot(&outer) * 0.25;
    }
    z
}

/// The Moore–Penrose pseudo-inverse through faer's SVD (f64): `V·diag(1/σ_t)·Uᵀ` over the
/// singular values with `σ_t > rcond·σ_1`, where `rcond = max(rows, cols)·ε_f32`. A_S is built
/// from f32 softmax values, so smaller singular values are rounding noise (`fmm_lowrank.md`
/// §2.5); inverting them would amplify that noise by up to 1/ε. Non-finite input gives a NaN
/// matrix (so the NaN reaches the output, as it would in exact attention).
pub fn exact_pinv(a: &Array2<f64>) -> Array2<f64> {
    let (r, c) = a.dim();
    if a.iter().any(|x| !x.is_finite()) {
        return Array2::from_elem((c, r), f64::NAN);
    }
    if r == 0 || c == 0 {
        return Array2::zeros((c, r));
    }
    let mat = faer::Mat::<f64>::from_fn(r, c, |i, j| a[[i, j]]);
    let Ok(svd) = with_faer(|| mat.thin_svd()) else {
        return Array2::from_elem((c, r), f64::NAN);
    };
    let (u, v, s) = (svd.U(), svd.V(), svd.S().column_vector());
    let k = r.min(c);
    let rcond = r.max(c) as f64 * f64::from(f32::EPSILON);
    let cutoff = s[0] * rcond;
    let mut out = Array2::<f64>::zeros((c, r));
    for t in (0..k).filter(|&t| s[t] > cutoff) {
        let inv = 1.0 / s[t];
        for i in 0..c {
            let vi = v[(i, t)] * inv;
            for j in 0..r {
                out[[i, j]] += vi * u[(j, t)];
            }
        }
    }
    out
}

/// The three Nyström factors and the pseudo-inverse, all f64.
struct Factors {
    f: Array2<f64>,
    z: Array2<f64>,
    b: Array2<f64>,
}

fn factors(
    head: &HeadInput<'_>,
    num_landmarks: usize,
    exact: bool,
) -> Result<Factors, AttentionError> {
    if head.causal {
        return Err(AttentionError::UnsupportedCausality {
            method: "nystrom",
            mode: "causal",
        });
    }
    let (lq, lk) = (head.seq_len_q(), head.seq_len_kv());
    if num_landmarks == 0 {
        return Err(AttentionError::InvalidParameter {
            method: "nystrom",
            param: "num-landmarks",
            value: "0".into(),
            reason: "at least 1 landmark".into(),
        });
    }
    if num_landmarks > lq.min(lk) {
        return Err(AttentionError::InvalidParameter {
            method: "nystrom",
            param: "num-landmarks",
            value: num_landmarks.to_string(),
            reason: format!("at most min(seq_len_q, seq_len_kv) = {}", lq.min(lk)),
        });
    }
    let q_land = segment_means(head.q, num_landmarks);
    let k_land = segment_means(head.k, num_landmarks);
    let f = softmax_scores(head.q, k_land.view(), head.scale);
    let a_s = softmax_scores(q_land.view(), k_land.view(), head.scale);
    let b = softmax_scores(q_land.view(), head.k, head.scale);
    let z = if exact {
        exact_pinv(&a_s)
    } else {
        iterative_pinv(&a_s, PINV_ITERATIONS)
    };
    Ok(Factors { f, z, b })
}

/// Nyström attention output `F·(Z·(B·V))`.
///
/// # Shapes
/// See [`HeadInput`]; Lq ≠ Lk allowed (query and key landmarks are taken separately); returns
/// `[seq_len_q, value_dim]`. Empty Q or K gives a zero output.
///
/// # Errors
/// [`AttentionError::UnsupportedCausality`] for causal input; [`AttentionError::InvalidParameter`]
/// when `num_landmarks` is 0 or exceeds `min(seq_len_q, seq_len_kv)` (clamp it first, as
/// [`super::compute`] does).
///
/// # Complexity
/// O((Lq + Lk)·m·(d + d_v) + m³·iterations) time, O((Lq + Lk)·m) memory; no L×L buffer.
/// Deterministic.
///
/// ```
/// use attnscope::attention::{HeadInput, nystrom::nystrom_attention};
/// // E8(c): Q = K = 0, V ≡ 6, 3 landmarks on 7 tokens (segments 2, 2, 3) → 6 on every row.
/// let z = ndarray::Array2::<f32>::zeros((7, 2));
/// let v = ndarray::Array2::<f32>::from_elem((7, 1), 6.0);
/// let head = HeadInput::new(z.view(), z.view(), v.view(), None, false).unwrap();
/// let o = nystrom_attention(&head, 3, false).unwrap();
/// assert!(o.iter().all(|x| (x - 6.0).abs() < 1e-5));
/// ```
pub fn nystrom_attention(
    head: &HeadInput<'_>,
    num_landmarks: usize,
    exact_pinv: bool,
) -> Result<Array2<f32>, AttentionError> {
    if head.seq_len_q() == 0 || head.seq_len_kv() == 0 {
        if head.causal {
            return Err(AttentionError::UnsupportedCausality {
                method: "nystrom",
                mode: "causal",
            });
        }
        return Ok(head.zero_output());
    }
    let fac = factors(head, num_landmarks, exact_pinv)?;
    let v = head.v.mapv(f64::from);
    let bv = fac.b.dot(&v);
    let out = fac.f.dot(&fac.z.dot(&bv));
    Ok(out.mapv(|x| x as f32))
}

/// Nyström's effective matrix `Â = F·Z·B` `[seq_len_q, seq_len_kv]` (may hold negative
/// entries).
///
/// # Errors
/// As [`nystrom_attention`], plus [`AttentionError::OverBudget`] above the C8 budget.
///
/// # Complexity
/// O(Lq·Lk·m) time, O(Lq·Lk) memory.
pub fn nystrom_matrix(
    head: &HeadInput<'_>,
    num_landmarks: usize,
    exact_pinv: bool,
    budget: MatrixBudget,
) -> Result<Array2<f32>, AttentionError> {
    let (lq, lk) = (head.seq_len_q(), head.seq_len_kv());
    budget.check(lq, lk)?;
    if lq == 0 || lk == 0 {
        if head.causal {
            return Err(AttentionError::UnsupportedCausality {
                method: "nystrom",
                mode: "causal",
            });
        }
        return Ok(Array2::zeros((lq, lk)));
    }
    let fac = factors(head, num_landmarks, exact_pinv)?;
    Ok(fac.f.dot(&fac.z).dot(&fac.b).mapv(|x| x as f32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uneven_segments_cover_every_token_once() {
        for len in 1..40 {
            for m in 1..=len {
                let mut next = 0;
                for j in 0..m {
                    let s = segment(j, m, len);
                    assert_eq!(s.start, next, "len {len} m {m} segment {j}");
                    assert!(!s.is_empty(), "len {len} m {m} segment {j} empty");
                    next = s.end;
                }
                assert_eq!(next, len);
            }
        }
    }

    #[test]
    fn iterative_pinv_inverts_a_stochastic_matrix() {
        let a = ndarray::array![[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]];
        let z = iterative_pinv(&a, 12);
        let back = a.dot(&z);
        for ((i, j), x) in back.indexed_iter() {
            let want = if i == j { 1.0 } else { 0.0 };
            assert!((x - want).abs() < 1e-9, "({i},{j}) = {x}");
        }
        let e = exact_pinv(&a);
        assert!((&e - &z).iter().all(|x| x.abs() < 1e-9));
    }
}
