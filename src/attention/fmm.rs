//! FMMformer: a blend of the banded near field and a low-rank feature-map far field.
//!
//! ```text
//! Â = w1·D + w2·Σ_l λ_l·N(φ_l(Q) φ_l(K)ᵀ ⊙ M)          O = Â V
//! D = band_b softmax (see band.rs);  N = row normalisation or ×1/√d (see linear.rs)
//! defaults: w1 = w2 = 0.5, λ_l = 1/kernels
//! fit: (w1, w2) = argmin ‖A − w1·D − w2·F‖_F   (F = Σ_l λ_l far_l; closed-form 2×2 solve)
//! ```
//!
//! # References
//! Nguyen, Suliafu, Osher, Chen, Wang, "FMMformer", NeurIPS 2021 (arXiv 2108.02347), eq. (7)
//! and §3; blend modes of the official code are special cases (see `fmm_lowrank.md` §1.4).

use ndarray::{Array2, Zip};

use super::method::MethodParams;
use super::{AttentionError, HeadInput, MatrixBudget, band, dense, linear};

/// The per-kernel far-field weights λ_l: the given ones, or 1/kernels each.
pub fn lambdas(params: &MethodParams) -> Vec<f32> {
    let kernels = params.feature_maps.len().max(1);
    match &params.lambdas {
        Some(l) if l.len() == kernels => l.clone(),
        _ => vec![1.0 / kernels as f32; kernels],
    }
}

/// Checks FMMformer parameters.
///
/// # Errors
/// [`AttentionError::InvalidParameter`] when there are no or more than 3 feature maps, when
/// `lambdas` has the wrong length, or a weight is not finite.
pub fn validate(params: &MethodParams) -> Result<(), AttentionError> {
    let invalid =
        |param: &'static str, value: String, reason: &str| AttentionError::InvalidParameter {
            method: "fmm",
            param,
            value,
            reason: reason.into(),
        };
    let kernels = params.feature_maps.len();
    if !(1..=3).contains(&kernels) {
        return Err(invalid(
            "feature-map",
            kernels.to_string(),
            "1 to 3 feature maps",
        ));
    }
    if let Some(l) = &params.lambdas
        && l.len() != kernels
    {
        return Err(invalid(
            "lambdas",
            format!("{l:?}"),
            "one weight per feature map",
        ));
    }
    for (name, w) in [("w1", params.w1), ("w2", params.w2)] {
        if !w.is_finite() {
            return Err(invalid(name, w.to_string(), "a finite number"));
        }
    }
    Ok(())
}

/// The far-field output `Σ_l λ_l·linear_l(Q, K, V)`, `[seq_len_q, value_dim]`.
///
/// # Complexity
/// O(kernels·(Lq + Lk)·d·d_v); no L×L buffer.
pub fn far_attention(head: &HeadInput<'_>, params: &MethodParams) -> Array2<f32> {
    let mut out = head.zero_output();
    for (map, lambda) in params.feature_maps.iter().zip(lambdas(params)) {
        let part = linear::linear_attention(head, *map, params.normalization);
        out.scaled_add(lambda, &part);
    }
    out
}

/// The far-field effective matrix `F = Σ_l λ_l N(φ_l(Q)φ_l(K)ᵀ ⊙ M)`.
///
/// # Errors
/// [`AttentionError::OverBudget`] above the C8 budget.
pub fn far_matrix(
    head: &HeadInput<'_>,
    params: &MethodParams,
    budget: MatrixBudget,
) -> Result<Array2<f32>, AttentionError> {
    budget.check(head.seq_len_q(), head.seq_len_kv())?;
    let mut f = Array2::<f32>::zeros((head.seq_len_q(), head.seq_len_kv()));
    for (map, lambda) in params.feature_maps.iter().zip(lambdas(params)) {
        let part = linear::linear_matrix(head, *map, params.normalization, budget)?;
        f.scaled_add(lambda, &part);
    }
    Ok(f)
}

