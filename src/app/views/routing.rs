//! The Combiner routing view (issue 3, SPEC §6.4): pick a variant, block size, causality and
//! pooling; click a query row. Its direct keys and each abstraction region are overlaid on the
//! row (on the effective and exact heatmaps and on a strip under them), each region labelled
//! with its summary weight p(Ω|i); the effective row q(·|i) is plotted against the exact softmax
//! row; a table lists the regions (keys, summary logit, weight, and the exact attention mass
//! inside the region); the variant's effective matrix sits beside exact A with the signed error
//! and the C4 metrics.

use eframe::egui;
use egui::Color32;
use egui_plot::{Legend, Line, Plot, PlotPoint, PlotPoints, PlotUi, Polygon, Text};

use super::decomposition::{HeadTokens, display_controls_ui};
use super::error_label;
use crate::app::heatmap_view::{
    HeatmapArgs, TextureCache, TextureKey, colorbar_ui, heatmap_overlay_ui,
};
use crate::app::view_jobs::{RouteResult, RoutingResult, RoutingSettings, same_head};
use crate::app::{Command, Results, Selection};
use crate::attention::combiner::{KeySet, RegionKind, Variant, default_block};
use crate::attention::method::{KeyRow, Pooling};

/// Width of the y axes of the strip and the row plot (equal, so their x axes line up).
const Y_AXIS_WIDTH: f32 = 44.0;

/// Colour of the direct keys Ω_i^0.
pub const DIRECT_COLOUR: Color32 = Color32::from_rgb(228, 26, 28);

/// Colour of region number `index` (Tableau 10 without its red, which marks direct keys).
pub fn region_colour(index: usize) -> Color32 {
    const PALETTE: [[u8; 3]; 9] = [
        [78, 121, 167],
        [242, 142, 43],
        [118, 183, 178],
        [89, 161, 79],
        [237, 201, 72],
        [176, 122, 161],
        [255, 157, 167],
        [156, 117, 95],
        [186, 176, 172],
    ];
    let [r, g, b] = PALETTE[index % PALETTE.len()];
    Color32::from_rgb(r, g, b)
}

/// Draws the routing view.
pub fn ui(
    ui: &mut egui::Ui,
    sel: &Selection,
    results: &Results,
    busy: bool,
    textures: &mut TextureCache,
    commands: &mut Vec<Command>,
) {
    controls_ui(ui, sel, busy, commands);
    ui.horizontal(|ui| display_controls_ui(ui, sel.display, commands));
    if let Some(e) = &results.routing.error {
        error_label(ui, e);
    }
    ui.separator();
    let Some(matrix) = &results.routing.matrix else {
        if busy {
            ui.spinner();
        } else {
            ui.weak("Load an input to see its Combiner routing.");
        }
        return;
    };
    let route = results.routing.shown_route().unwrap_or(&matrix.route);
    // Measured outside the scroll area: inside it, the width is last frame's content width.
    let width = ui.available_width();
    egui::ScrollArea::vertical()
        .id_salt("routing_scroll")
        .auto_shrink(false)
        .show(ui, |ui| {
            heatmaps_ui(ui, sel, matrix, route, textures, width, commands);
            ui.separator();
            route_ui(ui, matrix, route, width);
        });
}

