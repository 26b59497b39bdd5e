//! The background worker: one named thread (`attnscope-compute`) that loads inputs and runs
//! decompositions and methods, so the UI thread never blocks.
//!
//! Jobs go in over a channel, results come back over another. Each job has a request id from a
//! monotonically increasing counter; the app remembers the latest id per [`Lane`] and drops any
//! result whose id is not the latest (a stale result). The worker also coalesces: before it
//! starts work it drains the queue and keeps only the newest job of each lane, so a slider drag
//! that sends fifty jobs computes the last one (plus at most the one already running).
//!
//! Heavy per-result preparation that the views need (pooling to ≤ [`MAX_TEXTURE_SIDE`] per side,
//! E15) happens here too; the UI thread only maps the pooled values to colours once per
//! (result, display settings) pair.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Instant;

use ndarray::Array2;

use crate::analysis::{
    AnalysisError, Decomposition, ErrorMetrics, PooledDecomposition, TileControl, compare,
    decompose, pooled_decomposition,
};
use crate::attention::{MatrixBudget, MethodId, MethodParams, MethodProperties, compute};
use crate::data::{self, QkvSet, SynthSpec};
use crate::render::{PoolMode, Pooled, pool};

use super::view_jobs::{
    self, CompareAllResult, OptimalResult, RankPointsResult, RouteResult, RoutingResult,
    RoutingSettings, SpectrumResult,
};

/// Largest texture side; larger matrices are pooled (E15) and labelled "pooled k×k".
pub const MAX_TEXTURE_SIDE: usize = 2048;

/// How large results are handled: the C8 budget, the pooling of long inputs and the largest
/// image side (the renderer's texture limit, at most [`MAX_TEXTURE_SIDE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComputeSettings {
    /// Largest L×L matrix one request may materialise (C8). The decomposition needs six.
    pub budget: MatrixBudget,
    /// Block max or block mean for pooled images (E15).
    pub pool_mode: PoolMode,
    /// Largest side of a displayed image, in cells.
    pub max_side: usize,
}

impl Default for ComputeSettings {
    fn default() -> Self {
        Self {
            budget: MatrixBudget::default(),
            pool_mode: PoolMode::Max,
            max_side: MAX_TEXTURE_SIDE,
        }
    }
}

/// Where an input comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum InputSource {
    /// A bundled sample by name (see [`crate::data::SAMPLES`]).
    Sample(String),
    /// A file (or directory of `q`/`k`/`v` files) on disk.
    File(PathBuf),
    /// A seeded synthetic input (C7).
    Synthetic(SynthSpec),
}

impl InputSource {
    /// Parses what the command line accepts: `sample:NAME`, `synth:KIND[,L=..,seed=..]` or a
    /// path.
    ///
    /// # Errors
    /// A malformed `synth:` spec.
    pub fn from_spec(spec: &str) -> Result<Self, data::DataError> {
        if let Some(name) = spec.strip_prefix("sample:") {
            Ok(InputSource::Sample(name.to_string()))
        } else if spec.starts_with("synth:") {
            Ok(InputSource::Synthetic(SynthSpec::parse(spec)?))
        } else {
            Ok(InputSource::File(PathBuf::from(spec)))
        }
    }

    /// The equivalent source string of [`crate::data::load_source`] (shown to the user and
    /// accepted by the CLI).
    pub fn spec(&self) -> String {
        match self {
            InputSource::Sample(name) => format!("sample:{name}"),
            InputSource::File(path) => path.display().to_string(),
            InputSource::Synthetic(spec) => format!(
                "synth:{},L={},d={},heads={},seed={}",
                spec.kind.id(),
                spec.seq_len,
                spec.head_dim,
                spec.num_heads,
                spec.seed
            ),
        }
    }
}

/// A loaded input with an identity for caches (the id of the job that loaded it).
#[derive(Debug)]
pub struct LoadedInput {
    /// Unique per load.
    pub id: u64,
    /// Where it came from.
    pub source: InputSource,
    /// The query/key/value tensors and metadata.
    pub set: QkvSet,
}

