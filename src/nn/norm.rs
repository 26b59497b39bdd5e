//! Layer normalisation.

use ndarray::{ArrayRef1, ArrayRef2, Axis};
use rayon::prelude::*;

use super::{NnError, fmt_dims};

/// Layer normalisation of every row, in place (Ba, Kiros & Hinton, "Layer Normalization",
/// arXiv 1607.06450, eq. 4; PyTorch's `nn.LayerNorm` over the last axis).
///
/// ```text
/// μ = mean(x),  σ² = mean((x − μ)²)            (biased variance)
/// y = (x − μ) / √(σ² + eps) · gamma + beta
/// ```
///
/// Mean and variance are accumulated in f64.
///
/// # Shapes
/// `x [rows, features]`, `gamma [features]`, `beta [features]`.
///
/// # Errors
/// [`NnError::Shape`] when `gamma` or `beta` does not have `features` entries.
///
/// # Complexity
/// O(rows·features); rows in parallel, each row by one task (deterministic).
///
/// ```
/// use ndarray::array;
/// let mut x = array![[1.0_f32, 3.0]];
/// attnscope::nn::layer_norm(&mut x, &array![1.0, 1.0], &array![0.0, 10.0], 0.0).unwrap();
/// assert_eq!(x, array![[-1.0, 11.0]]);
/// ```
pub fn layer_norm(
    x: &mut ArrayRef2<f32>,
    gamma: &ArrayRef1<f32>,
    beta: &ArrayRef1<f32>,
    eps: f32,
) -> Result<(), NnError> {
    let features = x.ncols();
    for (name, p) in [("layer_norm gamma", gamma), ("layer_norm beta", beta)] {
        if p.len() != features {
            return Err(NnError::Shape {
                op: name,
                expected: format!("[{features}] (features of x {})", fmt_dims(x.shape())),
                found: fmt_dims(p.shape()),
            });
        }
    }
    if features == 0 {
        return Ok(());
    }
    let n = features as f64;
    let eps = f64::from(eps);
    x.axis_iter_mut(Axis(0))
        .into_par_iter()
        .for_each(|mut row| {
            let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
            let var = row
                .iter()
                .map(|&v| (f64::from(v) - mean).powi(2))
                .sum::<f64>()
                / n;
            let inv_std = 1.0 / (var + eps).sqrt();
            for ((v, &g), &b) in row.iter_mut().zip(gamma).zip(beta) {
                *v = ((f64::from(*v) - mean) * inv_std) as f32 * g + b;
            }
        });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, Array2, array};

    #[test]
    fn layer_norm_matches_hand_computed_rows() {
        // Row [1, 2, 3, 4]: mean 2.5, variance 1.25.
        let mut x = array![[1.0_f32, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 5.0]];
        let gamma = array![1.0_f32, 2.0, 1.0, 1.0];
        let beta = array![0.0_f32, 0.0, 0.0, 1.0];
        layer_norm(&mut x, &gamma, &beta, 1e-12).unwrap();
        let s = 1.25_f64.sqrt();
        let want = [-1.5 / s, 2.0 * -0.5 / s, 0.5 / s, 1.5 / s + 1.0];
        for (got, want) in x.row(0).iter().zip(want) {
            assert!((f64::from(*got) - want).abs() < 1e-6, "{got} vs {want}");
        }
        // A constant row normalises to beta (variance 0, eps keeps it finite).
        assert_eq!(x.row(1).to_vec(), vec![0.0, 0.0, 0.0, 1.0]);
    }

    #[test]
    fn layer_norm_rows_have_zero_mean_unit_variance_and_reject_bad_params() {
        let mut x = Array2::from_shape_fn((17, 33), |(i, j)| ((i * 7 + j * 3) % 11) as f32 - 4.0);
        let ones = Array1::<f32>::ones(33);
        let zeros = Array1::<f32>::zeros(33);
        layer_norm(&mut x, &ones, &zeros, 1e-12).unwrap();
        for row in x.rows() {
            let mean: f64 = row.iter().map(|&v| f64::from(v)).sum::<f64>() / 33.0;
            let var: f64 = row.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / 33.0;
            assert!(
                mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5,
                "{mean} {var}"
            );
        }
        let err = layer_norm(&mut x, &Array1::ones(32), &zeros, 1e-12).unwrap_err();
        assert!(err.to_string().contains("layer_norm gamma"), "{err}");
    }
}
