//! The spectrum view (issue 4, SPEC §6.5): singular values of A and of the far field (log
//! scale), captured energy, the Eckart–Young error-vs-rank curve with each low-rank method's
//! achieved error at its rank (exact results drawn at [`EXACT_FLOOR`] and labelled "exact",
//! E11 b), a rank slider, and the optimal band + low-rank split against the fixed split with its
//! monotone iteration curve ("Optimal split", computed on the worker).

use eframe::egui;
use egui::Color32;
use egui_plot::{
    GridMark, Legend, Line, MarkerShape, Plot, PlotPoint, PlotPoints, Points, Text, VLine,
};

use super::error_label;
use crate::analysis::spectrum::{EXACT_FLOOR, RankPoint};
use crate::app::view_jobs::{OPTIMAL_MAX_ITERS, same_head};
use crate::app::{Command, Results, Selection};
use crate::attention::MethodId;

/// Smallest value drawn on the log axes (singular values below it are clipped to it).
const LOG_FLOOR: f64 = 1e-12;

/// Colour of a method's point (stable per method).
fn method_colour(method: MethodId) -> Color32 {
    match method {
        MethodId::Linear => Color32::from_rgb(78, 121, 167),
        MethodId::Performer => Color32::from_rgb(242, 142, 43),
        MethodId::Nystrom => Color32::from_rgb(89, 161, 79),
        MethodId::Linformer => Color32::from_rgb(176, 122, 161),
        MethodId::Svd => Color32::from_rgb(225, 87, 89),
        _ => Color32::GRAY,
    }
}

fn log10(x: f64) -> f64 {
    x.max(LOG_FLOOR).log10()
}

/// Axis labels for a log10-transformed axis: `1e-3`, and `3e-2` between decades.
fn log_axis_label(mark: GridMark, _range: &std::ops::RangeInclusive<f64>) -> String {
    let v = 10f64.powf(mark.value);
    if (mark.value - mark.value.round()).abs() < 1e-9 {
        format!("1e{}", mark.value.round() as i64)
    } else {
        format!("{v:.0e}")
    }
}

/// Draws the spectrum view.
pub fn ui(
    ui: &mut egui::Ui,
    sel: &Selection,
    results: &Results,
    busy: bool,
    optimal_busy: bool,
    commands: &mut Vec<Command>,
) {
    controls_ui(ui, sel, busy, optimal_busy, commands);
    let r = &results.spectrum;
    if let Some(e) = &r.error {
        error_label(ui, e);
    }
    if let Some(e) = &r.optimal_error {
        error_label(ui, e);
    }
    ui.separator();
    let Some(spectrum) = &r.spectrum else {
        if busy {
            ui.spinner();
        } else {
            ui.weak("Load an input to see its spectrum.");
        }
        return;
    };
    let width = ui.available_width();
    let half = ((width - ui.spacing().item_spacing.x) / 2.0 - 8.0).max(200.0);
    let plot_height = 260.0;
    egui::ScrollArea::vertical()
        .id_salt("spectrum_scroll")
        .auto_shrink(false)
        .show(ui, |ui| {
            let s = &spectrum.spectrum;
            ui.horizontal(|ui| {
                ui.vertical(|ui| {
                    ui.set_width(half);
                    ui.strong("singular values (log scale)");
                    Plot::new("spectrum_singular_values")
                        .height(plot_height)
                        .width(half)
                        .legend(Legend::default())
                        .allow_scroll(false)
                        .x_axis_label("index t")
                        .y_axis_formatter(log_axis_label)
                        .show(ui, |plot_ui| {
                            let pts = |sv: &[f64]| -> Vec<[f64; 2]> {
                                sv.iter()
                                    .enumerate()
                                    .map(|(t, &x)| [t as f64, log10(x)])
                                    .collect()
                            };
                            plot_ui.line(
                                Line::new("σ(A)", PlotPoints::new(pts(&s.singular_values)))
                                    .color(Color32::from_rgb(78, 121, 167))
                                    .width(2.0),
                            );
                            plot_ui.line(
                                Line::new(
                                    format!("σ(far field), b = {}", s.bandwidth),
                                    PlotPoints::new(pts(&s.far_singular_values)),
                                )
                                .color(Color32::from_rgb(242, 142, 43))
                                .width(2.0),
                            );
                            plot_ui.vline(
                                VLine::new("", sel.params.rank as f64)
                                    .color(Color32::from_gray(140)),
                            );
                        });
                });
                ui.vertical(|ui| {
                    ui.set_width(half);
                    ui.strong("captured energy Σ_{t<r} σ_t² / Σ σ_t²");
                    Plot::new("spectrum_captured_energy")
                        .height(plot_height)
                        .width(half)
                        .legend(Legend::default().position(egui_plot::Corner::RightBottom))
                        .allow_scroll(false)
                        .include_y(0.0)
                        .include_y(1.0)
                        .x_axis_label("rank r")
                        .show(ui, |plot_ui| {
                            let pts = |e: &[f64]| -> Vec<[f64; 2]> {
                                e.iter().enumerate().map(|(r, &x)| [r as f64, x]).collect()
                            };
                            plot_ui.line(
                                Line::new("A", PlotPoints::new(pts(&s.captured_energy)))
                                    .color(Color32::from_rgb(78, 121, 167))
                                    .width(2.0),
                            );
                            plot_ui.line(
                                Line::new(
                                    "far field",
                                    PlotPoints::new(pts(&s.far_captured_energy)),
                                )
                                .color(Color32::from_rgb(242, 142, 43))
                                .width(2.0),
                            );
                            plot_ui.vline(
                                VLine::new("", sel.params.rank as f64)
                                    .color(Color32::from_gray(140)),
                            );
                        });
                });
            });
            ui.horizontal(|ui| {
                ui.vertical(|ui| {
                    ui.set_width(half);
                    eckart_young_ui(ui, sel, results, half, plot_height);
                });
                ui.vertical(|ui| {
                    ui.set_width(half);
                    optimal_ui(ui, sel, results, half, plot_height);
                });
            });
            ui.separator();
            points_table_ui(ui, sel, results);
        });
}