fn controls_ui(ui: &mut egui::Ui, sel: &Selection, busy: bool, commands: &mut Vec<Command>) {
    let seq_len = sel.input.as_ref().map_or(1, |i| i.set.seq_len_q().max(1));
    let mut next: RoutingSettings = sel.routing;
    ui.horizontal(|ui| {
        egui::ComboBox::from_label("variant")
            .selected_text(next.variant.as_str())
            .show_ui(ui, |ui| {
                for &v in Variant::ALL {
                    ui.selectable_value(&mut next.variant, v, v.as_str())
                        .on_hover_text(variant_help(v));
                }
            })
            .response
            .on_hover_text(variant_help(next.variant));
        let mut block = next.block.unwrap_or_else(|| default_block(seq_len));
        let logsparse = next.variant == Variant::Logsparse;
        let slider = ui
            .add_enabled(
                !logsparse,
                egui::Slider::new(&mut block, 1..=seq_len).text("block"),
            )
            .on_hover_text(
                "Block size s (Axial / Mixture: grid width m). Default ⌈√L⌉; the last block \
                 is shorter when s does not divide L.",
            )
            .on_disabled_hover_text("Logsparse has no block size: its regions are dyadic blocks");
        if slider.changed() {
            next.block = Some(block);
        }
        if ui
            .add_enabled(
                !logsparse && next.block.is_some(),
                egui::Button::new("⌈√L⌉").small(),
            )
            .on_hover_text(format!(
                "Reset the block size to ⌈√L⌉ = {}",
                default_block(seq_len)
            ))
            .clicked()
        {
            next.block = None;
        }
        let mut causal = sel.causal;
        if ui
            .checkbox(&mut causal, "causal")
            .on_hover_text("C1: query i sees key j iff j ≤ i + (Lk − Lq) (bottom-right aligned)")
            .changed()
        {
            commands.push(Command::SetCausal(causal));
        }
        if busy {
            ui.spinner();
        }
    });
    ui.horizontal(|ui| {
        ui.label("pooling");
        ui.selectable_value(&mut next.pooling, Pooling::Max, "max")
            .on_hover_text("Summary keys and queries: elementwise max (official)");
        ui.selectable_value(&mut next.pooling, Pooling::Mean, "mean")
            .on_hover_text("Summary keys and queries: elementwise mean");
        if next.variant == Variant::Axial {
            ui.separator();
            ui.label("key row");
            ui.selectable_value(&mut next.key_row, KeyRow::Wsum, "wsum")
                .on_hover_text("Row summary key: weighted sum of the row's keys (default)");
            ui.selectable_value(&mut next.key_row, KeyRow::None, "none")
                .on_hover_text("Row summary key: the key at the summary query's position");
        }
        ui.separator();
        let mut query = next.query_index(seq_len);
        ui.label("query");
        if ui
            .add(egui::DragValue::new(&mut query).range(0..=seq_len - 1))
            .on_hover_text("The routed query i (or click a row of a heatmap)")
            .changed()
        {
            next.query = Some(query);
        }
        if let Some(input) = &sel.input {
            ui.weak(format!("«{}»", input.set.query_token(query)));
        }
    });
    if next != sel.routing {
        commands.push(Command::SetRouting(next));
    }
}

fn variant_help(v: Variant) -> &'static str {
    match v {
        Variant::Fixed => {
            "Fixed: own block direct, every other (earlier) block one region (eq. 10 when bidirectional)"
        }
        Variant::Logsparse => {
            "Logsparse: dyadic blocks from the binary digits of i; the bidirectional form is \
             attnscope's mirror construction (our extension)"
        }
        Variant::Axial => "Axial (rowmajor): own grid row direct, one abstraction per other row",
        Variant::Mixture => {
            "Mixture: own row and column direct; column parts and row parts as regions \
             (bidirectional form is our extension)"
        }
    }
}

/// Cells `[j0, j1) × [i, i + 1)` of a key set, merging contiguous runs.
fn key_runs(keys: impl Iterator<Item = usize>) -> Vec<(usize, usize)> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for j in keys {
        match runs.last_mut() {
            Some((_, end)) if *end == j => *end = j + 1,
            _ => runs.push((j, j + 1)),
        }
    }
    runs
}

fn rect(x0: f64, x1: f64, y0: f64, y1: f64) -> Vec<[f64; 2]> {
    vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
}

/// Filled rectangles (and their colour) marking the route of one query on row band `[y0, y1)`.
/// Mixture regions can overlap (a key has two routes): column parts use the upper half of the
/// band and row parts the lower half.
fn route_shapes(route: &RouteResult, y0: f64, y1: f64) -> Vec<(Vec<[f64; 2]>, Color32)> {
    let mut shapes = Vec::new();
    for (a, b) in key_runs(route.row.direct.iter().map(|d| d.key)) {
        shapes.push((rect(a as f64, b as f64, y0, y1), DIRECT_COLOUR));
    }
    let mid = (y0 + y1) / 2.0;
    for (index, r) in route.row.regions.iter().enumerate() {
        let (ya, yb) = match r.region.kind {
            RegionKind::ColumnAbove { .. } | RegionKind::ColumnBelow { .. } => (y0, mid),
            RegionKind::RowLeft { .. } | RegionKind::RowRight { .. } => (mid, y1),
            _ => (y0, y1),
        };
        for (a, b) in key_runs(r.region.keys.iter()) {
            shapes.push((rect(a as f64, b as f64, ya, yb), region_colour(index)));
        }
    }
    shapes
}

