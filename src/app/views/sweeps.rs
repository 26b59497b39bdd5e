//! The sweeps view (SPEC §6.6): configure a sweep, run it on the named `attnscope-sweep`
//! thread with a progress bar and Cancel, plot runtime vs L (log-log, fitted slope per method
//! in the legend), error vs L, error vs rank, error vs bandwidth, and export CSV and PNG.
//!
//! The runner is [`crate::experiment::run_sweep`], the same as `attnscope sweep`; rows arrive
//! through a channel and are polled every frame. Plots follow E11: exact zeros on a log axis
//! sit on a floor marked "exact" (hollow markers), NaN points are left out without breaking
//! the rest of the line. Log axes plot log10 of the values; ticks and hover show the values.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::thread::JoinHandle;

use eframe::egui;
use egui_plot::{GridInput, GridMark, HLine, Legend, Line, MarkerShape, Plot, PlotPoints, Points};

use crate::attention::{MethodId, MethodParams};
use crate::experiment::plot::{
    AxisScale, PlotKind, PointKind, format_tick, log_floor, prepare_series, series_color,
    write_plot_png,
};
use crate::experiment::sweep::{parse_list, parse_seq_lens};
use crate::experiment::{
    CancelToken, CsvStream, ExperimentError, InputSpec, MachineInfo, ProgressSink, SweepConfig,
    SweepRow, run_sweep,
};

/// Events from the sweep thread to the view.
#[derive(Debug)]
enum SweepEvent {
    Started(usize),
    Row(Box<SweepRow>),
    Finished,
    Cancelled,
    Failed(String),
}

/// Forwards progress to the view and wakes the UI.
struct ChannelSink {
    tx: Sender<SweepEvent>,
    ctx: egui::Context,
}

impl ChannelSink {
    fn send(&self, event: SweepEvent) {
        // The view may have been closed; nothing to do then.
        let _ = self.tx.send(event);
        self.ctx.request_repaint();
    }
}

impl ProgressSink for ChannelSink {
    fn started(&mut self, total_points: usize) {
        self.send(SweepEvent::Started(total_points));
    }
    fn point_done(&mut self, _index: usize, row: &SweepRow) -> Result<(), ExperimentError> {
        self.send(SweepEvent::Row(Box::new(row.clone())));
        Ok(())
    }
    fn finished(&mut self, _points_done: usize) {
        self.send(SweepEvent::Finished);
    }
    fn cancelled(&mut self, _points_done: usize) {
        self.send(SweepEvent::Cancelled);
    }
}

/// A running sweep.
struct SweepJob {
    rx: Receiver<SweepEvent>,
    cancel: CancelToken,
    handle: Option<JoinHandle<()>>,
}

/// State of the sweeps view: the form, the running job and the rows so far.
pub struct SweepsViewState {
    /// Methods to run (one checkbox per [`MethodId::ALL`]).
    pub methods: Vec<(MethodId, bool)>,
    /// Input source (`synth:local`, `sample:zen`, a path).
    pub source: String,
    /// Layer of a file input.
    pub layer: usize,
    /// Head of a file input.
    pub head: usize,
    /// Sequence lengths, e.g. `256..4096`.
    pub seq_lens: String,
    /// Rank-like values, comma-separated.
    pub ranks: String,
    /// Bandwidths, comma-separated.
    pub bandwidths: String,
    /// Seeds, comma-separated.
    pub seeds: String,
    /// Timed runs per point.
    pub repeats: usize,
    /// Kernel threads (0 = all cores).
    pub threads: usize,
    /// Above this L no errors.
    pub max_exact_len: usize,
    /// Causal attention.
    pub causal: bool,
    /// Which plot is shown.
    pub plot: PlotKind,
    /// Directory for exports.
    pub export_dir: String,
    /// Rows received so far.
    pub rows: Vec<SweepRow>,
    /// Grid size of the current/last sweep.
    pub total: usize,
    /// Last status line (finished, cancelled, exported …).
    pub status: String,
    /// Last error (invalid form, failed sweep or export).
    pub error: Option<String>,
    job: Option<SweepJob>,
}