fn controls_ui(
    ui: &mut egui::Ui,
    sel: &Selection,
    busy: bool,
    optimal_busy: bool,
    commands: &mut Vec<Command>,
) {
    ui.horizontal(|ui| {
        let max_bandwidth = sel.input.as_ref().map_or(64, |i| i.set.seq_len_kv().max(1));
        let mut bandwidth = sel.params.bandwidth;
        if ui
            .add(egui::Slider::new(&mut bandwidth, 0..=max_bandwidth).text("bandwidth"))
            .on_hover_text(
                "Far field F = A − band_b(A). C2: bidirectional keeps |i' − j| ≤ b, causal \
                 keeps i' − b ≤ j ≤ i'. FMMformer diag_size = bandwidth + 1.",
            )
            .changed()
        {
            commands.push(Command::SetBandwidth(bandwidth));
        }
        let mut rank = sel.params.rank;
        if ui
            .add(egui::Slider::new(&mut rank, 1..=sel.max_rank()).text("rank"))
            .on_hover_text(
                "Matched rank r: Performer num_features, Nyström num_landmarks, Linformer \
                 proj_dim and SVD rank are set to r; the split uses rank r.",
            )
            .changed()
        {
            commands.push(Command::SetRank(rank));
        }
        if busy {
            ui.spinner();
        }
        ui.separator();
        if ui
            .add_enabled(!optimal_busy, egui::Button::new("Optimal split"))
            .on_hover_text(format!(
                "Best band + rank-r split by alternating projections (L ← SVD_r(A − D), \
                 D ← band(A − L)), up to {OPTIMAL_MAX_ITERS} iterations, against the fixed \
                 split band_b(A) + SVD_r(F)"
            ))
            .clicked()
        {
            commands.push(Command::RunOptimalSplit);
        }
        if optimal_busy {
            ui.spinner();
        }
    });
}

