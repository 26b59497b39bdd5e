//! The decomposition view: `A = band_b(A) + F`, `F_r`, reconstruction and signed error as six
//! linked heatmaps, bandwidth and rank sliders (live), shared colour controls, colorbars and the
//! metrics panel.

use eframe::egui;

use super::error_label;
use crate::app::heatmap_view::{
    DisplaySettings, HeatmapArgs, TextureCache, TextureKey, TokenLookup, colorbar_ui, heatmap_ui,
};
use crate::app::jobs::{DecompPanel, DecompositionResult, HeadSelection};
use crate::app::{Command, Results, Selection};
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

/// Draws the decomposition view.
pub fn ui(
    ui: &mut egui::Ui,
    sel: &Selection,
    results: &Results,
    busy: bool,
    textures: &mut TextureCache,
    commands: &mut Vec<Command>,
) {
    controls_ui(ui, sel, busy, commands);
    if let Some(e) = &results.decomposition_error {
        error_label(ui, e);
    }
    ui.separator();
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
        .show(ui, |ui| grid_ui(ui, sel, result, textures, width));
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
                        heatmap_ui(
                            ui,
                            &HeatmapArgs {
                                title: panel.title(),
                                matrix: panel.matrix(d),
                                pooled,
                                texture: &texture,
                                tokens: &tokens,
                                empty_rows: tokens.empty_rows,
                                link_group,
                                height: cell_width,
                            },
                        );
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
    } else {
        ui.weak("No result yet.");
    }
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
