//! Singular value decompositions through faer (no hand-written SVD), in f64.
//!
//! ```text
//! A = U Σ Vᵀ,  σ_1 ≥ σ_2 ≥ … ≥ 0;   A_r = Σ_{t<r} σ_t u_t v_tᵀ
//! ‖A − A_r‖_F = sqrt(Σ_{t≥r} σ_t²)   (Eckart–Young–Mirsky: the best rank-r approximation)
//! ```
//!
//! # References
//! Eckart & Young, "The approximation of one matrix by another of lower rank",
//! Psychometrika 1(3), 1936.

use faer::Mat;
use ndarray::Array2;

use super::AnalysisError;
use crate::with_faer;

/// A thin SVD `A = U Σ Vᵀ` of an `[m, n]` matrix, k = min(m, n).
#[derive(Debug, Clone)]
pub struct SvdFactors {
    /// Left singular vectors `[m, k]`.
    pub u: Array2<f64>,
    /// Singular values, non-increasing, length k.
    pub singular_values: Vec<f64>,
    /// Right singular vectors `[n, k]`.
    pub v: Array2<f64>,
}

fn to_faer(a: &Array2<f32>) -> Mat<f64> {
    Mat::from_fn(a.nrows(), a.ncols(), |i, j| f64::from(a[[i, j]]))
}

fn check_finite(a: &Array2<f32>) -> Result<(), AnalysisError> {
    if a.iter().all(|x| x.is_finite()) {
        Ok(())
    } else {
        Err(AnalysisError::NonFinite("matrix passed to the SVD"))
    }
}

/// Thin SVD of `a` (f64 internally).
///
/// # Errors
/// [`AnalysisError::NonFinite`] when `a` holds NaN/inf; [`AnalysisError::Svd`] when faer does
/// not converge.
///
/// # Complexity
/// O(m·n·min(m, n)) time, O((m + n)·min(m, n)) memory. Deterministic for a fixed thread count
/// (faer's global parallelism).
pub fn thin_svd(a: &Array2<f32>) -> Result<SvdFactors, AnalysisError> {
    check_finite(a)?;
    let (m, n) = a.dim();
    if m == 0 || n == 0 {
        return Ok(SvdFactors {
            u: Array2::zeros((m, 0)),
            singular_values: Vec::new(),
            v: Array2::zeros((n, 0)),
        });
    }
    let mat = to_faer(a);
    let svd = with_faer(|| mat.thin_svd()).map_err(|e| AnalysisError::Svd(format!("{e:?}")))?;
    let k = m.min(n);
    let (u, v, s) = (svd.U(), svd.V(), svd.S().column_vector());
    let u = Array2::from_shape_fn((m, k), |(i, t)| u[(i, t)]);
    let v = Array2::from_shape_fn((n, k), |(j, t)| v[(j, t)]);
    let singular_values = (0..k).map(|t| s[t]).collect();
    Ok(SvdFactors {
        u,
        singular_values,
        v,
    })
}

/// Thin SVD of an f64 matrix (no rounding to f32 on the way in): used by iterative analyses
/// such as the alternating band + low-rank split, whose monotonicity needs f64 throughout.
///
/// # Errors
/// As [`thin_svd`].
///
/// # Complexity
/// As [`thin_svd`].
pub fn thin_svd_f64(a: &Array2<f64>) -> Result<SvdFactors, AnalysisError> {
    if !a.iter().all(|x| x.is_finite()) {
        return Err(AnalysisError::NonFinite("matrix passed to the SVD"));
    }
    let (m, n) = a.dim();
    if m == 0 || n == 0 {
        return Ok(SvdFactors {
            u: Array2::zeros((m, 0)),
            singular_values: Vec::new(),
            v: Array2::zeros((n, 0)),
        });
    }
    let mat = Mat::from_fn(m, n, |i, j| a[[i, j]]);
    let svd = with_faer(|| mat.thin_svd()).map_err(|e| AnalysisError::Svd(format!("{e:?}")))?;
    let k = m.min(n);
    let (u, v, s) = (svd.U(), svd.V(), svd.S().column_vector());
    Ok(SvdFactors {
        u: Array2::from_shape_fn((m, k), |(i, t)| u[(i, t)]),
        singular_values: (0..k).map(|t| s[t]).collect(),
        v: Array2::from_shape_fn((n, k), |(j, t)| v[(j, t)]),
    })
}