/// Which head of which input a computation runs on.
#[derive(Debug, Clone)]
pub struct HeadSelection {
    /// The input.
    pub input: Arc<LoadedInput>,
    /// Layer index into the input's layer axis.
    pub layer: usize,
    /// Head index.
    pub head: usize,
    /// Causal (C1) or bidirectional.
    pub causal: bool,
}

/// Independent job streams; each keeps only its latest request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    /// Loading an input.
    Load,
    /// The near/far decomposition.
    Decompose,
    /// One method against exact attention.
    Method,
    // --- routing / spectrum / compare-all lanes (see `view_jobs`) ---
    /// A Combiner variant's effective matrix and one routed query.
    Routing,
    /// One routed query only (a click on the routing heatmap).
    Route,
    /// Singular-value spectra.
    Spectrum,
    /// Low-rank methods' errors at matched rank.
    RankPoints,
    /// The optimal band + low-rank split.
    Optimal,
    /// Every method on the current input.
    CompareAll,
}

impl Lane {
    const COUNT: usize = 9;
    fn index(self) -> usize {
        match self {
            Lane::Load => 0,
            Lane::Decompose => 1,
            Lane::Method => 2,
            Lane::Routing => 3,
            Lane::Route => 4,
            Lane::Spectrum => 5,
            Lane::RankPoints => 6,
            Lane::Optimal => 7,
            Lane::CompareAll => 8,
        }
    }
}

/// What to compute.
#[derive(Debug, Clone)]
pub enum JobRequest {
    /// Load an input.
    Load(InputSource),
    /// Decompose exact attention at `bandwidth` and `rank`.
    Decompose {
        /// The head.
        head: HeadSelection,
        /// Bandwidth b (C2).
        bandwidth: usize,
        /// Far-field rank r.
        rank: usize,
        /// Budget, pooling and image size.
        settings: ComputeSettings,
    },
    /// Run `method` and compare it with exact attention (C4).
    Method {
        /// The head.
        head: HeadSelection,
        /// The method.
        method: MethodId,
        /// Its parameters.
        params: MethodParams,
        /// Budget, pooling and image size.
        settings: ComputeSettings,
    },
    // --- routing / spectrum / compare-all requests (see `view_jobs`) ---
    /// A Combiner variant against exact attention, routing `settings.query`.
    Routing {
        /// The head.
        head: HeadSelection,
        /// Variant, block, pooling, key row, query.
        settings: RoutingSettings,
        /// Other parameters.
        params: MethodParams,
    },
    /// Route one query only.
    Route {
        /// The head.
        head: HeadSelection,
        /// Variant, block, pooling, key row, query.
        settings: RoutingSettings,
        /// Other parameters.
        params: MethodParams,
    },
    /// Spectra of A and of its far field at `bandwidth`.
    Spectrum {
        /// The head.
        head: HeadSelection,
        /// Far-field bandwidth b (C2).
        bandwidth: usize,
    },
    /// Low-rank methods at matched `rank`.
    RankPoints {
        /// The head.
        head: HeadSelection,
        /// Matched rank.
        rank: usize,
        /// Other parameters.
        params: MethodParams,
    },
    /// Optimal band + rank-`rank` split at `bandwidth`.
    Optimal {
        /// The head.
        head: HeadSelection,
        /// Bandwidth b (C2).
        bandwidth: usize,
        /// Rank r.
        rank: usize,
    },
    /// Every method at matched parameters (`params.rank`).
    CompareAll {
        /// The head.
        head: HeadSelection,
        /// Parameters of the current selection.
        params: MethodParams,
    },
}

impl JobRequest {
    /// The lane this request belongs to.
    pub fn lane(&self) -> Lane {
        match self {
            JobRequest::Load(_) => Lane::Load,
            JobRequest::Decompose { .. } => Lane::Decompose,
            JobRequest::Method { .. } => Lane::Method,
            JobRequest::Routing { .. } => Lane::Routing,
            JobRequest::Route { .. } => Lane::Route,
            JobRequest::Spectrum { .. } => Lane::Spectrum,
            JobRequest::RankPoints { .. } => Lane::RankPoints,
            JobRequest::Optimal { .. } => Lane::Optimal,
            JobRequest::CompareAll { .. } => Lane::CompareAll,
        }
    }
}

