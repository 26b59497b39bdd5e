//! Worker-side computations of the Combiner routing view, the spectrum view and the methods
//! view's "Compare all" table. Each function runs on the `attnscope-compute` thread (called
//! from [`super::jobs`]'s dispatch) and returns a shareable result tagged with its request id,
//! so texture caches and staleness checks can key on it.

use std::sync::Arc;
use std::time::Instant;

use ndarray::Array2;

use super::jobs::{HeadSelection, MAX_TEXTURE_SIDE};
use crate::analysis::optimal::{OptimalSplit, optimal_split_head};
use crate::analysis::spectrum::{RankPoint, Spectrum, matched_params, points_at_rank, spectrum};
use crate::analysis::{ErrorMetrics, compare};
use crate::attention::combiner::{RoutedRow, Variant, layout_for, method_of, route_query};
use crate::attention::method::{KeyRow, Pooling};
use crate::attention::{
    HeadInput, MatrixBudget, MethodId, MethodParams, MethodProperties, compute,
};
use crate::render::{PoolMode, Pooled, pool};

/// Settings of the Combiner routing view (part of the shared selection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoutingSettings {
    /// The Combiner variant.
    pub variant: Variant,
    /// Block size s (axial/mixture grid width); `None` = ⌈√L⌉. Ignored by Logsparse.
    pub block: Option<usize>,
    /// Pooling of summary keys and queries.
    pub pooling: Pooling,
    /// Axial summary key rule.
    pub key_row: KeyRow,
    /// The routed query i; `None` = the middle query `L/2`. Clamped to `L − 1` when used.
    pub query: Option<usize>,
}

impl Default for RoutingSettings {
    fn default() -> Self {
        Self {
            variant: Variant::Fixed,
            block: None,
            pooling: Pooling::Max,
            key_row: KeyRow::Wsum,
            query: None,
        }
    }
}

impl RoutingSettings {
    /// The query index on a sequence of length `seq_len` (≥ 1): the chosen one clamped, or the
    /// middle one.
    pub fn query_index(&self, seq_len: usize) -> usize {
        self.query
            .unwrap_or(seq_len / 2)
            .min(seq_len.saturating_sub(1))
    }

    /// `base` with this view's block, pooling and key row.
    pub fn method_params(&self, base: &MethodParams) -> MethodParams {
        MethodParams {
            block: self.block,
            pooling: self.pooling,
            key_row: self.key_row,
            ..base.clone()
        }
    }

    /// Whether `other` routes with the same variant and parameters (the query may differ).
    pub fn same_routing(&self, other: &RoutingSettings) -> bool {
        RoutingSettings {
            query: None,
            ..*self
        } == RoutingSettings {
            query: None,
            ..*other
        }
    }
}

/// Whether two head selections are the same head of the same loaded input and causality.
pub fn same_head(a: &HeadSelection, b: &HeadSelection) -> bool {
    a.input.id == b.input.id && a.layer == b.layer && a.head == b.head && a.causal == b.causal
}

fn head_input(head: &HeadSelection) -> Result<HeadInput<'_>, String> {
    head.input
        .set
        .head(head.layer, head.head, head.causal, None)
        .map_err(|e| e.to_string())
}

/// The routing of one query (the direct keys, regions and effective row of [`route_query`]).
#[derive(Debug)]
pub struct RouteResult {
    /// Request id (newer results replace older ones across the two routing lanes).
    pub id: u64,
    /// The head.
    pub head: HeadSelection,
    /// Variant and parameters (with the query actually routed).
    pub settings: RoutingSettings,
    /// The block size actually used (after the ⌈√L⌉ default and clamping).
    pub block: usize,
    /// Direct terms, regions with p(Ω|i) and p(j|Ω), q(·|i) and the output row.
    pub row: RoutedRow,
}

impl RouteResult {
    /// `Σ p̃(j|i) + Σ p(Ω|i)`: the joint softmax's total (1 for a query that sees a key).
    pub fn total_weight(&self) -> f64 {
        self.row
            .direct
            .iter()
            .map(|d| f64::from(d.weight))
            .chain(self.row.regions.iter().map(|r| f64::from(r.weight)))
            .sum()
    }
}

/// A Combiner variant's effective matrix against exact attention, with one routed query.
#[derive(Debug)]
pub struct RoutingResult {
    /// Request id (texture cache identity).
    pub id: u64,
    /// The head.
    pub head: HeadSelection,
    /// The settings it was computed with.
    pub settings: RoutingSettings,
    /// The block size actually used.
    pub block: usize,
    /// Exact attention A `[L, L]`.
    pub exact: Array2<f32>,
    /// Effective matrix q(j|i) `[L, L]` (eq. 8).
    pub effective: Array2<f32>,
    /// `effective − exact`.
    pub error: Array2<f32>,
    /// Pooled exact, effective, error for display.
    pub pooled: [Pooled; 3],
    /// C4 metrics of the variant against exact attention.
    pub metrics: ErrorMetrics,
    /// The variant's properties.
    pub properties: MethodProperties,
    /// Notes (block used, budget).
    pub notes: Vec<String>,
    /// Wall-clock time of the Combiner kernel (output and effective matrix).
    pub method_secs: f64,
    /// The query routed with this result.
    pub route: Arc<RouteResult>,
}

