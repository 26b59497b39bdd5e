//! The sub-quadratic executor shared by every variant (`combiner.md` §3.7).
//!
//! 1. Every distinct region of the [`Layout`] is summarised **once** (in parallel):
//!    summary query `q_Ω` and summary key `k_Ω` (pooled, or axial's position rule),
//!    within-region weights `p(j|Ω) = softmax_j(q_Ω·k_j)` and summary value
//!    `v_Ω = Σ_j p(j|Ω) v_j`.
//! 2. Every query (in parallel over blocks of [`QUERY_BLOCK`] queries) walks its plan: one
//!    joint softmax over its direct logits `q_i·k_j` and its region logits `q_i·k_Ω` (eq. 9),
//!    then `Σ p̃(j|i) v_j + Σ p(Ω|i) v_Ω` (eq. 7).
//!
//! Both softmaxes are the shared [`softmax_in_place`]. No L×L buffer is allocated unless the
//! effective matrix (eq. 8) is requested within the C8 budget.

use std::borrow::Cow;

use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::plan::{KeySet, Layout, QueryPlan, Region, SummarySource};
use crate::attention::dense::QUERY_BLOCK;
use crate::attention::method::{KeyRow, Pooling};
use crate::attention::softmax::softmax_in_place;
use crate::attention::{HeadInput, MatrixBudget};

/// Row-major rows of a matrix, borrowed when the view is already standard layout.
struct Rows<'a> {
    data: Cow<'a, [f32]>,
    width: usize,
}

impl<'a> Rows<'a> {
    fn from_view(a: ArrayView2<'a, f32>) -> Self {
        let width = a.ncols();
        let data = match a.to_slice() {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(a.iter().copied().collect()),
        };
        Self { data, width }
    }

    fn row(&self, j: usize) -> &[f32] {
        &self.data[j * self.width..(j + 1) * self.width]
    }
}

/// Dot product with eight lane accumulators (vectorises; deterministic order).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0_f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for t in 0..8 {
            acc[t] += x[t] * y[t];
        }
    }
    let mut tail = 0.0_f32;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

fn axpy(acc: &mut [f32], w: f32, x: &[f32]) {
    for (a, &b) in acc.iter_mut().zip(x) {
        *a += w * b;
    }
}

/// NaN-propagating maximum (a NaN in a region poisons its summary, as exact attention would).
fn nan_max(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else if b > a {
        b
    } else {
        a
    }
}

fn pool(rows: &Rows<'_>, keys: KeySet, pooling: Pooling, out: &mut [f32]) {
    match pooling {
        Pooling::Max => {
            // Fast path: `f32::max` vectorises but ignores NaN, so a lane accumulator of
            // `x·0` (NaN for a NaN or infinite input) detects the rare non-finite region,
            // which is then pooled again with the NaN-propagating maximum.
            out.fill(f32::NEG_INFINITY);
            let mut poison = 0.0_f32;
            let mut lanes = [0.0_f32; 8];
            for j in keys.iter() {
                let row = rows.row(j);
                let (oc, xc) = (out.chunks_exact_mut(8), row.chunks_exact(8));
                let tail = xc.remainder();
                for (o8, x8) in oc.zip(xc) {
                    for t in 0..8 {
                        o8[t] = o8[t].max(x8[t]);
                        lanes[t] += x8[t] * 0.0;
                    }
                }
                let start = row.len() - tail.len();
                for (o, &x) in out[start..].iter_mut().zip(tail) {
                    *o = o.max(x);
                    poison += x * 0.0;
                }
            }
            poison += lanes.iter().sum::<f32>();
            if !poison.is_finite() {
                out.fill(f32::NEG_INFINITY);
                for j in keys.iter() {
                    for (o, &x) in out.iter_mut().zip(rows.row(j)) {
                        *o = nan_max(*o, x);
                    }
                }
            }
        }
        Pooling::Mean => {
            out.fill(0.0);
            for j in keys.iter() {
                axpy(out, 1.0, rows.row(j));
            }
            let inv = 1.0 / keys.len().max(1) as f32;
            out.iter_mut().for_each(|o| *o *= inv);
        }
    }
}

/// The per-head inputs the executor reads: scaled queries (scale applied once), keys, values.
pub(crate) struct Context<'a> {
    qs: Rows<'static>,
    k: Rows<'a>,
    v: Rows<'a>,
    head_dim: usize,
    value_dim: usize,
    pooling: Pooling,
    key_row: KeyRow,
}

