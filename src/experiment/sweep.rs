//! The sweep runner: a grid of methods × parameters × sequence lengths × seeds over one input
//! source, timed, compared with exact attention, streamed to a [`ProgressSink`].

use std::time::Instant;

use ndarray::{Array2, s};
use serde::{Deserialize, Serialize};

use super::ExperimentError;
use super::progress::{CancelToken, ProgressSink};
use crate::analysis::{ErrorValue, KlValue, compare};
use crate::attention::{
    HeadInput, MatrixBudget, MethodId, MethodParams, compute, dense,
    dense::{KEY_BLOCK, QUERY_BLOCK},
};
use crate::data::synth::{SynthSpec, generate};
use crate::data::{QkvSet, load_source};

/// Default `max_exact_len`: above it the exact reference (and so every error) is skipped.
pub const DEFAULT_MAX_EXACT_LEN: usize = 16_384;

/// Default budget for the matrix errors of a sweep: 64 MiB per L×L f32 matrix (L ≤ 4096).
/// A point holds up to three such matrices (exact A, the method's Â, temporaries), so the
/// sweep uses a smaller budget than the interactive views' 256 MiB (C8).
pub const DEFAULT_SWEEP_MATRIX_BYTES: usize = 64 * 1024 * 1024;

/// Where the queries/keys/values of a sweep come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    /// `synth:KIND[,d=..]` (generated afresh for every length and seed; `L` and `seed` in the
    /// string are replaced by the grid's), `sample:NAME`, or a file path (truncated to the
    /// first L queries and keys; longer L are skipped with a reason).
    pub source: String,
    /// Layer of a file input (ignored for synthetic inputs).
    pub layer: usize,
    /// Head of a file input (ignored for synthetic inputs).
    pub head: usize,
}

impl InputSpec {
    /// A synthetic or file source at layer 0, head 0.
    pub fn new(source: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            layer: 0,
            head: 0,
        }
    }

    /// True for `synth:` sources.
    pub fn is_synthetic(&self) -> bool {
        self.source.starts_with("synth:")
    }
}

/// A sweep: the grid, the input and the measurement settings.
///
/// The grid is `seeds × seq_lens × methods × bandwidths × ranks`, where `bandwidths` only
/// multiplies methods that have a bandwidth (`band`, `fmm`) and `ranks` only methods with a
/// rank-like parameter (see [`rank_param`]); other methods run once per (seed, L).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepConfig {
    /// Input source.
    pub input: InputSpec,
    /// Methods to run.
    pub methods: Vec<MethodId>,
    /// Parameters shared by every point (the grid overrides bandwidth, the rank-like
    /// parameter and seed).
    pub params: MethodParams,
    /// Sequence lengths L (queries = keys = L).
    pub seq_lens: Vec<usize>,
    /// Values of the rank-like parameter; empty = `params`' value.
    pub ranks: Vec<usize>,
    /// Bandwidths; empty = `params.bandwidth`.
    pub bandwidths: Vec<usize>,
    /// Seeds (synthetic input and random methods, C7); empty = `params.seed`.
    pub seeds: Vec<u64>,
    /// Causal (C1) or bidirectional attention.
    pub causal: bool,
    /// Scale; `None` = the file's sidecar scale, else `1/sqrt(head_dim)` (C5).
    pub scale: Option<f32>,
    /// Untimed warm-up runs per point.
    pub warmup: usize,
    /// Timed runs per point (≥ 1).
    pub repeats: usize,
    /// rayon threads for the kernels; 0 = one per logical core.
    pub threads: usize,
    /// Above this L the exact reference is not computed and errors are empty (with a reason).
    pub max_exact_len: usize,
    /// Largest L×L f32 matrix (bytes) materialised for the matrix errors (C8).
    pub matrix_budget_bytes: usize,
}

impl Default for SweepConfig {
    fn default() -> Self {
        Self {
            input: InputSpec::new("synth:local"),
            methods: vec![MethodId::Full],
            params: MethodParams::default(),
            seq_lens: vec![256],
            ranks: Vec::new(),
            bandwidths: Vec::new(),
            seeds: Vec::new(),
            causal: false,
            scale: None,
            warmup: 1,
            repeats: 3,
            threads: 0,
            max_exact_len: DEFAULT_MAX_EXACT_LEN,
            matrix_budget_bytes: DEFAULT_SWEEP_MATRIX_BYTES,
        }
    }
}

