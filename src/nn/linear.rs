//! Fully connected (affine) layer on faer's GEMM.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use ndarray::{Array1, Array2, ArrayRef2};

use super::{NnError, fmt_dims};

/// An affine map `y = x Wᵀ + b`, PyTorch's `nn.Linear`.
///
/// # Shapes
/// `weight [out_features, in_features]` (row-major, owned), `bias [out_features]` (optional);
/// [`forward`](Linear::forward) maps `x [rows, in_features]` to `[rows, out_features]`.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Array2<f32>,
    bias: Option<Array1<f32>>,
}

impl Linear {
    /// A layer from PyTorch's `[out_features, in_features]` weight and an optional bias.
    ///
    /// # Errors
    /// [`NnError::Shape`] when the bias length is not `out_features`.
    pub fn new(weight: Array2<f32>, bias: Option<Array1<f32>>) -> Result<Self, NnError> {
        if let Some(b) = &bias
            && b.len() != weight.nrows()
        {
            return Err(NnError::Shape {
                op: "linear bias",
                expected: format!(
                    "[{}] (out_features of weight {})",
                    weight.nrows(),
                    fmt_dims(weight.shape())
                ),
                found: fmt_dims(b.shape()),
            });
        }
        let weight = if weight.is_standard_layout() {
            weight
        } else {
            weight.as_standard_layout().into_owned()
        };
        Ok(Self { weight, bias })
    }

    /// A layer from a weight stored as `[in_features, out_features]` (GPT-2's `Conv1D`,
    /// `y = x W + b`); the weight is transposed once here.
    ///
    /// # Errors
    /// As [`Linear::new`].
    pub fn from_in_out(weight: Array2<f32>, bias: Option<Array1<f32>>) -> Result<Self, NnError> {
        Self::new(
            weight.reversed_axes().as_standard_layout().into_owned(),
            bias,
        )
    }

    /// Input width.
    pub fn in_features(&self) -> usize {
        self.weight.ncols()
    }

    /// Output width.
    pub fn out_features(&self) -> usize {
        self.weight.nrows()
    }

    /// The weight, `[out_features, in_features]`.
    pub fn weight(&self) -> &Array2<f32> {
        &self.weight
    }

    /// The bias, `[out_features]`, if any.
    pub fn bias(&self) -> Option<&Array1<f32>> {
        self.bias.as_ref()
    }

    /// `y = x Wᵀ + b` with faer's GEMM on all rayon threads.
    ///
    /// ```text
    /// y[i, o] = b[o] + Σ_c x[i, c] · W[o, c]
    /// ```
    ///
    /// # Shapes
    /// `x [rows, in_features]` (any layout; copied to row-major if needed) → `[rows,
    /// out_features]`.
    ///
    /// # Errors
    /// [`NnError::Shape`] when `x` has the wrong width.
    ///
    /// # Complexity
    /// `2·rows·in·out` FLOPs. Deterministic for any thread count (faer splits the output).
    ///
    /// ```
    /// use ndarray::array;
    /// use attnscope::nn::Linear;
    /// let layer = Linear::new(array![[1.0_f32, 2.0], [0.0, -1.0]], Some(array![0.5, 0.0])).unwrap();
    /// assert_eq!(layer.forward(&array![[3.0_f32, 4.0]]).unwrap(), array![[11.5, -4.0]]);
    /// ```
    pub fn forward(&self, x: &ArrayRef2<f32>) -> Result<Array2<f32>, NnError> {
        self.forward_with(x, Par::rayon(0))
    }

