//! The desktop GUI (feature `gui`): eframe/egui with the glow renderer.
//!
//! # Structure (SPEC §6, style.md)
//! * One shared [`Selection`] (input, layer, head, causal, method, parameters, display settings).
//! * Views never mutate it: they return [`Command`]s, applied in one place
//!   ([`AttnScopeApp::apply`]), which marks what must be recomputed.
//! * All loading and computing runs on the `attnscope-compute` thread ([`jobs::Worker`]);
//!   [`eframe::App::logic`] polls it each frame and drops stale results. The last good result
//!   stays on screen while a new one computes (a spinner shows it is busy); errors appear inline
//!   in the view and as a notification.
//! * Views are listed in [`View`]; later views (Combiner routing, spectrum, sweeps, notebook)
//!   add a variant, a file in `views/`, and (if they compute) a lane in [`jobs`].

pub mod export;
pub mod heatmap_view;
pub mod jobs;
pub mod notebook;
pub mod view_jobs;
pub mod views;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

use eframe::egui;

use crate::attention::{MethodId, MethodParams};
use export::ExportWhat;
use heatmap_view::{DisplaySettings, TextureCache};
use jobs::{
    ComputeSettings, DecompositionResult, HeadSelection, InputSource, JobOutput, JobRequest, Lane,
    LoadedInput, MAX_TEXTURE_SIDE, MethodRun, PooledDecompositionResult, Worker,
};
use view_jobs::{
    CompareAllResult, OptimalResult, RankPointsResult, RouteResult, RoutingResult, RoutingSettings,
    SpectrumResult,
};

/// Number of recent files kept (persisted with eframe's storage).
pub const MAX_RECENT_FILES: usize = 10;

/// eframe storage key of [`Persisted`].
const STORAGE_KEY: &str = "attnscope_settings";

/// What survives a restart (eframe persistence).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Persisted {
    /// Most recently opened files, newest first.
    pub recent_files: Vec<PathBuf>,
    /// The C8 budget in MiB (0 = default).
    pub budget_mib: usize,
}

/// The sample opened at start when no file is given.
pub const DEFAULT_SAMPLE: &str = "zen";

/// Opens the main window on `initial` (a path, `sample:NAME` or `synth:KIND`; default the
/// bundled zen sample) and runs until it closes.
///
/// # Errors
/// A malformed `synth:` spec; eframe could not create the window or the GL context.
pub fn run(initial: Option<String>) -> anyhow::Result<()> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("attnscope")
            .with_inner_size([1400.0, 900.0])
            .with_min_inner_size([800.0, 500.0]),
        renderer: eframe::Renderer::Glow,
        ..Default::default()
    };
    let source = match initial.as_deref() {
        None => InputSource::Sample(DEFAULT_SAMPLE.into()),
        Some(spec) => InputSource::from_spec(spec)?,
    };
    let keep_source = initial.is_some();
    eframe::run_native(
        "attnscope",
        options,
        Box::new(move |cc| {
            let mut app = AttnScopeApp::new(&cc.egui_ctx, source)?;
            if let Some(persisted) = cc
                .storage
                .and_then(|s| eframe::get_value::<Persisted>(s, STORAGE_KEY))
            {
                app.restore(persisted);
            }
            // Last input, view, layer/head/causal, method, parameters, colours and the open
            // notebook folder (issue 7); a file given on the command line wins over the
            // remembered input.
            let ui_state = cc
                .storage
                .and_then(|s| eframe::get_value::<notebook::PersistedUi>(s, notebook::PERSIST_KEY))
                .unwrap_or_default();
            app.restore_ui(ui_state, keep_source);
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the attnscope window: {e}"))
}

/// Adds the bundled monospace font (Hack) as the last fallback of the proportional family, so
/// math in labels and notes (⌈√L⌉, ∅, ∈, ‖·‖, p̃) is drawn instead of tofu (Ubuntu-Light lacks
/// these glyphs).
fn install_fallback_fonts(ctx: &egui::Context) {
    let mut fonts = egui::FontDefinitions::default();
    if fonts.font_data.contains_key("Hack")
        && let Some(family) = fonts.families.get_mut(&egui::FontFamily::Proportional)
        && !family.iter().any(|f| f == "Hack")
    {
        family.push("Hack".to_owned());
    }
    ctx.set_fonts(fonts);
}

/// The views (tabs). New views add a variant here and a file in `views/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    /// Near/far decomposition of exact attention (FMMformer).
    Decomposition,
    /// One method's Â against exact A.
    Methods,
    /// Combiner routing of one query (issue 3).
    Routing,
    /// Singular-value spectra and the Eckart–Young curve (issue 4).
    Spectrum,
    /// Error and runtime against L, rank and bandwidth (issue 5).
    Sweeps,
    /// Pinned findings: notes, reorder, reopen, export (issue 7).
    Notebook,
}

impl View {
    /// Tab order.
    pub const ALL: &'static [View] = &[
        View::Decomposition,
        View::Methods,
        View::Routing,
        View::Spectrum,
        View::Sweeps,
        View::Notebook,
    ];

    /// Tab title.
    pub fn title(self) -> &'static str {
        match self {
            View::Decomposition => "Decomposition",
            View::Methods => "Methods",
            View::Routing => "Combiner routing",
            View::Spectrum => "Spectrum",
            View::Sweeps => "Sweeps",
            View::Notebook => "Notebook",
        }
    }
}