/// Computes exact A, the variant's effective matrix, the error and metrics, and routes the
/// selected query.
///
/// # Errors
/// A user-facing message: bad head, Lq ≠ Lk (Combiner is self-attention), a matrix over the
/// C8 budget.
pub fn run_routing(
    id: u64,
    head: HeadSelection,
    settings: RoutingSettings,
    base: &MethodParams,
) -> Result<RoutingResult, String> {
    let budget = MatrixBudget::default();
    let input = head_input(&head)?;
    let params = settings.method_params(base);
    let exact =
        compute(MethodId::Full, &params, &input, true, budget).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let approx = compute(method_of(settings.variant), &params, &input, true, budget)
        .map_err(|e| e.to_string())?;
    let method_secs = start.elapsed().as_secs_f64();
    let (Some(exact_matrix), Some(effective)) = (exact.matrix, approx.matrix) else {
        return Err(format!(
            "the {0}×{0} matrices exceed the display budget (C8); use the CLI for this length",
            input.seq_len_q()
        ));
    };
    let metrics = compare(
        &exact.output,
        &approx.output,
        Some(&exact_matrix),
        Some(&effective),
    );
    let error = &effective - &exact_matrix;
    let pooled = [&exact_matrix, &effective, &error]
        .map(|m| pool(m.view(), MAX_TEXTURE_SIDE, PoolMode::Max));
    let block = layout_for(&input, settings.variant, &params)
        .map_err(|e| e.to_string())?
        .block();
    let query = settings.query_index(input.seq_len_q());
    let row =
        route_query(&input, settings.variant, &approx.params, query).map_err(|e| e.to_string())?;
    let routed = RoutingSettings {
        query: Some(query),
        ..settings
    };
    let route = Arc::new(RouteResult {
        id,
        head: head.clone(),
        settings: routed,
        block,
        row,
    });
    let mut notes = approx.notes;
    notes.extend(exact.matrix_note);
    notes.extend(approx.matrix_note);
    Ok(RoutingResult {
        id,
        head,
        settings,
        block,
        exact: exact_matrix,
        effective,
        error,
        pooled,
        metrics,
        properties: approx.properties,
        notes,
        method_secs,
        route,
    })
}

/// Routes one query only (the block size and variant unchanged; a click on the heatmap).
///
/// # Errors
/// As [`run_routing`].
pub fn run_route(
    id: u64,
    head: HeadSelection,
    settings: RoutingSettings,
    base: &MethodParams,
) -> Result<RouteResult, String> {
    let input = head_input(&head)?;
    let params = settings.method_params(base);
    let query = settings.query_index(input.seq_len_q());
    let row = route_query(&input, settings.variant, &params, query).map_err(|e| e.to_string())?;
    let block = layout_for(&input, settings.variant, &params)
        .map_err(|e| e.to_string())?
        .block();
    Ok(RouteResult {
        id,
        head,
        settings: RoutingSettings {
            query: Some(query),
            ..settings
        },
        block,
        row,
    })
}

/// Singular-value spectra of one head (A and its far field at `bandwidth`).
#[derive(Debug)]
pub struct SpectrumResult {
    /// Request id.
    pub id: u64,
    /// The head.
    pub head: HeadSelection,
    /// σ(A), σ(F), captured energy, the Eckart–Young curve.
    pub spectrum: Spectrum,
    /// Wall-clock time (attention and two SVDs).
    pub elapsed_secs: f64,
}

/// Computes the spectra of the exact attention of `head`.
///
/// # Errors
/// A user-facing message (budget, non-finite values, SVD failure).
pub fn run_spectrum(
    id: u64,
    head: HeadSelection,
    bandwidth: usize,
) -> Result<SpectrumResult, String> {
    let start = Instant::now();
    let input = head_input(&head)?;
    let max_rank = input.seq_len_q().min(input.seq_len_kv());
    let spectrum = spectrum(&input, bandwidth, max_rank, MatrixBudget::default())
        .map_err(|e| e.to_string())?;
    Ok(SpectrumResult {
        id,
        head,
        spectrum,
        elapsed_secs: start.elapsed().as_secs_f64(),
    })
}

/// The methods with a rank knob or a fixed rank bound, plotted against the Eckart–Young curve.
pub const RANK_METHODS: &[MethodId] = &[
    MethodId::Linear,
    MethodId::Performer,
    MethodId::Nystrom,
    MethodId::Linformer,
    MethodId::Svd,
];

/// Each low-rank method's achieved error at matched rank.
#[derive(Debug)]
pub struct RankPointsResult {
    /// Request id.
    pub id: u64,
    /// The head.
    pub head: HeadSelection,
    /// The matched rank.
    pub rank: usize,
    /// Per method: its point, `None` (no rank bound / no matrix) or its error message.
    pub points: Vec<(MethodId, Result<Option<RankPoint>, String>)>,
}