/// One grid point's measurements, or the reason it was skipped. Every parameter is a column
/// with its SPEC §5 name; missing measurements are empty cells (`None`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepRow {
    /// Position in the grid (0-based).
    pub index: usize,
    /// Method id.
    pub method: String,
    /// Input source (`synth:local L=256 d=64 heads=1 seed=0`, a path, `sample:NAME`).
    pub data: String,
    /// Layer of a file input.
    pub layer: Option<usize>,
    /// Head of a file input.
    pub head: Option<usize>,
    /// Sequence length L (queries = keys).
    pub seq_len: usize,
    /// Query/key dimension d.
    pub head_dim: usize,
    /// Value dimension d_v.
    pub value_dim: usize,
    /// Causal (C1).
    pub causal: bool,
    /// Scale used (C5).
    pub scale: f32,
    /// Near-field bandwidth b (C2).
    pub bandwidth: usize,
    /// Rank r.
    pub rank: usize,
    /// Feature maps, comma-separated.
    pub feature_map: String,
    /// `row` or `none`.
    pub normalization: String,
    /// FMMformer near-field weight (after fitting, if `fit`).
    pub w1: f32,
    /// FMMformer far-field weight (after fitting, if `fit`).
    pub w2: f32,
    /// Per-kernel far-field weights, comma-separated (empty = 1/kernels each).
    pub lambdas: String,
    /// FMMformer least-squares fit of (w1, w2).
    pub fit: bool,
    /// Performer random features m.
    pub num_features: usize,
    /// Nyström landmarks m.
    pub num_landmarks: usize,
    /// Linformer projected length k.
    pub proj_dim: usize,
    /// `mean-pool` or `gaussian`.
    pub projection: String,
    /// Combiner block size s (empty = ⌈√L⌉).
    pub block: Option<usize>,
    /// `max` or `mean`.
    pub pooling: String,
    /// `wsum` or `none`.
    pub key_row: String,
    /// Seed (input generator and random methods).
    pub seed: u64,
    /// Which parameter the sweep's `ranks` set for this method (empty if none).
    pub rank_param: String,
    /// rayon threads the kernels ran on.
    pub threads: usize,
    /// Timed runs.
    pub repeats: usize,
    /// Median wall time of the timed runs, seconds.
    pub runtime_median_s: Option<f64>,
    /// Fastest timed run, seconds.
    pub runtime_min_s: Option<f64>,
    /// Output error `‖Ô − O‖_F / ‖O‖_F` (C4; absolute when `‖O‖_F = 0`, see `output_rel_kind`).
    pub output_rel: Option<f64>,
    /// `relative`, `absolute` (reference is zero) or `non-finite`.
    pub output_rel_kind: Option<String>,
    /// `max |Ô − O|`.
    pub output_max_abs: Option<f64>,
    /// Matrix error `‖Â − A‖_F / ‖A‖_F` (within the matrix budget only).
    pub matrix_rel_fro: Option<f64>,
    /// `max |Â − A|` (within the matrix budget only).
    pub matrix_max_abs: Option<f64>,
    /// Mean row KL(A‖Â) where defined.
    pub mean_row_kl: Option<f64>,
    /// Upper bound on rank(Â) (empty = can be full rank).
    pub rank_bound: Option<usize>,
    /// Estimated peak bytes of the method's own buffers (output, feature maps, per-worker
    /// scratch), from the kernels' known buffer sizes — an estimate, not a measurement; the
    /// methods bench measures with a counting allocator.
    pub peak_bytes_estimate: Option<u64>,
    /// Why the point was not run (e.g. L beyond the file), empty when it ran.
    pub skipped: Option<String>,
    /// Why errors are missing, clamped parameters, fitted weights; `; `-separated.
    pub notes: String,
}

impl SweepRow {
    /// The value of this row's rank-like parameter (`rank_param`), if any.
    pub fn rank_value(&self) -> Option<usize> {
        match self.rank_param.as_str() {
            "rank" => Some(self.rank),
            "num_features" => Some(self.num_features),
            "num_landmarks" => Some(self.num_landmarks),
            "proj_dim" => Some(self.proj_dim),
            _ => None,
        }
    }
}