fn draw_shapes(plot_ui: &mut PlotUi<'_>, shapes: Vec<(Vec<[f64; 2]>, Color32)>, alpha: u8) {
    for (points, colour) in shapes {
        let [r, g, b, _] = colour.to_array();
        plot_ui.polygon(
            Polygon::new("", PlotPoints::new(points))
                .fill_color(Color32::from_rgba_unmultiplied(r, g, b, alpha))
                .stroke(egui::Stroke::new(1.0, colour))
                .allow_hover(false),
        );
    }
}

fn heatmaps_ui(
    ui: &mut egui::Ui,
    sel: &Selection,
    matrix: &RoutingResult,
    route: &RouteResult,
    textures: &mut TextureCache,
    width: f32,
    commands: &mut Vec<Command>,
) {
    let sequential = sel.display.sequential_scale(&matrix.exact);
    let diverging = sel.display.diverging_scale(&matrix.error);
    colorbar_ui(ui, "q(j|i) and A:", &sequential);
    colorbar_ui(ui, "q − A:", &diverging);
    let no_rows: Vec<usize> = (0..matrix.exact.nrows())
        .filter(|&i| matrix.exact.row(i).iter().all(|&x| x == 0.0))
        .collect();
    let tokens = HeadTokens {
        head: &matrix.head,
        empty_rows: &no_rows,
    };
    let effective_title = format!("effective q(j|i) ({})", matrix.settings.variant);
    let [pa, pq, pe] = &matrix.pooled;
    let panels = [
        (
            effective_title.as_str(),
            &matrix.effective,
            pq,
            &sequential,
            "effective",
        ),
        ("exact A", &matrix.exact, pa, &sequential, "exact"),
        ("error q − A", &matrix.error, pe, &diverging, "error"),
    ];
    let spacing = ui.spacing().item_spacing.x;
    let cell = ((width - 2.0 * spacing) / 3.0).max(140.0);
    let ctx = ui.ctx().clone();
    let link_group = egui::Id::unique("routing_link");
    let i = route.row.query as f64;
    let cols = matrix.exact.ncols() as f64;
    // A one-row band is about one pixel tall; widen the overlay to a few rows so its colours
    // read (the row's exact values are in the plot below).
    let pad = (matrix.exact.nrows() / 80) as f64;
    ui.horizontal(|ui| {
        for (index, (title, m, pooled, scale, panel)) in panels.into_iter().enumerate() {
            let key = TextureKey {
                result_id: matrix.id,
                panel,
                display: sel.display.key(),
            };
            let texture = textures.get(&ctx, key, pooled, scale);
            let shapes = (index == 0).then(|| route_shapes(route, i - pad, i + 1.0 + pad));
            ui.allocate_ui(egui::vec2(cell, cell + 24.0), |ui| {
                ui.vertical(|ui| {
                    ui.set_width(cell);
                    let clicked = heatmap_overlay_ui(
                        ui,
                        &HeatmapArgs {
                            title,
                            matrix: Some(m),
                            dim: m.dim(),
                            pooled,
                            texture: &texture,
                            tokens: &tokens,
                            empty_rows: &no_rows,
                            link_group,
                            height: cell,
                        },
                        move |plot_ui| {
                            if let Some(shapes) = shapes {
                                draw_shapes(plot_ui, shapes, 230);
                                return;
                            }
                            // Outline of the routed row on the other panels.
                            plot_ui.line(
                                Line::new(
                                    "",
                                    PlotPoints::new(vec![
                                        [0.0, i],
                                        [cols, i],
                                        [cols, i + 1.0],
                                        [0.0, i + 1.0],
                                        [0.0, i],
                                    ]),
                                )
                                .color(Color32::WHITE)
                                .width(1.0)
                                .allow_hover(false),
                            );
                        },
                    );
                    if let Some((row, _)) = clicked {
                        commands.push(Command::SetRouting(RoutingSettings {
                            query: Some(row),
                            ..sel.routing
                        }));
                    }
                });
            });
        }
    });
    ui.weak(
        "Click a row to route that query. Ctrl+scroll zooms, drag pans (all panels move \
         together), double-click resets.",
    );
}

fn keys_text(keys: &KeySet) -> String {
    keys.to_string()
}