/// The one shared selection every view reads.
#[derive(Debug, Clone)]
pub struct Selection {
    /// The loaded input (the last good one while another loads).
    pub input: Option<Arc<LoadedInput>>,
    /// Layer index.
    pub layer: usize,
    /// Head index.
    pub head: usize,
    /// Causal (C1) or bidirectional.
    pub causal: bool,
    /// Method of the methods view.
    pub method: MethodId,
    /// Every method parameter; `bandwidth` and `rank` also drive the decomposition.
    pub params: MethodParams,
    /// Colour settings of every heatmap.
    pub display: DisplaySettings,
    /// The C8 budget for one L×L matrix, MiB (default 256). Above it views show pooled images.
    pub budget_mib: usize,
    /// Nearest-neighbour upscaling of exported PNGs (1 = one pixel per cell).
    pub png_upscale: usize,
    /// Combiner routing view: variant, block, pooling, key row, query.
    pub routing: RoutingSettings,
}

impl Default for Selection {
    fn default() -> Self {
        Self {
            input: None,
            layer: 0,
            head: 0,
            causal: false,
            method: MethodId::Fmm,
            params: MethodParams::default(),
            display: DisplaySettings::default(),
            budget_mib: DEFAULT_BUDGET_MIB,
            png_upscale: 1,
            routing: RoutingSettings::default(),
        }
    }
}

/// Default C8 budget, MiB.
pub const DEFAULT_BUDGET_MIB: usize = 256;

impl Selection {
    /// The current head, if an input is loaded.
    pub fn head_selection(&self) -> Option<HeadSelection> {
        self.input.as_ref().map(|input| HeadSelection {
            input: Arc::clone(input),
            layer: self.layer,
            head: self.head,
            causal: self.causal,
        })
    }

    /// The C8 budget in bytes.
    pub fn budget(&self) -> crate::attention::MatrixBudget {
        crate::attention::MatrixBudget {
            bytes: self.budget_mib.max(1).saturating_mul(1024 * 1024),
        }
    }

    /// Largest useful rank: min(Lq, Lk) of the loaded input (1 when nothing is loaded).
    pub fn max_rank(&self) -> usize {
        self.input
            .as_ref()
            .map_or(1, |i| i.set.seq_len_q().min(i.set.seq_len_kv()).max(1))
    }
}

/// Everything a view can ask for. Applied in one place: [`AttnScopeApp::apply`].
#[derive(Debug, Clone)]
pub enum Command {
    /// Load an input (sample, file or synthetic).
    Open(InputSource),
    /// Show the file dialog (on its own thread).
    PickFile,
    /// Select a layer.
    SetLayer(usize),
    /// Select a head.
    SetHead(usize),
    /// Causal or bidirectional.
    SetCausal(bool),
    /// Decomposition / method bandwidth (C2).
    SetBandwidth(usize),
    /// Decomposition / method rank.
    SetRank(usize),
    /// Method of the methods view.
    SetMethod(MethodId),
    /// Replace all method parameters.
    SetParams(MethodParams),
    /// Fit the FMMformer weights (w1, w2) by least squares once.
    FitWeights,
    /// Colour settings.
    SetDisplay(DisplaySettings),
    /// Switch tabs.
    ShowView(View),
    /// Dismiss a notification.
    DismissNotification(usize),
    /// Pin, edit, reopen, save or export notebook entries.
    Notebook(notebook::NotebookAction),
    /// Set the C8 budget, MiB.
    SetBudgetMib(usize),
    /// Nearest-neighbour upscaling of exported PNGs.
    SetPngUpscale(usize),
    /// Stop the running tiled computation.
    Cancel,
    /// Save something (a save dialog on its own thread, then the file written there).
    Export(ExportWhat),
    /// An export finished: the message for the notification (`Ok` = the path written).
    ExportDone(Result<String, String>),
    /// Forget the recent files list.
    ClearRecent,
    // --- routing / spectrum / compare-all ---
    /// Combiner routing settings (variant, block, pooling, key row, query).
    SetRouting(RoutingSettings),
    /// Run the optimal band + low-rank split once (spectrum view).
    RunOptimalSplit,
    /// Run every method on the current input (methods view, "Compare all").
    CompareAll,
}