/// Result of [`run_sweep`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepOutcome {
    /// One row per grid point done, in grid order.
    pub rows: Vec<SweepRow>,
    /// Grid size.
    pub total_points: usize,
    /// True when the sweep stopped early on request.
    pub cancelled: bool,
    /// rayon threads used.
    pub threads: usize,
}

/// The parameter a sweep's `ranks` axis sets for `method` (by id, so methods added later need
/// only a line here): `svd` → `rank`, `performer` → `num_features`, `nystrom` →
/// `num_landmarks`, `linformer` → `proj_dim`; `None` for methods without one.
pub fn rank_param(method: MethodId) -> Option<&'static str> {
    match method.as_str() {
        "svd" => Some("rank"),
        "performer" => Some("num_features"),
        "nystrom" => Some("num_landmarks"),
        "linformer" => Some("proj_dim"),
        _ => None,
    }
}

/// True when `method` reads `bandwidth` (`band`, `fmm`).
pub fn uses_bandwidth(method: MethodId) -> bool {
    uses_bandwidth_id(method.as_str())
}

/// [`uses_bandwidth`] by method id string.
pub fn uses_bandwidth_id(method: &str) -> bool {
    matches!(method, "band" | "fmm")
}

fn set_rank_like(params: &mut MethodParams, name: &str, value: usize) {
    match name {
        "rank" => params.rank = value,
        "num_features" => params.num_features = value,
        "num_landmarks" => params.num_landmarks = value,
        "proj_dim" => params.proj_dim = value,
        _ => {}
    }
}

/// Estimated peak bytes of the buffers `method` allocates for one head (see
/// [`SweepRow::peak_bytes_estimate`]), from each kernel's documented memory use with 4-byte
/// elements; `None` for methods without an estimate (`svd` and methods added later).
///
/// ```text
/// full       out + min(threads, ⌈Lq/64⌉)·(2·64·512 + 64·dv)·4     (score/prob block, accumulator)
/// band       out + threads·(2b+1)·4
/// linear     out + (Lq+Lk)·d·4 (φ(Q), φ(K)) + (d·dv + d)·8 (state)
/// fmm        3·out + linear's buffers + band's
/// performer  out + (Lq+Lk)·m·4 + m·dv·8
/// nystrom    out + (Lq+Lk)·m·4 + 3·m²·8
/// linformer  out + (Lq+Lk)·k·4 + k·(d+dv)·4
/// ```
/// where `out = Lq·dv·4`.
pub fn estimate_peak_bytes(
    method: MethodId,
    params: &MethodParams,
    seq_len_q: usize,
    seq_len_kv: usize,
    head_dim: usize,
    value_dim: usize,
    threads: usize,
) -> Option<u64> {
    let (lq, lk, d, dv, t) = (
        seq_len_q as u64,
        seq_len_kv as u64,
        head_dim as u64,
        value_dim as u64,
        threads.max(1) as u64,
    );
    let out = lq * dv * 4;
    let linear_state = (lq + lk) * d * 4 + (d * dv + d) * 8;
    let band_scratch = t * (2 * params.bandwidth as u64 + 1) * 4;
    match method.as_str() {
        "full" => {
            let blocks = lq.div_ceil(QUERY_BLOCK as u64);
            let (qb, kb) = (QUERY_BLOCK as u64, KEY_BLOCK as u64);
            Some(out + t.min(blocks) * (2 * qb * kb + qb * dv) * 4)
        }
        "band" => Some(out + band_scratch),
        "linear" => Some(out + linear_state),
        "fmm" => Some(3 * out + linear_state + band_scratch),
        "performer" => {
            let m = params.num_features as u64;
            Some(out + (lq + lk) * m * 4 + m * dv * 8)
        }
        "nystrom" => {
            let m = params.num_landmarks as u64;
            Some(out + (lq + lk) * m * 4 + 3 * m * m * 8)
        }
        "linformer" => {
            let k = params.proj_dim as u64;
            Some(out + (lq + lk) * k * 4 + k * (d + dv) * 4)
        }
        _ => None,
    }
}

