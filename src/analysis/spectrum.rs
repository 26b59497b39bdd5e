//! Singular-value spectra, captured energy and the Eckart–Young error-vs-rank curve, plus the
//! per-method points plotted against that curve (the spectrum view's data).
//!
//! ```text
//! σ(A), σ(F) with F = A − band_b(A)                        (non-increasing)
//! captured energy  E(r) = Σ_{t<r} σ_t² / Σ_t σ_t²          r = 0..=k
//! Eckart–Young     e(r) = sqrt(Σ_{t≥r} σ_t²) / ‖A‖_F       r = 0..=min(k, max_rank)
//!                  (relative Frobenius error of the best rank-r matrix; e(0) = 1)
//! method point     (rank bound of the method, clamped to min(Lq, Lk);  ‖Â − A‖_F / ‖A‖_F)
//! ```
//!
//! A method's point can never lie below the curve at its rank (a matrix of rank ≤ r cannot beat
//! the truncated SVD); points with error 0 are flagged `exact` so a log-scale plot can draw them
//! at [`EXACT_FLOOR`] (E11 b).
//!
//! # References
//! Eckart & Young, Psychometrika 1936; FMMformer (arXiv 2108.02347) Fig. 2 for far-field
//! spectra; `fmm_lowrank.md` §2.5.

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::AnalysisError;
use super::metrics::{ErrorValue, relative_frobenius};
use super::svd::singular_values;
use crate::attention::band::band_part;
use crate::attention::method::{MethodId, MethodParams, MethodResult, compute};
use crate::attention::{AttentionError, HeadInput, MatrixBudget, dense::full_attention};

/// Errors at or below this value count as exact and are drawn at this floor on log plots.
pub const EXACT_FLOOR: f64 = 1e-7;

/// Spectra of one head's exact attention and of its far field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spectrum {
    /// Singular values of A, non-increasing (length min(Lq, Lk)).
    pub singular_values: Vec<f64>,
    /// Singular values of the far field `A − band_b(A)`.
    pub far_singular_values: Vec<f64>,
    /// The bandwidth b of the far field.
    pub bandwidth: usize,
    /// `captured_energy[r]` = share of `Σσ²(A)` in the first r singular values, r = 0..=k.
    pub captured_energy: Vec<f64>,
    /// The same for the far field.
    pub far_captured_energy: Vec<f64>,
    /// `eckart_young[r]` = relative Frobenius error of the best rank-r approximation of A,
    /// r = 0..=min(k, max_rank).
    pub eckart_young: Vec<f64>,
}

/// `Σ_{t<r} σ_t² / Σ σ_t²` for r = 0..=len. A zero matrix gives 1 for every r (nothing is
/// missing).
pub fn captured_energy_curve(singular_values: &[f64]) -> Vec<f64> {
    let total: f64 = singular_values.iter().map(|s| s * s).sum();
    let mut out = Vec::with_capacity(singular_values.len() + 1);
    let mut acc = 0.0;
    out.push(if total == 0.0 { 1.0 } else { 0.0 });
    for s in singular_values {
        acc += s * s;
        out.push(if total == 0.0 {
            1.0
        } else {
            (acc / total).min(1.0)
        });
    }
    out
}

/// The Eckart–Young curve: relative Frobenius error `sqrt(Σ_{t≥r} σ_t²)/sqrt(Σ σ_t²)` of the
/// best rank-r approximation for r = 0..=min(len, max_rank). A zero matrix gives 0 everywhere
/// (nothing to approximate). Tail sums are accumulated from the smallest σ upwards.
///
/// ```
/// // E12: σ = (1, 1, 1) → errors 1, 0.816497, 0.577350, 0.
/// let c = attnscope::analysis::spectrum::eckart_young_curve(&[1.0, 1.0, 1.0], 10);
/// assert_eq!(c.len(), 4);
/// assert!((c[1] - 0.816_497).abs() < 1e-6 && (c[2] - 0.577_350).abs() < 1e-6 && c[3] == 0.0);
/// ```
pub fn eckart_young_curve(singular_values: &[f64], max_rank: usize) -> Vec<f64> {
    let k = singular_values.len();
    let mut tail = vec![0.0_f64; k + 1];
    for t in (0..k).rev() {
        tail[t] = tail[t + 1] + singular_values[t] * singular_values[t];
    }
    let total = tail[0];
    (0..=k.min(max_rank))
        .map(|r| {
            if total == 0.0 {
                0.0
            } else {
                (tail[r] / total).sqrt()
            }
        })
        .collect()
}

/// Spectrum of an already computed attention matrix `a` (`causal` selects the band shape of
/// the far field, C2).
///
/// # Errors
/// [`AnalysisError::NonFinite`] when `a` holds NaN/inf; [`AnalysisError::Svd`].
///
/// # Complexity
/// Two SVDs: O(Lq·Lk·min(Lq, Lk)).
pub fn spectrum_of_matrix(
    a: &Array2<f32>,
    bandwidth: usize,
    causal: bool,
    max_rank: usize,
) -> Result<Spectrum, AnalysisError> {
    let sv = singular_values(a)?;
    let far = a - &band_part(a, bandwidth, causal);
    let far_sv = singular_values(&far)?;
    Ok(Spectrum {
        captured_energy: captured_energy_curve(&sv),
        far_captured_energy: captured_energy_curve(&far_sv),
        eckart_young: eckart_young_curve(&sv, max_rank),
        singular_values: sv,
        far_singular_values: far_sv,
        bandwidth,
    })
}