/// A decomposition with its pooled display matrices.
#[derive(Debug)]
pub struct DecompositionResult {
    /// Request id (identity for texture caches).
    pub id: u64,
    /// The head it was computed on (tokens for hover).
    pub head: HeadSelection,
    /// The matrices and metrics.
    pub decomposition: Decomposition,
    /// The six panels pooled to ≤ [`MAX_TEXTURE_SIDE`], in [`DecompPanel::ALL`] order.
    pub pooled: Vec<Pooled>,
    /// Wall-clock time of the decomposition.
    pub elapsed_secs: f64,
}

/// The decomposition of an input too long for the budget (E15): A, near and far field pooled
/// from row tiles; the SVD parts are missing (see [`PooledDecomposition::notes`]).
#[derive(Debug)]
pub struct PooledDecompositionResult {
    /// Request id (identity for texture caches).
    pub id: u64,
    /// The head it was computed on.
    pub head: HeadSelection,
    /// Pooled matrices and the metrics that need no SVD.
    pub decomposition: PooledDecomposition,
    /// Wall-clock time.
    pub elapsed_secs: f64,
}

/// The six panels of the decomposition view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecompPanel {
    /// Exact attention A.
    Full,
    /// `band_b(A)`.
    Near,
    /// `F = A − band_b(A)`.
    Far,
    /// `F_r`.
    FarRankR,
    /// `band_b(A) + F_r`.
    Reconstruction,
    /// `reconstruction − A`.
    Error,
}

impl DecompPanel {
    /// Display order.
    pub const ALL: [DecompPanel; 6] = [
        DecompPanel::Full,
        DecompPanel::Near,
        DecompPanel::Far,
        DecompPanel::FarRankR,
        DecompPanel::Reconstruction,
        DecompPanel::Error,
    ];

    /// Panel title (also the accessibility label the tests search for).
    pub fn title(self) -> &'static str {
        match self {
            DecompPanel::Full => "full A",
            DecompPanel::Near => "near field",
            DecompPanel::Far => "far field",
            DecompPanel::FarRankR => "far field rank-r",
            DecompPanel::Reconstruction => "reconstruction",
            DecompPanel::Error => "signed error",
        }
    }

    /// The panel's matrix.
    pub fn matrix(self, d: &Decomposition) -> &Array2<f32> {
        match self {
            DecompPanel::Full => &d.full,
            DecompPanel::Near => &d.near,
            DecompPanel::Far => &d.far,
            DecompPanel::FarRankR => &d.far_rank_r,
            DecompPanel::Reconstruction => &d.reconstruction,
            DecompPanel::Error => &d.error,
        }
    }

    /// Signed panels use the diverging colour map.
    pub fn is_signed(self) -> bool {
        matches!(self, DecompPanel::Error)
    }
}

/// A method run compared with exact attention.
#[derive(Debug)]
pub struct MethodRun {
    /// Request id.
    pub id: u64,
    /// The head.
    pub head: HeadSelection,
    /// The method.
    pub method: MethodId,
    /// Parameters actually used (after fitting / clamping).
    pub params: MethodParams,
    /// Exact attention A (within the C8 budget).
    pub exact: Option<Array2<f32>>,
    /// The method's effective matrix Â (within the budget).
    pub approx: Option<Array2<f32>>,
    /// `Â − A`.
    pub error: Option<Array2<f32>>,
    /// Pooled A, Â, Â − A for display (present where the matrix is).
    pub pooled: [Option<Pooled>; 3],
    /// C4 metrics.
    pub metrics: ErrorMetrics,
    /// Query rows that see no key (C3), sorted.
    pub empty_rows: Vec<usize>,
    /// Properties of the method with these parameters.
    pub properties: MethodProperties,
    /// Notes from the method (fitted weights, clamping) and the budget.
    pub notes: Vec<String>,
    /// Wall-clock time of the method alone (output and Â).
    pub method_secs: f64,
}