fn enum_name<T: Serialize>(x: &T) -> String {
    match serde_json::to_value(x) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

fn join<T: std::fmt::Display>(xs: impl IntoIterator<Item = T>) -> String {
    xs.into_iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Largest sequence length accepted from text input (2^24 tokens).
pub const MAX_SWEEP_LEN: usize = 1 << 24;

/// Parses one `--seq-lens` item: `N` or `A..B` (doubling from A while ≤ B).
///
/// # Errors
/// A message naming the item.
pub fn parse_seq_len_item(item: &str) -> Result<Vec<usize>, String> {
    let num = |s: &str| {
        s.trim()
            .replace('_', "")
            .parse::<usize>()
            .map_err(|_| format!("'{s}' is not a sequence length"))
            .and_then(|n| {
                if n == 0 || n > MAX_SWEEP_LEN {
                    Err(format!(
                        "sequence length {n} is outside 1..={MAX_SWEEP_LEN}"
                    ))
                } else {
                    Ok(n)
                }
            })
    };
    match item.split_once("..") {
        Some((a, b)) => {
            let (mut a, b) = (num(a)?, num(b)?);
            if a > b {
                return Err(format!("empty range '{item}' ({a} > {b})"));
            }
            let mut out = Vec::new();
            while a <= b {
                out.push(a);
                a *= 2;
            }
            Ok(out)
        }
        None => Ok(vec![num(item)?]),
    }
}

/// Parses a whole list such as `256..4096, 6000` (items as in [`parse_seq_len_item`], separated
/// by commas or spaces), keeping order and dropping repeats.
///
/// # Errors
/// The first bad item's message; an empty list.
pub fn parse_seq_lens(text: &str) -> Result<Vec<usize>, String> {
    let mut out: Vec<usize> = Vec::new();
    for item in text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
    {
        for l in parse_seq_len_item(item)? {
            if !out.contains(&l) {
                out.push(l);
            }
        }
    }
    if out.is_empty() {
        return Err("no sequence lengths".into());
    }
    Ok(out)
}

/// Parses a comma/space separated list of non-negative integers (ranks, bandwidths, seeds);
/// empty text gives an empty list.
///
/// # Errors
/// A message naming the bad item.
pub fn parse_list<T: std::str::FromStr>(text: &str) -> Result<Vec<T>, String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<T>()
                .map_err(|_| format!("'{s}' is not a non-negative integer"))
        })
        .collect()
}

/// One planned point of the grid.
#[derive(Debug, Clone)]
struct GridPoint {
    seed: u64,
    seq_len: usize,
    method: MethodId,
    params: MethodParams,
}

fn plan(config: &SweepConfig) -> Vec<GridPoint> {
    let seeds = if config.seeds.is_empty() {
        vec![config.params.seed]
    } else {
        config.seeds.clone()
    };
    let mut points = Vec::new();
    for &seed in &seeds {
        for &seq_len in &config.seq_lens {
            for &method in &config.methods {
                let bandwidths = if uses_bandwidth(method) && !config.bandwidths.is_empty() {
                    config.bandwidths.clone()
                } else {
                    vec![config.params.bandwidth]
                };
                let rank_name = rank_param(method);
                let ranks: Vec<Option<usize>> = match rank_name {
                    Some(_) if !config.ranks.is_empty() => {
                        config.ranks.iter().copied().map(Some).collect()
                    }
                    _ => vec![None],
                };
                for &bandwidth in &bandwidths {
                    for &rank in &ranks {
                        let mut params = config.params.clone();
                        params.bandwidth = bandwidth;
                        params.seed = seed;
                        if let (Some(name), Some(r)) = (rank_name, rank) {
                            set_rank_like(&mut params, name, r);
                        }
                        points.push(GridPoint {
                            seed,
                            seq_len,
                            method,
                            params,
                        });
                    }
                }
            }
        }
    }
    points
}

/// The exact reference for one (seed, L): output always, matrix within the budget.
struct Exact {
    output: Array2<f32>,
    matrix: Option<Array2<f32>>,
    note: Option<String>,
}

/// The input at one (seed, L): owned synthetic data or the file, plus why it is unusable.
enum Prepared {
    Synth(Box<QkvSet>, String),
    File,
    Unusable(String),
}

