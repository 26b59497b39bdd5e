//! Feature-map ("linear") attention, the FMMformer far field.
//!
//! ```text
//! row:  Â = diag(φ(Q) Σ_j φ(k_j) + ε)⁻¹ φ(Q) φ(K)ᵀ     (masked by C1 when causal), ε = 1e-6
//! none: Â = φ(Q) φ(K)ᵀ / √head_dim                     (LRA code; rows do not sum to 1)
//! φ ∈ { elu(x)+1, elu(−x)+1, tanh(x)+1 }  applied elementwise to the raw q, k
//! ```
//!
//! Causal attention runs as a recurrence over keys, `S_j = S_{j−1} + φ(k_j) v_jᵀ`,
//! `z_j = z_{j−1} + φ(k_j)`, so a key the query cannot see never enters its sums (C6).
//!
//! # References
//! Katharopoulos, Vyas, Pappas, Fleuret, "Transformers are RNNs", ICML 2020 (arXiv 2006.16236),
//! eqs. (4)–(6); FMMformer (arXiv 2108.02347) §3.2 for the feature maps φ1, φ2, φ3.

use ndarray::{Array1, Array2, Axis};
use rayon::prelude::*;

use super::method::{FeatureMap, Normalization};
use super::{AttentionError, HeadInput, MatrixBudget};

/// Denominator guard of the row normalisation (fast-transformers' `eps`).
pub const LINEAR_EPS: f64 = 1e-6;

/// Applies a feature map elementwise to a `[rows, head_dim]` matrix.
pub fn feature_map(x: ndarray::ArrayView2<'_, f32>, map: FeatureMap) -> Array2<f32> {
    x.mapv(|t| map.apply(t))
}

/// Linear attention output.
///
/// # Shapes
/// See [`HeadInput`]; returns `[seq_len_q, value_dim]`.
///
/// # Complexity
/// O((Lq + Lk)·d·d_v) time and O(d·d_v) state (f64); no L×L buffer. The causal recurrence is
/// sequential over keys; deterministic.
///
/// ```
/// use attnscope::attention::{HeadInput, FeatureMap, Normalization, linear::linear_attention};
/// // Q = K = 0 gives uniform weights: the output is the mean of V.
/// let z = ndarray::Array2::<f32>::zeros((2, 1));
/// let v = ndarray::array![[1.0_f32], [3.0]];
/// let head = HeadInput::new(z.view(), z.view(), v.view(), None, false).unwrap();
/// let o = linear_attention(&head, FeatureMap::Elu, Normalization::Row);
/// assert!((o[[0, 0]] - 2.0).abs() < 1e-5);
/// ```
pub fn linear_attention(
    head: &HeadInput<'_>,
    map: FeatureMap,
    normalization: Normalization,
) -> Array2<f32> {
    let (lq, lk, d, dv) = (
        head.seq_len_q(),
        head.seq_len_kv(),
        head.head_dim(),
        head.value_dim(),
    );
    let phi_q = feature_map(head.q, map);
    let phi_k = feature_map(head.k, map);
    let mut out = head.zero_output();
    let finish_row = |phi_q_row: ndarray::ArrayView1<'_, f32>,
                      state: &Array2<f64>,
                      z: &Array1<f64>,
                      o: &mut ndarray::ArrayViewMut1<'_, f32>| {
        let mut num = vec![0.0_f64; dv];
        let mut den = 0.0_f64;
        for (f, &p) in phi_q_row.iter().enumerate() {
            let p = f64::from(p);
            den += p * z[f];
            for (n, s) in num.iter_mut().zip(state.row(f)) {
                *n += p * s;
            }
        }
        let norm = match normalization {
            Normalization::Row => 1.0 / (den + LINEAR_EPS),
            Normalization::None => 1.0 / (d.max(1) as f64).sqrt(),
        };
        for (x, n) in o.iter_mut().zip(num) {
            *x = (n * norm) as f32;
        }
    };
    let accumulate = |state: &mut Array2<f64>, z: &mut Array1<f64>, j: usize| {
        for f in 0..d {
            let p = f64::from(phi_k[[j, f]]);
            z[f] += p;
            for (s, &vv) in state.row_mut(f).iter_mut().zip(head.v.row(j)) {
                *s += p * f64::from(vv);
            }
        }
    };
    let mut state = Array2::<f64>::zeros((d, dv));
    let mut z = Array1::<f64>::zeros(d);
    if head.causal {
        let mut next_key = 0;
        for (i, mut o) in out.axis_iter_mut(Axis(0)).enumerate() {
            let vis = head.visible_keys(i);
            while next_key < vis.end {
                accumulate(&mut state, &mut z, next_key);
                next_key += 1;
            }
            if !vis.is_empty() {
                finish_row(phi_q.row(i), &state, &z, &mut o);
            }
        }
    } else {
        for j in 0..lk {
            accumulate(&mut state, &mut z, j);
        }
        if lk > 0 {
            out.axis_iter_mut(Axis(0))
                .into_par_iter()
                .enumerate()
                .for_each(|(i, mut o)| finish_row(phi_q.row(i), &state, &z, &mut o));
        }
    }
    debug_assert_eq!(out.nrows(), lq);
    out
}

/// Linear attention's effective matrix Â `[seq_len_q, seq_len_kv]`, consistent with
/// [`linear_attention`] (same ε, same masking).
///
/// # Errors
/// [`AttentionError::OverBudget`] above the C8 budget.
///
/// # Complexity
/// O(Lq·Lk·d) time, O(Lq·Lk) memory.
pub fn linear_matrix(
    head: &HeadInput<'_>,
    map: FeatureMap,
    normalization: Normalization,
    budget: MatrixBudget,
) -> Result<Array2<f32>, AttentionError> {
    let (lq, lk) = (head.seq_len_q(), head.seq_len_kv());
    budget.check(lq, lk)?;
    let phi_q = feature_map(head.q, map);
    let phi_k = feature_map(head.k, map);
    let inv_sqrt_d = 1.0 / (head.head_dim().max(1) as f64).sqrt();
    let mut m = Array2::<f32>::zeros((lq, lk));
    m.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(i, mut row)| {
            let vis = head.visible_keys(i);
            let kernel: Vec<f64> = vis
                .clone()
                .map(|j| {
                    phi_q
                        .row(i)
                        .iter()
                        .zip(phi_k.row(j))
                        .map(|(&a, &b)| f64::from(a) * f64::from(b))
                        .sum()
                })
                .collect();
            let norm = match normalization {
                Normalization::Row => 1.0 / (kernel.iter().sum::<f64>() + LINEAR_EPS),
                Normalization::None => inv_sqrt_d,
            };
            for (c, j) in vis.enumerate() {
                row[j] = (kernel[c] * norm) as f32;
            }
        });
    Ok(m)
}
