//! The methods view: pick any method of [`MethodId::ALL`], set its parameters, and compare its
//! effective matrix Â with exact A (error heatmap, C4 metrics, properties, runtime).

use eframe::egui;

use super::decomposition::{HeadTokens, display_controls_ui};
use super::decomposition::{action_command, export_row_ui};
use super::error_label;
use crate::analysis::KlValue;
use crate::app::View;
use crate::app::heatmap_view::{HeatmapArgs, TextureCache, TextureKey, colorbar_ui, heatmap_ui};
use crate::app::jobs::MethodRun;
use crate::app::view_jobs::{BIDIRECTIONAL_ONLY, CompareAllResult, same_head};
use crate::app::{Command, Results, Selection};
use crate::attention::method::{KeyRow, Pooling, Projection};
use crate::attention::{FeatureMap, MethodId, MethodParams, Normalization};

/// Which parameters a method reads (by its SPEC id, so methods added later get controls as soon
/// as their id is listed here).
fn uses(method: MethodId, param: &str) -> bool {
    let id = method.as_str();
    match param {
        "bandwidth" => matches!(id, "band" | "fmm"),
        "rank" => id == "svd",
        "feature_maps" | "normalization" => matches!(id, "linear" | "fmm"),
        "weights" => id == "fmm",
        "num_features" => id == "performer",
        "num_landmarks" | "exact_pinv" => id == "nystrom",
        "proj_dim" | "projection" => id == "linformer",
        "block" | "pooling" => id.starts_with("combiner"),
        "key_row" => id == "combiner-axial",
        "seed" => matches!(id, "performer" | "linformer"),
        _ => false,
    }
}

/// Draws the methods view.
pub fn ui(
    ui: &mut egui::Ui,
    sel: &Selection,
    results: &Results,
    busy: bool,
    compare_busy: bool,
    textures: &mut TextureCache,
    commands: &mut Vec<Command>,
) {
    ui.horizontal(|ui| {
        let mut method = sel.method;
        egui::ComboBox::from_label("method")
            .selected_text(method.as_str())
            .show_ui(ui, |ui| {
                for &m in MethodId::ALL {
                    // Methods without a causal form are disabled while causal is on (SPEC §3).
                    let supported = !sel.causal || m.properties(&sel.params, 1).supports_causal;
                    if ui
                        .add_enabled(
                            supported,
                            egui::Button::selectable(method == m, m.as_str()),
                        )
                        .on_disabled_hover_text(BIDIRECTIONAL_ONLY)
                        .clicked()
                    {
                        method = m;
                    }
                }
            });
        if method != sel.method {
            commands.push(Command::SetMethod(method));
        }
        if busy {
            ui.spinner();
        }
        ui.separator();
        if ui
            .add_enabled(!compare_busy, egui::Button::new("Compare all"))
            .on_hover_text(
                "Run every method on the current input at matched parameters (Performer,                  Nyström, Linformer and SVD at the current rank) and tabulate the C4 errors",
            )
            .clicked()
        {
            commands.push(Command::CompareAll);
        }
        if compare_busy {
            ui.spinner();
        }
    });
    ui.horizontal(|ui| display_controls_ui(ui, sel.display, commands));
    params_ui(ui, sel, commands);
    if let Some(e) = &results.method_error {
        error_label(ui, e);
    }
    if let Some(e) = &results.compare_all_error {
        error_label(ui, e);
    }
    if let Some(table) = &results.compare_all {
        compare_all_ui(ui, sel, table);
    }
    ui.separator();
    let Some(run) = &results.method else {
        if busy {
            ui.spinner();
        }
        return;
    };
    export_row_ui(ui, View::Methods, commands);
    // Measured outside the scroll area: inside it, the width is last frame's content width.
    let width = ui.available_width();
    egui::ScrollArea::vertical()
        .id_salt("methods_grid")
        .auto_shrink(false)
        .show(ui, |ui| {
            heatmaps_ui(ui, sel, run, textures, width, commands)
        });
}