/// FMMformer output `w1·near + w2·far`.
///
/// # Shapes
/// See [`HeadInput`]; returns `[seq_len_q, value_dim]`.
///
/// # Complexity
/// O(Lq·(b + kernels·d)·d_v + Lk·kernels·d·d_v); no L×L buffer. Deterministic.
///
/// ```
/// use attnscope::attention::{HeadInput, MethodParams, fmm::fmm_attention};
/// // Q = K = 0 and V = [1, 3]: near and far are both the mean, so the blend is too.
/// let z = ndarray::Array2::<f32>::zeros((2, 1));
/// let v = ndarray::array![[1.0_f32], [3.0]];
/// let head = HeadInput::new(z.view(), z.view(), v.view(), None, false).unwrap();
/// let o = fmm_attention(&head, &MethodParams::default());
/// assert!((o[[1, 0]] - 2.0).abs() < 1e-5);
/// ```
pub fn fmm_attention(head: &HeadInput<'_>, params: &MethodParams) -> Array2<f32> {
    let mut out = band::band_attention(head, params.bandwidth);
    out.mapv_inplace(|x| x * params.w1);
    out.scaled_add(params.w2, &far_attention(head, params));
    out
}

/// FMMformer effective matrix `w1·D + w2·F`.
///
/// # Errors
/// [`AttentionError::OverBudget`] above the C8 budget.
pub fn fmm_matrix(
    head: &HeadInput<'_>,
    params: &MethodParams,
    budget: MatrixBudget,
) -> Result<Array2<f32>, AttentionError> {
    let mut m = band::band_matrix(head, params.bandwidth, budget)?;
    m.mapv_inplace(|x| x * params.w1);
    m.scaled_add(params.w2, &far_matrix(head, params, budget)?);
    Ok(m)
}

/// Least-squares `(w1, w2)` minimising `‖A − w1·D − w2·F‖_F` against the exact matrix A,
/// solving the 2×2 normal equations in f64. When D and F are (numerically) collinear, fits
/// `w1` alone and returns `w2 = 0`.
///
/// # Errors
/// [`AttentionError::OverBudget`]: the fit needs A, D and F materialised.
pub fn fit_weights(
    head: &HeadInput<'_>,
    params: &MethodParams,
    budget: MatrixBudget,
) -> Result<(f32, f32), AttentionError> {
    let (_, a) = dense::full_attention(head, true, budget)?;
    let a = a.unwrap_or_else(|| Array2::zeros((head.seq_len_q(), head.seq_len_kv())));
    let d = band::band_matrix(head, params.bandwidth, budget)?;
    let f = far_matrix(head, params, budget)?;
    Ok(solve_blend(&a, &d, &f))
}

/// Solves the 2×2 least-squares blend `A ≈ w1·D + w2·F` (see [`fit_weights`]).
pub fn solve_blend(a: &Array2<f32>, d: &Array2<f32>, f: &Array2<f32>) -> (f32, f32) {
    let (mut dd, mut df, mut ff, mut da, mut fa) = (0.0_f64, 0.0, 0.0, 0.0, 0.0);
    Zip::from(a).and(d).and(f).for_each(|&a, &d, &f| {
        let (a, d, f) = (f64::from(a), f64::from(d), f64::from(f));
        dd += d * d;
        df += d * f;
        ff += f * f;
        da += d * a;
        fa += f * a;
    });
    let det = dd * ff - df * df;
    if det.abs() > 1e-12 * (dd * ff).max(f64::MIN_POSITIVE) && det.is_finite() {
        (
            ((da * ff - fa * df) / det) as f32,
            ((dd * fa - df * da) / det) as f32,
        )
    } else if dd > 0.0 {
        ((da / dd) as f32, 0.0)
    } else if ff > 0.0 {
        (0.0, (fa / ff) as f32)
    } else {
        (0.0, 0.0)
    }
}