impl<'a> Context<'a> {
    pub(crate) fn new(head: &HeadInput<'a>, pooling: Pooling, key_row: KeyRow) -> Self {
        let scale = head.scale;
        let qs: Vec<f32> = head.q.iter().map(|&x| x * scale).collect();
        Self {
            qs: Rows {
                data: Cow::Owned(qs),
                width: head.head_dim(),
            },
            k: Rows::from_view(head.k),
            v: Rows::from_view(head.v),
            head_dim: head.head_dim(),
            value_dim: head.value_dim(),
            pooling,
            key_row,
        }
    }
}

/// One region's summary: summary key `k_Ω`, summary value `v_Ω`, and (for display) the
/// within-region weights `p(j|Ω)` in the order of the region's keys.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Summary {
    pub(crate) key: Vec<f32>,
    pub(crate) value: Vec<f32>,
    pub(crate) within: Option<Vec<f32>>,
}

/// Summarises one region. O(|Ω|·(d + d_v)).
pub(crate) fn summarize(ctx: &Context<'_>, region: &Region, keep_within: bool) -> Summary {
    let (d, dv) = (ctx.head_dim, ctx.value_dim);
    let mut squery = vec![0.0_f32; d];
    let mut key = vec![0.0_f32; d];
    match region.summary {
        SummarySource::Pooled => {
            pool(&ctx.qs, region.keys, ctx.pooling, &mut squery);
            pool(&ctx.k, region.keys, ctx.pooling, &mut key);
        }
        SummarySource::Position(p) => squery.copy_from_slice(ctx.qs.row(p)),
    }
    let mut weights: Vec<f32> = region
        .keys
        .iter()
        .map(|j| dot(&squery, ctx.k.row(j)))
        .collect();
    softmax_in_place(&mut weights);
    let mut value = vec![0.0_f32; dv];
    for (&w, j) in weights.iter().zip(region.keys.iter()) {
        axpy(&mut value, w, ctx.v.row(j));
    }
    if let SummarySource::Position(p) = region.summary {
        match ctx.key_row {
            KeyRow::Wsum => {
                for (&w, j) in weights.iter().zip(region.keys.iter()) {
                    axpy(&mut key, w, ctx.k.row(j));
                }
            }
            KeyRow::None => key.copy_from_slice(ctx.k.row(p)),
        }
    }
    Summary {
        key,
        value,
        within: keep_within.then_some(weights),
    }
}

/// Every distinct region summary of a layout, indexed by region id.
pub(crate) struct SummaryTable {
    entries: Vec<Option<Summary>>,
}

impl SummaryTable {
    /// Summarises every region of `layout` once, in parallel. O(Σ_Ω |Ω|·(d + d_v)).
    pub(crate) fn build(ctx: &Context<'_>, layout: &Layout, keep_within: bool) -> Self {
        let entries = (0..layout.region_count())
            .into_par_iter()
            .map(|id| layout.region(id).map(|r| summarize(ctx, &r, keep_within)))
            .collect();
        Self { entries }
    }

    /// The summary of `region`, from the table (or computed now if the table lacks it).
    fn get<'t>(
        &'t self,
        ctx: &Context<'_>,
        region: &Region,
        keep_within: bool,
    ) -> Cow<'t, Summary> {
        match self.entries.get(region.id) {
            Some(Some(s)) if s.within.is_some() || !keep_within => Cow::Borrowed(s),
            _ => Cow::Owned(summarize(ctx, region, keep_within)),
        }
    }

    fn stats(&self, layout: &Layout) -> (usize, u64) {
        let mut count = 0;
        let mut logits = 0_u64;
        for (id, e) in self.entries.iter().enumerate() {
            if e.is_some() {
                count += 1;
                logits += layout.region(id).map_or(0, |r| r.keys.len() as u64);
            }
        }
        (count, logits)
    }
}

/// Work counters of one executor run, proving the sub-quadratic cost (`combiner.md` §3.7).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecStats {
    /// Queries processed.
    pub queries: usize,
    /// Joint-softmax logits computed, summed over queries (`Σ_i |Ω_i^0| + n_i`).
    pub query_logits: u64,
    /// Largest number of joint-softmax logits of one query.
    pub max_query_logits: usize,
    /// Distinct region summaries computed.
    pub summaries: usize,
    /// Within-region logits computed for the summaries (`Σ_Ω |Ω|`).
    pub summary_logits: u64,
}

/// Joint softmax of one query into `weights` (direct entries first, then regions).
fn joint_weights(
    ctx: &Context<'_>,
    table: &SummaryTable,
    plan: &QueryPlan,
    keep_within: bool,
    weights: &mut Vec<f32>,
) {
    weights.clear();
    let qi = ctx.qs.row(plan.query);
    weights.extend(plan.direct.iter().map(|&j| dot(qi, ctx.k.row(j))));
    weights.extend(
        plan.regions
            .iter()
            .map(|r| dot(qi, &table.get(ctx, r, keep_within).key)),
    );
    softmax_in_place(weights);
}