fn params_ui(ui: &mut egui::Ui, sel: &Selection, commands: &mut Vec<Command>) {
    let method = sel.method;
    let mut p: MethodParams = sel.params.clone();
    let max_len = sel.input.as_ref().map_or(64, |i| i.set.seq_len_kv().max(1));
    // One row per parameter (egui sliders do not wrap inside `horizontal_wrapped`).
    egui::Grid::new("method_params")
        .num_columns(2)
        .show(ui, |ui| {
            let row = |ui: &mut egui::Ui, name: &str, add: &mut dyn FnMut(&mut egui::Ui)| {
                ui.label(name);
                ui.horizontal(|ui| add(ui));
                ui.end_row();
            };
            if uses(method, "bandwidth") {
                row(ui, "bandwidth", &mut |ui| {
                    ui.add(egui::Slider::new(&mut p.bandwidth, 0..=max_len))
                        .on_hover_text("C2 bandwidth b; FMMformer diag_size = bandwidth + 1");
                });
            }
            if uses(method, "rank") {
                let max_rank = sel.max_rank();
                row(ui, "rank", &mut |ui| {
                    ui.add(egui::Slider::new(&mut p.rank, 1..=max_rank));
                });
            }
            if uses(method, "feature_maps") {
                row(ui, "feature map", &mut |ui| {
                    feature_maps_ui(ui, method, &mut p)
                });
            }
            if uses(method, "normalization") {
                row(ui, "normalization", &mut |ui| {
                    ui.selectable_value(&mut p.normalization, Normalization::Row, "row");
                    ui.selectable_value(&mut p.normalization, Normalization::None, "none")
                        .on_hover_text("LRA code: φ(Q)φ(K)^T/√d, rows do not sum to 1");
                });
            }
            if uses(method, "weights") {
                row(ui, "weights", &mut |ui| {
                    ui.add(egui::DragValue::new(&mut p.w1).speed(0.01).prefix("w1 "));
                    ui.add(egui::DragValue::new(&mut p.w2).speed(0.01).prefix("w2 "));
                    if ui
                        .button("Fit")
                        .on_hover_text("Least-squares (w1, w2) against exact A")
                        .clicked()
                    {
                        commands.push(Command::FitWeights);
                    }
                });
            }
            if uses(method, "num_features") {
                row(ui, "num_features", &mut |ui| {
                    ui.add(egui::Slider::new(&mut p.num_features, 1..=1024).logarithmic(true));
                });
            }
            if uses(method, "num_landmarks") {
                row(ui, "num_landmarks", &mut |ui| {
                    ui.add(egui::Slider::new(&mut p.num_landmarks, 1..=max_len));
                    if uses(method, "exact_pinv") {
                        ui.checkbox(&mut p.exact_pinv, "exact pinv");
                    }
                });
            }
            if uses(method, "proj_dim") {
                row(ui, "proj_dim", &mut |ui| {
                    ui.add(egui::Slider::new(&mut p.proj_dim, 1..=max_len));
                    if uses(method, "projection") {
                        ui.selectable_value(&mut p.projection, Projection::MeanPool, "mean-pool");
                        ui.selectable_value(&mut p.projection, Projection::Gaussian, "gaussian");
                    }
                });
            }
            if uses(method, "block") {
                row(ui, "block", &mut |ui| {
                    let mut automatic = p.block.is_none();
                    ui.checkbox(&mut automatic, "ceil(√L)");
                    if automatic {
                        p.block = None;
                    } else {
                        let mut block = p.block.unwrap_or(8);
                        ui.add(egui::Slider::new(&mut block, 1..=max_len));
                        p.block = Some(block);
                    }
                });
            }
            if uses(method, "pooling") {
                row(ui, "pooling", &mut |ui| {
                    ui.selectable_value(&mut p.pooling, Pooling::Max, "max");
                    ui.selectable_value(&mut p.pooling, Pooling::Mean, "mean");
                });
            }
            if uses(method, "key_row") {
                row(ui, "key row", &mut |ui| {
                    ui.selectable_value(&mut p.key_row, KeyRow::Wsum, "wsum");
                    ui.selectable_value(&mut p.key_row, KeyRow::None, "none");
                });
            }
            if uses(method, "seed") {
                row(ui, "seed", &mut |ui| {
                    ui.add(egui::DragValue::new(&mut p.seed));
                });
            }
        });
    if p != sel.params {
        commands.push(Command::SetParams(p));
    }
}

fn feature_maps_ui(ui: &mut egui::Ui, method: MethodId, p: &mut MethodParams) {
    if method.as_str() == "fmm" {
        // FMMformer blends 1–3 kernels.
        for &map in FeatureMap::ALL {
            let mut on = p.feature_maps.contains(&map);
            if ui.checkbox(&mut on, map.as_str()).changed() {
                if on {
                    p.feature_maps.push(map);
                    p.feature_maps
                        .sort_by_key(|m| FeatureMap::ALL.iter().position(|x| x == m));
                } else if p.feature_maps.len() > 1 {
                    p.feature_maps.retain(|m| *m != map);
                }
            }
        }
    } else {
        let mut first = p.feature_maps.first().copied().unwrap_or(FeatureMap::Elu);
        for &map in FeatureMap::ALL {
            ui.selectable_value(&mut first, map, map.as_str());
        }
        if p.feature_maps.first() != Some(&first) {
            p.feature_maps = vec![first];
        }
    }
}

