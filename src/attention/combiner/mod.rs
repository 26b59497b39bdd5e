//! Combiner: full attention at sparse cost (`combiner-fixed`, `combiner-logsparse`,
//! `combiner-axial`, `combiner-mixture`).
//!
//! Every query `i` splits the keys it may see into a **direct set** Ω_i^0 and **abstraction
//! regions** Ω_i^r. Direct keys enter with their own logit; each region enters the same softmax
//! once, through its **summary key** `k_Ω` (max- or mean-pooled keys), and contributes its
//! **summary value** `v_Ω = Σ_{j∈Ω} softmax_j(q_Ω·k_j) v_j`, where the **summary query** `q_Ω`
//! pools the region's scaled queries:
//!
//! ```text
//! p(·|i)  = softmax([q_i·k_j  for j ∈ Ω_i^0] ++ [q_i·k_Ω  for Ω ∈ regions(i)])     (eq. 9)
//! A(x_i)  = Σ_{j∈Ω_i^0} p̃(j|i) v_j + Σ_Ω p(Ω|i) v_Ω                                  (eq. 7)
//! q(j|i)  = 1[j∈Ω_i^0] p̃(j|i) + Σ_Ω 1[j∈Ω] p(j|Ω) p(Ω|i)                            (eq. 8)
//! ```
//!
//! `q` is multiplied by `HeadInput::scale` once. The routing plans ([`plan`]) are data; one plan
//! drives the plan-based reference ([`combiner_reference`]), the routing API ([`route_query`])
//! and the fast executor ([`combiner_attention`]), which summarises each distinct region once
//! and shares it across queries.
//!
//! Combiner is self-attention: `seq_len_q` must equal `seq_len_kv`. Which causal and
//! bidirectional rules each variant uses is fixed by `combiner.md` §0 (see each module).
//!
//! # References
//! Ren, Dai, Dai, Yang, Leskovec, Schuurmans, Dai, "Combiner: Full Attention Transformer with
//! Sparse Computation Cost", NeurIPS 2021 (arXiv 2107.05768), eqs. (4)–(10), §4; the
//! authors' official JAX layers (google-research `combiner/`).

pub mod axial;
pub mod exec;
pub mod fixed;
pub mod logsparse;
pub mod mixture;
pub mod plan;
mod reference;

use ndarray::Array2;

pub use exec::{DirectTerm, ExecStats, RoutedRegion, RoutedRow};
pub use plan::{
    KeySet, Layout, QueryPlan, Region, RegionKind, SummarySource, Variant, default_block,
    plan_for_query,
};

use super::method::{MethodId, MethodParams};
use super::{AttentionError, HeadInput, MatrixBudget};

/// The Combiner variant of a method id, if it is one.
pub fn variant_of(method: MethodId) -> Option<Variant> {
    match method {
        MethodId::CombinerFixed => Some(Variant::Fixed),
        MethodId::CombinerLogsparse => Some(Variant::Logsparse),
        MethodId::CombinerAxial => Some(Variant::Axial),
        MethodId::CombinerMixture => Some(Variant::Mixture),
        _ => None,
    }
}

/// The method id of a Combiner variant (inverse of [`variant_of`]).
pub fn method_of(variant: Variant) -> MethodId {
    match variant {
        Variant::Fixed => MethodId::CombinerFixed,
        Variant::Logsparse => MethodId::CombinerLogsparse,
        Variant::Axial => MethodId::CombinerAxial,
        Variant::Mixture => MethodId::CombinerMixture,
    }
}