/// A notification (toast) shown in the corner until dismissed or timed out.
#[derive(Debug, Clone)]
pub struct Notification {
    /// Message.
    pub text: String,
    /// `ctx` time when it appeared, seconds.
    pub shown_at_secs: f64,
}

const NOTIFICATION_SECS: f64 = 8.0;

/// Per-lane outcome shown by the views.
#[derive(Debug, Default)]
pub struct Results {
    /// Last good decomposition.
    pub decomposition: Option<Arc<DecompositionResult>>,
    /// Last good pooled decomposition of a very long input (replaces `decomposition`).
    pub pooled_decomposition: Option<Arc<PooledDecompositionResult>>,
    /// Error of the latest decomposition request, if it failed.
    pub decomposition_error: Option<String>,
    /// Last good method run.
    pub method: Option<Arc<MethodRun>>,
    /// Error of the latest method request, if it failed.
    pub method_error: Option<String>,
    /// Error of the latest load, if it failed.
    pub load_error: Option<String>,
    /// Combiner routing view results.
    pub routing: RoutingResults,
    /// Spectrum view results.
    pub spectrum: SpectrumResults,
    /// Last "Compare all" table of the methods view.
    pub compare_all: Option<Arc<CompareAllResult>>,
    /// Error of the latest "Compare all" request, if it failed.
    pub compare_all_error: Option<String>,
}

/// Results of the Combiner routing view.
#[derive(Debug, Default)]
pub struct RoutingResults {
    /// Last good effective matrix (with the query routed with it).
    pub matrix: Option<Arc<RoutingResult>>,
    /// The newest routed query (from either routing lane).
    pub route: Option<Arc<RouteResult>>,
    /// Error of the latest routing request, if it failed.
    pub error: Option<String>,
}

impl RoutingResults {
    /// The route to show with the current matrix: the newest one if it was computed with the
    /// same head and routing parameters, else the matrix's own.
    pub fn shown_route(&self) -> Option<&Arc<RouteResult>> {
        let matrix = self.matrix.as_ref()?;
        match &self.route {
            Some(r)
                if r.id >= matrix.route.id
                    && view_jobs::same_head(&r.head, &matrix.head)
                    && r.settings.same_routing(&matrix.settings) =>
            {
                Some(r)
            }
            _ => Some(&matrix.route),
        }
    }
}

/// Results of the spectrum view.
#[derive(Debug, Default)]
pub struct SpectrumResults {
    /// Last good spectra.
    pub spectrum: Option<Arc<SpectrumResult>>,
    /// Last good matched-rank points.
    pub points: Option<Arc<RankPointsResult>>,
    /// Last optimal split (only on request).
    pub optimal: Option<Arc<OptimalResult>>,
    /// Error of the latest spectrum or points request.
    pub error: Option<String>,
    /// Error of the latest optimal split.
    pub optimal_error: Option<String>,
}

/// The application: shared state, worker, caches.
pub struct AttnScopeApp {
    /// The shared selection.
    pub selection: Selection,
    /// The active tab.
    pub view: View,
    /// Latest results and errors.
    pub results: Results,
    /// Notifications.
    pub notifications: Vec<Notification>,
    /// The open notebook.
    pub notebook: notebook::NotebookState,
    /// Recently opened files, newest first (persisted).
    pub recent_files: Vec<PathBuf>,
    /// Largest displayed image side: the renderer's texture limit, at most 2048.
    pub max_side: usize,
    worker: Worker,
    textures: TextureCache,
    views: views::ViewStates,
    dirty_decomposition: bool,
    dirty_method: bool,
    dirty_routing: bool,
    dirty_route: bool,
    dirty_spectrum: bool,
    dirty_points: bool,
    fit_once: bool,
    commands_tx: Sender<Command>,
    commands_rx: Receiver<Command>,
    ctx: egui::Context,
}