/// A finished job.
#[derive(Debug)]
pub enum JobOutput {
    /// An input was loaded.
    Loaded(Arc<LoadedInput>),
    /// A decomposition finished.
    Decomposed(Arc<DecompositionResult>),
    /// A decomposition of a very long input finished (pooled, no SVD).
    PooledDecomposed(Arc<PooledDecompositionResult>),
    /// A method run finished.
    Method(Arc<MethodRun>),
    // --- routing / spectrum / compare-all outputs (see `view_jobs`) ---
    /// A Combiner routing result.
    Routing(Arc<RoutingResult>),
    /// One routed query.
    Route(Arc<RouteResult>),
    /// Spectra.
    Spectrum(Arc<SpectrumResult>),
    /// Matched-rank points.
    RankPoints(Arc<RankPointsResult>),
    /// Optimal split.
    Optimal(Arc<OptimalResult>),
    /// The "Compare all" table.
    CompareAll(Arc<CompareAllResult>),
}

/// A result with its request id.
#[derive(Debug)]
pub struct JobResult {
    /// The request id it answers.
    pub id: u64,
    /// The lane.
    pub lane: Lane,
    /// The output or a user-facing error message.
    pub outcome: Result<JobOutput, String>,
}

struct Job {
    id: u64,
    request: JobRequest,
}

/// Handle to the background worker thread.
pub struct Worker {
    shared: Arc<Shared>,
    jobs: Sender<Job>,
    results: Receiver<JobResult>,
    next_id: u64,
    latest: [u64; Lane::COUNT],
    pending: [bool; Lane::COUNT],
}

/// State shared between the UI and the worker thread.
#[derive(Debug, Default)]
struct Shared {
    /// Set by [`Worker::cancel`]; checked between row tiles; cleared when a job starts.
    cancel: AtomicBool,
    /// Progress of the running tiled job as `f32` bits; [`NO_PROGRESS`] when none.
    progress: AtomicU32,
}

const NO_PROGRESS: u32 = u32::MAX;

impl Worker {
    /// Spawns the `attnscope-compute` thread. `repaint` is called whenever a result is sent
    /// (the app passes `ctx.request_repaint()`).
    ///
    /// # Errors
    /// The OS refused to create the thread.
    pub fn spawn(repaint: impl Fn() + Send + 'static) -> std::io::Result<Self> {
        let (job_tx, job_rx) = channel::<Job>();
        let (result_tx, result_rx) = channel::<JobResult>();
        let shared = Arc::new(Shared {
            cancel: AtomicBool::new(false),
            progress: AtomicU32::new(NO_PROGRESS),
        });
        let worker_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("attnscope-compute".into())
            .spawn(move || worker_loop(&job_rx, &result_tx, &repaint, &worker_shared))?;
        Ok(Self {
            shared,
            jobs: job_tx,
            results: result_rx,
            next_id: 1,
            latest: [0; Lane::COUNT],
            pending: [false; Lane::COUNT],
        })
    }

    /// Queues a request; returns its id. Any earlier request of the same lane becomes stale.
    pub fn submit(&mut self, request: JobRequest) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let lane = request.lane();
        if lane == Lane::Decompose && self.pending[lane.index()] {
            // A newer decomposition supersedes a long tiled one still running.
            self.cancel();
        }
        self.latest[lane.index()] = id;
        self.pending[lane.index()] = true;
        if self.jobs.send(Job { id, request }).is_err() {
            // The worker is gone (it only exits when this handle is dropped); report as idle.
            self.pending[lane.index()] = false;
        }
        id
    }

    /// Results that arrived since the last call, stale ones dropped. Never blocks.
    pub fn poll(&mut self) -> Vec<JobResult> {
        let mut fresh = Vec::new();
        // Empty or disconnected both mean "nothing more now".
        while let Ok(result) = self.results.try_recv() {
            let lane = result.lane.index();
            if result.id == self.latest[lane] {
                self.pending[lane] = false;
                fresh.push(result);
            }
        }
        fresh
    }

    /// Whether the latest request of `lane` is still running or queued.
    pub fn is_busy(&self, lane: Lane) -> bool {
        self.pending[lane.index()]
    }

    /// Whether any lane is busy.
    pub fn any_busy(&self) -> bool {
        self.pending.iter().any(|&p| p)
    }

    /// Asks the running tiled computation to stop (it ends with a "cancelled" error).
    pub fn cancel(&self) {
        self.shared.cancel.store(true, Ordering::Relaxed);
    }

    /// Fraction done of the running tiled computation, if one is running.
    pub fn progress(&self) -> Option<f32> {
        let bits = self.shared.progress.load(Ordering::Relaxed);
        (bits != NO_PROGRESS).then(|| f32::from_bits(bits))
    }
}