/// The layout (variant, L, block, causality) of `head` under `params` (`block = None` means
/// `⌈√L⌉`).
///
/// # Errors
/// [`AttentionError::InvalidParameter`] when `seq_len_q ≠ seq_len_kv` (Combiner is
/// self-attention) or `block = Some(0)`.
pub fn layout_for(
    head: &HeadInput<'_>,
    variant: Variant,
    params: &MethodParams,
) -> Result<Layout, AttentionError> {
    let (lq, lk) = (head.seq_len_q(), head.seq_len_kv());
    if lq != lk {
        return Err(AttentionError::InvalidParameter {
            method: variant.as_str(),
            param: "seq_len",
            value: format!("seq_len_q = {lq}, seq_len_kv = {lk}"),
            reason: "Combiner is self-attention: query and key lengths must be equal".into(),
        });
    }
    Layout::with_block(variant, lq, params.block, head.causal)
}

/// Result of [`combiner_attention`].
#[derive(Debug, Clone)]
pub struct CombinerOutput {
    /// Output `[L, value_dim]`.
    pub output: Array2<f32>,
    /// Effective matrix q(j|i) `[L, L]` (eq. 8), when requested and within budget.
    pub matrix: Option<Array2<f32>>,
    /// The layout used (effective block size).
    pub layout: Layout,
    /// Work counters (logits per query, summaries).
    pub stats: ExecStats,
}

/// Fast Combiner attention of one head: every distinct region summary is computed once and
/// shared; each query then evaluates one joint softmax over its direct and region logits.
/// The effective matrix is materialised only when `want_matrix` and it fits `budget` (C8).
///
/// Uses `params.block` (default ⌈√L⌉; ignored by Logsparse), `params.pooling` (max | mean)
/// and `params.key_row` (Axial: `wsum` | `none`).
///
/// # Shapes
/// `q [L, d]`, `k [L, d]`, `v [L, d_v]` → output `[L, d_v]`, matrix `[L, L]`.
///
/// # Errors
/// [`AttentionError::InvalidParameter`] when `seq_len_q ≠ seq_len_kv` or `block = 0`.
///
/// # Complexity
/// Time O(L·√L·(d + d_v)) for Fixed, Axial and Mixture at the default block, O(L·log L·
/// (d + d_v)) for Logsparse; memory O(L·(d + d_v)) for the summaries plus
/// O(QUERY_BLOCK·(terms + d_v)) scratch per worker; never an L×L buffer unless the matrix is
/// requested. Parallel over region summaries and over query blocks (rayon); deterministic for
/// any thread count (each value is reduced by one thread in a fixed order).
///
/// ```
/// use ndarray::array;
/// use attnscope::attention::{HeadInput, MatrixBudget, MethodParams};
/// use attnscope::attention::combiner::{combiner_attention, Variant};
/// // combiner.md §3.6 tiny example: Fixed, causal, L = 4, s = 2, d = 1, scale 1.
/// let ln3 = 3.0_f32.ln();
/// let q = array![[1.0_f32], [2.0], [2.0], [0.0]];
/// let k = array![[0.0_f32], [ln3 / 2.0], [0.0], [0.0]];
/// let v = array![[4.0_f32], [8.0], [1.0], [0.0]];
/// let head = HeadInput::new(q.view(), k.view(), v.view(), Some(1.0), true).unwrap();
/// let params = MethodParams { block: Some(2), ..Default::default() };
/// let r = combiner_attention(&head, Variant::Fixed, &params, false, MatrixBudget::default()).unwrap();
/// assert!((r.output[[1, 0]] - 7.0).abs() < 1e-5);
/// assert!((r.output[[2, 0]] - 5.5).abs() < 1e-5);
/// assert!((r.output[[3, 0]] - 8.0 / 3.0).abs() < 1e-5);
/// ```
pub fn combiner_attention(
    head: &HeadInput<'_>,
    variant: Variant,
    params: &MethodParams,
    want_matrix: bool,
    budget: MatrixBudget,
) -> Result<CombinerOutput, AttentionError> {
    let layout = layout_for(head, variant, params)?;
    let matrix = want_matrix && exec::matrix_fits(&layout, budget);
    let (output, matrix, stats) =
        exec::execute(head, &layout, params.pooling, params.key_row, matrix);
    Ok(CombinerOutput {
        output,
        matrix,
        layout,
        stats,
    })
}