impl AttnScopeApp {
    /// Creates the app and starts loading `source`.
    ///
    /// # Errors
    /// The worker thread could not be spawned.
    pub fn new(ctx: &egui::Context, source: InputSource) -> std::io::Result<Self> {
        install_fallback_fonts(ctx);
        let repaint_ctx = ctx.clone();
        let worker = Worker::spawn(move || repaint_ctx.request_repaint())?;
        let (commands_tx, commands_rx) = channel();
        let max_texture_side = ctx.input(|i| i.max_texture_side);
        let max_side = if max_texture_side == 0 {
            MAX_TEXTURE_SIDE
        } else {
            max_texture_side.min(MAX_TEXTURE_SIDE)
        };
        let mut app = Self {
            selection: Selection::default(),
            view: View::Decomposition,
            results: Results::default(),
            notifications: Vec::new(),
            notebook: notebook::NotebookState::default(),
            recent_files: Vec::new(),
            max_side,
            worker,
            textures: TextureCache::default(),
            views: views::ViewStates::default(),
            dirty_decomposition: false,
            dirty_method: false,
            dirty_routing: false,
            dirty_route: false,
            dirty_spectrum: false,
            dirty_points: false,
            fit_once: false,
            commands_tx,
            commands_rx,
            ctx: ctx.clone(),
        };
        app.apply(Command::Open(source));
        Ok(app)
    }

    /// Restores persisted settings (recent files, budget).
    pub fn restore(&mut self, persisted: Persisted) {
        self.recent_files = persisted.recent_files;
        self.recent_files.truncate(MAX_RECENT_FILES);
        if persisted.budget_mib > 0 {
            self.selection.budget_mib = persisted.budget_mib;
        }
    }

    /// The settings that survive a restart.
    pub fn persisted(&self) -> Persisted {
        Persisted {
            recent_files: self.recent_files.clone(),
            budget_mib: self.selection.budget_mib,
        }
    }

    /// Progress of the running tiled computation (very long inputs), if any.
    pub fn progress(&self) -> Option<f32> {
        self.worker.progress()
    }

    /// The budget, pooling and image size every job uses.
    pub fn compute_settings(&self) -> ComputeSettings {
        ComputeSettings {
            budget: self.selection.budget(),
            pool_mode: self.selection.display.pool_mode,
            max_side: self.max_side,
        }
    }

    /// Whether any background job is queued or running.
    pub fn is_busy(&self) -> bool {
        self.worker.any_busy()
    }

    /// Whether a lane is busy.
    pub fn lane_busy(&self, lane: Lane) -> bool {
        self.worker.is_busy(lane)
    }

    /// Number of cached textures (for tests of the cache).
    pub fn cached_textures(&self) -> usize {
        self.textures.len()
    }

    /// Applies one command: the only place the selection changes.
    pub fn apply(&mut self, command: Command) {
        let sel = &mut self.selection;
        match command {
            Command::Open(source) => {
                self.worker.submit(JobRequest::Load(source));
            }
            Command::PickFile => self.pick_file(),
            Command::SetLayer(layer) => {
                sel.layer = layer;
                self.mark_dirty();
            }
            Command::SetHead(head) => {
                sel.head = head;
                self.mark_dirty();
            }
            Command::SetCausal(causal) => {
                sel.causal = causal;
                self.mark_dirty();
            }
            Command::SetBandwidth(bandwidth) => {
                sel.params.bandwidth = bandwidth;
                self.mark_dirty();
            }
            Command::SetRank(rank) => {
                sel.params.rank = rank.clamp(1, sel.max_rank());
                self.mark_dirty();
            }
            Command::SetMethod(method) => {
                sel.method = method;
                self.dirty_method = true;
            }
            Command::SetParams(params) => {
                let changed_decomposition =
                    params.bandwidth != sel.params.bandwidth || params.rank != sel.params.rank;
                self.dirty_spectrum |= params.bandwidth != sel.params.bandwidth;
                sel.params = params;
                self.dirty_method = true;
                self.dirty_decomposition |= changed_decomposition;
                self.dirty_points = true;
            }
            Command::FitWeights => {
                self.fit_once = true;
                self.dirty_method = true;
            }
            Command::SetDisplay(display) => {
                let repool = display.pool_mode != sel.display.pool_mode;
                sel.display = display;
                if repool {
                    self.mark_dirty();
                }
            }
            Command::SetBudgetMib(mib) => {
                sel.budget_mib = mib.max(1);
                self.mark_dirty();
            }
            Command::SetPngUpscale(up) => sel.png_upscale = up.clamp(1, 16),
            Command::Cancel => self.worker.cancel(),
            Command::Export(what) => self.export(what),
            Command::ExportDone(Ok(path)) => self.notify(format!("Saved {path}")),
            Command::ExportDone(Err(e)) => self.notify(format!("Export failed: {e}")),
            Command::ClearRecent => self.recent_files.clear(),
            Command::ShowView(view) => self.view = view,
            Command::DismissNotification(index) => {
                if index < self.notifications.len() {
                    self.notifications.remove(index);
                }
            }
            Command::Notebook(action) => self.apply_notebook(action),
            Command::SetRouting(routing) => {
                if routing.same_routing(&sel.routing) {
                    self.dirty_route |= routing.query != sel.routing.query;
                } else {
                    self.dirty_routing = true;
                }
                sel.routing = routing;
            }
            Command::RunOptimalSplit => {
                if let Some(head) = sel.head_selection() {
                    self.results.spectrum.optimal_error = None;
                    self.worker.submit(JobRequest::Optimal {
                        head,
                        bandwidth: sel.params.bandwidth,
                        rank: sel.params.rank,
                    });
                }
            }
            Command::CompareAll => {
                if let Some(head) = sel.head_selection() {
                    self.results.compare_all_error = None;
                    self.worker.submit(JobRequest::CompareAll {
                        head,
                        params: sel.params.clone(),
                    });
                }
            }
        }
    }

