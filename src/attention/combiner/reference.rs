//! The O(L²) plan-based reference (`combiner.md` §7): for every query, its plan is read and
//! every region summary is recomputed from scratch in f64. It shares only the plan with the
//! fast executor, so the tests comparing the two check the executor's sharing, batching and
//! f32 arithmetic.

use ndarray::Array2;

use super::plan::{Layout, SummarySource};
use crate::attention::HeadInput;
use crate::attention::method::{KeyRow, Pooling};

fn dot64(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// f64 softmax for the oracle only (the product uses `softmax::softmax_in_place`).
fn softmax64(xs: &mut [f64]) {
    let max = xs.iter().copied().fold(f64::NEG_INFINITY, |m, x| {
        if x.is_nan() || m.is_nan() {
            f64::NAN
        } else {
            m.max(x)
        }
    });
    let mut sum = 0.0;
    for x in xs.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    xs.iter_mut().for_each(|x| *x /= sum);
}

fn pool64(
    rows: &[Vec<f64>],
    keys: impl Iterator<Item = usize>,
    pooling: Pooling,
    width: usize,
) -> Vec<f64> {
    let mut out = vec![0.0; width];
    let mut first = true;
    let mut count = 0usize;
    for j in keys {
        count += 1;
        for (o, &x) in out.iter_mut().zip(&rows[j]) {
            *o = match pooling {
                Pooling::Max if first => x,
                Pooling::Max if o.is_nan() || x.is_nan() => f64::NAN,
                Pooling::Max => o.max(x),
                Pooling::Mean => *o + x,
            };
        }
        first = false;
    }
    if pooling == Pooling::Mean && count > 0 {
        out.iter_mut().for_each(|o| *o /= count as f64);
    }
    out
}

/// Plan-based reference: `(output [L, value_dim], effective matrix q(j|i) [L, L])`, computed
/// per query in f64 exactly as `combiner.md` §7 (scale applied once to q; summary queries pool
/// scaled q, summary keys pool raw k; one joint softmax per query).
///
/// The caller guarantees `head.seq_len_q() == head.seq_len_kv() == layout.seq_len()`.
///
/// # Complexity
/// O(L·(terms + Σ_Ω |Ω|)·(d + d_v)) ≈ O(L²·(d + d_v)) time, O(L²) memory. Single-threaded,
/// deterministic. For tests and small inputs.
pub(crate) fn plan_reference(
    head: &HeadInput<'_>,
    layout: &Layout,
    pooling: Pooling,
    key_row: KeyRow,
) -> (Array2<f32>, Array2<f32>) {
    let n = layout.seq_len();
    let (d, dv) = (head.head_dim(), head.value_dim());
    let scale = f64::from(head.scale);
    let qs: Vec<Vec<f64>> = head
        .q
        .rows()
        .into_iter()
        .map(|r| r.iter().map(|&x| f64::from(x) * scale).collect())
        .collect();
    let to64 = |a: ndarray::ArrayView2<'_, f32>| -> Vec<Vec<f64>> {
        a.rows()
            .into_iter()
            .map(|r| r.iter().map(|&x| f64::from(x)).collect())
            .collect()
    };
    let (k, v) = (to64(head.k), to64(head.v));
    let mut out = Array2::<f32>::zeros((n, dv));
    let mut eff = Array2::<f32>::zeros((n, n));
    for i in 0..n {
        let plan = layout.plan(i);
        let mut logits: Vec<f64> = plan.direct.iter().map(|&j| dot64(&qs[i], &k[j])).collect();
        let mut values: Vec<Vec<f64>> = plan.direct.iter().map(|&j| v[j].clone()).collect();
        let mut withins: Vec<Vec<f64>> = Vec::new();
        for region in &plan.regions {
            let keys: Vec<usize> = region.keys.to_vec();
            let squery = match region.summary {
                SummarySource::Pooled => pool64(&qs, keys.iter().copied(), pooling, d),
                SummarySource::Position(p) => qs[p].clone(),
            };
            let mut w: Vec<f64> = keys.iter().map(|&j| dot64(&squery, &k[j])).collect();
            softmax64(&mut w);
            let skey = match (region.summary, key_row) {
                (SummarySource::Pooled, _) => pool64(&k, keys.iter().copied(), pooling, d),
                (SummarySource::Position(p), KeyRow::None) => k[p].clone(),
                (SummarySource::Position(_), KeyRow::Wsum) => (0..d)
                    .map(|t| keys.iter().zip(&w).map(|(&j, p)| p * k[j][t]).sum())
                    .collect(),
            };
            let value: Vec<f64> = (0..dv)
                .map(|t| keys.iter().zip(&w).map(|(&j, p)| p * v[j][t]).sum())
                .collect();
            logits.push(dot64(&qs[i], &skey));
            values.push(value);
            withins.push(w);
        }
        softmax64(&mut logits);
        for t in 0..dv {
            out[[i, t]] = logits
                .iter()
                .zip(&values)
                .map(|(p, val)| p * val[t])
                .sum::<f64>() as f32;
        }
        let mut row = vec![0.0_f64; n];
        for (p, &j) in logits.iter().zip(&plan.direct) {
            row[j] += p;
        }
        let nd = plan.direct.len();
        for ((p, region), w) in logits[nd..].iter().zip(&plan.regions).zip(&withins) {
            for (j, pj) in region.keys.iter().zip(w) {
                row[j] += p * pj;
            }
        }
        for (j, x) in row.into_iter().enumerate() {
            eff[[i, j]] = x as f32;
        }
    }
    (out, eff)
}
