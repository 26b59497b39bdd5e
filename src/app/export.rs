//! GUI exports: a heatmap as PNG, the view's matrices as `.npz`, its metrics as JSON or CSV.
//!
//! The save dialog (rfd) and the writing run on an `attnscope-export` thread; the result comes
//! back as [`Command::ExportDone`] and shows as a notification. The files are written by the
//! same library functions as the CLI ([`crate::render::export`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ndarray::{Array2, ArrayView2};

use super::heatmap_view::DisplaySettings;
use super::jobs::{
    DecompPanel, DecompositionResult, HeadSelection, MethodRun, PooledDecompositionResult,
};
use super::{AttnScopeApp, Command, View};
use crate::analysis::PooledDecomposition;
use crate::render::export::{
    HeatmapTitle, method_parameters_summary, write_heatmap_png, write_json, write_metrics_csv,
    write_npz, write_pooled_png,
};
use crate::render::{ColorScale, PngOptions, Pooled};

/// What to save.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportWhat {
    /// One heatmap of a view, by its panel title (e.g. `"near field"`, `"error Â − A"`).
    Png {
        /// The view.
        view: View,
        /// The panel title.
        panel: &'static str,
    },
    /// Every matrix the view shows, as `.npz`.
    Matrices(View),
    /// The view's metrics as JSON.
    MetricsJson(View),
    /// The view's metrics as CSV (one row).
    MetricsCsv(View),
}

impl ExportWhat {
    /// File extension of the export.
    pub fn extension(self) -> &'static str {
        match self {
            ExportWhat::Png { .. } => "png",
            ExportWhat::Matrices(_) => "npz",
            ExportWhat::MetricsJson(_) => "json",
            ExportWhat::MetricsCsv(_) => "csv",
        }
    }
}

/// The result an export reads (kept alive by its `Arc` while the dialog is open).
#[derive(Debug, Clone)]
pub enum ExportSource {
    /// A decomposition within the budget.
    Decomposition(Arc<DecompositionResult>),
    /// A pooled decomposition of a very long input.
    Pooled(Arc<PooledDecompositionResult>),
    /// A method run.
    Method(Arc<MethodRun>),
}

/// Everything needed to write one export.
#[derive(Debug, Clone)]
pub struct ExportJob {
    /// What to write.
    pub what: ExportWhat,
    /// From which result.
    pub source: ExportSource,
    /// Colours (as on screen).
    pub display: DisplaySettings,
    /// Nearest-neighbour upscaling of PNGs.
    pub upscale: usize,
}

fn head_title(head: &HeadSelection, method: &str, parameters: String) -> HeatmapTitle {
    let set = &head.input.set;
    HeatmapTitle {
        input: head.input.source.spec(),
        layer: set.layer_label(head.layer),
        head: head.head,
        method: method.to_string(),
        parameters: format!(
            "{parameters}, {}",
            if head.causal {
                "causal"
            } else {
                "bidirectional"
            }
        ),
    }
}

fn decomp_panel(title: &str) -> Option<DecompPanel> {
    DecompPanel::ALL.into_iter().find(|p| p.title() == title)
}

/// The pooled matrix of `panel` (only A, near and far exist above the budget).
fn pooled_panel<'a>(d: &'a PooledDecomposition, panel: &str) -> Option<&'a Pooled> {
    match decomp_panel(panel)? {
        DecompPanel::Full => Some(&d.full),
        DecompPanel::Near => Some(&d.near),
        DecompPanel::Far => Some(&d.far),
        _ => None,
    }
}

impl ExportJob {
    /// A default file name, e.g. `zen_L0_H2_near_field.png`.
    pub fn default_file_name(&self) -> String {
        let head = match &self.source {
            ExportSource::Decomposition(d) => &d.head,
            ExportSource::Pooled(d) => &d.head,
            ExportSource::Method(m) => &m.head,
        };
        let stem = Path::new(&head.input.source.spec())
            .file_stem()
            .map_or_else(|| "attnscope".into(), |s| s.to_string_lossy().into_owned());
        let what = match self.what {
            ExportWhat::Png { panel, .. } => panel.to_string(),
            ExportWhat::Matrices(_) => "matrices".into(),
            ExportWhat::MetricsJson(_) | ExportWhat::MetricsCsv(_) => "metrics".into(),
        };
        let clean: String = format!("{stem}_L{}_H{}_{what}", head.layer, head.head)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{clean}.{}", self.what.extension())
    }