/// Runs [`RANK_METHODS`] at matched rank `rank` (Eckart–Young bounds are filled in by the view
/// from the current spectrum).
///
/// # Errors
/// A user-facing message when the exact matrix exceeds the C8 budget.
pub fn run_rank_points(
    id: u64,
    head: HeadSelection,
    rank: usize,
    base: &MethodParams,
) -> Result<RankPointsResult, String> {
    let input = head_input(&head)?;
    let points = points_at_rank(
        &input,
        rank,
        RANK_METHODS,
        base,
        &[],
        MatrixBudget::default(),
    )
    .map_err(|e| e.to_string())?
    .into_iter()
    .map(|(m, r)| (m, r.map_err(|e| e.to_string())))
    .collect();
    Ok(RankPointsResult {
        id,
        head,
        rank,
        points,
    })
}

/// The optimal band + low-rank split against the fixed split.
#[derive(Debug)]
pub struct OptimalResult {
    /// Request id.
    pub id: u64,
    /// The head.
    pub head: HeadSelection,
    /// Bandwidth b.
    pub bandwidth: usize,
    /// Requested rank r.
    pub rank: usize,
    /// The split (error curve, fixed-split error, iterations).
    pub split: OptimalSplit,
    /// Wall-clock time.
    pub elapsed_secs: f64,
}

/// Iterations of the alternating projections run by the "Optimal split" button.
pub const OPTIMAL_MAX_ITERS: usize = 200;

/// Runs the alternating-projection split of the exact attention of `head`.
///
/// # Errors
/// A user-facing message (budget, SVD failure).
pub fn run_optimal(
    id: u64,
    head: HeadSelection,
    bandwidth: usize,
    rank: usize,
) -> Result<OptimalResult, String> {
    let start = Instant::now();
    let input = head_input(&head)?;
    let split = optimal_split_head(
        &input,
        bandwidth,
        rank,
        OPTIMAL_MAX_ITERS,
        1e-9,
        MatrixBudget::default(),
    )
    .map_err(|e| e.to_string())?;
    Ok(OptimalResult {
        id,
        head,
        bandwidth,
        rank,
        split,
        elapsed_secs: start.elapsed().as_secs_f64(),
    })
}

/// One method's row of the "Compare all" table.
#[derive(Debug)]
pub struct CompareRow {
    /// The method.
    pub method: MethodId,
    /// Parameters used (after matching and clamping).
    pub params: MethodParams,
    /// Metrics, properties and runtime, or why there are none ("n/a: bidirectional only",
    /// or the method's error).
    pub outcome: Result<CompareRun, String>,
}

/// A successful run in the "Compare all" table.
#[derive(Debug)]
pub struct CompareRun {
    /// C4 metrics against exact attention.
    pub metrics: ErrorMetrics,
    /// Properties with the parameters used.
    pub properties: MethodProperties,
    /// Wall-clock time of the method (output and Â).
    pub method_secs: f64,
}

/// Every method of [`MethodId::ALL`] on one head at matched parameters.
#[derive(Debug)]
pub struct CompareAllResult {
    /// Request id.
    pub id: u64,
    /// The head.
    pub head: HeadSelection,
    /// The rank the low-rank methods were matched to.
    pub rank: usize,
    /// One row per method, in [`MethodId::ALL`] order.
    pub rows: Vec<CompareRow>,
}

/// The message shown for a method that has no causal form.
pub const BIDIRECTIONAL_ONLY: &str = "n/a: bidirectional only";

/// Runs every method at matched parameters ([`matched_params`] at `base.rank`) and compares it
/// with exact attention. Methods that reject causality get [`BIDIRECTIONAL_ONLY`].
///
/// # Errors
/// A user-facing message when the head is invalid or exact attention fails.
pub fn run_compare_all(
    id: u64,
    head: HeadSelection,
    base: &MethodParams,
) -> Result<CompareAllResult, String> {
    let budget = MatrixBudget::default();
    let input = head_input(&head)?;
    let exact = compute(MethodId::Full, base, &input, true, budget).map_err(|e| e.to_string())?;
    let rank = base.rank;
    let rows = MethodId::ALL
        .iter()
        .map(|&method| {
            let params = matched_params(method, rank, base);
            if head.causal && !method.properties(&params, input.head_dim()).supports_causal {
                return CompareRow {
                    method,
                    params,
                    outcome: Err(BIDIRECTIONAL_ONLY.into()),
                };
            }
            let start = Instant::now();
            match compute(method, &params, &input, true, budget) {
                Ok(r) => {
                    let method_secs = start.elapsed().as_secs_f64();
                    let metrics = compare(
                        &exact.output,
                        &r.output,
                        exact.matrix.as_ref(),
                        r.matrix.as_ref(),
                    );
                    CompareRow {
                        method,
                        params: r.params,
                        outcome: Ok(CompareRun {
                            metrics,
                            properties: r.properties,
                            method_secs,
                        }),
                    }
                }
                Err(e) => CompareRow {
                    method,
                    params,
                    outcome: Err(e.to_string()),
                },
            }
        })
        .collect();
    Ok(CompareAllResult {
        id,
        head,
        rank,
        rows,
    })
}
