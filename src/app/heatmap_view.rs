//! The shared heatmap widget: a cached texture shown as an `egui_plot::PlotImage` (zoom, pan,
//! linked axes across a grid), a hover read-out (query i, key j, both tokens, value, and whether
//! the row sees no key, C3), the "pooled k×k" label (E15) and a colorbar.
//!
//! Textures are built once per (result id, panel, display settings) and kept in
//! [`TextureCache`]; a frame that changes nothing builds nothing.

use std::collections::HashMap;

use eframe::egui;
use egui::{Color32, ColorImage, TextureHandle, TextureOptions};
use egui_plot::{Plot, PlotImage, PlotPoint, Polygon};
use ndarray::Array2;

use crate::render::{ColorScale, Colormap, PoolMode, Pooled, ValueScale, render};

/// Colour settings shared by every heatmap (the user's choice; the ranges are fitted per view).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DisplaySettings {
    /// Colour map of non-negative matrices.
    pub colormap: Colormap,
    /// Linear, log or power mapping.
    pub value_scale: ValueScale,
    /// Block max or block mean for matrices larger than a texture (E15).
    pub pool_mode: PoolMode,
}

impl Default for DisplaySettings {
    fn default() -> Self {
        Self {
            colormap: Colormap::Viridis,
            // Attention rows spread mass thinly; 3 decades show the structure a linear map hides.
            value_scale: ValueScale::Log { decades: 3.0 },
            pool_mode: PoolMode::Max,
        }
    }
}

impl DisplaySettings {
    /// A hashable identity of the settings (floats by bit pattern) for texture caches.
    pub fn key(&self) -> (Colormap, u8, u32) {
        match self.value_scale {
            ValueScale::Linear => (self.colormap, 0, 0),
            ValueScale::Log { decades } => (self.colormap, 1, decades.to_bits()),
            ValueScale::Power { gamma } => (self.colormap, 2, gamma.to_bits()),
        }
    }

    /// The shared scale for non-negative panels, fitted to `reference` (normally exact A).
    pub fn sequential_scale(&self, reference: &Array2<f32>) -> ColorScale {
        ColorScale::fit(self.colormap, self.value_scale, reference.iter().copied())
    }

    /// The diverging scale of a signed error matrix (symmetric about 0, white at 0).
    pub fn diverging_scale(&self, error: &Array2<f32>) -> ColorScale {
        ColorScale::fit(Colormap::RedBlue, self.value_scale, error.iter().copied())
    }
}

/// Identity of one texture: which result, which panel, which display settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TextureKey {
    /// Request id of the result the matrix belongs to.
    pub result_id: u64,
    /// Panel within the view.
    pub panel: &'static str,
    /// [`DisplaySettings::key`].
    pub display: (Colormap, u8, u32),
}

/// Textures keyed by [`TextureKey`].
#[derive(Default)]
pub struct TextureCache {
    textures: HashMap<TextureKey, TextureHandle>,
}

impl TextureCache {
    /// The texture for `key`, rendered from `pooled` with `scale` on a miss.
    pub fn get(
        &mut self,
        ctx: &egui::Context,
        key: TextureKey,
        pooled: &Pooled,
        scale: &ColorScale,
    ) -> TextureHandle {
        self.textures
            .entry(key)
            .or_insert_with(|| {
                let heatmap = render(pooled.data.view(), scale);
                let image = ColorImage::from_rgba_unmultiplied(
                    [heatmap.width, heatmap.height],
                    &heatmap.rgba,
                );
                ctx.load_texture(
                    format!("{}#{}", key.panel, key.result_id),
                    image,
                    TextureOptions::NEAREST,
                )
            })
            .clone()
    }

    /// Drops textures of results no longer on screen.
    pub fn retain_results(&mut self, live: &[u64]) {
        self.textures.retain(|k, _| live.contains(&k.result_id));
    }

    /// Number of cached textures.
    pub fn len(&self) -> usize {
        self.textures.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.textures.is_empty()
    }
}

/// Token text lookup for hover read-outs.
pub trait TokenLookup {
    /// Query token `i`.
    fn query_token(&self, i: usize) -> String;
    /// Key token `j`.
    fn key_token(&self, j: usize) -> String;
    /// Whether query `i` sees no key (C3).
    fn row_sees_no_key(&self, i: usize) -> bool;
}