fn worker_loop(
    jobs: &Receiver<Job>,
    results: &Sender<JobResult>,
    repaint: &dyn Fn(),
    shared: &Shared,
) {
    while let Ok(first) = jobs.recv() {
        // Coalesce: keep only the newest job of each lane.
        let mut newest: [Option<Job>; Lane::COUNT] = std::array::from_fn(|_| None);
        let mut push = |job: Job| {
            let lane = job.request.lane().index();
            if newest[lane].as_ref().is_none_or(|old| old.id < job.id) {
                newest[lane] = Some(job);
            }
        };
        push(first);
        while let Ok(job) = jobs.try_recv() {
            push(job);
        }
        for job in newest.into_iter().flatten() {
            let lane = job.request.lane();
            let id = job.id;
            shared.cancel.store(false, Ordering::Relaxed);
            let progress = |f: f32| {
                shared.progress.store(f.to_bits(), Ordering::Relaxed);
                repaint();
            };
            let control = TileControl {
                cancel: Some(&shared.cancel),
                progress: Some(&progress),
            };
            let outcome =
                std::panic::catch_unwind(AssertUnwindSafe(|| run_job(id, job.request, control)))
                    .unwrap_or_else(
                        |_| Err("internal error: the computation panicked".to_string()),
                    );
            shared.progress.store(NO_PROGRESS, Ordering::Relaxed);
            if results.send(JobResult { id, lane, outcome }).is_err() {
                return;
            }
            repaint();
        }
    }
}