fn route_ui(ui: &mut egui::Ui, matrix: &RoutingResult, route: &RouteResult, width: f32) {
    let set = &route.head.input.set;
    let i = route.row.query;
    let exact_row: Option<Vec<f32>> = (same_head(&route.head, &matrix.head)
        && i < matrix.exact.nrows())
    .then(|| matrix.exact.row(i).to_vec());
    let direct_weight: f64 = route.row.direct.iter().map(|d| f64::from(d.weight)).sum();
    ui.horizontal_wrapped(|ui| {
        ui.heading(format!("Query {i} «{}»", set.query_token(i)));
        ui.label(format!(
            "{} · block {} · {} direct keys (weight {:.4}) · {} regions",
            route.settings.variant,
            route.block,
            route.row.direct.len(),
            direct_weight,
            route.row.regions.len()
        ));
    });
    if route.row.direct.is_empty() && route.row.regions.is_empty() {
        ui.colored_label(
            ui.visuals().warn_fg_color,
            "This query sees no key (C3): its row is all zeros.",
        );
    }
    let link = egui::Id::unique("routing_row_link");
    strip_ui(ui, route, exact_row.as_deref(), link, width);
    row_plot_ui(ui, route, exact_row.as_deref(), link, width);
    ui.separator();
    region_table_ui(ui, route, exact_row.as_deref());
}

/// The route strip: every key of the row coloured by its route (direct or region), each region
/// labelled with p(Ω|i).
fn strip_ui(
    ui: &mut egui::Ui,
    route: &RouteResult,
    exact_row: Option<&[f32]>,
    link: egui::Id,
    width: f32,
) {
    let seq_len = route.row.effective.len() as f64;
    let shapes = route_shapes(route, 0.0, 1.0);
    let mut labels: Vec<(f64, f64, String, Color32)> = Vec::new();
    for (index, r) in route.row.regions.iter().enumerate() {
        let keys = &r.region.keys;
        if keys.is_empty() {
            continue;
        }
        // Strided (column) regions interleave: too crowded to label; the table lists them.
        let Some(range) = keys.as_range() else {
            continue;
        };
        let x = (range.start + range.end) as f64 / 2.0;
        let y = match r.region.kind {
            RegionKind::ColumnAbove { .. } | RegionKind::ColumnBelow { .. } => 0.25,
            RegionKind::RowLeft { .. } | RegionKind::RowRight { .. } => 0.75,
            _ => 0.5,
        };
        labels.push((x, y, format!("{:.3}", r.weight), region_colour(index)));
    }
    if let Some((a, b)) = key_runs(route.row.direct.iter().map(|d| d.key))
        .iter()
        .max_by_key(|(a, b)| b - a)
    {
        let w: f32 = route.row.direct.iter().map(|d| d.weight).sum();
        labels.push((
            (*a + *b) as f64 / 2.0,
            0.5,
            format!("direct {w:.3}"),
            DIRECT_COLOUR,
        ));
    }
    ui.label("Route of every key (red: direct; colours: regions, labelled with p(Ω|i))");
    let response = Plot::new("routing_strip")
        .height(56.0)
        .width(width - 16.0)
        .y_axis_min_width(Y_AXIS_WIDTH)
        .y_axis_formatter(|_, _| String::new())
        .show_grid(false)
        .allow_scroll(false)
        .allow_zoom([true, false])
        .allow_drag([true, false])
        .link_axis(link, [true, false])
        .include_x(0.0)
        .include_x(seq_len)
        .include_y(0.0)
        .include_y(1.0)
        .set_margin_fraction(egui::vec2(0.0, 0.05))
        .show(ui, |plot_ui| {
            draw_shapes(plot_ui, shapes, 170);
            for (x, y, text, colour) in labels {
                plot_ui.text(
                    Text::new(
                        "",
                        PlotPoint::new(x, y),
                        egui::RichText::new(text)
                            .small()
                            .strong()
                            .color(text_on(colour)),
                    )
                    .allow_hover(false),
                );
            }
            plot_ui.pointer_coordinate()
        });
    if let Some(p) = response.inner
        && response.response.hovered()
        && p.x >= 0.0
    {
        let j = p.x.floor() as usize;
        if let Some(text) = key_route_text(route, exact_row, j) {
            response.response.on_hover_text_at_pointer(text);
        }
    }
}

/// Black or white, whichever reads better on `background`.
fn text_on(background: Color32) -> Color32 {
    let [r, g, b, _] = background.to_array();
    let luma = 0.299 * f32::from(r) + 0.587 * f32::from(g) + 0.114 * f32::from(b);
    if luma > 140.0 {
        Color32::BLACK
    } else {
        Color32::WHITE
    }
}