    fn mark_dirty(&mut self) {
        self.dirty_decomposition = true;
        self.dirty_method = true;
        self.dirty_routing = true;
        self.dirty_spectrum = true;
        self.dirty_points = true;
    }

    fn notify(&mut self, text: String) {
        let now = self.ctx.input(|i| i.time);
        self.notifications.push(Notification {
            text,
            shown_at_secs: now,
        });
    }

    /// Opens the native file dialog on a named thread; the chosen path comes back as a
    /// [`Command::Open`].
    fn pick_file(&mut self) {
        let tx = self.commands_tx.clone();
        let ctx = self.ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("attnscope-file-dialog".into())
            .spawn(move || {
                let picked = rfd::FileDialog::new()
                    .set_title("Open Q/K/V")
                    .add_filter("Q/K/V", &["npz", "npy", "safetensors", "csv"])
                    .add_filter("NumPy archive", &["npz"])
                    .add_filter("NumPy array", &["npy"])
                    .add_filter("safetensors", &["safetensors"])
                    .add_filter("CSV", &["csv"])
                    .pick_file();
                if let Some(path) = picked
                    && tx.send(Command::Open(InputSource::File(path))).is_ok()
                {
                    ctx.request_repaint();
                }
            });
        if let Err(e) = spawned {
            self.notify(format!("cannot open the file dialog: {e}"));
        }
    }

    /// Handles finished jobs and submits the ones the selection now needs. Never blocks.
    pub fn poll_jobs(&mut self) {
        while let Ok(command) = self.commands_rx.try_recv() {
            self.apply(command);
        }
        for result in self.worker.poll() {
            match (result.lane, result.outcome) {
                (_, Ok(JobOutput::Loaded(input))) => self.on_loaded(input),
                (_, Ok(JobOutput::Decomposed(d))) => {
                    self.results.decomposition = Some(d);
                    self.results.pooled_decomposition = None;
                    self.results.decomposition_error = None;
                }
                (_, Ok(JobOutput::PooledDecomposed(d))) => {
                    self.results.pooled_decomposition = Some(d);
                    self.results.decomposition = None;
                    self.results.decomposition_error = None;
                }
                (_, Ok(JobOutput::Method(run))) => {
                    if run.params.fit {
                        // Keep the fitted weights as the new manual weights.
                        self.selection.params.w1 = run.params.w1;
                        self.selection.params.w2 = run.params.w2;
                    }
                    self.results.method = Some(run);
                    self.results.method_error = None;
                }
                (Lane::Load, Err(e)) => {
                    self.notify(format!("Load failed: {e}"));
                    self.results.load_error = Some(e);
                }
                (Lane::Decompose, Err(e)) => {
                    self.notify(format!("Decomposition failed: {e}"));
                    self.results.decomposition_error = Some(e);
                }
                (Lane::Method, Err(e)) => {
                    self.notify(format!("{} failed: {e}", self.selection.method));
                    self.results.method_error = Some(e);
                }
                (lane, outcome) => self.on_view_job(lane, outcome),
            }
        }
        self.submit_needed();
        let live: Vec<u64> = [
            self.results.decomposition.as_ref().map(|d| d.id),
            self.results.pooled_decomposition.as_ref().map(|d| d.id),
            self.results.method.as_ref().map(|m| m.id),
            self.results.routing.matrix.as_ref().map(|r| r.id),
        ]
        .into_iter()
        .flatten()
        .collect();
        self.textures.retain_results(&live);
        let now = self.ctx.input(|i| i.time);
        self.notifications
            .retain(|n| now - n.shown_at_secs < NOTIFICATION_SECS);
    }