/// The effective attention matrix q(j|i) `[L, L]` (eq. 8) for display and metrics.
///
/// # Errors
/// As [`combiner_attention`], and [`AttentionError::OverBudget`] above the C8 budget.
///
/// # Complexity
/// O(L²) memory for the result; otherwise as [`combiner_attention`].
pub fn effective_matrix(
    head: &HeadInput<'_>,
    variant: Variant,
    params: &MethodParams,
    budget: MatrixBudget,
) -> Result<Array2<f32>, AttentionError> {
    let layout = layout_for(head, variant, params)?;
    budget.check(layout.seq_len(), layout.seq_len())?;
    let (_, m, _) = exec::execute(head, &layout, params.pooling, params.key_row, true);
    Ok(m.unwrap_or_else(|| Array2::zeros((layout.seq_len(), layout.seq_len()))))
}

/// The routing of query `i`: direct keys with logits and weights p̃(j|i), regions with their
/// summary logit, weight p(Ω|i) and within-region weights p(j|Ω), the effective row q(·|i)
/// and the output row. Feeds the routing view.
///
/// # Errors
/// As [`combiner_attention`], and [`AttentionError::InvalidParameter`] when `i ≥ L`.
///
/// # Complexity
/// O(L + (terms + Σ_{Ω∈plan(i)} |Ω|)·(d + d_v)): only the summaries this query uses.
pub fn route_query(
    head: &HeadInput<'_>,
    variant: Variant,
    params: &MethodParams,
    i: usize,
) -> Result<RoutedRow, AttentionError> {
    let layout = layout_for(head, variant, params)?;
    if i >= layout.seq_len() {
        return Err(AttentionError::InvalidParameter {
            method: variant.as_str(),
            param: "query",
            value: i.to_string(),
            reason: format!("a query index below seq_len = {}", layout.seq_len()),
        });
    }
    Ok(exec::route(
        head,
        &layout,
        params.pooling,
        params.key_row,
        i,
    ))
}

/// The O(L²) plan-based reference in f64 (`combiner.md` §7): `(output [L, d_v], effective
/// matrix [L, L])`. It shares only the routing plan with [`combiner_attention`]; the tests use
/// it as the oracle.
///
/// # Errors
/// As [`combiner_attention`], and [`AttentionError::OverBudget`] when the L×L matrix exceeds
/// `budget`.
///
/// # Complexity
/// O(L²·(d + d_v)) time, O(L²) memory; single-threaded, deterministic.
pub fn combiner_reference(
    head: &HeadInput<'_>,
    variant: Variant,
    params: &MethodParams,
    budget: MatrixBudget,
) -> Result<(Array2<f32>, Array2<f32>), AttentionError> {
    let layout = layout_for(head, variant, params)?;
    budget.check(layout.seq_len(), layout.seq_len())?;
    Ok(reference::plan_reference(
        head,
        &layout,
        params.pooling,
        params.key_row,
    ))
}

/// [`combiner_attention`] for the method dispatch: records the block size actually used in
/// `params` and `notes` and returns `(output, matrix)`.
///
/// # Errors
/// As [`combiner_attention`].
pub fn compute_for_method(
    variant: Variant,
    head: &HeadInput<'_>,
    params: &mut MethodParams,
    notes: &mut Vec<String>,
    want_matrix: bool,
    budget: MatrixBudget,
) -> Result<(Array2<f32>, Option<Array2<f32>>), AttentionError> {
    let r = combiner_attention(head, variant, params, want_matrix, budget)?;
    if variant != Variant::Logsparse {
        if params.block != Some(r.layout.block()) {
            let requested = params
                .block
                .map_or("the default ceil(sqrt(L))".to_string(), |b| b.to_string());
            notes.push(format!(
                "block = {} (requested {requested})",
                r.layout.block()
            ));
        }
        params.block = Some(r.layout.block());
    }
    Ok((r.output, r.matrix))
}