/// Hover text for key `j` of the routed row: token, route(s), q(j|i), exact A_ij.
fn key_route_text(route: &RouteResult, exact_row: Option<&[f32]>, j: usize) -> Option<String> {
    let q = route.row.effective.get(j)?;
    let set = &route.head.input.set;
    let mut text = format!("key {j} «{}»\nq(j|i) = {q:.6}", set.key_token(j));
    if let Some(a) = exact_row.and_then(|row| row.get(j)) {
        text.push_str(&format!("\nexact A_ij = {a:.6}"));
    }
    if let Some(d) = route.row.direct.iter().find(|d| d.key == j) {
        text.push_str(&format!(
            "\ndirect: logit {:.4}, p̃(j|i) = {:.6}",
            d.logit, d.weight
        ));
    }
    for r in &route.row.regions {
        let keys = &r.region.keys;
        if keys.contains(j) {
            let within = keys
                .iter()
                .position(|k| k == j)
                .and_then(|t| r.within.get(t))
                .copied()
                .unwrap_or(0.0);
            text.push_str(&format!(
                "\nregion {}: p(Ω|i) = {:.6}, p(j|Ω) = {within:.6}",
                r.region.kind, r.weight
            ));
        }
    }
    if !route.row.direct.iter().any(|d| d.key == j)
        && !route.row.regions.iter().any(|r| r.region.keys.contains(j))
    {
        text.push_str("\nnot visible to this query");
    }
    Some(text)
}

/// q(·|i) against the exact softmax row.
fn row_plot_ui(
    ui: &mut egui::Ui,
    route: &RouteResult,
    exact_row: Option<&[f32]>,
    link: egui::Id,
    width: f32,
) {
    let effective: Vec<[f64; 2]> = route
        .row
        .effective
        .iter()
        .enumerate()
        .map(|(j, &q)| [j as f64 + 0.5, f64::from(q)])
        .collect();
    let exact: Option<Vec<[f64; 2]>> = exact_row.map(|row| {
        row.iter()
            .enumerate()
            .map(|(j, &a)| [j as f64 + 0.5, f64::from(a)])
            .collect()
    });
    let seq_len = route.row.effective.len() as f64;
    let response = Plot::new("routing_row_plot")
        .set_margin_fraction(egui::vec2(0.0, 0.05))
        .height(180.0)
        .width(width - 16.0)
        .y_axis_min_width(Y_AXIS_WIDTH)
        .legend(Legend::default())
        .allow_scroll(false)
        .link_axis(link, [true, false])
        .include_x(0.0)
        .include_x(seq_len)
        .include_y(0.0)
        .x_axis_label("key j")
        .show(ui, |plot_ui| {
            if let Some(exact) = exact {
                plot_ui.line(
                    Line::new("exact softmax row A_i·", PlotPoints::new(exact))
                        .color(Color32::from_gray(170))
                        .width(2.0),
                );
            }
            plot_ui.line(
                Line::new(
                    format!("Combiner q(·|i) ({})", route.settings.variant),
                    PlotPoints::new(effective),
                )
                .color(Color32::from_rgb(242, 142, 43))
                .width(1.5),
            );
            plot_ui.pointer_coordinate()
        });
    if let Some(p) = response.inner
        && response.response.hovered()
        && p.x >= 0.0
    {
        let j = p.x.floor() as usize;
        if let Some(text) = key_route_text(route, exact_row, j) {
            response.response.on_hover_text_at_pointer(text);
        }
    }
}