/// Singular values of `a`, non-increasing (f64).
///
/// # Errors
/// As [`thin_svd`].
pub fn singular_values(a: &Array2<f32>) -> Result<Vec<f64>, AnalysisError> {
    check_finite(a)?;
    if a.is_empty() {
        return Ok(Vec::new());
    }
    let mat = to_faer(a);
    with_faer(|| mat.singular_values()).map_err(|e| AnalysisError::Svd(format!("{e:?}")))
}

/// Below this size (min(rows, cols)) [`truncated_svd`] uses the exact thin SVD.
pub const RANDOMIZED_MIN_SIDE: usize = 384;

/// Leading `rank` singular triplets of `a`: the exact thin SVD for small matrices, otherwise a
/// randomized range finder (Halko, Martinsson & Tropp 2011, Alg. 4.4 with q = 2 power
/// iterations and 10 oversamples; seeded Gaussian test matrix, so results are deterministic).
/// The returned factors hold `min(rank + 10, min(m, n))` triplets when randomized (all when
/// exact); use the Frobenius norm of `a`, not these values, for total energy.
///
/// ```text
/// Y = (A Aᵀ)^q A Ω,  Q = qr(Y),  B = Qᵀ A = Ũ Σ Vᵀ,  U = Q Ũ
/// ```
///
/// # Errors
/// As [`thin_svd`].
///
/// # Complexity
/// O(m·n·(rank + 10)·(2q + 2)) time instead of O(m·n·min(m, n)); memory O((m + n)(rank + 10))
/// plus an f32 copy of `a` (the randomized path computes in f32).
///
/// # References
/// Halko, Martinsson, Tropp, "Finding structure with randomness", SIAM Review 53(2), 2011.
pub fn truncated_svd(a: &Array2<f32>, rank: usize, seed: u64) -> Result<SvdFactors, AnalysisError> {
    let (m, n) = a.dim();
    let side = m.min(n);
    let l = (rank + 10).min(side);
    if side <= RANDOMIZED_MIN_SIDE || 2 * l >= side {
        return thin_svd(a);
    }
    check_finite(a)?;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let omega = Mat::<f32>::from_fn(n, l, |_, _| StandardNormal.sample(&mut rng));
    // f32 throughout: the leading singular triplets of an attention far field are far above
    // f32 rounding, and f32 halves the memory traffic of the O(m·n·l) products.
    let mat = Mat::<f32>::from_fn(m, n, |i, j| a[[i, j]]);
    let factors = with_faer(|| -> Result<SvdFactors, AnalysisError> {
        let mut q = (&mat * &omega).qr().compute_thin_Q();
        for _ in 0..2 {
            let z = (mat.transpose() * &q).qr().compute_thin_Q();
            q = (&mat * &z).qr().compute_thin_Q();
        }
        let b = q.transpose() * &mat;
        let svd = b
            .thin_svd()
            .map_err(|e| AnalysisError::Svd(format!("{e:?}")))?;
        let u = &q * svd.U();
        let (v, s) = (svd.V(), svd.S().column_vector());
        Ok(SvdFactors {
            u: Array2::from_shape_fn((m, l), |(i, t)| f64::from(u[(i, t)])),
            singular_values: (0..l).map(|t| f64::from(s[t])).collect(),
            v: Array2::from_shape_fn((n, l), |(j, t)| f64::from(v[(j, t)])),
        })
    })?;
    Ok(factors)
}

impl SvdFactors {
    /// The rank-`rank` truncation `Σ_{t<rank} σ_t u_t v_tᵀ` as f32 `[m, n]`; `rank` is clamped
    /// to the number of singular values.
    pub fn reconstruct(&self, rank: usize) -> Array2<f32> {
        let r = rank.min(self.singular_values.len());
        let (m, n) = (self.u.nrows(), self.v.nrows());
        let mut us = self.u.slice(ndarray::s![.., ..r]).to_owned();
        for (t, mut col) in us.columns_mut().into_iter().enumerate() {
            col *= self.singular_values[t];
        }
        let vt = self.v.slice(ndarray::s![.., ..r]);
        let out = us.dot(&vt.t());
        debug_assert_eq!(out.dim(), (m, n));
        out.mapv(|x| x as f32)
    }

    /// The rank-`rank` truncation in f64 `[m, n]` (see [`SvdFactors::reconstruct`]).
    pub fn reconstruct_f64(&self, rank: usize) -> Array2<f64> {
        let r = rank.min(self.singular_values.len());
        let mut us = self.u.slice(ndarray::s![.., ..r]).to_owned();
        for (t, mut col) in us.columns_mut().into_iter().enumerate() {
            col *= self.singular_values[t];
        }
        us.dot(&self.v.slice(ndarray::s![.., ..r]).t())
    }

