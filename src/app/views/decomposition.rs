//! The decomposition view: `A = band_b(A) + F`, `F_r`, reconstruction and signed error as six
//! linked heatmaps, bandwidth and rank sliders (live), shared colour controls, colorbars and the
//! metrics panel.

use eframe::egui;

use super::error_label;
use crate::app::export::ExportWhat;
use crate::app::heatmap_view::{
    DisplaySettings, HeatmapAction, HeatmapArgs, TextureCache, TextureKey, TokenLookup,
    colorbar_ui, heatmap_ui,
};
use crate::app::jobs::{
    DecompPanel, DecompositionResult, HeadSelection, PooledDecompositionResult,
};
use crate::app::{Command, Results, Selection, View};
use crate::render::{Colormap, ValueScale};

/// Token lookup over the head a result was computed on.
pub struct HeadTokens<'a> {
    /// The head.
    pub head: &'a HeadSelection,
    /// Rows that see no key (C3).
    pub empty_rows: &'a [usize],
}

impl TokenLookup for HeadTokens<'_> {
    fn query_token(&self, i: usize) -> String {
        self.head.input.set.query_token(i)
    }
    fn key_token(&self, j: usize) -> String {
        self.head.input.set.key_token(j)
    }
    fn row_sees_no_key(&self, i: usize) -> bool {
        self.empty_rows.binary_search(&i).is_ok()
    }
}

/// The command a heatmap's context-menu choice means in `view` for `panel`.
pub fn action_command(view: View, panel: &'static str, action: HeatmapAction) -> Command {
    Command::Export(match action {
        HeatmapAction::SavePng => ExportWhat::Png { view, panel },
        HeatmapAction::SaveMatrices => ExportWhat::Matrices(view),
        HeatmapAction::SaveMetricsJson => ExportWhat::MetricsJson(view),
        HeatmapAction::SaveMetricsCsv => ExportWhat::MetricsCsv(view),
    })
}

/// The "Save" row: matrices and metrics of `view`.
pub fn export_row_ui(ui: &mut egui::Ui, view: View, commands: &mut Vec<Command>) {
    ui.horizontal(|ui| {
        ui.label("Save:");
        if ui.button("matrices (.npz)…").clicked() {
            commands.push(Command::Export(ExportWhat::Matrices(view)));
        }
        if ui.button("metrics (JSON)…").clicked() {
            commands.push(Command::Export(ExportWhat::MetricsJson(view)));
        }
        if ui.button("metrics (CSV)…").clicked() {
            commands.push(Command::Export(ExportWhat::MetricsCsv(view)));
        }
        ui.weak("PNG: the PNG button or right-click on a heatmap");
    });
}

/// A progress bar and a Cancel button while a tiled computation runs.
pub fn progress_ui(ui: &mut egui::Ui, progress: Option<f32>, commands: &mut Vec<Command>) {
    if let Some(p) = progress {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.add(
                egui::ProgressBar::new(p)
                    .desired_width(280.0)
                    .show_percentage()
                    .text(format!("computing row tiles… {:.0}%", p * 100.0)),
            );
            if ui.button("Cancel").clicked() {
                commands.push(Command::Cancel);
            }
        });
    }
}

/// Draws the decomposition view.
pub fn ui(
    ui: &mut egui::Ui,
    sel: &Selection,
    results: &Results,
    busy: bool,
    progress: Option<f32>,
    textures: &mut TextureCache,
    commands: &mut Vec<Command>,
) {
    controls_ui(ui, sel, busy, commands);
    if busy {
        progress_ui(ui, progress, commands);
    }
    if let Some(e) = &results.decomposition_error {
        error_label(ui, e);
    }
    if results.decomposition.is_some() || results.pooled_decomposition.is_some() {
        export_row_ui(ui, View::Decomposition, commands);
    }
    ui.separator();
    if let Some(pooled) = &results.pooled_decomposition {
        let width = ui.available_width();
        egui::ScrollArea::vertical()
            .id_salt("decomposition_grid")
            .auto_shrink(false)
            .show(ui, |ui| {
                pooled_grid_ui(ui, sel, pooled, textures, width, commands)
            });
        return;
    }
    let Some(result) = &results.decomposition else {
        if busy {
            ui.spinner();
        } else {
            ui.weak("Load an input to see its decomposition.");
        }
        return;
    };
    // Measured outside the scroll area: inside it, the width is last frame's content width.
    let width = ui.available_width();
    egui::ScrollArea::vertical()
        .id_salt("decomposition_grid")
        .auto_shrink(false)
        .show(ui, |ui| grid_ui(ui, sel, result, textures, width, commands));
}

