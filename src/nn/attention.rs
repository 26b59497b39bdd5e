//! Multi-head softmax attention on the crate's exact kernel.

use ndarray::{Array2, ArrayRef2, s};
use rayon::prelude::*;

use super::{NnError, fmt_dims};
use crate::attention::dense::full_attention;
use crate::attention::{HeadInput, MatrixBudget};

/// Multi-head scaled dot-product attention of already projected queries, keys and values
/// (Vaswani et al., "Attention Is All You Need", arXiv 1706.03762, eq. 1 and §3.2.2), each
/// head through [`full_attention`] (exact, online softmax, SPEC C1/C3 masking).
///
/// ```text
/// O_h = softmax(scale · Q_h K_hᵀ [⊙ causal mask]) V_h      for each head h
/// O   = [O_0 | O_1 | … | O_{H−1}]                            (concatenated columns)
/// ```
///
/// # Shapes
/// `q [seq_len_q, num_heads·head_dim]`, `k [seq_len_kv, num_heads·head_dim]`,
/// `v [seq_len_kv, num_heads·value_dim]`; head `h` is the column block `h·head_dim ..`.
/// Output `[seq_len_q, num_heads·value_dim]`. `scale = None` means `1/√head_dim` (C5).
///
/// # Errors
/// [`NnError::Shape`] when a width is not a multiple of `num_heads`, `num_heads` is 0, or
/// lengths disagree; [`NnError::Attention`] for a non-finite scale.
///
/// # Complexity
/// O(num_heads·Lq·Lk·(head_dim + value_dim)); no L×L matrix is built. Heads run in parallel
/// (each one's row blocks nest); deterministic for any thread count.
///
/// ```
/// use ndarray::array;
/// // Two heads of width 1; each query sees two keys with equal scores: the mean of the values.
/// let q = array![[0.0_f32, 0.0]];
/// let k = array![[1.0_f32, 2.0], [1.0, 2.0]];
/// let v = array![[1.0_f32, 10.0], [3.0, 30.0]];
/// let out = attnscope::nn::multi_head_attention(&q, &k, &v, 2, None, false).unwrap();
/// assert_eq!(out, array![[2.0, 20.0]]);
/// ```
pub fn multi_head_attention(
    q: &ArrayRef2<f32>,
    k: &ArrayRef2<f32>,
    v: &ArrayRef2<f32>,
    num_heads: usize,
    scale: Option<f32>,
    causal: bool,
) -> Result<Array2<f32>, NnError> {
    let shapes = || {
        format!(
            "q {}, k {}, v {}",
            fmt_dims(q.shape()),
            fmt_dims(k.shape()),
            fmt_dims(v.shape())
        )
    };
    if num_heads == 0
        || !q.ncols().is_multiple_of(num_heads)
        || !v.ncols().is_multiple_of(num_heads)
        || q.ncols() != k.ncols()
        || k.nrows() != v.nrows()
    {
        return Err(NnError::Shape {
            op: "multi_head_attention",
            expected: format!(
                "q and k of equal width, k and v of equal length, widths divisible by {num_heads} heads"
            ),
            found: shapes(),
        });
    }
    let head_dim = q.ncols() / num_heads;
    let value_dim = v.ncols() / num_heads;
    let outputs: Vec<Array2<f32>> = (0..num_heads)
        .into_par_iter()
        .map(|h| {
            let cols = |d: usize| s![.., h * d..(h + 1) * d];
            let head = HeadInput::new(
                q.slice(cols(head_dim)),
                k.slice(cols(head_dim)),
                v.slice(cols(value_dim)),
                scale,
                causal,
            )?;
            Ok(full_attention(&head, false, MatrixBudget::default())?.0)
        })
        .collect::<Result<_, NnError>>()?;
    let mut out = Array2::<f32>::zeros((q.nrows(), num_heads * value_dim));
    for (h, o) in outputs.iter().enumerate() {
        out.slice_mut(s![.., h * value_dim..(h + 1) * value_dim])
            .assign(o);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attention::dense::dense_reference;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(rows: usize, cols: usize, seed: u64) -> Array2<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Array2::from_shape_fn((rows, cols), |_| rng.random_range(-2.0..2.0))
    }

    #[test]
    fn heads_match_the_dense_oracle_per_column_block() {
        for (lq, lk, heads, d, dv, causal) in [
            (7, 7, 3, 5, 4, false),
            (13, 13, 2, 8, 8, true),
            (5, 11, 4, 3, 2, true),
            (11, 5, 1, 6, 6, false),
        ] {
            let (q, k, v) = (
                random(lq, heads * d, 1),
                random(lk, heads * d, 2),
                random(lk, heads * dv, 3),
            );
            let out = multi_head_attention(&q, &k, &v, heads, Some(0.3), causal).unwrap();
            assert_eq!(out.dim(), (lq, heads * dv));
            for h in 0..heads {
                let head = HeadInput::new(
                    q.slice(s![.., h * d..(h + 1) * d]),
                    k.slice(s![.., h * d..(h + 1) * d]),
                    v.slice(s![.., h * dv..(h + 1) * dv]),
                    Some(0.3),
                    causal,
                )
                .unwrap();
                let (want, _) = dense_reference(&head);
                let got = out.slice(s![.., h * dv..(h + 1) * dv]);
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() < 1e-5, "lq {lq} lk {lk} head {h}: {g} vs {w}");
                }
            }
        }
    }

    #[test]
    fn bad_head_split_is_a_shape_error() {
        let x = random(4, 6, 1);
        let err = multi_head_attention(&x, &x, &x, 4, None, false).unwrap_err();
        assert!(err.to_string().contains("divisible by 4 heads"), "{err}");
        assert!(multi_head_attention(&x, &x, &x, 0, None, false).is_err());
        let err = multi_head_attention(&x, &x, &random(3, 6, 2), 2, None, false).unwrap_err();
        assert!(err.to_string().contains("v [3, 6]"), "{err}");
        let err = multi_head_attention(&x, &x, &x, 2, Some(f32::NAN), false).unwrap_err();
        assert!(matches!(err, NnError::Attention(_)), "{err}");
    }
}