fn heatmaps_ui(
    ui: &mut egui::Ui,
    sel: &Selection,
    run: &MethodRun,
    textures: &mut TextureCache,
    width: f32,
    commands: &mut Vec<Command>,
) {
    let (Some(exact), [Some(pa), Some(pb), Some(pe)]) = (&run.exact, &run.pooled) else {
        if let [Some(pooled), ..] = &run.pooled {
            pooled_exact_ui(ui, sel, run, pooled, textures, width, commands);
        }
        ui.weak("The matrices Â and Â − A are not materialised (C8 budget); see the notes.");
        return;
    };
    let (Some(approx), Some(error)) = (&run.approx, &run.error) else {
        return;
    };
    let sequential = sel.display.sequential_scale(exact);
    let diverging = sel.display.diverging_scale(error);
    colorbar_ui(ui, "A and Â:", &sequential);
    colorbar_ui(ui, "Â − A:", &diverging);
    let tokens = HeadTokens {
        head: &run.head,
        empty_rows: &run.empty_rows,
    };
    let approx_title = format!("Â ({})", run.method);
    let panels = [
        ("exact A", exact, pa, &sequential, "A"),
        (approx_title.as_str(), approx, pb, &sequential, "approx"),
        ("error Â − A", error, pe, &diverging, "error"),
    ];
    let spacing = ui.spacing().item_spacing.x;
    let cell = ((width - 2.0 * spacing) / 3.0).max(140.0);
    let ctx = ui.ctx().clone();
    let link_group = egui::Id::unique("methods_link");
    ui.horizontal(|ui| {
        for (title, matrix, pooled, scale, panel) in panels {
            let key = TextureKey {
                result_id: run.id,
                panel,
                display: sel.display.key(),
            };
            let texture = textures.get(&ctx, key, pooled, scale);
            ui.allocate_ui(egui::vec2(cell, cell + 24.0), |ui| {
                ui.vertical(|ui| {
                    ui.set_width(cell);
                    let action = heatmap_ui(
                        ui,
                        &HeatmapArgs {
                            title,
                            matrix: Some(matrix),
                            dim: matrix.dim(),
                            pooled,
                            texture: &texture,
                            tokens: &tokens,
                            empty_rows: tokens.empty_rows,
                            link_group,
                            height: cell,
                        },
                    );
                    if let Some(action) = action {
                        commands.push(action_command(View::Methods, panel, action));
                    }
                });
            });
        }
    });
}

/// Exact A of a very long input, pooled from row tiles (E15); Â is not materialised.
fn pooled_exact_ui(
    ui: &mut egui::Ui,
    sel: &Selection,
    run: &MethodRun,
    pooled: &crate::render::Pooled,
    textures: &mut TextureCache,
    width: f32,
    commands: &mut Vec<Command>,
) {
    let scale = sel.display.sequential_scale(&pooled.data);
    colorbar_ui(ui, "A (pooled):", &scale);
    let tokens = HeadTokens {
        head: &run.head,
        empty_rows: &run.empty_rows,
    };
    let key = TextureKey {
        result_id: run.id,
        panel: "A",
        display: sel.display.key(),
    };
    let ctx = ui.ctx().clone();
    let texture = textures.get(&ctx, key, pooled, &scale);
    let cell = (width / 2.0).max(160.0);
    let dim = (
        run.head.input.set.seq_len_q(),
        run.head.input.set.seq_len_kv(),
    );
    ui.allocate_ui(egui::vec2(cell, cell + 24.0), |ui| {
        ui.vertical(|ui| {
            ui.set_width(cell);
            let action = heatmap_ui(
                ui,
                &HeatmapArgs {
                    title: "exact A",
                    matrix: None,
                    dim,
                    pooled,
                    texture: &texture,
                    tokens: &tokens,
                    empty_rows: &run.empty_rows,
                    link_group: egui::Id::unique("methods_link"),
                    height: cell,
                },
            );
            if let Some(action) = action {
                commands.push(action_command(View::Methods, "A", action));
            }
        });
    });
}

/// The view's inspector (right-hand panel): metrics of the last good result.
pub fn inspector_ui(ui: &mut egui::Ui, results: &Results) {
    if let Some(run) = &results.method {
        metrics_ui(ui, run);
    } else {
        ui.weak("No result yet.");
    }
}

