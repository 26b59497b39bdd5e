//! Element-wise activations, in place.

use ndarray::{ArrayRef, Dimension};

/// GELU with the exact Gaussian CDF (Hendrycks & Gimpel, "Gaussian Error Linear Units",
/// arXiv 1606.08415, eq. 1; BERT's and PyTorch's default `"gelu"`), in place.
///
/// ```text
/// gelu(x) = x · Φ(x) = ½ · x · (1 + erf(x / √2))
/// ```
///
/// `erf` is `libm::erff` (correctly rounded to within 1 ulp). Parallel over elements.
///
/// ```
/// let mut x = ndarray::array![0.0_f32, 1.0, -1.0];
/// attnscope::nn::gelu_erf(&mut x);
/// assert!((x[1] - 0.841_344_7).abs() < 1e-6 && (x[2] + 0.158_655_3).abs() < 1e-6);
/// ```
pub fn gelu_erf<D: Dimension>(x: &mut ArrayRef<f32, D>) {
    x.par_mapv_inplace(|v| 0.5 * v * (1.0 + libm::erff(v * std::f32::consts::FRAC_1_SQRT_2)));
}

/// GELU with the tanh approximation (Hendrycks & Gimpel, eq. 2; GPT-2's and Hugging Face's
/// `"gelu_new"` / `"gelu_pytorch_tanh"`), in place.
///
/// ```text
/// gelu(x) ≈ ½ · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))
/// ```
pub fn gelu_tanh<D: Dimension>(x: &mut ArrayRef<f32, D>) {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    x.par_mapv_inplace(|v| 0.5 * v * (1.0 + (SQRT_2_OVER_PI * (v + 0.044_715 * v * v * v)).tanh()));
}

/// `max(x, 0)`, in place.
pub fn relu<D: Dimension>(x: &mut ArrayRef<f32, D>) {
    x.par_mapv_inplace(|v| v.max(0.0));
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array1;

    /// Φ(x) by the f64 series of erf (Abramowitz & Stegun 7.1.5), a slow independent oracle.
    fn gelu_oracle(x: f64) -> f64 {
        let z = x / std::f64::consts::SQRT_2;
        let mut term = z;
        let mut sum = z;
        let mut n = 0.0;
        while term.abs() > 1e-17 * sum.abs().max(1e-300) {
            n += 1.0;
            term *= -z * z / n;
            sum += term / (2.0 * n + 1.0);
            if n > 400.0 {
                break;
            }
        }
        let erf = 2.0 / std::f64::consts::PI.sqrt() * sum;
        0.5 * x * (1.0 + erf)
    }

    #[test]
    fn gelu_erf_matches_series_oracle() {
        let xs = Array1::from_iter((-60..=60).map(|i| i as f32 * 0.1));
        let mut y = xs.clone();
        gelu_erf(&mut y);
        for (&x, &g) in xs.iter().zip(&y) {
            let want = gelu_oracle(f64::from(x));
            assert!(
                (f64::from(g) - want).abs() < 2e-6 * (1.0 + want.abs()),
                "gelu({x}) = {g}, want {want}"
            );
        }
    }

    #[test]
    fn gelu_tanh_is_close_to_exact_and_relu_clamps() {
        let xs = Array1::from_iter((-40..=40).map(|i| i as f32 * 0.1));
        let (mut exact, mut approx, mut r) = (xs.clone(), xs.clone(), xs.clone());
        gelu_erf(&mut exact);
        gelu_tanh(&mut approx);
        relu(&mut r);
        // The tanh form differs from the exact one by < 1e-3 on [-4, 4] (known bound ≈ 4.7e-4).
        for (a, b) in exact.iter().zip(&approx) {
            assert!((a - b).abs() < 1e-3, "{a} vs {b}");
        }
        assert_ne!(exact, approx);
        assert!(r.iter().zip(&xs).all(|(&r, &x)| r == x.max(0.0)));
    }
}