/// Runs the executor: output `[L, value_dim]`, the effective matrix when `matrix` is true
/// (the caller has checked the budget), and the work counters.
pub(crate) fn execute(
    head: &HeadInput<'_>,
    layout: &Layout,
    pooling: Pooling,
    key_row: KeyRow,
    matrix: bool,
) -> (Array2<f32>, Option<Array2<f32>>, ExecStats) {
    let ctx = Context::new(head, pooling, key_row);
    let table = SummaryTable::build(&ctx, layout, matrix);
    let (summaries, summary_logits) = table.stats(layout);
    let init = || {
        (
            QueryPlan::default(),
            Vec::new(),
            vec![0.0_f32; ctx.value_dim],
        )
    };
    let tiles = query_tiles(layout);
    let results: Vec<(Vec<f32>, ExecStats)> = tiles
        .par_iter()
        .map_init(init, |(plan, weights, acc), tile| {
            let mut s = ExecStats::default();
            let mut rows = Vec::with_capacity(tile.len() * ctx.value_dim);
            for &i in tile {
                layout.plan_into(i, plan);
                joint_weights(&ctx, &table, plan, false, weights);
                acc.fill(0.0);
                let (wd, wr) = weights.split_at(plan.direct.len());
                for (&w, &j) in wd.iter().zip(&plan.direct) {
                    axpy(acc, w, ctx.v.row(j));
                }
                for (&w, reg) in wr.iter().zip(&plan.regions) {
                    axpy(acc, w, &table.get(&ctx, reg, false).value);
                }
                rows.extend_from_slice(acc);
                s.queries += 1;
                s.query_logits += plan.terms() as u64;
                s.max_query_logits = s.max_query_logits.max(plan.terms());
            }
            (rows, s)
        })
        .collect();
    let mut out = head.zero_output();
    let mut stats = ExecStats::default();
    for (tile, (rows, s)) in tiles.iter().zip(&results) {
        for (&i, src) in tile.iter().zip(rows.chunks(ctx.value_dim.max(1))) {
            out.row_mut(i)
                .iter_mut()
                .zip(src)
                .for_each(|(o, x)| *o = *x);
        }
        stats.queries += s.queries;
        stats.query_logits += s.query_logits;
        stats.max_query_logits = stats.max_query_logits.max(s.max_query_logits);
    }
    stats.summaries = summaries;
    stats.summary_logits = summary_logits;
    let m = matrix.then(|| effective_matrix_from(&ctx, &table, layout));
    (out, m, stats)
}

/// Grid tile edge for Mixture query ordering: a tile of `TILE × TILE` grid cells shares both
/// its rows' vertical summaries and its columns' horizontal summaries, keeping the summaries a
/// tile reads within L2 (row blocks of 64 queries would touch ~2·64·n distinct summaries).
const TILE: usize = 8;

/// Query order of the executor: blocks of [`QUERY_BLOCK`] consecutive queries, or for
/// Mixture `TILE × TILE` tiles of the grid. Every query appears exactly once.
fn query_tiles(layout: &Layout) -> Vec<Vec<usize>> {
    let l = layout.seq_len();
    if layout.variant() != super::plan::Variant::Mixture {
        return (0..l.div_ceil(QUERY_BLOCK))
            .map(|b| (b * QUERY_BLOCK..((b + 1) * QUERY_BLOCK).min(l)).collect())
            .collect();
    }
    let (m, n) = (layout.block(), layout.rows());
    let mut tiles = Vec::new();
    for r0 in (0..n).step_by(TILE) {
        for c0 in (0..m).step_by(TILE) {
            let tile: Vec<usize> = (r0..(r0 + TILE).min(n))
                .flat_map(|r| (c0..(c0 + TILE).min(m)).map(move |c| r * m + c))
                .filter(|&i| i < l)
                .collect();
            if !tile.is_empty() {
                tiles.push(tile);
            }
        }
    }
    tiles
}

/// Effective matrix q(j|i) (eq. 8) from a table built with within-region weights.
fn effective_matrix_from(ctx: &Context<'_>, table: &SummaryTable, layout: &Layout) -> Array2<f32> {
    let n = layout.seq_len();
    let mut m = Array2::<f32>::zeros((n, n));
    m.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each_init(
            || (QueryPlan::default(), Vec::new()),
            |(plan, weights), (i, mut row)| {
                layout.plan_into(i, plan);
                joint_weights(ctx, table, plan, true, weights);
                let (wd, wr) = weights.split_at(plan.direct.len());
                for (&w, &j) in wd.iter().zip(&plan.direct) {
                    row[j] += w;
                }
                for (&w, reg) in wr.iter().zip(&plan.regions) {
                    let s = table.get(ctx, reg, true);
                    for (&p, j) in s.within.iter().flatten().zip(reg.keys.iter()) {
                        row[j] += w * p;
                    }
                }
            },
        );
    m
}