fn metrics_ui(ui: &mut egui::Ui, run: &MethodRun) {
    ui.heading(format!("{}", run.method));
    let set = &run.head.input.set;
    ui.weak(format!(
        "{} · head {} · {}",
        set.layer_label(run.head.layer),
        run.head.head,
        if run.head.causal {
            "causal"
        } else {
            "bidirectional"
        }
    ));
    let m = &run.metrics;
    let opt = |x: Option<String>| x.unwrap_or_else(|| "n/a (matrix not materialised)".into());
    super::value_grid(ui, "method_metrics_grid", true, |row| {
        row(
            "matrix rel. Frobenius",
            opt(m.matrix_rel_fro.map(|e| e.to_string())),
        );
        row("output rel. error", m.output_rel.to_string());
        row(
            "matrix max abs",
            opt(m.matrix_max_abs.map(|x| format!("{x:.3e}"))),
        );
        row("output max abs", format!("{:.3e}", m.output_max_abs));
        row("mean row KL(A||Â)", m.mean_row_kl.to_string());
        row("runtime", format!("{:.2} ms", run.method_secs * 1e3));
    });
    ui.separator();
    ui.strong("Properties");
    let p = &run.properties;
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    super::value_grid(ui, "method_properties_grid", false, |row| {
        row("rank bound", p.rank_note.clone());
        row("non-negative", yes_no(p.non_negative).into());
        row("rows sum to 1", yes_no(p.rows_sum_to_one).into());
        row("causal support", yes_no(p.supports_causal).into());
        row("bidirectional", yes_no(p.supports_bidirectional).into());
        row("cost", p.cost.into());
    });
    if run.method.as_str() == "fmm" {
        ui.weak(format!(
            "w1 = {:.4}, w2 = {:.4}",
            run.params.w1, run.params.w2
        ));
    }
    for note in &run.notes {
        ui.weak(note);
    }
}

/// `text` cut to `max_chars` characters (with "…").
fn short(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(max_chars.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// The "Compare all" table: every method at matched parameters on the current input.
fn compare_all_ui(ui: &mut egui::Ui, sel: &Selection, table: &CompareAllResult) {
    let current = sel
        .head_selection()
        .is_some_and(|h| same_head(&h, &table.head))
        && table.rank == sel.params.rank;
    egui::CollapsingHeader::new(format!(
        "Compare all methods ({}, rank {})",
        table.rows.len(),
        table.rank
    ))
    .id_salt("compare_all_header")
    .default_open(true)
    .show(ui, |ui| {
        if !current {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                "computed for an earlier selection; press \"Compare all\" again",
            );
        }
        egui::ScrollArea::horizontal()
            .id_salt("compare_all_scroll")
            .show(ui, |ui| {
                egui::Grid::new("compare_all_table")
                    .num_columns(9)
                    .striped(true)
                    .show(ui, |ui| {
                        for h in [
                            "method",
                            "matrix rel. Fro",
                            "output rel.",
                            "max abs",
                            "mean row KL",
                            "rank bound",
                            "non-neg.",
                            "rows sum 1",
                            "runtime",
                        ] {
                            ui.strong(h);
                        }
                        ui.end_row();
                        let yes_no = |b: bool| if b { "yes" } else { "no" };
                        for row in &table.rows {
                            ui.monospace(row.method.as_str());
                            match &row.outcome {
                                Ok(run) => {
                                    let m = &run.metrics;
                                    ui.monospace(
                                        m.matrix_rel_fro
                                            .map_or_else(|| "n/a".into(), |e| e.to_string()),
                                    );
                                    ui.monospace(m.output_rel.to_string());
                                    ui.monospace(
                                        m.matrix_max_abs
                                            .map_or_else(|| "n/a".into(), |x| format!("{x:.2e}")),
                                    );
                                    match &m.mean_row_kl {
                                        KlValue::Defined(kl) => {
                                            ui.monospace(format!("{kl:.6}"));
                                        }
                                        KlValue::NotApplicable(why) => {
                                            ui.monospace("n/a").on_hover_text(why);
                                        }
                                    }
                                    ui.label(short(&run.properties.rank_note, 28))
                                        .on_hover_text(&run.properties.rank_note);
                                    ui.label(yes_no(run.properties.non_negative));
                                    ui.label(yes_no(run.properties.rows_sum_to_one));
                                    ui.monospace(format!("{:.2} ms", run.method_secs * 1e3));
                                }
                                Err(e) => {
                                    ui.weak(e.as_str());
                                    for _ in 0..7 {
                                        ui.weak("");
                                    }
                                }
                            }
                            ui.end_row();
                        }
                    });
            });
    });
}