impl std::fmt::Debug for SweepsViewState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SweepsViewState")
            .field("rows", &self.rows.len())
            .field("total", &self.total)
            .field("running", &self.is_running())
            .finish_non_exhaustive()
    }
}

impl Default for SweepsViewState {
    fn default() -> Self {
        let on = |m: MethodId| matches!(m.as_str(), "full" | "band" | "linear" | "fmm");
        Self {
            methods: MethodId::ALL.iter().map(|&m| (m, on(m))).collect(),
            source: "synth:local".into(),
            layer: 0,
            head: 0,
            seq_lens: "256..4096".into(),
            ranks: String::new(),
            bandwidths: String::new(),
            seeds: String::new(),
            repeats: 3,
            threads: 0,
            max_exact_len: crate::experiment::sweep::DEFAULT_MAX_EXACT_LEN,
            causal: false,
            plot: PlotKind::RuntimeVsLen,
            export_dir: "sweep_results".into(),
            rows: Vec::new(),
            total: 0,
            status: String::new(),
            error: None,
            job: None,
        }
    }
}

impl Drop for SweepJob {
    /// A sweep whose view state goes away (window closed) is cancelled, not left running.
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl SweepsViewState {
    /// True while a sweep runs.
    pub fn is_running(&self) -> bool {
        self.job.is_some()
    }

    /// The configuration the form describes (base parameters from the shared selection).
    ///
    /// # Errors
    /// A message naming the bad field.
    pub fn config(&self, params: &MethodParams) -> Result<SweepConfig, String> {
        let methods: Vec<MethodId> = self
            .methods
            .iter()
            .filter(|(_, on)| *on)
            .map(|(m, _)| *m)
            .collect();
        if methods.is_empty() {
            return Err("select at least one method".into());
        }
        Ok(SweepConfig {
            input: InputSpec {
                source: self.source.trim().to_string(),
                layer: self.layer,
                head: self.head,
            },
            methods,
            params: params.clone(),
            seq_lens: parse_seq_lens(&self.seq_lens).map_err(|e| format!("lengths: {e}"))?,
            ranks: parse_list(&self.ranks).map_err(|e| format!("ranks: {e}"))?,
            bandwidths: parse_list(&self.bandwidths).map_err(|e| format!("bandwidths: {e}"))?,
            seeds: parse_list(&self.seeds).map_err(|e| format!("seeds: {e}"))?,
            causal: self.causal,
            repeats: self.repeats.max(1),
            threads: self.threads,
            max_exact_len: self.max_exact_len,
            ..SweepConfig::default()
        })
    }

    /// Starts `config` on the `attnscope-sweep` thread (cancelling a running sweep first).
    pub fn start(&mut self, ctx: &egui::Context, config: SweepConfig) {
        self.cancel();
        self.rows.clear();
        self.total = 0;
        self.error = None;
        self.status = "starting…".into();
        let (tx, rx) = channel();
        let cancel = CancelToken::new();
        let token = cancel.clone();
        let mut sink = ChannelSink {
            tx: tx.clone(),
            ctx: ctx.clone(),
        };
        let spawned = std::thread::Builder::new()
            .name("attnscope-sweep".into())
            .spawn(move || {
                if let Err(e) = run_sweep(&config, &mut sink, &token) {
                    sink.send(SweepEvent::Failed(e.to_string()));
                }
            });
        match spawned {
            Ok(handle) => {
                self.job = Some(SweepJob {
                    rx,
                    cancel,
                    handle: Some(handle),
                });
            }
            Err(e) => self.error = Some(format!("cannot start the sweep thread: {e}")),
        }
    }

    /// Requests cancellation of the running sweep (it stops between points or repeats).
    pub fn cancel(&mut self) {
        if let Some(job) = &self.job {
            job.cancel.cancel();
            self.status = "cancelling…".into();
        }
    }

    /// Takes every pending event from the sweep thread.
    pub fn poll(&mut self) {
        let Some(job) = self.job.as_mut() else {
            return;
        };
        let mut done = false;
        loop {
            match job.rx.try_recv() {
                Ok(SweepEvent::Started(total)) => {
                    self.total = total;
                    self.status = format!("running: 0 / {total} points");
                }
                Ok(SweepEvent::Row(row)) => {
                    self.rows.push(*row);
                    self.status = format!("running: {} / {} points", self.rows.len(), self.total);
                }
                Ok(SweepEvent::Finished) => {
                    self.status = format!("finished: {} / {} points", self.rows.len(), self.total);
                    done = true;
                }
                Ok(SweepEvent::Cancelled) => {
                    self.status = format!(
                        "cancelled after {} / {} points",
                        self.rows.len(),
                        self.total
                    );
                    done = true;
                }
                Ok(SweepEvent::Failed(message)) => {
                    self.error = Some(message);
                    self.status = "failed".into();
                    done = true;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    done = true;
                    break;
                }
            }
        }
        if done
            && let Some(mut job) = self.job.take()
            && let Some(h) = job.handle.take()
        {
            // The thread has sent its last event; joining is immediate.
            let _ = h.join();
        }
    }

    fn export(&mut self) {
        let dir = PathBuf::from(self.export_dir.trim());
        let result = (|| -> Result<Vec<PathBuf>, ExperimentError> {
            std::fs::create_dir_all(&dir).map_err(|source| ExperimentError::Io {
                path: dir.clone(),
                source,
            })?;
            let csv_path = dir.join("sweep.csv");
            let mut csv = CsvStream::create(&csv_path, &MachineInfo::detect())?;
            for row in &self.rows {
                csv.write_row(row)?;
            }
            let mut written = vec![csv_path];
            written.extend(crate::experiment::write_plots(&self.rows, &dir)?);
            Ok(written)
        })();
        match result {
            Ok(paths) => {
                self.error = None;
                self.status = format!("exported {} files to {}", paths.len(), dir.display());
            }
            Err(e) => self.error = Some(format!("export failed: {e}")),
        }
    }

    fn export_current_png(&mut self) {
        let Some(spec) = self.plot.build(&self.rows) else {
            self.error = Some(format!("nothing to plot for {}", self.plot.name()));
            return;
        };
        let dir = PathBuf::from(self.export_dir.trim());
        let path = dir.join(self.plot.file_name());
        let result = std::fs::create_dir_all(&dir)
            .map_err(|source| ExperimentError::Io {
                path: dir.clone(),
                source,
            })
            .and_then(|()| write_plot_png(&spec, &path));
        match result {
            Ok(()) => {
                self.error = None;
                self.status = format!("wrote {}", path.display());
            }
            Err(e) => self.error = Some(format!("PNG export failed: {e}")),
        }
    }
}

/// Draws the sweeps view. `params` are the shared selection's method parameters (the grid
/// overrides bandwidth, the rank-like parameter and seed).
pub fn ui(ui: &mut egui::Ui, state: &mut SweepsViewState, params: &MethodParams) {
    state.poll();
    egui::Panel::left("sweeps_form")
        .resizable(true)
        .default_size(280.0)
        .show(ui, |ui| {
            egui::ScrollArea::vertical()
                .id_salt("sweeps_form_scroll")
                .show(ui, |ui| form_ui(ui, state, params));
        });
    egui::CentralPanel::default().show(ui, |ui| {
        ui.horizontal(|ui| {
            for kind in PlotKind::ALL {
                ui.selectable_value(&mut state.plot, kind, kind.name());
            }
        });
        plot_ui(ui, state);
    });
}

fn form_ui(ui: &mut egui::Ui, state: &mut SweepsViewState, params: &MethodParams) {
    ui.heading("Sweep");
    ui.label("Methods");
    ui.horizontal_wrapped(|ui| {
        for (m, on) in &mut state.methods {
            ui.checkbox(on, m.as_str());
        }
    });
    egui::Grid::new("sweep_form_grid")
        .num_columns(2)
        .show(ui, |ui| {
            let l = ui.label("Data");
            ui.add(egui::TextEdit::singleline(&mut state.source).hint_text("synth:local"))
                .labelled_by(l.id)
                .on_hover_text(
                    "synth:KIND (gaussian, local, local-global, low-rank-far), sample:NAME or a file path",
                );
            ui.end_row();
            let l = ui.label("Layer");
            ui.add(egui::DragValue::new(&mut state.layer)).labelled_by(l.id);
            ui.end_row();
            let l = ui.label("Head");
            ui.add(egui::DragValue::new(&mut state.head)).labelled_by(l.id);
            ui.end_row();
            let l = ui.label("Lengths L");
            ui.text_edit_singleline(&mut state.seq_lens)
                .labelled_by(l.id)
                .on_hover_text("comma list; A..B doubles from A to B");
            ui.end_row();
            let l = ui.label("Bandwidths");
            ui.add(
                egui::TextEdit::singleline(&mut state.bandwidths)
                    .hint_text(params.bandwidth.to_string()),
            )
            .labelled_by(l.id);
            ui.end_row();
            let l = ui.label("Ranks");
            ui.add(egui::TextEdit::singleline(&mut state.ranks).hint_text("rank-like parameter"))
                .labelled_by(l.id);
            ui.end_row();
            let l = ui.label("Seeds");
            ui.add(egui::TextEdit::singleline(&mut state.seeds).hint_text(params.seed.to_string()))
                .labelled_by(l.id);
            ui.end_row();
            let l = ui.label("Repeats");
            ui.add(egui::DragValue::new(&mut state.repeats).range(1..=100))
                .labelled_by(l.id);
            ui.end_row();
            let l = ui.label("Threads");
            ui.add(egui::DragValue::new(&mut state.threads).range(0..=256))
                .labelled_by(l.id)
                .on_hover_text("0 = one per logical core");
            ui.end_row();
            let l = ui.label("Max exact L");
            ui.add(egui::DragValue::new(&mut state.max_exact_len).range(1..=1 << 20))
                .labelled_by(l.id)
                .on_hover_text("above it errors are not computed");
            ui.end_row();
            ui.label("");
            ui.checkbox(&mut state.causal, "Causal");
            ui.end_row();
        });
    ui.horizontal(|ui| {
        let running = state.is_running();
        if ui
            .add_enabled(!running, egui::Button::new("Run sweep"))
            .clicked()
        {
            match state.config(params) {
                Ok(config) => {
                    let ctx = ui.ctx().clone();
                    state.start(&ctx, config);
                }
                Err(e) => state.error = Some(e),
            }
        }
        if ui
            .add_enabled(running, egui::Button::new("Cancel"))
            .clicked()
        {
            state.cancel();
        }
    });
    if state.total > 0 {
        let frac = state.rows.len() as f32 / state.total as f32;
        ui.add(
            egui::ProgressBar::new(frac)
                .show_percentage()
                .animate(state.is_running()),
        );
    }
    ui.label(format!("{} / {} points", state.rows.len(), state.total));
    if !state.status.is_empty() {
        ui.label(&state.status);
    }
    if let Some(e) = &state.error {
        super::error_label(ui, e);
    }
    ui.separator();
    let l = ui.label("Export directory");
    ui.text_edit_singleline(&mut state.export_dir)
        .labelled_by(l.id);
    ui.horizontal(|ui| {
        let has_rows = !state.rows.is_empty();
        if ui
            .add_enabled(has_rows, egui::Button::new("CSV + all PNGs"))
            .clicked()
        {
            state.export();
        }
        if ui
            .add_enabled(has_rows, egui::Button::new("This plot as PNG"))
            .clicked()
        {
            state.export_current_png();
        }
    });
}

/// The inspector panel of the sweeps view: status and the rows so far (newest first).
pub fn inspector_ui(ui: &mut egui::Ui, state: &SweepsViewState) {
    ui.heading("Sweep rows");
    ui.label(format!("{} / {} points", state.rows.len(), state.total));
    if let Some(row) = state.rows.first() {
        ui.weak(format!(
            "threads: {}, repeats: {}",
            row.threads, row.repeats
        ));
    }
    rows_table_ui(ui, &state.rows);
}

fn rows_table_ui(ui: &mut egui::Ui, rows: &[SweepRow]) {
    let fmt = |x: Option<f64>| x.map_or_else(|| "–".to_string(), |v| format!("{v:.3e}"));
    egui::Grid::new("sweep_rows")
        .striped(true)
        .num_columns(5)
        .show(ui, |ui| {
            ui.strong("method");
            ui.strong("L");
            ui.strong("b");
            ui.strong("runtime [s]");
            ui.strong("error");
            ui.end_row();
            for row in rows.iter().rev().take(200) {
                ui.label(&row.method);
                ui.label(row.seq_len.to_string());
                ui.label(row.bandwidth.to_string());
                match &row.skipped {
                    Some(why) => {
                        ui.label("skipped").on_hover_text(why);
                        ui.label("");
                    }
                    None => {
                        ui.label(fmt(row.runtime_median_s));
                        let cell = ui.label(fmt(row.output_rel));
                        if !row.notes.is_empty() {
                            cell.on_hover_text(&row.notes);
                        }
                    }
                }
                ui.end_row();
            }
        });
}

fn to_axis(v: f64, scale: AxisScale) -> f64 {
    match scale {
        AxisScale::Linear => v,
        AxisScale::Log => v.log10(),
    }
}

fn from_axis(v: f64, scale: AxisScale) -> f64 {
    match scale {
        AxisScale::Linear => v,
        AxisScale::Log => 10f64.powf(v),
    }
}

/// Grid marks for an axis that plots log10 of the values: decades (thick) plus 2× and 5×
/// (thin) when fewer than three decades are visible; or, for lengths and ranks
/// (`powers_of_two`), every power of two.
fn log_marks(input: &GridInput, powers_of_two: bool) -> Vec<GridMark> {
    let (lo, hi) = input.bounds;
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo || hi - lo > 60.0 {
        return Vec::new();
    }
    let mut marks = Vec::new();
    let (first, last) = (lo.floor() as i64, hi.ceil() as i64);
    let dense = hi - lo < 3.0;
    for k in first..=last {
        let k = k as f64;
        if !powers_of_two && (lo..=hi).contains(&k) {
            marks.push(GridMark {
                value: k,
                step_size: 1.0,
            });
        }
        if dense && !powers_of_two {
            for m in [2f64, 5.0] {
                let v = k + m.log10();
                if (lo..=hi).contains(&v) {
                    marks.push(GridMark {
                        value: v,
                        step_size: 0.1,
                    });
                }
            }
        }
    }
    if powers_of_two {
        let (a, b) = (
            (lo / 2f64.log10()).ceil() as i64,
            (hi / 2f64.log10()).floor() as i64,
        );
        // Every power of two with the same weight, so each gets its label (256, 512, …).
        for n in a..=b {
            marks.push(GridMark {
                value: n as f64 * 2f64.log10(),
                step_size: 2f64.log10(),
            });
        }
    }
    marks
}

fn plot_ui(ui: &mut egui::Ui, state: &SweepsViewState) {
    let Some(spec) = state.plot.build(&state.rows) else {
        ui.label(match state.plot {
            PlotKind::ErrorVsRank => {
                "No data: sweep a method with a rank-like parameter over at least two ranks."
            }
            PlotKind::ErrorVsBandwidth => {
                "No data: sweep band or fmm over at least two bandwidths."
            }
            _ => "No data yet: run a sweep.",
        });
        return;
    };
    let (xs, ys) = (spec.x_scale, spec.y_scale);
    let floor = log_floor(
        spec.series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1)),
    );
    let prepared: Vec<_> = spec
        .series
        .iter()
        .map(|s| prepare_series(&s.points, xs, ys, floor))
        .collect();
    let any_exact = prepared.iter().any(|p| p.exact_zeros > 0);
    let missing: usize = prepared.iter().map(|p| p.missing).sum();
    ui.horizontal(|ui| {
        ui.label(&spec.title);
        if any_exact {
            ui.weak("· hollow markers on the dashed floor: error exactly 0 (\"exact\")");
        }
        if missing > 0 {
            ui.weak(format!("· {missing} NaN point(s) left out"));
        }
    });
    let floor_axis = to_axis(floor, ys);
    let tick = move |v: f64, scale: AxisScale| {
        if scale == AxisScale::Log && any_exact && (v - floor_axis).abs() < 1e-9 {
            "exact".to_string()
        } else {
            format_tick(from_axis(v, scale))
        }
    };
    let y_label = spec.y_label.clone();
    let x_label = spec.x_label.clone();
    let hover_floor = floor;
    Plot::new(("sweep_plot", state.plot.name()))
        .legend(Legend::default())
        .x_axis_label(format!(
            "{x_label}{}",
            if xs == AxisScale::Log { " (log)" } else { "" }
        ))
        .y_axis_label(format!("{y_label} (log)"))
        .x_grid_spacer(move |input| {
            if xs == AxisScale::Log {
                log_marks(&input, true)
            } else {
                egui_plot::log_grid_spacer(10)(input)
            }
        })
        .y_grid_spacer(move |input| log_marks(&input, false))
        .x_axis_formatter(move |m: GridMark, _| tick(m.value, xs))
        .y_axis_formatter(move |m: GridMark, _| tick(m.value, ys))
        .label_formatter(move |pos| {
            let (name, p) = match pos {
                egui_plot::HoverPosition::NearDataPoint {
                    plot_name,
                    position,
                    ..
                } => (*plot_name, *position),
                egui_plot::HoverPosition::Elsewhere { position } => ("", *position),
            };
            let (x, y) = (from_axis(p.x, xs), from_axis(p.y, ys));
            let y_text =
                if ys == AxisScale::Log && (y / hover_floor - 1.0).abs() < 1e-6 && any_exact {
                    "0 (exact)".to_string()
                } else {
                    format!("{y:.4e}")
                };
            Some(format!("{name}\nx = {}\ny = {y_text}", format_tick(x)))
        })
        .show(ui, |plot_ui| {
            for (i, (s, p)) in spec.series.iter().zip(&prepared).enumerate() {
                let [r, g, b] = series_color(i);
                let color = egui::Color32::from_rgb(r, g, b);
                let line: Vec<[f64; 2]> = p
                    .points
                    .iter()
                    .map(|q| [to_axis(q.x, xs), to_axis(q.y, ys)])
                    .collect();
                plot_ui.line(
                    Line::new(s.label.clone(), PlotPoints::from(line))
                        .color(color)
                        .width(2.0),
                );
                let values: Vec<[f64; 2]> = p
                    .points
                    .iter()
                    .filter(|q| q.kind == PointKind::Value)
                    .map(|q| [to_axis(q.x, xs), to_axis(q.y, ys)])
                    .collect();
                plot_ui.points(
                    Points::new(s.label.clone(), PlotPoints::from(values))
                        .color(color)
                        .radius(3.5)
                        .shape(MarkerShape::Circle),
                );
                let exact: Vec<[f64; 2]> = p
                    .points
                    .iter()
                    .filter(|q| q.kind == PointKind::ExactZero)
                    .map(|q| [to_axis(q.x, xs), to_axis(q.y, ys)])
                    .collect();
                if !exact.is_empty() {
                    plot_ui.points(
                        Points::new(s.label.clone(), PlotPoints::from(exact))
                            .color(color)
                            .radius(5.0)
                            .filled(false)
                            .shape(MarkerShape::Circle),
                    );
                }
            }
            if any_exact {
                plot_ui.hline(
                    HLine::new("exact (error = 0)", floor_axis)
                        .color(egui::Color32::GRAY)
                        .style(egui_plot::LineStyle::dashed_loose()),
                );
            }
        });
}