    /// Results of the routing, spectrum and compare-all lanes.
    fn on_view_job(&mut self, lane: Lane, outcome: Result<JobOutput, String>) {
        let r = &mut self.results;
        match outcome {
            Ok(JobOutput::Routing(m)) => {
                if r.routing
                    .route
                    .as_ref()
                    .is_none_or(|old| old.id < m.route.id)
                {
                    r.routing.route = Some(Arc::clone(&m.route));
                }
                r.routing.matrix = Some(m);
                r.routing.error = None;
            }
            Ok(JobOutput::Route(route)) => {
                if r.routing.route.as_ref().is_none_or(|old| old.id < route.id) {
                    r.routing.route = Some(route);
                }
                r.routing.error = None;
            }
            Ok(JobOutput::Spectrum(s)) => {
                r.spectrum.spectrum = Some(s);
                r.spectrum.error = None;
            }
            Ok(JobOutput::RankPoints(p)) => {
                r.spectrum.points = Some(p);
                r.spectrum.error = None;
            }
            Ok(JobOutput::Optimal(o)) => {
                r.spectrum.optimal = Some(o);
                r.spectrum.optimal_error = None;
            }
            Ok(JobOutput::CompareAll(c)) => {
                r.compare_all = Some(c);
                r.compare_all_error = None;
            }
            Ok(_) => {}
            Err(e) => {
                let (what, slot) = match lane {
                    Lane::Routing | Lane::Route => ("Combiner routing", &mut r.routing.error),
                    Lane::Spectrum | Lane::RankPoints => ("Spectrum", &mut r.spectrum.error),
                    Lane::Optimal => ("Optimal split", &mut r.spectrum.optimal_error),
                    _ => ("Compare all", &mut r.compare_all_error),
                };
                *slot = Some(e.clone());
                self.notify(format!("{what} failed: {e}"));
            }
        }
    }

    fn on_loaded(&mut self, input: Arc<LoadedInput>) {
        let set = &input.set;
        let sel = &mut self.selection;
        sel.layer = sel.layer.min(set.num_layers().saturating_sub(1));
        sel.head = sel.head.min(set.num_heads().saturating_sub(1));
        sel.causal = set.causal();
        let max_rank = set.seq_len_q().min(set.seq_len_kv()).max(1);
        sel.params.rank = sel.params.rank.clamp(1, max_rank);
        self.results.load_error = None;
        if let InputSource::File(path) = &input.source {
            let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
            self.recent_files.retain(|p| p != &path);
            self.recent_files.insert(0, path);
            self.recent_files.truncate(MAX_RECENT_FILES);
        }
        for warning in set.warnings.iter().take(3) {
            let text = format!("{}: {warning}", set.source);
            self.notifications.push(Notification {
                text,
                shown_at_secs: self.ctx.input(|i| i.time),
            });
        }
        self.apply_pending_config(&input);
        self.ctx
            .send_viewport_cmd(egui::ViewportCommand::Title(format!(
                "attnscope — {}",
                input.set.source
            )));
        self.selection.input = Some(input);
        self.mark_dirty();
    }

    fn submit_needed(&mut self) {
        let Some(head) = self.selection.head_selection() else {
            return;
        };
        if self.dirty_decomposition && self.view == View::Decomposition {
            self.dirty_decomposition = false;
            self.worker.submit(JobRequest::Decompose {
                head: head.clone(),
                bandwidth: self.selection.params.bandwidth,
                rank: self.selection.params.rank,
                settings: self.compute_settings(),
            });
        }
        if self.dirty_method && self.view == View::Methods {
            self.dirty_method = false;
            let mut params = self.selection.params.clone();
            params.fit = std::mem::take(&mut self.fit_once);
            self.worker.submit(JobRequest::Method {
                head: head.clone(),
                method: self.selection.method,
                params,
                settings: self.compute_settings(),
            });
        }
        self.submit_view_jobs(&head);
    }

    /// Submits the routing and spectrum jobs the visible view needs.
    fn submit_view_jobs(&mut self, head: &HeadSelection) {
        let sel = &self.selection;
        if self.view == View::Routing && (self.dirty_routing || self.dirty_route) {
            let (settings, params) = (sel.routing, sel.params.clone());
            let head = head.clone();
            if self.dirty_routing {
                self.worker.submit(JobRequest::Routing {
                    head,
                    settings,
                    params,
                });
            } else {
                self.worker.submit(JobRequest::Route {
                    head,
                    settings,
                    params,
                });
            }
            self.dirty_routing = false;
            self.dirty_route = false;
        }
        if self.view == View::Spectrum && self.dirty_spectrum {
            self.dirty_spectrum = false;
            self.worker.submit(JobRequest::Spectrum {
                head: head.clone(),
                bandwidth: sel.params.bandwidth,
            });
        }
        if self.view == View::Spectrum && self.dirty_points {
            self.dirty_points = false;
            self.worker.submit(JobRequest::RankPoints {
                head: head.clone(),
                rank: sel.params.rank,
                params: sel.params.clone(),
            });
        }
    }