/// Everything one heatmap needs.
pub struct HeatmapArgs<'a> {
    /// Title shown above the plot (and its accessibility label).
    pub title: &'a str,
    /// Full-resolution matrix for the hover value (`None` above the budget: the hover shows
    /// the pooled value).
    pub matrix: Option<&'a Array2<f32>>,
    /// `(rows, cols)` of the full matrix.
    pub dim: (usize, usize),
    /// The pooled matrix the texture was drawn from (its factor aligns the image).
    pub pooled: &'a Pooled,
    /// The texture.
    pub texture: &'a TextureHandle,
    /// Tokens and empty rows.
    pub tokens: &'a dyn TokenLookup,
    /// Query rows that see no key (C3), sorted; drawn as hatched bands.
    pub empty_rows: &'a [usize],
    /// Plots with the same group share zoom/pan and cursor.
    pub link_group: egui::Id,
    /// Plot height in points.
    pub height: f32,
}

/// What the user asked of a heatmap through its context menu.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeatmapAction {
    /// Save this heatmap as PNG.
    SavePng,
    /// Save every matrix of the view as `.npz`.
    SaveMatrices,
    /// Save the view's metrics as JSON.
    SaveMetricsJson,
    /// Save the view's metrics as CSV.
    SaveMetricsCsv,
}

/// Draws one heatmap with its title, pooled label, hover read-out and a right-click menu
/// (Save PNG…, matrices, metrics); returns the menu choice.
pub fn heatmap_ui(ui: &mut egui::Ui, args: &HeatmapArgs<'_>) -> Option<HeatmapAction> {
    heatmap_full_ui(ui, args, true, |_| {}).1
}