    /// [`forward`](Linear::forward) with an explicit faer parallelism (`Par::Seq` inside
    /// tasks that already run in parallel).
    ///
    /// # Errors
    /// [`NnError::Shape`] when `x` has the wrong width.
    pub fn forward_with(&self, x: &ArrayRef2<f32>, par: Par) -> Result<Array2<f32>, NnError> {
        let (rows, width) = x.dim();
        if width != self.in_features() {
            return Err(NnError::Shape {
                op: "linear",
                expected: format!("[*, {}]", self.in_features()),
                found: fmt_dims(x.shape()),
            });
        }
        let out_features = self.out_features();
        let mut out = Array2::<f32>::zeros((rows, out_features));
        if let Some(bias) = &self.bias {
            for mut row in out.rows_mut() {
                row.assign(bias);
            }
        }
        if rows == 0 || width == 0 || out_features == 0 {
            return Ok(out);
        }
        let x = x.as_standard_layout();
        let xs = x.as_slice().expect("standard layout is contiguous");
        let ws = self
            .weight
            .as_slice()
            .expect("the weight is kept in standard layout");
        let lhs = MatRef::from_row_major_slice(xs, rows, width);
        let rhs = MatRef::from_row_major_slice(ws, out_features, width).transpose();
        let accum = if self.bias.is_some() {
            Accum::Add
        } else {
            Accum::Replace
        };
        let dst = MatMut::from_row_major_slice_mut(
            out.as_slice_mut().expect("fresh array is contiguous"),
            rows,
            out_features,
        );
        crate::with_faer(|| matmul(dst, accum, lhs, rhs, 1.0, par));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array, ShapeBuilder};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(rows: usize, cols: usize, seed: u64) -> Array2<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Array2::from_shape_fn((rows, cols), |_| rng.random_range(-1.0..1.0))
    }

    /// f64 oracle of `x Wᵀ + b`.
    fn oracle(x: &Array2<f32>, w: &Array2<f32>, b: Option<&Array1<f32>>) -> Array2<f64> {
        Array::from_shape_fn((x.nrows(), w.nrows()), |(i, o)| {
            let dot: f64 = x
                .row(i)
                .iter()
                .zip(w.row(o))
                .map(|(&a, &c)| f64::from(a) * f64::from(c))
                .sum();
            dot + b.map_or(0.0, |b| f64::from(b[o]))
        })
    }

    fn assert_close(got: &Array2<f32>, want: &Array2<f64>, tol: f64, label: &str) {
        assert_eq!(got.dim(), want.dim(), "{label}: shape");
        for ((idx, &g), &w) in got.indexed_iter().zip(want.iter()) {
            assert!(
                (f64::from(g) - w).abs() <= tol * (1.0 + w.abs()),
                "{label}: at {idx:?} got {g}, want {w}"
            );
        }
    }

    #[test]
    fn linear_matches_f64_oracle_on_odd_shapes() {
        for (rows, inf, outf) in [(1, 1, 1), (7, 13, 5), (31, 64, 97), (128, 384, 384)] {
            let x = random(rows, inf, 1);
            let w = random(outf, inf, 2);
            let b = random(1, outf, 3).row(0).to_owned();
            let tol = 1e-6 * (inf as f64).sqrt() * 4.0;
            let with_bias = Linear::new(w.clone(), Some(b.clone())).unwrap();
            assert_close(
                &with_bias.forward(&x).unwrap(),
                &oracle(&x, &w, Some(&b)),
                tol,
                &format!("bias {rows}x{inf}->{outf}"),
            );
            let no_bias = Linear::new(w.clone(), None).unwrap();
            assert_close(
                &no_bias.forward(&x).unwrap(),
                &oracle(&x, &w, None),
                tol,
                &format!("no bias {rows}x{inf}->{outf}"),
            );
        }
    }

    #[test]
    fn linear_accepts_transposed_and_strided_inputs() {
        let x = random(9, 6, 4);
        let w = random(5, 6, 5);
        let layer = Linear::new(w.clone(), None).unwrap();
        let want = layer.forward(&x).unwrap();
        // The same values in column-major memory.
        let mut fortran = Array2::<f32>::zeros((9, 6).f());
        fortran.assign(&x);
        assert_eq!(layer.forward(&fortran).unwrap(), want);
        // A strided view: every other row of a taller matrix.
        let mut tall = Array2::<f32>::zeros((18, 6));
        for (i, row) in x.rows().into_iter().enumerate() {
            tall.row_mut(2 * i).assign(&row);
        }
        let strided = tall.slice(ndarray::s![..;2, ..]);
        assert_eq!(layer.forward(&strided).unwrap(), want);
        // A weight given transposed (Conv1D layout) gives the same map.
        let conv = Linear::from_in_out(w.t().to_owned(), None).unwrap();
        assert_eq!(conv.forward(&x).unwrap(), want);
    }

    #[test]
    fn linear_is_bitwise_identical_sequential_and_parallel() {
        let x = random(128, 384, 6);
        let layer = Linear::new(random(1536, 384, 7), Some(Array1::zeros(1536))).unwrap();
        let seq = layer.forward_with(&x, Par::Seq).unwrap();
        let par = layer.forward_with(&x, Par::rayon(2)).unwrap();
        assert_eq!(seq, par);
    }

    #[test]
    fn linear_rejects_wrong_widths_and_handles_empty_inputs() {
        let layer = Linear::new(random(3, 4, 8), Some(Array1::ones(3))).unwrap();
        let err = layer.forward(&random(2, 5, 9)).unwrap_err();
        assert!(
            err.to_string().contains("expected [*, 4], got [2, 5]"),
            "{err}"
        );
        let err = Linear::new(random(3, 4, 8), Some(Array1::ones(2))).unwrap_err();
        assert!(err.to_string().contains("linear bias"), "{err}");
        let empty = layer.forward(&Array2::<f32>::zeros((0, 4))).unwrap();
        assert_eq!(empty.dim(), (0, 3));
        let zero_in = Linear::new(
            Array2::zeros((2, 0)),
            Some(Array1::from_vec(vec![1.0, 2.0])),
        )
        .unwrap()
        .forward(&Array2::<f32>::zeros((3, 0)))
        .unwrap();
        assert_eq!(zero_in, ndarray::array![[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]]);
    }
}