    fn top_bar_ui(&mut self, ui: &mut egui::Ui, commands: &mut Vec<Command>) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui.button("Open…").clicked() {
                    commands.push(Command::PickFile);
                    ui.close();
                }
                if ui.button("Quit").clicked() {
                    // A normal close: eframe saves the UI state (App::save) before exiting.
                    ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
                    ui.close();
                }
                ui.menu_button("Open recent", |ui| {
                    if self.recent_files.is_empty() {
                        ui.weak("No recent files.");
                    }
                    for path in &self.recent_files {
                        if ui.button(path.display().to_string()).clicked() {
                            commands.push(Command::Open(InputSource::File(path.clone())));
                            ui.close();
                        }
                    }
                    if !self.recent_files.is_empty() {
                        ui.separator();
                        if ui.button("Clear list").clicked() {
                            commands.push(Command::ClearRecent);
                            ui.close();
                        }
                    }
                });
                ui.separator();
                ui.weak("Or drop a file onto the window.");
            });
            ui.menu_button("Settings", |ui| self.settings_ui(ui, commands));
            ui.separator();
            for &view in View::ALL {
                if ui
                    .selectable_label(self.view == view, view.title())
                    .clicked()
                {
                    commands.push(Command::ShowView(view));
                }
            }
            ui.separator();
            let pinnable = match self.view {
                View::Decomposition => self.results.decomposition.is_some(),
                View::Methods => self.results.method.is_some(),
                View::Sweeps => !self.views.sweeps.rows.is_empty(),
                View::Routing => self.results.routing.matrix.is_some(),
                View::Spectrum => self.results.spectrum.spectrum.is_some(),
                View::Notebook => false,
            };
            if ui
                .add_enabled(
                    pinnable && !self.is_busy(),
                    egui::Button::new("Pin to notebook"),
                )
                .on_hover_text("Keep this view's configuration, metrics and a thumbnail")
                .on_disabled_hover_text("Nothing to pin in this view yet (or still computing)")
                .clicked()
            {
                commands.push(Command::Notebook(notebook::NotebookAction::Pin));
            }
            ui.separator();
            if self.is_busy() {
                ui.spinner();
                match self.progress() {
                    Some(p) => {
                        ui.add(
                            egui::ProgressBar::new(p)
                                .desired_width(160.0)
                                .show_percentage(),
                        );
                        if ui.button("Cancel").clicked() {
                            commands.push(Command::Cancel);
                        }
                    }
                    None => {
                        ui.weak("computing…");
                    }
                }
            }
        });
    }

    fn settings_ui(&self, ui: &mut egui::Ui, commands: &mut Vec<Command>) {
        let sel = &self.selection;
        let mut mib = sel.budget_mib;
        ui.horizontal(|ui| {
            ui.label("matrix budget (C8)");
            if ui
                .add(
                    egui::DragValue::new(&mut mib)
                        .range(1..=65536)
                        .suffix(" MiB"),
                )
                .on_hover_text(
                    "Largest L×L matrix one request may materialise (the decomposition needs \
                     six). Above it, A and its near/far fields are computed in row tiles and \
                     shown pooled.",
                )
                .changed()
            {
                commands.push(Command::SetBudgetMib(mib));
            }
        });
        let mut display = sel.display;
        ui.horizontal(|ui| {
            ui.label("pooling of large matrices");
            ui.selectable_value(
                &mut display.pool_mode,
                crate::render::PoolMode::Max,
                "block max",
            );
            ui.selectable_value(
                &mut display.pool_mode,
                crate::render::PoolMode::Mean,
                "block mean",
            );
        });
        if display != sel.display {
            commands.push(Command::SetDisplay(display));
        }
        let mut up = sel.png_upscale;
        ui.horizontal(|ui| {
            ui.label("PNG export upscale");
            if ui
                .add(egui::DragValue::new(&mut up).range(1..=16).suffix("×"))
                .changed()
            {
                commands.push(Command::SetPngUpscale(up));
            }
        });
        ui.weak(format!("largest image side: {} cells", self.max_side));
    }

    /// Opens dropped files (the first with a path; several are reported).
    fn handle_dropped_files(&mut self, ctx: &egui::Context) {
        let dropped = ctx.input(|i| i.raw.dropped_files.clone());
        if dropped.is_empty() {
            return;
        }
        let paths: Vec<PathBuf> = dropped
            .iter()
            .map(|f| f.path().to_path_buf())
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        match paths.first() {
            Some(path) => {
                if paths.len() > 1 {
                    self.notify(format!(
                        "{} files dropped; opening {} (drop a directory to load a q/k/v triplet)",
                        paths.len(),
                        path.display()
                    ));
                }
                self.apply(Command::Open(InputSource::File(path.clone())));
            }
            None => self.notify("The dropped item has no file path.".into()),
        }
    }

    fn notifications_ui(&self, ctx: &egui::Context, commands: &mut Vec<Command>) {
        if self.notifications.is_empty() {
            return;
        }
        egui::Area::new(egui::Id::unique("notifications"))
            .anchor(egui::Align2::RIGHT_BOTTOM, egui::vec2(-12.0, -12.0))
            .show(ctx, |ui| {
                for (index, n) in self.notifications.iter().enumerate() {
                    egui::Frame::popup(ui.style()).show(ui, |ui| {
                        ui.set_max_width(420.0);
                        ui.horizontal(|ui| {
                            ui.colored_label(ui.visuals().error_fg_color, &n.text);
                            if ui.small_button("×").clicked() {
                                commands.push(Command::DismissNotification(index));
                            }
                        });
                    });
                }
            });
        ctx.request_repaint_after(std::time::Duration::from_secs(1));
    }
}