/// Spectrum of the exact attention of `head`.
///
/// # Errors
/// [`AnalysisError::Attention`] over the C8 budget (A and the far field are materialised);
/// otherwise as [`spectrum_of_matrix`].
pub fn spectrum(
    head: &HeadInput<'_>,
    bandwidth: usize,
    max_rank: usize,
    budget: MatrixBudget,
) -> Result<Spectrum, AnalysisError> {
    let (lq, lk) = (head.seq_len_q(), head.seq_len_kv());
    budget.check(lq, lk.saturating_mul(3))?;
    let (_, a) = full_attention(head, true, budget)?;
    let a = a.unwrap_or_else(|| Array2::zeros((lq, lk)));
    spectrum_of_matrix(&a, bandwidth, head.causal, max_rank)
}

/// One method's achieved matrix error at its rank, for the Eckart–Young plot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankPoint {
    /// The method.
    pub method: MethodId,
    /// Its rank bound, clamped to min(Lq, Lk).
    pub rank: usize,
    /// `‖Â − A‖_F / ‖A‖_F` (absolute when A = 0).
    pub error: ErrorValue,
    /// The Eckart–Young bound at `rank` (relative), when the curve reaches that rank.
    pub bound: Option<f64>,
    /// The error is at most [`EXACT_FLOOR`]: draw at the floor and label it "exact".
    pub exact: bool,
}

impl RankPoint {
    /// The value to draw on a log axis: the error, or [`EXACT_FLOOR`] when exact; `None` for a
    /// non-finite error (the point is omitted, never drawn as inf).
    pub fn plot_value(&self) -> Option<f64> {
        let v = self.error.value();
        if !v.is_finite() {
            None
        } else {
            Some(v.max(EXACT_FLOOR))
        }
    }
}

/// Parameters that give `method` the matrix rank `rank`: `num_features` (Performer),
/// `num_landmarks` (Nyström), `proj_dim` (Linformer) or `rank` (SVD) set to `rank`; other
/// fields from `base`. Methods without a rank knob (full, band, linear, fmm, …) keep `base`.
pub fn matched_params(method: MethodId, rank: usize, base: &MethodParams) -> MethodParams {
    let mut p = base.clone();
    match method {
        MethodId::Performer => p.num_features = rank,
        MethodId::Nystrom => p.num_landmarks = rank,
        MethodId::Linformer => p.proj_dim = rank,
        MethodId::Svd => p.rank = rank,
        _ => {}
    }
    p
}

/// The plot point of one method result against the exact matrix `exact` and the Eckart–Young
/// curve `curve` (from [`Spectrum::eckart_young`]). `None` when the result has no effective
/// matrix (C8) or no rank bound (full-rank methods).
///
/// # Panics
/// If the result's matrix and `exact` differ in shape (a programming error).
pub fn method_point(
    method: MethodId,
    result: &MethodResult,
    exact: &Array2<f32>,
    curve: &[f64],
) -> Option<RankPoint> {
    let matrix = result.matrix.as_ref()?;
    let (lq, lk) = exact.dim();
    let rank = result.properties.rank_bound?.min(lq.min(lk));
    let error = relative_frobenius(matrix, exact);
    let exact_flag = error.value().is_finite() && error.value() <= EXACT_FLOOR;
    Some(RankPoint {
        method,
        rank,
        error,
        bound: curve.get(rank).copied(),
        exact: exact_flag,
    })
}

/// One method's outcome in [`points_at_rank`]: its point, `None` (no rank bound or no matrix),
/// or the error it returned.
pub type MethodPoint = (MethodId, Result<Option<RankPoint>, AttentionError>);

/// Runs every method of `methods` at matched rank `rank` (see [`matched_params`]) on `head` and
/// returns each one's point (or its error, e.g. Nyström on causal input, or `None` when the
/// method has no rank bound or no matrix). `curve` is the Eckart–Young curve of the exact A.
///
/// # Errors
/// [`AttentionError::OverBudget`] when the exact matrix exceeds the C8 budget.
pub fn points_at_rank(
    head: &HeadInput<'_>,
    rank: usize,
    methods: &[MethodId],
    base: &MethodParams,
    curve: &[f64],
    budget: MatrixBudget,
) -> Result<Vec<MethodPoint>, AttentionError> {
    let (_, exact) = full_attention(head, true, budget)?;
    let exact = exact.unwrap_or_else(|| Array2::zeros((head.seq_len_q(), head.seq_len_kv())));
    Ok(methods
        .iter()
        .map(|&m| {
            let params = matched_params(m, rank, base);
            let point =
                compute(m, &params, head, true, budget).map(|r| method_point(m, &r, &exact, curve));
            (m, point)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captured_energy_and_curve_agree() {
        let sv = [3.0, 2.0, 1.0, 0.0];
        let e = captured_energy_curve(&sv);
        let c = eckart_young_curve(&sv, 10);
        assert_eq!(e.len(), 5);
        assert_eq!(c.len(), 5);
        for r in 0..5 {
            assert!((e[r] + c[r] * c[r] - 1.0).abs() < 1e-12, "r = {r}");
        }
        assert_eq!(eckart_young_curve(&sv, 2).len(), 3);
        assert_eq!(eckart_young_curve(&[0.0, 0.0], 5), vec![0.0, 0.0, 0.0]);
    }
}