    /// Writes the export to `path`.
    ///
    /// # Errors
    /// A message naming the file and the reason (also when the panel is not available).
    pub fn write(&self, path: &Path) -> Result<(), String> {
        let e = |x: crate::render::export::ExportError| x.to_string();
        match (&self.source, self.what) {
            (ExportSource::Decomposition(r), what) => {
                let d = &r.decomposition;
                let parameters =
                    format!("bandwidth {}, rank {}", d.metrics.bandwidth, d.metrics.rank);
                match what {
                    ExportWhat::Png { panel, .. } => {
                        let p = decomp_panel(panel)
                            .ok_or_else(|| format!("no panel '{panel}' in the decomposition"))?;
                        let scale = if p.is_signed() {
                            self.display.diverging_scale(&d.error)
                        } else {
                            self.display.sequential_scale(&d.full)
                        };
                        let title = head_title(&r.head, p.title(), parameters);
                        self.png(path, p.matrix(d).view(), &title, scale)
                    }
                    ExportWhat::Matrices(_) => {
                        let arrays: Vec<(&str, ArrayView2<'_, f32>)> = [
                            ("full", &d.full),
                            ("near", &d.near),
                            ("far", &d.far),
                            ("far_rank_r", &d.far_rank_r),
                            ("reconstruction", &d.reconstruction),
                            ("error", &d.error),
                        ]
                        .into_iter()
                        .map(|(n, m)| (n, m.view()))
                        .collect();
                        write_npz(path, &arrays).map_err(e)
                    }
                    ExportWhat::MetricsJson(_) => {
                        write_json(path, &self.metrics_record()).map_err(e)
                    }
                    ExportWhat::MetricsCsv(_) => {
                        write_metrics_csv(path, &[self.metrics_record()]).map_err(e)
                    }
                }
            }
            (ExportSource::Pooled(r), what) => {
                let d = &r.decomposition;
                let parameters = format!("bandwidth {}", d.bandwidth);
                match what {
                    ExportWhat::Png { panel, .. } => {
                        let p = pooled_panel(d, panel).ok_or_else(|| {
                            format!("'{panel}' needs the full matrix (over the budget)")
                        })?;
                        let scale = self.display.sequential_scale(&d.full.data);
                        let title = head_title(&r.head, panel, parameters);
                        let mut opts = PngOptions::new(scale);
                        opts.upscale = self.upscale.max(1);
                        write_pooled_png(path, p, &title, &opts).map_err(e)
                    }
                    ExportWhat::Matrices(_) => write_npz(
                        path,
                        &[
                            ("full_pooled", d.full.data.view()),
                            ("near_pooled", d.near.data.view()),
                            ("far_pooled", d.far.data.view()),
                        ],
                    )
                    .map_err(e),
                    ExportWhat::MetricsJson(_) => {
                        write_json(path, &self.metrics_record()).map_err(e)
                    }
                    ExportWhat::MetricsCsv(_) => {
                        write_metrics_csv(path, &[self.metrics_record()]).map_err(e)
                    }
                }
            }
            (ExportSource::Method(run), what) => {
                let parameters = method_parameters_summary(run.method, &run.params);
                match what {
                    ExportWhat::Png { panel, .. } if run.exact.is_none() => {
                        // Very long input: only exact A exists, pooled from row tiles.
                        let (Some(pooled), "A") = (&run.pooled[0], panel) else {
                            return Err("the matrices are not materialised (C8 budget)".to_string());
                        };
                        let mut opts = PngOptions::new(self.display.sequential_scale(&pooled.data));
                        opts.upscale = self.upscale.max(1);
                        let title = head_title(&run.head, "exact A", parameters);
                        write_pooled_png(path, pooled, &title, &opts).map_err(e)
                    }
                    ExportWhat::Png { panel, .. } => {
                        let (Some(exact), Some(approx), Some(error)) =
                            (&run.exact, &run.approx, &run.error)
                        else {
                            return Err("the matrices are not materialised (C8 budget)".to_string());
                        };
                        let (matrix, scale): (&Array2<f32>, ColorScale) = match panel {
                            "error" => (error, self.display.diverging_scale(error)),
                            "approx" => (approx, self.display.sequential_scale(exact)),
                            _ => (exact, self.display.sequential_scale(exact)),
                        };
                        let label = match panel {
                            "error" => format!("error {} A-hat - A", run.method),
                            "approx" => format!("{} A-hat", run.method),
                            _ => "exact A".to_string(),
                        };
                        let title = head_title(&run.head, &label, parameters);
                        self.png(path, matrix.view(), &title, scale)
                    }
                    ExportWhat::Matrices(_) => {
                        let mut arrays: Vec<(&str, ArrayView2<'_, f32>)> = Vec::new();
                        for (name, m) in [
                            ("A", &run.exact),
                            ("A_hat", &run.approx),
                            ("error", &run.error),
                        ] {
                            if let Some(m) = m {
                                arrays.push((name, m.view()));
                            }
                        }
                        if arrays.is_empty() {
                            return Err("the matrices are not materialised (C8 budget)".to_string());
                        }
                        write_npz(path, &arrays).map_err(e)
                    }
                    ExportWhat::MetricsJson(_) => {
                        write_json(path, &self.metrics_record()).map_err(e)
                    }
                    ExportWhat::MetricsCsv(_) => {
                        write_metrics_csv(path, &[self.metrics_record()]).map_err(e)
                    }
                }
            }
        }
    }

    fn png(
        &self,
        path: &Path,
        matrix: ArrayView2<'_, f32>,
        title: &HeatmapTitle,
        scale: ColorScale,
    ) -> Result<(), String> {
        let mut opts = PngOptions::new(scale);
        opts.upscale = self.upscale.max(1);
        // Exact cells up to the PNG size limit; larger matrices are pooled and labelled.
        opts.max_side = 32768 / opts.upscale;
        write_heatmap_png(path, matrix, title, &opts).map_err(|e| e.to_string())
    }

    /// The metrics of the result as one JSON record (also the CSV row).
    pub fn metrics_record(&self) -> serde_json::Value {
        let head_fields = |h: &HeadSelection| {
            serde_json::json!({
                "source": h.input.source.spec(), "layer": h.layer, "head": h.head,
                "causal": h.causal,
            })
        };
        match &self.source {
            ExportSource::Decomposition(r) => serde_json::json!({
                "input": head_fields(&r.head),
                "metrics": r.decomposition.metrics,
                "elapsed_secs": r.elapsed_secs,
            }),
            ExportSource::Pooled(r) => {
                let d = &r.decomposition;
                serde_json::json!({
                    "input": head_fields(&r.head),
                    "metrics": {
                        "bandwidth": d.bandwidth, "band_mass": d.band_mass,
                        "band_only_error": d.band_only_error, "pooled_factor": d.full.factor,
                        "pool_mode": d.full.mode, "empty_rows": d.empty_rows.len(),
                        "notes": d.notes,
                    },
                    "elapsed_secs": r.elapsed_secs,
                })
            }
            ExportSource::Method(run) => serde_json::json!({
                "input": head_fields(&run.head),
                "method": run.method.as_str(),
                "params": run.params,
                "metrics": run.metrics,
                "method_secs": run.method_secs,
                "notes": run.notes,
            }),
        }
    }
}

impl AttnScopeApp {
    /// The export job for `what` from the latest result of its view, if there is one.
    pub fn export_job(&self, what: ExportWhat) -> Option<ExportJob> {
        let view = match what {
            ExportWhat::Png { view, .. }
            | ExportWhat::Matrices(view)
            | ExportWhat::MetricsJson(view)
            | ExportWhat::MetricsCsv(view) => view,
        };
        let source = match view {
            View::Decomposition => match (
                &self.results.decomposition,
                &self.results.pooled_decomposition,
            ) {
                (Some(d), _) => ExportSource::Decomposition(Arc::clone(d)),
                (None, Some(p)) => ExportSource::Pooled(Arc::clone(p)),
                (None, None) => return None,
            },
            View::Methods => ExportSource::Method(Arc::clone(self.results.method.as_ref()?)),
            // The sweeps view saves its own CSV/JSON reports; the routing and spectrum views
            // show the methods view's matrices and their own plots.
            View::Sweeps | View::Routing | View::Spectrum | View::Notebook => return None,
        };
        Some(ExportJob {
            what,
            source,
            display: self.selection.display,
            upscale: self.selection.png_upscale,
        })
    }

    /// Shows a save dialog and writes the export on an `attnscope-export` thread.
    pub(super) fn export(&mut self, what: ExportWhat) {
        let Some(job) = self.export_job(what) else {
            self.notify("Nothing to export yet.".into());
            return;
        };
        let tx = self.commands_tx.clone();
        let ctx = self.ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("attnscope-export".into())
            .spawn(move || {
                let ext = job.what.extension();
                let picked: Option<PathBuf> = rfd::FileDialog::new()
                    .set_title("Save")
                    .set_file_name(job.default_file_name())
                    .add_filter(ext, &[ext])
                    .save_file();
                let Some(path) = picked else {
                    return;
                };
                let outcome = job.write(&path).map(|()| path.display().to_string());
                if tx.send(Command::ExportDone(outcome)).is_ok() {
                    ctx.request_repaint();
                }
            });
        if let Err(e) = spawned {
            self.notify(format!("cannot open the save dialog: {e}"));
        }
    }
}