fn eckart_young_ui(ui: &mut egui::Ui, sel: &Selection, results: &Results, width: f32, height: f32) {
    let Some(spectrum) = &results.spectrum.spectrum else {
        return;
    };
    let curve = &spectrum.spectrum.eckart_young;
    ui.strong("Eckart–Young: best rank-r error ‖A_r − A‖_F / ‖A‖_F, with methods at their rank");
    let points = results
        .spectrum
        .points
        .as_ref()
        .filter(|p| same_head(&p.head, &spectrum.head));
    // Start zoomed on the ranks that matter (the full curve is one double-click away).
    let ok_points: Vec<&RankPoint> = points
        .iter()
        .flat_map(|p| p.points.iter())
        .filter_map(|(_, o)| o.as_ref().ok().and_then(Option::as_ref))
        .collect();
    let max_point_rank = ok_points.iter().map(|p| p.rank).max().unwrap_or(0);
    let last_rank = curve.len().saturating_sub(1);
    let x_max = (2 * max_point_rank)
        .max(4 * sel.params.rank)
        .max(16)
        .min(last_rank.max(1)) as f64;
    let y_min = ok_points
        .iter()
        .filter_map(|p| p.plot_value())
        .chain(curve.get(x_max as usize).copied())
        .fold(1.0_f64, f64::min)
        .max(EXACT_FLOOR)
        .log10();
    // The id carries the zoom so the default bounds apply again when the points move.
    Plot::new(("spectrum_eckart_young", x_max as u64))
        .height(height)
        .width(width)
        .legend(Legend::default().position(egui_plot::Corner::LeftBottom))
        .allow_scroll(false)
        .x_axis_label("rank r")
        .y_axis_formatter(log_axis_label)
        .default_x_bounds(0.0, x_max * 1.05)
        .default_y_bounds(y_min - 0.3, 0.3)
        .show(ui, |plot_ui| {
            let line: Vec<[f64; 2]> = curve
                .iter()
                .enumerate()
                .map(|(r, &e)| [r as f64, log10(e.max(EXACT_FLOOR))])
                .collect();
            plot_ui.line(
                Line::new("Eckart–Young bound", PlotPoints::new(line))
                    .color(Color32::from_gray(200))
                    .width(2.0),
            );
            plot_ui.vline(VLine::new("", sel.params.rank as f64).color(Color32::from_gray(120)));
            let Some(points) = points else {
                return;
            };
            for (method, outcome) in &points.points {
                let Ok(Some(p)) = outcome else {
                    continue;
                };
                let Some(value) = p.plot_value() else {
                    continue;
                };
                let colour = method_colour(*method);
                let at = [p.rank as f64, value.log10()];
                plot_ui.points(
                    Points::new(method.as_str(), PlotPoints::new(vec![at]))
                        .shape(if p.exact {
                            MarkerShape::Diamond
                        } else {
                            MarkerShape::Circle
                        })
                        .radius(5.0)
                        .filled(true)
                        .color(colour),
                );
                let label = if p.exact {
                    format!("{} exact", method.as_str())
                } else {
                    method.as_str().to_string()
                };
                // Unnamed, so the legend keeps the point's colour.
                plot_ui.text(
                    Text::new(
                        "",
                        PlotPoint::new(at[0] + x_max * 0.015, at[1]),
                        egui::RichText::new(label).small().color(colour),
                    )
                    .anchor(egui::Align2::LEFT_CENTER)
                    .allow_hover(false),
                );
            }
        });
}

fn optimal_ui(ui: &mut egui::Ui, sel: &Selection, results: &Results, width: f32, height: f32) {
    ui.strong("Optimal vs fixed band + low-rank split");
    let Some(o) = &results.spectrum.optimal else {
        ui.weak(format!(
            "Press \"Optimal split\" to run the alternating projections at b = {}, r = {}.",
            sel.params.bandwidth, sel.params.rank
        ));
        return;
    };
    let split = &o.split;
    let norm = if split.norm > 0.0 { split.norm } else { 1.0 };
    ui.label(format!(
        "b = {}, r = {}: fixed {:.6} → optimal {:.6} ({} iterations{})",
        o.bandwidth,
        split.rank,
        split.fixed_split_error / norm,
        split.error / norm,
        split.iterations,
        if split.converged { ", converged" } else { "" }
    ));
    let current = sel.head_selection().is_some_and(|h| same_head(&h, &o.head))
        && o.bandwidth == sel.params.bandwidth
        && o.rank == sel.params.rank;
    if !current {
        ui.colored_label(
            ui.visuals().warn_fg_color,
            "computed for an earlier selection; press \"Optimal split\" again",
        );
    }
    let curve: Vec<[f64; 2]> = split
        .relative_curve()
        .iter()
        .enumerate()
        .map(|(t, &e)| [t as f64, e])
        .collect();
    let fixed = split.fixed_split_error / norm;
    let iterations = split.error_curve.len().saturating_sub(1).max(1) as f64;
    Plot::new("spectrum_optimal_split")
        .height(height - 20.0)
        .width(width)
        .legend(Legend::default().position(egui_plot::Corner::RightBottom))
        .allow_scroll(false)
        .x_axis_label("iteration")
        .include_y(0.0)
        .show(ui, |plot_ui| {
            plot_ui.line(
                Line::new(
                    "fixed split band_b(A) + SVD_r(F)",
                    PlotPoints::new(vec![[0.0, fixed], [iterations, fixed]]),
                )
                .color(Color32::from_gray(160))
                .style(egui_plot::LineStyle::dashed_loose()),
            );
            plot_ui.line(
                Line::new("alternating projections", PlotPoints::new(curve))
                    .color(Color32::from_rgb(89, 161, 79))
                    .width(2.0),
            );
        });
}