    /// Eckart–Young error `sqrt(Σ_{t≥rank} σ_t²)` of the rank-`rank` truncation.
    pub fn tail_norm(&self, rank: usize) -> f64 {
        self.singular_values
            .iter()
            .skip(rank)
            .map(|s| s * s)
            .sum::<f64>()
            .sqrt()
    }

    /// Share of `Σ σ_t²` captured by the first `rank` singular values (1 for a zero matrix).
    pub fn captured_energy(&self, rank: usize) -> f64 {
        let total: f64 = self.singular_values.iter().map(|s| s * s).sum();
        if total == 0.0 {
            return 1.0;
        }
        let head: f64 = self.singular_values.iter().take(rank).map(|s| s * s).sum();
        head / total
    }
}

/// A rank clamped to `min(rows, cols)` (E12), with a note when clamping happened.
pub fn clamp_rank(rank: usize, rows: usize, cols: usize) -> (usize, Option<String>) {
    let max = rows.min(cols);
    if rank > max {
        (
            max,
            Some(format!(
                "rank {rank} clamped to min(seq_len_q, seq_len_kv) = {max}"
            )),
        )
    } else {
        (rank, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconstructs_input_at_full_rank() {
        let a = ndarray::array![[1.0_f32, 2.0, 0.5], [0.0, -1.0, 3.0]];
        let f = thin_svd(&a).unwrap();
        let back = f.reconstruct(2);
        let tol = 10.0 * f32::EPSILON * 6.0 * 3.0;
        for (x, y) in back.iter().zip(a.iter()) {
            assert!((x - y).abs() < tol, "{x} vs {y}");
        }
        assert!(f.singular_values[0] >= f.singular_values[1]);
        assert!(f.tail_norm(2) < 1e-12);
    }

    #[test]
    fn e12_rank_larger_than_matrix_is_clamped() {
        let (r, note) = clamp_rank(6, 3, 3);
        assert_eq!(r, 3);
        assert!(note.unwrap().contains("clamped"));
        let (r, note) = clamp_rank(4, 3, 5);
        assert_eq!(r, 3);
        assert!(note.is_some());
        assert_eq!(clamp_rank(2, 3, 5), (2, None));
    }

    #[test]
    fn randomized_truncation_matches_eckart_young_on_a_decaying_spectrum() {
        use rand::SeedableRng;
        use rand_distr::{Distribution, StandardNormal};
        // A 500×460 matrix with singular values 0.8^t: the regime of attention far fields.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let (m, n, k) = (500, 460, 60);
        let g = |r: usize, c: usize, rng: &mut rand_chacha::ChaCha8Rng| {
            Array2::<f64>::from_shape_fn((r, c), |_| StandardNormal.sample(rng))
        };
        let (x, y) = (g(m, k, &mut rng), g(n, k, &mut rng));
        let mut xs = x.clone();
        for (t, mut col) in xs.columns_mut().into_iter().enumerate() {
            col *= 0.8_f64.powi(t as i32) / (m as f64).sqrt();
        }
        let a = xs.dot(&y.t()).mapv(|v| (v / (n as f64).sqrt()) as f32);
        let exact = thin_svd(&a).unwrap();
        for rank in [1, 8, 16] {
            let fast = truncated_svd(&a, rank, 0).unwrap();
            assert!(
                fast.singular_values.len() < exact.singular_values.len(),
                "randomized path taken"
            );
            let best = exact.tail_norm(rank);
            let got: f64 = (&fast.reconstruct(rank) - &a)
                .iter()
                .map(|d| f64::from(*d).powi(2))
                .sum::<f64>()
                .sqrt();
            assert!(
                got <= best * 1.01 + 1e-6,
                "rank {rank}: {got} vs optimum {best}"
            );
            for t in 0..rank {
                let rel = (fast.singular_values[t] - exact.singular_values[t]).abs()
                    / exact.singular_values[t];
                assert!(
                    rel < 1e-3,
                    "σ_{t}: {} vs {}",
                    fast.singular_values[t],
                    exact.singular_values[t]
                );
            }
        }
        let again = truncated_svd(&a, 8, 0).unwrap();
        assert_eq!(
            again.singular_values,
            truncated_svd(&a, 8, 0).unwrap().singular_values
        );
    }

    #[test]
    fn nan_is_refused_not_decomposed() {
        let a = ndarray::array![[1.0_f32, f32::NAN]];
        assert!(matches!(thin_svd(&a), Err(AnalysisError::NonFinite(_))));
    }
}