fn validate(config: &SweepConfig) -> Result<(), ExperimentError> {
    let bad = |m: &str| Err(ExperimentError::InvalidConfig(m.to_string()));
    if config.methods.is_empty() {
        return bad("no methods (--method)");
    }
    if config.seq_lens.is_empty() {
        return bad("no sequence lengths (--seq-lens)");
    }
    if config.seq_lens.contains(&0) {
        return bad("sequence length 0 in --seq-lens (each L must be ≥ 1)");
    }
    if config.repeats == 0 {
        return bad("--repeats must be ≥ 1");
    }
    Ok(())
}

fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some(0.5 * (sorted[n / 2 - 1] + sorted[n / 2])),
    }
}

/// Runs the sweep: every grid point in order (see [`SweepConfig`]), calling `sink` for each
/// finished or skipped point, stopping early (with `cancelled = true`) when `cancel` is set —
/// checked before every point and between timing repeats (a half-timed point is dropped).
///
/// Kernels run in a rayon pool of `config.threads` threads built for this sweep; timing is
/// wall-clock ([`Instant`]) around [`compute`] without the effective matrix. Errors (C4) are
/// against [`dense::full_attention`] on the same input (tiled; its matrix only within the
/// budget); above `max_exact_len` they are empty with a note. A method that rejects its
/// parameters or the causality gives a skipped row with the reason, not an error.
///
/// # Errors
/// [`ExperimentError::InvalidConfig`] for an empty grid or zero repeats;
/// [`ExperimentError::Data`] when the input cannot be loaded (or a synthetic length exceeds
/// the generator's limit); [`ExperimentError::ThreadPool`]; any error the sink returns.
pub fn run_sweep(
    config: &SweepConfig,
    sink: &mut dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<SweepOutcome, ExperimentError> {
    validate(config)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(config.threads)
        .thread_name(|i| format!("attnscope-sweep-{i}"))
        .build()
        .map_err(|e| ExperimentError::ThreadPool {
            threads: config.threads,
            reason: e.to_string(),
        })?;
    let threads = pool.current_num_threads();
    let budget = MatrixBudget {
        bytes: config.matrix_budget_bytes,
    };
    let data_error = |error| ExperimentError::Data {
        source_name: config.input.source.clone(),
        error: Box::new(error),
    };
    let synth_spec = if config.input.is_synthetic() {
        Some(SynthSpec::parse(&config.input.source).map_err(data_error)?)
    } else {
        None
    };
    let file = match synth_spec {
        Some(_) => None,
        None => Some(load_source(&config.input.source).map_err(data_error)?),
    };
    let file_head = match &file {
        Some(set) => Some(
            set.head(
                config.input.layer,
                config.input.head,
                config.causal,
                config.scale,
            )
            .map_err(data_error)?,
        ),
        None => None,
    };

    let points = plan(config);
    let total = points.len();
    sink.started(total);
    let mut rows: Vec<SweepRow> = Vec::with_capacity(total);
    let mut current: Option<(u64, usize, Prepared, Option<Exact>)> = None;

    for (index, point) in points.iter().enumerate() {
        if cancel.is_cancelled() {
            sink.cancelled(rows.len());
            return Ok(SweepOutcome {
                rows,
                total_points: total,
                cancelled: true,
                threads,
            });
        }
        // (Re)build the input and the exact reference when (seed, L) changes.
        let fresh = !matches!(&current, Some((seed, len, _, _)) if *seed == point.seed && *len == point.seq_len);
        if fresh {
            let prepared = match (&synth_spec, &file_head) {
                (Some(spec), _) => {
                    let spec = SynthSpec {
                        seq_len: point.seq_len,
                        seed: point.seed,
                        num_heads: 1,
                        ..*spec
                    };
                    // Re-parse the canonical string to apply the generator's size limit.
                    SynthSpec::parse(&spec.source()).map_err(data_error)?;
                    Prepared::Synth(Box::new(generate(&spec)), spec.source())
                }
                (None, Some(h)) => {
                    let avail = h.seq_len_q().min(h.seq_len_kv());
                    if point.seq_len > avail {
                        Prepared::Unusable(format!(
                            "L = {} exceeds the input's length {avail} ({}); use a synth: source for longer sequences",
                            point.seq_len, config.input.source
                        ))
                    } else {
                        Prepared::File
                    }
                }
                (None, None) => Prepared::Unusable("no input".into()),
            };
            current = Some((point.seed, point.seq_len, prepared, None));
        }
        let Some((_, _, prepared, exact_slot)) = current.as_mut() else {
            continue;
        };
        let (head, data_label, layer_head): (Option<HeadInput<'_>>, String, _) = match prepared {
            Prepared::Synth(set, label) => (
                Some(
                    set.head(0, 0, config.causal, config.scale)
                        .map_err(data_error)?,
                ),
                label.clone(),
                (None, None),
            ),
            Prepared::File => match &file_head {
                Some(h) => {
                    let l = point.seq_len;
                    let sliced = HeadInput::new(
                        h.q.slice(s![..l, ..]),
                        h.k.slice(s![..l, ..]),
                        h.v.slice(s![..l, ..]),
                        Some(h.scale),
                        config.causal,
                    )
                    .map_err(|error| {
                        data_error(crate::data::DataError::Attention {
                            error,
                            source_name: config.input.source.clone(),
                        })
                    })?;
                    (
                        Some(sliced),
                        config.input.source.clone(),
                        (Some(config.input.layer), Some(config.input.head)),
                    )
                }
                None => (None, config.input.source.clone(), (None, None)),
            },
            Prepared::Unusable(_) => (
                None,
                config.input.source.clone(),
                (Some(config.input.layer), Some(config.input.head)),
            ),
        };
        let mut row = base_row(index, point, &data_label, layer_head, threads, config);
        let Some(head) = head else {
            let reason = match prepared {
                Prepared::Unusable(r) => r.clone(),
                _ => "no input".into(),
            };
            row.skipped = Some(reason);
            sink.point_done(index, &row)?;
            rows.push(row);
            continue;
        };
        row.head_dim = head.head_dim();
        row.value_dim = head.value_dim();
        row.scale = head.scale;

        let mut params = point.params.clone();
        let mut notes: Vec<String> = Vec::new();
        if let Some(name) = rank_param(point.method) {
            let cap = head.seq_len_q().min(head.seq_len_kv());
            let value = row.rank_value().unwrap_or(0);
            if name != "num_features" && value > cap {
                set_rank_like(&mut params, name, cap);
                notes.push(format!(
                    "{name} {value} clamped to min(Lq, Lk) = {cap} (E12)"
                ));
            }
        }

        // Warm-up (also validates parameters and causality).
        let mut skipped = None;
        for _ in 0..config.warmup.max(1) {
            if let Err(e) = pool.install(|| compute(point.method, &params, &head, false, budget)) {
                skipped = Some(e.to_string());
                break;
            }
        }
        if let Some(reason) = skipped {
            row.skipped = Some(reason);
            sink.point_done(index, &row)?;
            rows.push(row);
            continue;
        }
        let mut times = Vec::with_capacity(config.repeats);
        let mut last = None;
        for _ in 0..config.repeats {
            if cancel.is_cancelled() {
                sink.cancelled(rows.len());
                return Ok(SweepOutcome {
                    rows,
                    total_points: total,
                    cancelled: true,
                    threads,
                });
            }
            let start = Instant::now();
            let result = pool.install(|| compute(point.method, &params, &head, false, budget));
            times.push(start.elapsed().as_secs_f64());
            match result {
                Ok(r) => last = Some(r),
                Err(e) => {
                    row.skipped = Some(e.to_string());
                    break;
                }
            }
        }
        let Some(result) = last else {
            if row.skipped.is_none() {
                row.skipped = Some("no timed run completed".into());
            }
            sink.point_done(index, &row)?;
            rows.push(row);
            continue;
        };
        times.sort_by(f64::total_cmp);
        row.runtime_median_s = median(&times);
        row.runtime_min_s = times.first().copied();
        fill_params(&mut row, &result.params);
        row.rank_bound = result.properties.rank_bound;
        row.peak_bytes_estimate = estimate_peak_bytes(
            point.method,
            &result.params,
            head.seq_len_q(),
            head.seq_len_kv(),
            head.head_dim(),
            head.value_dim(),
            threads,
        );
        notes.extend(result.notes.iter().cloned());

        // Errors against the exact reference.
        if point.seq_len > config.max_exact_len {
            notes.push(format!(
                "errors not computed: L = {} is above --max-exact-len {}",
                point.seq_len, config.max_exact_len
            ));
        } else {
            if exact_slot.is_none() {
                if cancel.is_cancelled() {
                    sink.cancelled(rows.len());
                    return Ok(SweepOutcome {
                        rows,
                        total_points: total,
                        cancelled: true,
                        threads,
                    });
                }
                *exact_slot = Some(exact_reference(&pool, &head, budget)?);
            }
            if let Some(exact) = exact_slot.as_ref() {
                let approx_matrix = if exact.matrix.is_some() {
                    match pool.install(|| compute(point.method, &params, &head, true, budget)) {
                        Ok(r) => {
                            if let Some(n) = r.matrix_note {
                                notes.push(n);
                            }
                            r.matrix
                        }
                        Err(e) => {
                            notes.push(format!("matrix error not computed: {e}"));
                            None
                        }
                    }
                } else {
                    if let Some(n) = &exact.note {
                        notes.push(n.clone());
                    }
                    None
                };
                let m = compare(
                    &exact.output,
                    &result.output,
                    exact.matrix.as_ref(),
                    approx_matrix.as_ref(),
                );
                row.output_rel = Some(m.output_rel.value());
                row.output_rel_kind = Some(
                    match m.output_rel {
                        ErrorValue::Relative(_) => "relative",
                        ErrorValue::Absolute(_) => "absolute",
                        ErrorValue::NonFinite => "non-finite",
                    }
                    .into(),
                );
                row.output_max_abs = Some(m.output_max_abs);
                row.matrix_rel_fro = m.matrix_rel_fro.map(|e| e.value());
                row.matrix_max_abs = m.matrix_max_abs;
                row.mean_row_kl = match m.mean_row_kl {
                    KlValue::Defined(x) => Some(x),
                    KlValue::NotApplicable(why) => {
                        if approx_matrix.is_some() {
                            notes.push(format!("KL n/a: {why}"));
                        }
                        None
                    }
                };
            }
        }
        row.notes = notes.join("; ");
        sink.point_done(index, &row)?;
        rows.push(row);
    }
    sink.finished(rows.len());
    Ok(SweepOutcome {
        rows,
        total_points: total,
        cancelled: false,
        threads,
    })
}

fn exact_reference(
    pool: &rayon::ThreadPool,
    head: &HeadInput<'_>,
    budget: MatrixBudget,
) -> Result<Exact, ExperimentError> {
    let fits = budget.check(head.seq_len_q(), head.seq_len_kv()).is_ok();
    // The output comes from the same path as the timed `full` method (no matrix), so `full`
    // compares exactly equal to its reference; the matrix, when it fits, from the
    // materialising path.
    let output = pool
        .install(|| dense::full_attention(head, false, budget))
        .map_err(ExperimentError::ExactReference)?
        .0;
    let matrix = if fits {
        pool.install(|| dense::full_attention(head, true, budget))
            .map_err(ExperimentError::ExactReference)?
            .1
    } else {
        None
    };
    let note = (!fits).then(|| {
        format!(
            "matrix errors not computed: a {}×{} matrix is over the sweep's matrix budget of {} bytes",
            head.seq_len_q(),
            head.seq_len_kv(),
            budget.bytes
        )
    });
    Ok(Exact {
        output,
        matrix,
        note,
    })
}

fn fill_params(row: &mut SweepRow, p: &MethodParams) {
    row.bandwidth = p.bandwidth;
    row.rank = p.rank;
    row.feature_map = join(p.feature_maps.iter().map(|m| m.as_str()));
    row.normalization = enum_name(&p.normalization);
    row.w1 = p.w1;
    row.w2 = p.w2;
    row.lambdas = p
        .lambdas
        .as_ref()
        .map(|l| join(l.iter()))
        .unwrap_or_default();
    row.fit = p.fit;
    row.num_features = p.num_features;
    row.num_landmarks = p.num_landmarks;
    row.proj_dim = p.proj_dim;
    row.projection = enum_name(&p.projection);
    row.block = p.block;
    row.pooling = enum_name(&p.pooling);
    row.key_row = enum_name(&p.key_row);
    row.seed = p.seed;
}

fn base_row(
    index: usize,
    point: &GridPoint,
    data: &str,
    (layer, head): (Option<usize>, Option<usize>),
    threads: usize,
    config: &SweepConfig,
) -> SweepRow {
    let mut row = SweepRow {
        index,
        method: point.method.as_str().into(),
        data: data.into(),
        layer,
        head,
        seq_len: point.seq_len,
        head_dim: 0,
        value_dim: 0,
        causal: config.causal,
        scale: config.scale.unwrap_or(f32::NAN),
        bandwidth: 0,
        rank: 0,
        feature_map: String::new(),
        normalization: String::new(),
        w1: 0.0,
        w2: 0.0,
        lambdas: String::new(),
        fit: false,
        num_features: 0,
        num_landmarks: 0,
        proj_dim: 0,
        projection: String::new(),
        block: None,
        pooling: String::new(),
        key_row: String::new(),
        seed: point.seed,
        rank_param: rank_param(point.method).unwrap_or_default().into(),
        threads,
        repeats: config.repeats,
        runtime_median_s: None,
        runtime_min_s: None,
        output_rel: None,
        output_rel_kind: None,
        output_max_abs: None,
        matrix_rel_fro: None,
        matrix_max_abs: None,
        mean_row_kl: None,
        rank_bound: None,
        peak_bytes_estimate: None,
        skipped: None,
        notes: String::new(),
    };
    fill_params(&mut row, &point.params);
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_multiplies_bandwidth_only_for_methods_that_use_it() {
        let config = SweepConfig {
            methods: vec![MethodId::Full, MethodId::Band, MethodId::Fmm],
            seq_lens: vec![32, 64],
            bandwidths: vec![1, 2, 3],
            ranks: vec![4, 8],
            seeds: vec![0, 1],
            ..SweepConfig::default()
        };
        let points = plan(&config);
        // Per (seed, L): full once, band 3 bandwidths, fmm 3 bandwidths = 7.
        assert_eq!(points.len(), 2 * 2 * 7);
        assert!(
            points
                .iter()
                .filter(|p| p.method == MethodId::Full)
                .all(|p| p.params.bandwidth == MethodParams::default().bandwidth)
        );
        assert_eq!(points[0].seed, 0);
        assert_eq!(points[points.len() - 1].seed, 1);
    }

    #[test]
    fn seq_len_items_and_doubling_ranges() {
        assert_eq!(parse_seq_len_item("256"), Ok(vec![256]));
        assert_eq!(
            parse_seq_len_item("256..2048"),
            Ok(vec![256, 512, 1024, 2048])
        );
        assert_eq!(parse_seq_len_item("100..500"), Ok(vec![100, 200, 400]));
        assert!(parse_seq_len_item("0").is_err());
        assert!(parse_seq_len_item("x").is_err());
        assert!(parse_seq_len_item("512..256").is_err());
        assert!(parse_seq_len_item("99999999999").is_err());
        assert_eq!(parse_seq_lens("32, 64..128 64"), Ok(vec![32, 64, 128]));
        assert!(parse_seq_lens(" ").is_err());
        assert_eq!(parse_list::<usize>("1, 2 3"), Ok(vec![1, 2, 3]));
        assert!(parse_list::<usize>("1,-2").is_err());
    }

    #[test]
    fn median_of_even_and_odd_counts() {
        assert_eq!(median(&[1.0, 2.0, 10.0]), Some(2.0));
        assert_eq!(median(&[1.0, 2.0, 3.0, 10.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn linear_cost_estimates_grow_linearly_and_full_does_not_hold_l_squared() {
        let p = MethodParams::default();
        for m in [
            MethodId::Band,
            MethodId::Linear,
            MethodId::Fmm,
            MethodId::Performer,
            MethodId::Nystrom,
            MethodId::Linformer,
        ] {
            let a = estimate_peak_bytes(m, &p, 4096, 4096, 64, 64, 2).unwrap_or(0);
            let b = estimate_peak_bytes(m, &p, 8192, 8192, 64, 64, 2).unwrap_or(0);
            assert!(a > 0 && b > a && b <= 2 * a + 4096, "{m}: {a} → {b}");
        }
        let full = estimate_peak_bytes(MethodId::Full, &p, 65_536, 65_536, 64, 64, 2).unwrap_or(0);
        assert!(
            full < 65_536 * 65_536 * 4 / 16,
            "full holds only score blocks: {full}"
        );
    }
}
