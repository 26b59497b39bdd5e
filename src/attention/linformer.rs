//! Linformer: keys and values projected along the length axis to k rows.
//!
//! ```text
//! E [k, Lk]  mean-pool: E_jt = 1/|s_j| for t ∈ s_j = [⌊j·Lk/k⌋, ⌊(j+1)·Lk/k⌋)  (uneven segments)
//!            gaussian:  E_jt ~ N(0, 1/k), seeded (C7)
//! P = softmax(scale·Q (E K)ᵀ) [Lq, k],   O = P·(E V),   Â = P·E  [Lq, Lk]   (rank ≤ k)
//! ```
//!
//! The same projection is used for keys and values (E = F, key–value sharing as in the LRA
//! configuration). With mean pooling Â is non-negative and its rows sum to 1; with a Gaussian
//! projection neither holds. `proj_dim` is clamped to Lk by [`super::compute`] (with a note).
//!
//! Bidirectional only: projecting along the length axis mixes future tokens.
//!
//! # References
//! Wang, Li, Khabsa, Fang, Ma, "Linformer: Self-Attention with Linear Complexity", 2020
//! (arXiv 2006.04768), eq. (7); Gaussian projections as in its Theorem 2.

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::Normal;

use super::method::Projection;
use super::nystrom::segment;
use super::softmax::softmax_in_place;
use super::{AttentionError, HeadInput, MatrixBudget};

/// The projection `E [proj_dim, seq_len_kv]` (f32).
///
/// Mean pooling averages contiguous, possibly uneven, segments (no padding). The Gaussian
/// projection draws `N(0, 1/proj_dim)` entries row-major from `ChaCha8Rng::seed_from_u64(seed)`.
///
/// # Complexity
/// O(k·Lk) time and memory. Deterministic in `seed`.
pub fn projection_matrix(
    projection: Projection,
    proj_dim: usize,
    seq_len_kv: usize,
    seed: u64,
) -> Array2<f32> {
    let mut e = Array2::<f32>::zeros((proj_dim, seq_len_kv));
    match projection {
        Projection::MeanPool => {
            for j in 0..proj_dim {
                let seg = segment(j, proj_dim, seq_len_kv);
                let w = 1.0 / seg.len().max(1) as f32;
                for t in seg {
                    e[[j, t]] = w;
                }
            }
        }
        Projection::Gaussian => {
            let std = 1.0 / (proj_dim.max(1) as f64).sqrt();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            // `std` is finite and positive, so `Normal::new` cannot fail; fall back to zeros.
            if let Ok(dist) = Normal::new(0.0, std) {
                e.iter_mut()
                    .for_each(|x| *x = rng.sample::<f64, _>(dist) as f32);
            }
        }
    }
    e
}

fn projected(
    head: &HeadInput<'_>,
    proj_dim: usize,
    projection: Projection,
    seed: u64,
) -> Result<(Array2<f32>, Array2<f32>), AttentionError> {
    if head.causal {
        return Err(AttentionError::UnsupportedCausality {
            method: "linformer",
            mode: "causal",
        });
    }
    let lk = head.seq_len_kv();
    if proj_dim == 0 || proj_dim > lk.max(1) {
        return Err(AttentionError::InvalidParameter {
            method: "linformer",
            param: "proj-dim",
            value: proj_dim.to_string(),
            reason: format!("between 1 and seq_len_kv = {lk}"),
        });
    }
    let e = projection_matrix(projection, proj_dim, lk, seed);
    let ek = e.dot(&head.k);
    let mut p = head.q.dot(&ek.t()) * head.scale;
    for mut row in p.rows_mut() {
        if let Some(s) = row.as_slice_mut() {
            softmax_in_place(s);
        }
    }
    Ok((p, e))
}

/// Linformer attention output `P·(E V)`.
///
/// # Shapes
/// See [`HeadInput`]; Lq ≠ Lk allowed; returns `[seq_len_q, value_dim]`.
///
/// # Errors
/// [`AttentionError::UnsupportedCausality`] for causal input; [`AttentionError::InvalidParameter`]
/// when `proj_dim` is 0 or larger than `seq_len_kv`.
///
/// # Complexity
/// O(k·Lk·(d + d_v) + Lq·k·(d + d_v)) time, O((Lq + Lk)·k) memory; no L×L buffer.
/// Deterministic.
///
/// ```
/// use attnscope::attention::{HeadInput, linformer::linformer_attention, method::Projection};
/// let z = ndarray::Array2::<f32>::zeros((4, 2));
/// let v = ndarray::array![[1.0_f32], [2.0], [3.0], [6.0]];
/// let head = HeadInput::new(z.view(), z.view(), v.view(), None, false).unwrap();
/// let o = linformer_attention(&head, 2, Projection::MeanPool, 0).unwrap();
/// assert!((o[[0, 0]] - 3.0).abs() < 1e-6); // mean of the two pooled values 1.5 and 4.5
/// ```
pub fn linformer_attention(
    head: &HeadInput<'_>,
    proj_dim: usize,
    projection: Projection,
    seed: u64,
) -> Result<Array2<f32>, AttentionError> {
    if head.seq_len_kv() == 0 && !head.causal {
        return Ok(head.zero_output());
    }
    let (p, e) = projected(head, proj_dim, projection, seed)?;
    Ok(p.dot(&e.dot(&head.v)))
}

/// Linformer's effective matrix `Â = P·E` `[seq_len_q, seq_len_kv]`.
///
/// # Errors
/// As [`linformer_attention`], plus [`AttentionError::OverBudget`] above the C8 budget.
///
/// # Complexity
/// O(Lq·Lk·k) time, O(Lq·Lk) memory.
pub fn linformer_matrix(
    head: &HeadInput<'_>,
    proj_dim: usize,
    projection: Projection,
    seed: u64,
    budget: MatrixBudget,
) -> Result<Array2<f32>, AttentionError> {
    budget.check(head.seq_len_q(), head.seq_len_kv())?;
    if head.seq_len_kv() == 0 && !head.causal {
        return Ok(Array2::zeros((head.seq_len_q(), 0)));
    }
    let (p, e) = projected(head, proj_dim, projection, seed)?;
    Ok(p.dot(&e))
}