/// [`heatmap_ui`] with extra plot items drawn over the image by `overlay` (in matrix
/// coordinates: x = key column, y = query row, one unit per cell). Returns the cell
/// `(query i, key j)` that was clicked this frame, if any. Offers no export menu (its views
/// have no export of their own).
pub fn heatmap_overlay_ui(
    ui: &mut egui::Ui,
    args: &HeatmapArgs<'_>,
    overlay: impl FnOnce(&mut egui_plot::PlotUi<'_>),
) -> Option<(usize, usize)> {
    heatmap_full_ui(ui, args, false, overlay).0
}

/// The heatmap widget: image, overlay, hover read-out and (when `exportable`) the PNG button
/// and context menu. Returns the clicked cell and the menu choice.
pub fn heatmap_full_ui(
    ui: &mut egui::Ui,
    args: &HeatmapArgs<'_>,
    exportable: bool,
    overlay: impl FnOnce(&mut egui_plot::PlotUi<'_>),
) -> (Option<(usize, usize)>, Option<HeatmapAction>) {
    let (rows, cols) = args.dim;
    let mut action = None;
    ui.horizontal_wrapped(|ui| {
        ui.strong(args.title);
        ui.weak(format!("{rows}×{cols}"));
        if let Some(label) = args.pooled.label() {
            ui.weak(label);
        }
        if exportable
            && ui
                .small_button("PNG")
                .on_hover_text("Save this heatmap as PNG (right-click for more)")
                .clicked()
        {
            action = Some(HeatmapAction::SavePng);
        }
    });
    let factor = args.pooled.factor as f64;
    let (prow, pcol) = args.pooled.data.dim();
    let (width, height) = (pcol as f64 * factor, prow as f64 * factor);
    let image = PlotImage::new(
        args.title,
        args.texture.id(),
        PlotPoint::new(width / 2.0, height / 2.0),
        [width as f32, height as f32],
    );
    let response = Plot::new(("heatmap", args.title))
        .height(args.height)
        .data_aspect(1.0)
        .invert_y(true)
        .show_grid(false)
        .show_x(false)
        .show_y(false)
        .allow_scroll(false)
        .set_margin_fraction(egui::Vec2::ZERO)
        .link_axis(args.link_group, [true, true])
        .link_cursor(args.link_group, [true, true])
        .include_x(0.0)
        .include_x(cols as f64)
        .include_y(0.0)
        .include_y(rows as f64)
        .show(ui, |plot_ui| {
            plot_ui.image(image);
            for (index, rows) in contiguous_runs(args.empty_rows).into_iter().enumerate() {
                let (top, bottom) = (rows.start as f64, rows.end as f64);
                let band = vec![[0.0, top], [width, top], [width, bottom], [0.0, bottom]];
                plot_ui.polygon(
                    Polygon::new("rows that see no key (C3)", band)
                        .id(("empty_rows", index))
                        .fill_color(EMPTY_ROW_FILL)
                        .stroke(egui::Stroke::new(1.0, EMPTY_ROW_STROKE))
                        .allow_hover(false),
                );
            }
            overlay(plot_ui);
            plot_ui.pointer_coordinate()
        });
    let clicked = response
        .inner
        .filter(|p| response.response.clicked() && p.x >= 0.0 && p.y >= 0.0)
        .map(|p| (p.y.floor() as usize, p.x.floor() as usize))
        .filter(|&(i, j)| i < rows && j < cols);
    let _menu = exportable.then(|| {
        response.response.context_menu(|ui| {
            for (label, choice) in [
                ("Save PNG…", HeatmapAction::SavePng),
                ("Save matrices as .npz…", HeatmapAction::SaveMatrices),
                ("Save metrics as JSON…", HeatmapAction::SaveMetricsJson),
                ("Save metrics as CSV…", HeatmapAction::SaveMetricsCsv),
            ] {
                if ui.button(label).clicked() {
                    action = Some(choice);
                    ui.close();
                }
            }
        })
    });
    if let Some(point) = response.inner
        && response.response.hovered()
        && point.x >= 0.0
        && point.y >= 0.0
        && (point.y as usize) < rows
        && (point.x as usize) < cols
    {
        let (i, j) = (point.y.floor() as usize, point.x.floor() as usize);
        let k = args.pooled.factor.max(1);
        let value = match args.matrix {
            Some(m) => m.get([i, j]).map(|v| format!("value {}", format_value(*v))),
            None => args.pooled.data.get([i / k, j / k]).map(|v| {
                format!(
                    "{} of the {k}×{k} block: {}",
                    args.pooled.mode.name(),
                    format_value(*v)
                )
            }),
        };
        if let Some(value) = value {
            let mut text = format!(
                "query {i} «{}»\nkey {j} «{}»\n{value}",
                args.tokens.query_token(i),
                args.tokens.key_token(j),
            );
            if args.tokens.row_sees_no_key(i) {
                text.push_str("\nthis query sees no key (C3): its row is all zeros");
            }
            response.response.on_hover_text_at_pointer(text);
        }
    }
    (clicked, action)
}

/// Overlay of rows that see no key (C3): translucent grey with an orange outline.
const EMPTY_ROW_FILL: Color32 = Color32::from_rgba_premultiplied(60, 60, 60, 160);
const EMPTY_ROW_STROKE: Color32 = Color32::from_rgb(255, 140, 0);

/// Sorted indices → half-open runs of consecutive indices.
fn contiguous_runs(sorted: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
    for &i in sorted {
        match runs.last_mut() {
            Some(run) if run.end == i => run.end = i + 1,
            _ => runs.push(i..i + 1),
        }
    }
    runs
}

/// A matrix entry for the hover read-out: fixed point for ordinary values, scientific for
/// tiny or huge ones, and the words for non-finite ones.
fn format_value(value: f32) -> String {
    let magnitude = value.abs();
    if !value.is_finite() || value == 0.0 || (1e-3..1e4).contains(&magnitude) {
        format!("{value:.6}")
    } else {
        format!("{value:.4e}")
    }
}

/// A horizontal colorbar for `scale` with its minimum, middle and maximum values.
pub fn colorbar_ui(ui: &mut egui::Ui, label: &str, scale: &ColorScale) {
    ui.horizontal(|ui| {
        ui.label(label);
        ui.label(format!("{:.3e}", scale.value_at(0.0)));
        let (rect, _) = ui.allocate_exact_size(egui::vec2(220.0, 14.0), egui::Sense::hover());
        let steps = 64;
        let painter = ui.painter_at(rect);
        for s in 0..steps {
            let t0 = s as f32 / steps as f32;
            let t1 = (s + 1) as f32 / steps as f32;
            let [r, g, b] = scale.colormap.rgb(f64::from((t0 + t1) / 2.0));
            let cell = egui::Rect::from_min_max(
                egui::pos2(rect.left() + t0 * rect.width(), rect.top()),
                egui::pos2(rect.left() + t1 * rect.width() + 0.5, rect.bottom()),
            );
            painter.rect_filled(cell, 0.0, Color32::from_rgb(r, g, b));
        }
        ui.label(format!("{:.3e}", scale.value_at(1.0)));
        if scale.colormap.is_diverging() {
            ui.weak("(white = 0)");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c3_empty_rows_group_into_runs() {
        assert_eq!(contiguous_runs(&[]), Vec::<std::ops::Range<usize>>::new());
        assert_eq!(contiguous_runs(&[0, 1, 2, 5, 7, 8]), vec![0..3, 5..6, 7..9]);
    }

    #[test]
    fn hover_values_switch_to_scientific_only_when_tiny_or_huge() {
        assert_eq!(format_value(0.25), "0.250000");
        assert_eq!(format_value(0.0), "0.000000");
        assert_eq!(format_value(2.5e-6), "2.5000e-6");
        assert_eq!(format_value(f32::NAN), "NaN");
    }
}
