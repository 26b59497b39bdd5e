//! The FMMformer near/far decomposition of exact attention.
//!
//! ```text
//! A = band_b(A) + F                 near field (entries inside the band, C2) + far field
//! F_r = SVD_r(F)                    rank-r truncation of the far field (Eckart–Young)
//! R = band_b(A) + F_r               reconstruction;  E = R − A (signed error)
//! band mass   = Σ band_b(A) / Σ A   far energy captured = Σ_{t<r} σ_t(F)² / Σ_t σ_t(F)²
//! ```
//!
//! # References
//! Nguyen et al., "FMMformer", NeurIPS 2021 (arXiv 2108.02347), §2 and Fig. 2 (the far field
//! of trained attention has fast-decaying singular values).

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::AnalysisError;
use super::metrics::{ErrorValue, max_abs, relative_frobenius};
use super::svd::{clamp_rank, truncated_svd};
use crate::attention::{HeadInput, MatrixBudget, band::band_part, dense::full_attention};

/// Scalar results of a decomposition (written to `metrics.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecompositionMetrics {
    /// Bandwidth b used (C2).
    pub bandwidth: usize,
    /// Rank r used (after clamping to min(seq_len_q, seq_len_kv)).
    pub rank: usize,
    /// Share of attention mass inside the band.
    pub band_mass: f64,
    /// Share of the far field's energy `Σσ²` captured by its first r singular values.
    pub far_energy_captured: f64,
    /// `‖band_b(A) − A‖_F / ‖A‖_F` — the band alone.
    pub band_only_error: ErrorValue,
    /// `‖R − A‖_F / ‖A‖_F` — band plus rank-r far field.
    pub reconstruction_error: ErrorValue,
    /// `‖(R − A)V‖_F / ‖AV‖_F`.
    pub reconstruction_output_error: ErrorValue,
    /// `max |R − A|`.
    pub reconstruction_max_abs: f64,
    /// Rows that see no key (C3), marked in the views.
    pub empty_rows: Vec<usize>,
    /// Notes (rank clamped, …).
    pub notes: Vec<String>,
}

/// The matrices of the decomposition, each `[seq_len_q, seq_len_kv]`.
#[derive(Debug, Clone)]
pub struct Decomposition {
    /// Exact attention A.
    pub full: Array2<f32>,
    /// `band_b(A)`.
    pub near: Array2<f32>,
    /// `F = A − band_b(A)`.
    pub far: Array2<f32>,
    /// `F_r`, the rank-r truncation of F.
    pub far_rank_r: Array2<f32>,
    /// `band_b(A) + F_r`.
    pub reconstruction: Array2<f32>,
    /// `reconstruction − A` (signed).
    pub error: Array2<f32>,
    /// Leading singular values of F, non-increasing: all of them up to L = 384, the first
    /// rank + 10 above (randomized SVD, see [`super::svd::truncated_svd`]).
    pub far_singular_values: Vec<f64>,
    /// Scalar results.
    pub metrics: DecompositionMetrics,
}

/// Decomposes the exact attention of `head` at `bandwidth` and `rank`.
///
/// # Errors
/// [`AnalysisError::Attention`] (over the C8 budget: six L×L matrices are built),
/// [`AnalysisError::NonFinite`] when A holds NaN (the SVD needs finite input).
///
/// # Complexity
/// O(L²d) for A plus O(L³) for the far field's SVD up to L = 384, O(L²·(r + 10)) above
/// (randomized); 6 matrices of L² floats.
pub fn decompose(
    head: &HeadInput<'_>,
    bandwidth: usize,
    rank: usize,
    budget: MatrixBudget,
) -> Result<Decomposition, AnalysisError> {
    let (lq, lk) = (head.seq_len_q(), head.seq_len_kv());
    budget.check(lq, lk.saturating_mul(6))?;
    let (exact_out, full) = full_attention(head, true, budget)?;
    let full = full.unwrap_or_else(|| Array2::zeros((lq, lk)));
    decompose_matrix(full, &exact_out, head, bandwidth, rank)
}

/// [`decompose`] on an already computed exact matrix `full` with its output `exact_out`.
///
/// # Errors
/// [`AnalysisError::NonFinite`] when `full` holds NaN or infinity.
pub fn decompose_matrix(
    full: Array2<f32>,
    exact_out: &Array2<f32>,
    head: &HeadInput<'_>,
    bandwidth: usize,
    rank: usize,
) -> Result<Decomposition, AnalysisError> {
    let (lq, lk) = full.dim();
    let mut notes = Vec::new();
    let (rank, note) = clamp_rank(rank, lq, lk);
    notes.extend(note);
    if rank == 0 {
        notes.push("rank 0: the far field is dropped, the reconstruction is the band alone".into());
    }
    let near = band_part(&full, bandwidth, head.causal);
    let far = &full - &near;
    let svd = truncated_svd(&far, rank, 0)?;
    let far_rank_r = svd.reconstruct(rank);
    let far_energy: f64 = far.iter().map(|&x| f64::from(x).powi(2)).sum();
    let captured: f64 = svd.singular_values.iter().take(rank).map(|s| s * s).sum();
    let reconstruction = &near + &far_rank_r;
    let error = &reconstruction - &full;
    let total: f64 = full.iter().map(|&x| f64::from(x)).sum();
    let in_band: f64 = near.iter().map(|&x| f64::from(x)).sum();
    let empty_rows = (0..lq)
        .filter(|&i| head.visible_keys(i).is_empty())
        .collect();
    let recon_out = reconstruction.dot(&head.v);
    let metrics = DecompositionMetrics {
        bandwidth,
        rank,
        band_mass: if total > 0.0 { in_band / total } else { 0.0 },
        far_energy_captured: if far_energy > 0.0 {
            (captured / far_energy).min(1.0)
        } else {
            1.0
        },
        band_only_error: relative_frobenius(&near, &full),
        reconstruction_error: relative_frobenius(&reconstruction, &full),
        reconstruction_output_error: relative_frobenius(&recon_out, exact_out),
        reconstruction_max_abs: max_abs(&reconstruction, &full),
        empty_rows,
        notes,
    };
    Ok(Decomposition {
        full,
        near,
        far,
        far_rank_r,
        reconstruction,
        error,
        far_singular_values: svd.singular_values,
        metrics,
    })
}
