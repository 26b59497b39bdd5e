//! The `svd` method: the optimal rank-r approximation of the exact attention matrix
//! (Eckart–Young–Mirsky), the lower bound for every rank-≤ r method's matrix error.
//!
//! ```text
//! A = U Σ Vᵀ (exact softmax attention, masked by C1)     A_r = U_r Σ_r V_rᵀ     O = A_r V
//! ‖A − A_r‖_F = sqrt(Σ_{t≥r} σ_t²) = min over rank ≤ r
//! ```
//!
//! Analysis only: it needs the exact A (within the C8 budget) and an O(L³) SVD. A_r ignores
//! causality (it is not lower-triangular and may have negative entries); its rows need not sum
//! to 1. The output bound differs from the matrix bound (`fmm_lowrank.md` §2.5).
//!
//! # References
//! Eckart & Young, Psychometrika 1(3), 1936; Mirsky, Q. J. Math. 11, 1960.

use ndarray::Array2;

use super::{AttentionError, HeadInput, MatrixBudget, dense::full_attention};
use crate::analysis::svd::thin_svd;

/// Result of the rank-r approximation of one head.
#[derive(Debug, Clone)]
pub struct SvdApproximation {
    /// `A_r V`, `[seq_len_q, value_dim]`.
    pub output: Array2<f32>,
    /// `A_r`, `[seq_len_q, seq_len_kv]`.
    pub matrix: Array2<f32>,
    /// Singular values of the exact A, non-increasing.
    pub singular_values: Vec<f64>,
    /// The rank used (≤ min(seq_len_q, seq_len_kv)).
    pub rank: usize,
}

/// Computes the rank-`rank` truncated SVD of the exact attention matrix and its output.
/// `rank` larger than `min(seq_len_q, seq_len_kv)` is used as that minimum (the caller notes
/// the clamp, see [`crate::analysis::svd::clamp_rank`]).
///
/// # Errors
/// [`AttentionError::InvalidParameter`] for `rank = 0`; [`AttentionError::OverBudget`] when A
/// exceeds the C8 budget; [`AttentionError::Numerical`] when A holds NaN/inf (from non-finite
/// input) or the SVD does not converge.
///
/// # Complexity
/// O(Lq·Lk·d) for A plus O(Lq·Lk·min(Lq, Lk)) for the SVD; O(Lq·Lk) memory.
///
/// ```
/// use attnscope::attention::{HeadInput, MatrixBudget, svd::svd_approximation};
/// // Q = K = 0: A is the rank-1 uniform matrix, so rank 1 is exact.
/// let z = ndarray::Array2::<f32>::zeros((3, 2));
/// let v = ndarray::array![[1.0_f32], [2.0], [6.0]];
/// let head = HeadInput::new(z.view(), z.view(), v.view(), None, false).unwrap();
/// let r = svd_approximation(&head, 1, MatrixBudget::default()).unwrap();
/// assert!((r.output[[2, 0]] - 3.0).abs() < 1e-5);
/// ```
pub fn svd_approximation(
    head: &HeadInput<'_>,
    rank: usize,
    budget: MatrixBudget,
) -> Result<SvdApproximation, AttentionError> {
    if rank == 0 {
        return Err(AttentionError::InvalidParameter {
            method: "svd",
            param: "rank",
            value: "0".into(),
            reason: "at least 1 (rank 0 is the zero matrix, relative error 1)".into(),
        });
    }
    let (_, exact) = full_attention(head, true, budget)?;
    let exact = exact.unwrap_or_else(|| Array2::zeros((head.seq_len_q(), head.seq_len_kv())));
    let factors = thin_svd(&exact).map_err(|e| AttentionError::Numerical {
        method: "svd",
        reason: e.to_string(),
    })?;
    let rank = rank.min(head.seq_len_q().min(head.seq_len_kv()));
    let matrix = factors.reconstruct(rank);
    let output = matrix.dot(&head.v);
    Ok(SvdApproximation {
        output,
        matrix,
        singular_values: factors.singular_values,
        rank,
    })
}