impl eframe::App for AttnScopeApp {
    fn auto_save_interval(&self) -> std::time::Duration {
        // The UI state is small; a crash loses at most a few seconds of it.
        std::time::Duration::from_secs(5)
    }

    fn logic(&mut self, _ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.poll_jobs();
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, STORAGE_KEY, &self.persisted());
        eframe::set_value(storage, notebook::PERSIST_KEY, &self.persisted_ui());
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }
}

impl AttnScopeApp {
    /// Draws the whole window into `ui` and applies this frame's commands. Separate from
    /// [`eframe::App::ui`] so tests can drive the real app without an `eframe::Frame`.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        self.handle_dropped_files(&ctx);
        if ctx.input(|i| !i.raw.hovered_files.is_empty()) {
            egui::Area::new(egui::Id::unique("drop_hint"))
                .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
                .show(&ctx, |ui| {
                    egui::Frame::popup(ui.style()).show(ui, |ui| {
                        ui.heading("Drop to open (.npz, .npy, .safetensors, .csv)");
                    });
                });
        }
        let mut commands = Vec::new();
        egui::Panel::top("top_bar").show(ui, |ui| self.top_bar_ui(ui, &mut commands));
        egui::Panel::left("data_panel")
            .resizable(true)
            .default_size(300.0)
            .show(ui, |ui| {
                views::data::ui(
                    ui,
                    &self.selection,
                    &self.results,
                    self.worker.is_busy(Lane::Load),
                    &mut self.views.data,
                    &mut commands,
                );
            });
        egui::Panel::right("inspector")
            .resizable(true)
            .default_size(300.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical()
                    .id_salt("inspector_scroll")
                    .show(ui, |ui| match self.view {
                        View::Decomposition => {
                            views::decomposition::inspector_ui(ui, &self.results);
                        }
                        View::Methods => views::methods::inspector_ui(ui, &self.results),
                        View::Routing => views::routing::inspector_ui(ui, &self.results),
                        View::Spectrum => {
                            views::spectrum::inspector_ui(ui, &self.selection, &self.results);
                        }
                        View::Sweeps => views::sweeps::inspector_ui(ui, &self.views.sweeps),
                        View::Notebook => views::notebook::inspector_ui(ui, &self.notebook),
                    });
            });
        egui::CentralPanel::default().show(ui, |ui| match self.view {
            View::Decomposition => views::decomposition::ui(
                ui,
                &self.selection,
                &self.results,
                self.worker.is_busy(Lane::Decompose),
                self.worker.progress(),
                &mut self.textures,
                &mut commands,
            ),
            View::Methods => views::methods::ui(
                ui,
                &self.selection,
                &self.results,
                self.worker.is_busy(Lane::Method),
                self.worker.is_busy(Lane::CompareAll),
                &mut self.textures,
                &mut commands,
            ),
            View::Routing => views::routing::ui(
                ui,
                &self.selection,
                &self.results,
                self.worker.is_busy(Lane::Routing) || self.worker.is_busy(Lane::Route),
                &mut self.textures,
                &mut commands,
            ),
            View::Spectrum => views::spectrum::ui(
                ui,
                &self.selection,
                &self.results,
                self.worker.is_busy(Lane::Spectrum) || self.worker.is_busy(Lane::RankPoints),
                self.worker.is_busy(Lane::Optimal),
                &mut commands,
            ),
            View::Sweeps => {
                views::sweeps::ui(ui, &mut self.views.sweeps, &self.selection.params);
            }
            View::Notebook => {
                views::notebook::ui(ui, &self.notebook, &mut self.views.notebook, &mut commands)
            }
        });
        self.notifications_ui(&ctx, &mut commands);
        for command in commands {
            self.apply(command);
        }
        // Commands from this frame (e.g. slider drags) start their jobs now, not next frame.
        self.submit_needed();
    }
}