fn run_job(id: u64, request: JobRequest, control: TileControl<'_>) -> Result<JobOutput, String> {
    match request {
        JobRequest::Load(source) => {
            let set = match &source {
                InputSource::File(path) => data::load_path(path),
                InputSource::Sample(name) => data::load_sample(name),
                InputSource::Synthetic(spec) => Ok(data::generate(spec)),
            }
            .map_err(|e| e.to_string())?;
            Ok(JobOutput::Loaded(Arc::new(LoadedInput { id, source, set })))
        }
        JobRequest::Decompose {
            head,
            bandwidth,
            rank,
            settings,
        } => {
            let start = Instant::now();
            let input = head
                .input
                .set
                .head(head.layer, head.head, head.causal, None)
                .map_err(|e| e.to_string())?;
            let (lq, lk) = (input.seq_len_q(), input.seq_len_kv());
            if settings.budget.check(lq, lk.saturating_mul(6)).is_err() {
                let decomposition = pooled_decomposition(
                    &input,
                    bandwidth,
                    settings.max_side,
                    settings.pool_mode,
                    control,
                )
                .map_err(|e| match e {
                    AnalysisError::Cancelled => "cancelled by the user".to_string(),
                    other => other.to_string(),
                })?;
                return Ok(JobOutput::PooledDecomposed(Arc::new(
                    PooledDecompositionResult {
                        id,
                        head,
                        decomposition,
                        elapsed_secs: start.elapsed().as_secs_f64(),
                    },
                )));
            }
            let decomposition =
                decompose(&input, bandwidth, rank, settings.budget).map_err(|e| e.to_string())?;
            let pooled = DecompPanel::ALL
                .iter()
                .map(|p| {
                    pool(
                        p.matrix(&decomposition).view(),
                        settings.max_side,
                        settings.pool_mode,
                    )
                })
                .collect();
            Ok(JobOutput::Decomposed(Arc::new(DecompositionResult {
                id,
                head,
                decomposition,
                pooled,
                elapsed_secs: start.elapsed().as_secs_f64(),
            })))
        }
        JobRequest::Method {
            head,
            method,
            params,
            settings,
        } => {
            let budget = settings.budget;
            let input = head
                .input
                .set
                .head(head.layer, head.head, head.causal, None)
                .map_err(|e| e.to_string())?;
            let (lq, lk) = (input.seq_len_q(), input.seq_len_kv());
            // Above the budget (E15): exact A pooled from row tiles (cancellable, with
            // progress); its output is the exact output. Â and Â − A stay unmaterialised.
            let (exact, pooled_exact) = if budget.check(lq, lk).is_err() {
                let tiled =
                    pooled_decomposition(&input, 0, settings.max_side, settings.pool_mode, control)
                        .map_err(|e| match e {
                            AnalysisError::Cancelled => "cancelled by the user".to_string(),
                            other => other.to_string(),
                        })?;
                let note = format!(
                    "exact A ({lq}×{lk}) exceeds the matrix budget: computed in row tiles and \
                     shown {}",
                    tiled.full.label().unwrap_or_else(|| "exactly".into())
                );
                let exact = crate::attention::MethodResult {
                    output: tiled.output,
                    matrix: None,
                    matrix_note: Some(note),
                    properties: MethodId::Full.properties(&params, input.head_dim()),
                    params: params.clone(),
                    notes: Vec::new(),
                };
                (exact, Some(tiled.full))
            } else {
                let exact = compute(MethodId::Full, &params, &input, true, budget)
                    .map_err(|e| e.to_string())?;
                (exact, None)
            };
            let start = Instant::now();
            let approx =
                compute(method, &params, &input, true, budget).map_err(|e| e.to_string())?;
            let method_secs = start.elapsed().as_secs_f64();
            let metrics = compare(
                &exact.output,
                &approx.output,
                exact.matrix.as_ref(),
                approx.matrix.as_ref(),
            );
            let error = match (&exact.matrix, &approx.matrix) {
                (Some(a), Some(b)) => Some(b - a),
                _ => None,
            };
            let pool_opt = |m: &Option<Array2<f32>>| {
                m.as_ref()
                    .map(|m| pool(m.view(), settings.max_side, settings.pool_mode))
            };
            let pooled = [
                pooled_exact.or_else(|| pool_opt(&exact.matrix)),
                pool_opt(&approx.matrix),
                pool_opt(&error),
            ];
            let empty_rows = (0..input.seq_len_q())
                .filter(|&i| input.visible_keys(i).is_empty())
                .collect();
            let mut notes = approx.notes;
            notes.extend(exact.matrix_note);
            notes.extend(approx.matrix_note);
            Ok(JobOutput::Method(Arc::new(MethodRun {
                id,
                head,
                method,
                params: approx.params,
                exact: exact.matrix,
                approx: approx.matrix,
                error,
                pooled,
                metrics,
                empty_rows,
                properties: approx.properties,
                notes,
                method_secs,
            })))
        }
        JobRequest::Routing {
            head,
            settings,
            params,
        } => view_jobs::run_routing(id, head, settings, &params)
            .map(|r| JobOutput::Routing(Arc::new(r))),
        JobRequest::Route {
            head,
            settings,
            params,
        } => {
            view_jobs::run_route(id, head, settings, &params).map(|r| JobOutput::Route(Arc::new(r)))
        }
        JobRequest::Spectrum { head, bandwidth } => {
            view_jobs::run_spectrum(id, head, bandwidth).map(|r| JobOutput::Spectrum(Arc::new(r)))
        }
        JobRequest::RankPoints { head, rank, params } => {
            view_jobs::run_rank_points(id, head, rank, &params)
                .map(|r| JobOutput::RankPoints(Arc::new(r)))
        }
        JobRequest::Optimal {
            head,
            bandwidth,
            rank,
        } => view_jobs::run_optimal(id, head, bandwidth, rank)
            .map(|r| JobOutput::Optimal(Arc::new(r))),
        JobRequest::CompareAll { head, params } => view_jobs::run_compare_all(id, head, &params)
            .map(|r| JobOutput::CompareAll(Arc::new(r))),
    }
}