/// The three panels of a pooled decomposition (very long input) and why the others are
/// missing.
fn pooled_grid_ui(
    ui: &mut egui::Ui,
    sel: &Selection,
    result: &PooledDecompositionResult,
    textures: &mut TextureCache,
    width: f32,
    commands: &mut Vec<Command>,
) {
    let d = &result.decomposition;
    let sequential = sel.display.sequential_scale(&d.full.data);
    colorbar_ui(ui, "A, near, far (pooled):", &sequential);
    for note in &d.notes {
        ui.colored_label(ui.visuals().warn_fg_color, note);
    }
    let tokens = HeadTokens {
        head: &result.head,
        empty_rows: &d.empty_rows,
    };
    let link_group = egui::Id::unique("decomposition_link");
    let spacing = ui.spacing().item_spacing.x;
    let cell_width = ((width - spacing * 2.0) / 3.0).max(120.0);
    let ctx = ui.ctx().clone();
    ui.horizontal(|ui| {
        for (panel, pooled) in [
            (DecompPanel::Full, &d.full),
            (DecompPanel::Near, &d.near),
            (DecompPanel::Far, &d.far),
        ] {
            let key = TextureKey {
                result_id: result.id,
                panel: panel.title(),
                display: sel.display.key(),
            };
            let texture = textures.get(&ctx, key, pooled, &sequential);
            ui.allocate_ui(egui::vec2(cell_width, cell_width + 24.0), |ui| {
                ui.vertical(|ui| {
                    ui.set_width(cell_width);
                    let action = heatmap_ui(
                        ui,
                        &HeatmapArgs {
                            title: panel.title(),
                            matrix: None,
                            dim: (d.seq_len_q, d.seq_len_kv),
                            empty_rows: &d.empty_rows,
                            pooled,
                            texture: &texture,
                            tokens: &tokens,
                            link_group,
                            height: cell_width,
                        },
                    );
                    if let Some(action) = action {
                        commands.push(action_command(View::Decomposition, panel.title(), action));
                    }
                });
            });
        }
    });
    ui.separator();
    for panel in [
        DecompPanel::FarRankR,
        DecompPanel::Reconstruction,
        DecompPanel::Error,
    ] {
        ui.weak(format!(
            "{}: needs the far field's SVD on the full {}×{} matrix — not available above the \
             budget (Settings > matrix budget).",
            panel.title(),
            d.seq_len_q,
            d.seq_len_kv
        ));
    }
}

/// Bandwidth / rank sliders and the shared colour controls.
///
/// Rows are explicit `horizontal`s: egui sliders do not wrap inside `horizontal_wrapped`.
pub fn controls_ui(ui: &mut egui::Ui, sel: &Selection, busy: bool, commands: &mut Vec<Command>) {
    ui.horizontal(|ui| {
        let max_bandwidth = sel.input.as_ref().map_or(64, |i| i.set.seq_len_kv().max(1));
        let mut bandwidth = sel.params.bandwidth;
        if ui
            .add(egui::Slider::new(&mut bandwidth, 0..=max_bandwidth).text("bandwidth"))
            .on_hover_text(
                "C2: bidirectional keeps |i' − j| ≤ b, causal keeps i' − b ≤ j ≤ i'.\n\
                 FMMformer diag_size = bandwidth + 1.",
            )
            .changed()
        {
            commands.push(Command::SetBandwidth(bandwidth));
        }
        let mut rank = sel.params.rank;
        if ui
            .add(egui::Slider::new(&mut rank, 1..=sel.max_rank()).text("rank"))
            .on_hover_text("Rank r of the far field's truncated SVD (capped at min(Lq, Lk)).")
            .changed()
        {
            commands.push(Command::SetRank(rank));
        }
        if busy {
            ui.spinner();
        }
    });
    ui.horizontal(|ui| display_controls_ui(ui, sel.display, commands));
}