/// The region table: direct set, every region, and the total of the joint softmax.
fn region_table_ui(ui: &mut egui::Ui, route: &RouteResult, exact_row: Option<&[f32]>) {
    let set = &route.head.input.set;
    let i = route.row.query;
    ui.strong(format!("Regions of query {i}"));
    let exact_mass = |keys: &mut dyn Iterator<Item = usize>| -> Option<f64> {
        exact_row.map(|row| {
            keys.map(|j| row.get(j).map_or(0.0, |&a| f64::from(a)))
                .sum()
        })
    };
    let swatch = |ui: &mut egui::Ui, colour: Color32| {
        let (rect, _) = ui.allocate_exact_size(egui::vec2(14.0, 14.0), egui::Sense::hover());
        ui.painter().rect_filled(rect, 2.0, colour);
    };
    let tokens_of = |keys: &mut dyn Iterator<Item = usize>| -> String {
        let mut shown: Vec<String> = Vec::new();
        let mut more = 0usize;
        for j in keys {
            if shown.len() < 12 {
                shown.push(format!("{j} «{}»", set.key_token(j)));
            } else {
                more += 1;
            }
        }
        if more > 0 {
            shown.push(format!("… {more} more"));
        }
        shown.join("\n")
    };
    egui::Grid::new("routing_region_table")
        .num_columns(7)
        .striped(true)
        .show(ui, |ui| {
            for head in [
                "",
                "route",
                "keys",
                "|Ω|",
                "summary logit",
                "weight",
                "exact mass",
            ] {
                ui.strong(head);
            }
            ui.end_row();
            let direct_weight: f64 = route.row.direct.iter().map(|d| f64::from(d.weight)).sum();
            swatch(ui, DIRECT_COLOUR);
            ui.label("direct Ω⁰")
                .on_hover_text("Direct keys: each enters the joint softmax with its own logit");
            let runs = key_runs(route.row.direct.iter().map(|d| d.key));
            let runs_text = runs
                .iter()
                .map(|&(a, b)| {
                    if b - a == 1 {
                        a.to_string()
                    } else {
                        format!("[{a}..{}]", b - 1)
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            ui.monospace(if runs_text.is_empty() {
                "∅".to_string()
            } else {
                runs_text
            })
            .on_hover_text(tokens_of(&mut route.row.direct.iter().map(|d| d.key)));
            ui.monospace(route.row.direct.len().to_string());
            ui.monospace("—");
            ui.monospace(format!("{direct_weight:.6}"))
                .on_hover_text("Σ_j p̃(j|i) over the direct keys");
            ui.monospace(
                exact_mass(&mut route.row.direct.iter().map(|d| d.key))
                    .map_or("—".into(), |m| format!("{m:.6}")),
            );
            ui.end_row();
            for (index, r) in route.row.regions.iter().enumerate() {
                swatch(ui, region_colour(index));
                ui.label(r.region.kind.to_string());
                ui.monospace(keys_text(&r.region.keys))
                    .on_hover_text(tokens_of(&mut r.region.keys.iter()));
                ui.monospace(r.region.keys.len().to_string());
                ui.monospace(format!("{:.4}", r.summary_logit));
                ui.monospace(format!("{:.6}", r.weight))
                    .on_hover_text("p(Ω|i): the region's weight in the joint softmax");
                ui.monospace(
                    exact_mass(&mut r.region.keys.iter())
                        .map_or("—".into(), |m| format!("{m:.6}")),
                )
                .on_hover_text("Σ_{j∈Ω} A_ij: what exact attention puts in this region");
                ui.end_row();
            }
        });
    ui.monospace(format!("Σ weights = {:.6}", route.total_weight()))
        .on_hover_text("Σ p̃(j|i) + Σ p(Ω|i): one joint softmax (eq. 9), 1 for a visible row");
}

/// The view's inspector: C4 metrics of the variant and the routed query's summary.
pub fn inspector_ui(ui: &mut egui::Ui, results: &Results) {
    let Some(matrix) = &results.routing.matrix else {
        ui.weak("No result yet.");
        return;
    };
    ui.heading(matrix.settings.variant.as_str());
    let set = &matrix.head.input.set;
    ui.weak(format!(
        "{} · head {} · {} · block {}",
        set.layer_label(matrix.head.layer),
        matrix.head.head,
        if matrix.head.causal {
            "causal"
        } else {
            "bidirectional"
        },
        matrix.block
    ));
    let m = &matrix.metrics;
    super::value_grid(ui, "routing_metrics_grid", true, |row| {
        row(
            "matrix rel. Frobenius",
            m.matrix_rel_fro
                .map_or_else(|| "n/a".to_string(), |e| e.to_string()),
        );
        row("output rel. error", m.output_rel.to_string());
        row(
            "matrix max abs",
            m.matrix_max_abs
                .map_or_else(|| "n/a".to_string(), |x| format!("{x:.3e}")),
        );
        row("output max abs", format!("{:.3e}", m.output_max_abs));
        row("mean row KL(A||q)", m.mean_row_kl.to_string());
        row("runtime", format!("{:.2} ms", matrix.method_secs * 1e3));
        row("cost", matrix.properties.cost.to_string());
    });
    if let Some(route) = results.routing.shown_route() {
        ui.separator();
        ui.strong(format!("Query {}", route.row.query));
        let largest = route
            .row
            .regions
            .iter()
            .max_by(|a, b| a.weight.total_cmp(&b.weight));
        ui.label(format!("direct keys: {}", route.row.direct.len()));
        ui.label(format!("regions: {}", route.row.regions.len()));
        if let Some(r) = largest {
            ui.label(format!(
                "largest region: {} (p = {:.4})",
                r.region.kind, r.weight
            ));
        }
    }
    for note in &matrix.notes {
        ui.weak(note);
    }
}