/// Checks the C8 budget for the effective matrix of `layout`.
pub(crate) fn matrix_fits(layout: &Layout, budget: MatrixBudget) -> bool {
    budget.check(layout.seq_len(), layout.seq_len()).is_ok()
}

/// One direct entry of a routed query.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DirectTerm {
    /// Key position j.
    pub key: usize,
    /// Logit `scale · q_i·k_j`.
    pub logit: f32,
    /// Joint-softmax weight p̃(j|i).
    pub weight: f32,
}

/// One abstraction region of a routed query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutedRegion {
    /// The region (keys, kind, id).
    pub region: Region,
    /// Summary logit `scale · q_i·k_Ω`.
    pub summary_logit: f32,
    /// Region weight p(Ω|i) in the joint softmax.
    pub weight: f32,
    /// Within-region weights p(j|Ω), in the order of `region.keys`.
    pub within: Vec<f32>,
}

/// The routing of one query: the data behind the routing view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutedRow {
    /// Query position i.
    pub query: usize,
    /// Direct keys with logits and weights.
    pub direct: Vec<DirectTerm>,
    /// Regions with summary logits, weights p(Ω|i) and within-region weights.
    pub regions: Vec<RoutedRegion>,
    /// Effective attention row q(·|i) (eq. 8), length L; sums to 1.
    pub effective: Vec<f32>,
    /// Output row `Σ_j q(j|i) v_j`, length value_dim.
    pub output: Vec<f32>,
}

/// Routes one query (computes only the summaries its plan uses). O(L + terms·(d + d_v) +
/// Σ_Ω |Ω|·(d + d_v)).
pub(crate) fn route(
    head: &HeadInput<'_>,
    layout: &Layout,
    pooling: Pooling,
    key_row: KeyRow,
    i: usize,
) -> RoutedRow {
    let ctx = Context::new(head, pooling, key_row);
    let plan = layout.plan(i);
    let summaries: Vec<Summary> = plan
        .regions
        .iter()
        .map(|r| summarize(&ctx, r, true))
        .collect();
    let qi = ctx.qs.row(i);
    let mut weights: Vec<f32> = plan.direct.iter().map(|&j| dot(qi, ctx.k.row(j))).collect();
    weights.extend(summaries.iter().map(|s| dot(qi, &s.key)));
    let logits = weights.clone();
    softmax_in_place(&mut weights);
    let mut effective = vec![0.0_f32; layout.seq_len()];
    let mut output = vec![0.0_f32; ctx.value_dim];
    let nd = plan.direct.len();
    let direct = plan
        .direct
        .iter()
        .enumerate()
        .map(|(t, &j)| {
            effective[j] += weights[t];
            axpy(&mut output, weights[t], ctx.v.row(j));
            DirectTerm {
                key: j,
                logit: logits[t],
                weight: weights[t],
            }
        })
        .collect();
    let regions = plan
        .regions
        .iter()
        .zip(summaries)
        .enumerate()
        .map(|(t, (region, s))| {
            let w = weights[nd + t];
            let within = s.within.unwrap_or_default();
            for (&p, j) in within.iter().zip(region.keys.iter()) {
                effective[j] += w * p;
            }
            axpy(&mut output, w, &s.value);
            RoutedRegion {
                region: *region,
                summary_logit: logits[nd + t],
                weight: w,
                within,
            }
        })
        .collect();
    RoutedRow {
        query: i,
        direct,
        regions,
        effective,
        output,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_naive_sum_for_odd_lengths() {
        for n in [0usize, 1, 7, 8, 9, 17, 64, 65] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let naive: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| f64::from(*x) * f64::from(*y))
                .sum();
            assert!((f64::from(dot(&a, &b)) - naive).abs() < 1e-5, "n = {n}");
        }
    }

    #[test]
    fn max_pooling_propagates_nan_and_keeps_infinity() {
        let data = [1.0_f32, 5.0, f32::NAN, 2.0, 3.0, f32::INFINITY];
        let rows = Rows {
            data: Cow::Borrowed(&data[..]),
            width: 2,
        };
        let mut out = [0.0_f32; 2];
        pool(&rows, KeySet::range(0..2), Pooling::Max, &mut out);
        assert!(out[0].is_nan() && out[1] == 5.0, "{out:?}");
        pool(&rows, KeySet::strided(0, 2, 2), Pooling::Max, &mut out);
        assert_eq!(out, [3.0, f32::INFINITY]);
        pool(&rows, KeySet::strided(0, 2, 2), Pooling::Mean, &mut out);
        assert_eq!(out[0], 2.0);
    }
}