fn points_table_ui(ui: &mut egui::Ui, sel: &Selection, results: &Results) {
    let (Some(spectrum), Some(points)) = (&results.spectrum.spectrum, &results.spectrum.points)
    else {
        return;
    };
    let curve = &spectrum.spectrum.eckart_young;
    ui.strong(format!("Methods at matched rank {}", points.rank));
    if points.rank != sel.params.rank {
        ui.weak("(recomputing for the new rank…)");
    }
    egui::Grid::new("spectrum_points_table")
        .num_columns(5)
        .striped(true)
        .show(ui, |ui| {
            for h in [
                "method",
                "rank",
                "error ‖Â − A‖/‖A‖",
                "Eckart–Young bound",
                "ratio",
            ] {
                ui.strong(h);
            }
            ui.end_row();
            for (method, outcome) in &points.points {
                ui.colored_label(method_colour(*method), method.as_str());
                match outcome {
                    Ok(Some(p)) => {
                        let bound = curve.get(p.rank).copied();
                        ui.monospace(p.rank.to_string());
                        ui.monospace(if p.exact {
                            format!("{} (exact)", p.error)
                        } else {
                            p.error.to_string()
                        });
                        ui.monospace(bound.map_or("—".into(), |b| format!("{b:.6}")));
                        let ratio = bound
                            .filter(|b| *b > EXACT_FLOOR)
                            .map(|b| format!("{:.2}×", p.error.value() / b));
                        ui.monospace(ratio.unwrap_or_else(|| "—".into()));
                    }
                    Ok(None) => {
                        ui.weak("—");
                        ui.weak("no rank bound or no matrix");
                        ui.weak("");
                        ui.weak("");
                    }
                    Err(e) => {
                        ui.weak("—");
                        ui.weak(format!("n/a: {e}"));
                        ui.weak("");
                        ui.weak("");
                    }
                }
                ui.end_row();
            }
        });
}

/// The view's inspector: spectrum summary at the current rank.
pub fn inspector_ui(ui: &mut egui::Ui, sel: &Selection, results: &Results) {
    let Some(spectrum) = &results.spectrum.spectrum else {
        ui.weak("No result yet.");
        return;
    };
    let s = &spectrum.spectrum;
    let set = &spectrum.head.input.set;
    ui.heading("Spectrum");
    ui.weak(format!(
        "{} · head {} · {}",
        set.layer_label(spectrum.head.layer),
        spectrum.head.head,
        if spectrum.head.causal {
            "causal"
        } else {
            "bidirectional"
        }
    ));
    let r = sel.params.rank;
    let sigma_max = s.singular_values.first().copied().unwrap_or(0.0);
    let numerical_rank = s
        .singular_values
        .iter()
        .filter(|&&x| x > sigma_max * 1e-6)
        .count();
    egui::Grid::new("spectrum_summary_grid")
        .num_columns(2)
        .striped(true)
        .show(ui, |ui| {
            let mut row = |name: &str, value: String, help: &str| {
                ui.label(name).on_hover_text(help);
                ui.monospace(value);
                ui.end_row();
            };
            row(
                "σ₁(A)",
                format!("{sigma_max:.4e}"),
                "largest singular value",
            );
            row(
                "numerical rank",
                numerical_rank.to_string(),
                "number of σ > 1e-6·σ₁",
            );
            row(
                &format!("energy at r = {r}"),
                s.captured_energy
                    .get(r)
                    .map_or("—".into(), |e| format!("{e:.6}")),
                "Σ_{t<r} σ_t² / Σ σ_t² of A",
            );
            row(
                &format!("far energy at r = {r}"),
                s.far_captured_energy
                    .get(r)
                    .map_or("—".into(), |e| format!("{e:.6}")),
                "the same for the far field",
            );
            row(
                &format!("Eckart–Young at r = {r}"),
                s.eckart_young
                    .get(r)
                    .map_or("—".into(), |e| format!("{e:.6}")),
                "relative error of the best rank-r approximation",
            );
            row(
                "compute time",
                format!("{:.1} ms", spectrum.elapsed_secs * 1e3),
                "attention + two SVDs on the worker thread",
            );
        });
    if let Some(o) = &results.spectrum.optimal {
        ui.separator();
        ui.strong("Optimal split");
        for note in &o.split.notes {
            ui.weak(note);
        }
        ui.label(format!("{:.1} ms", o.elapsed_secs * 1e3));
    }
}