/// Colour map and value scale controls shared by every heatmap view.
pub fn display_controls_ui(
    ui: &mut egui::Ui,
    display: DisplaySettings,
    commands: &mut Vec<Command>,
) {
    let mut next = display;
    egui::ComboBox::from_label("colour map")
        .selected_text(next.colormap.name())
        .show_ui(ui, |ui| {
            for &map in Colormap::ALL.iter().filter(|m| !m.is_diverging()) {
                ui.selectable_value(&mut next.colormap, map, map.name());
            }
        });
    let kind = match next.value_scale {
        ValueScale::Linear => 0,
        ValueScale::Log { .. } => 1,
        ValueScale::Power { .. } => 2,
    };
    let mut chosen = kind;
    ui.selectable_value(&mut chosen, 0, "linear");
    ui.selectable_value(&mut chosen, 1, "log");
    ui.selectable_value(&mut chosen, 2, "power");
    if chosen != kind {
        next.value_scale = match chosen {
            1 => ValueScale::Log { decades: 3.0 },
            2 => ValueScale::Power { gamma: 0.5 },
            _ => ValueScale::Linear,
        };
    }
    match &mut next.value_scale {
        ValueScale::Log { decades } => {
            ui.add(egui::Slider::new(decades, 1.0..=8.0).text("decades"));
        }
        ValueScale::Power { gamma } => {
            ui.add(egui::Slider::new(gamma, 0.1..=2.0).text("γ"));
        }
        ValueScale::Linear => {}
    }
    if next != display {
        commands.push(Command::SetDisplay(next));
    }
}

fn grid_ui(
    ui: &mut egui::Ui,
    sel: &Selection,
    result: &DecompositionResult,
    textures: &mut TextureCache,
    width: f32,
    commands: &mut Vec<Command>,
) {
    let d = &result.decomposition;
    let sequential = sel.display.sequential_scale(&d.full);
    let diverging = sel.display.diverging_scale(&d.error);
    colorbar_ui(ui, "A, near, far, F_r, reconstruction:", &sequential);
    colorbar_ui(ui, "signed error:", &diverging);
    let tokens = HeadTokens {
        head: &result.head,
        empty_rows: &d.metrics.empty_rows,
    };
    let link_group = egui::Id::unique("decomposition_link");
    let columns = 3;
    let spacing = ui.spacing().item_spacing.x;
    let cell_width = ((width - spacing * (columns as f32 - 1.0)) / columns as f32).max(120.0);
    let ctx = ui.ctx().clone();
    for row in DecompPanel::ALL.chunks(columns) {
        ui.horizontal(|ui| {
            for &panel in row {
                let index = DecompPanel::ALL
                    .iter()
                    .position(|p| *p == panel)
                    .unwrap_or(0);
                let Some(pooled) = result.pooled.get(index) else {
                    continue;
                };
                let scale = if panel.is_signed() {
                    &diverging
                } else {
                    &sequential
                };
                let key = TextureKey {
                    result_id: result.id,
                    panel: panel.title(),
                    display: sel.display.key(),
                };
                let texture = textures.get(&ctx, key, pooled, scale);
                ui.allocate_ui(egui::vec2(cell_width, cell_width + 24.0), |ui| {
                    ui.vertical(|ui| {
                        ui.set_width(cell_width);
                        let action = heatmap_ui(
                            ui,
                            &HeatmapArgs {
                                title: panel.title(),
                                matrix: Some(panel.matrix(d)),
                                dim: panel.matrix(d).dim(),
                                pooled,
                                texture: &texture,
                                tokens: &tokens,
                                empty_rows: tokens.empty_rows,
                                link_group,
                                height: cell_width,
                            },
                        );
                        if let Some(action) = action {
                            commands.push(action_command(
                                View::Decomposition,
                                panel.title(),
                                action,
                            ));
                        }
                    });
                });
            }
        });
    }
    ui.weak(
        "Scroll with Ctrl to zoom, drag to pan (all panels move together), double-click to reset.",
    );
}

/// The view's inspector (right-hand panel): metrics of the last good result.
pub fn inspector_ui(ui: &mut egui::Ui, results: &Results) {
    if let Some(result) = &results.decomposition {
        metrics_ui(ui, result);
    } else if let Some(result) = &results.pooled_decomposition {
        pooled_metrics_ui(ui, result);
    } else {
        ui.weak("No result yet.");
    }
}

fn pooled_metrics_ui(ui: &mut egui::Ui, result: &PooledDecompositionResult) {
    let d = &result.decomposition;
    ui.heading("Metrics");
    ui.weak(format!(
        "{} · head {} · {} · {}×{} (pooled)",
        result.head.input.set.layer_label(result.head.layer),
        result.head.head,
        if result.head.causal {
            "causal"
        } else {
            "bidirectional"
        },
        d.seq_len_q,
        d.seq_len_kv
    ));
    super::value_grid(ui, "pooled_metrics_grid", true, |row| {
        row("bandwidth", d.bandwidth.to_string());
        row("band mass", format!("{:.4}", d.band_mass));
        row("band-only error", d.band_only_error.to_string());
        row("far energy captured", "n/a (needs the SVD)".into());
        row("reconstruction error", "n/a (needs the SVD)".into());
        row(
            "pooling",
            d.full.label().unwrap_or_else(|| "exact cells".into()),
        );
        row("compute time", format!("{:.2} s", result.elapsed_secs));
    });
}

fn metrics_ui(ui: &mut egui::Ui, result: &DecompositionResult) {
    let m = &result.decomposition.metrics;
    let set = &result.head.input.set;
    ui.heading("Metrics");
    ui.weak(format!(
        "{} · head {} · {}",
        set.layer_label(result.head.layer),
        result.head.head,
        if result.head.causal {
            "causal"
        } else {
            "bidirectional"
        }
    ));
    egui::Grid::new("decomposition_metrics_grid")
        .num_columns(2)
        .striped(true)
        .show(ui, |ui| {
            let mut row = |name: &str, value: String, help: &str| {
                ui.label(name).on_hover_text(help);
                ui.monospace(value);
                ui.end_row();
            };
            row("bandwidth", m.bandwidth.to_string(), "C2 bandwidth b");
            row(
                "rank",
                m.rank.to_string(),
                "far-field rank r after clamping",
            );
            row(
                "band mass",
                format!("{:.4}", m.band_mass),
                "Σ band_b(A) / Σ A: share of attention inside the band",
            );
            row(
                "far energy captured",
                format!("{:.4}", m.far_energy_captured),
                "Σ_{t<r} σ_t(F)² / Σ σ_t(F)²",
            );
            row(
                "band-only error",
                m.band_only_error.to_string(),
                "||band_b(A) − A||_F / ||A||_F",
            );
            row(
                "reconstruction error",
                m.reconstruction_error.to_string(),
                "||band_b(A) + F_r − A||_F / ||A||_F",
            );
            row(
                "output error",
                m.reconstruction_output_error.to_string(),
                "||(R − A)V||_F / ||AV||_F",
            );
            row(
                "max abs error",
                format!("{:.3e}", m.reconstruction_max_abs),
                "max |R − A|",
            );
            row(
                "compute time",
                format!("{:.1} ms", result.elapsed_secs * 1e3),
                "attention + SVD + pooling on the worker thread",
            );
        });
    if !m.empty_rows.is_empty() {
        ui.colored_label(
            ui.visuals().warn_fg_color,
            format!(
                "{} queries see no key (C3, rows all zero): {:?}",
                m.empty_rows.len(),
                &m.empty_rows[..m.empty_rows.len().min(12)]
            ),
        );
    }
    for note in &m.notes {
        ui.weak(note);
    }
    let sv = &result.decomposition.far_singular_values;
    if !sv.is_empty() {
        ui.separator();
        ui.label("far-field singular values (first 8):");
        ui.monospace(
            sv.iter()
                .take(8)
                .map(|s| format!("{s:.3e}"))
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
}
