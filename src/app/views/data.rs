//! The data panel: bundled samples, File → Open, the synthetic generator, layer / head /
//! causality, the scale, the token list, loader warnings and the non-finite report (C6).

use eframe::egui;

use super::error_label;
use crate::app::jobs::InputSource;
use crate::app::{Command, Results, Selection};
use crate::data::{SAMPLES, SynthKind, SynthSpec};

/// Settings of the synthetic generator before "Generate" is pressed.
#[derive(Debug, Clone)]
pub struct DataViewState {
    /// The generator settings.
    pub synth: SynthSpec,
}

impl Default for DataViewState {
    fn default() -> Self {
        Self {
            synth: SynthSpec {
                kind: SynthKind::LocalGlobal,
                seq_len: 256,
                ..SynthSpec::default()
            },
        }
    }
}

/// Largest synthetic length offered by the panel. Above the C8 budget the decomposition runs in
/// row tiles and shows pooled images (E15: L = 16,385 works, with progress and Cancel).
const MAX_SYNTH_SEQ_LEN: usize = 32768;

/// Draws the data panel.
pub fn ui(
    ui: &mut egui::Ui,
    sel: &Selection,
    results: &Results,
    loading: bool,
    state: &mut DataViewState,
    commands: &mut Vec<Command>,
) {
    egui::ScrollArea::vertical()
        .id_salt("data_panel_scroll")
        .show(ui, |ui| {
            ui.heading("Data");
            source_ui(ui, sel, loading, state, commands);
            if let Some(e) = &results.load_error {
                error_label(ui, e);
            }
            ui.separator();
            selection_ui(ui, sel, commands);
            ui.separator();
            report_ui(ui, sel);
        });
}

fn source_ui(
    ui: &mut egui::Ui,
    sel: &Selection,
    loading: bool,
    state: &mut DataViewState,
    commands: &mut Vec<Command>,
) {
    let current = sel.input.as_ref().map(|i| &i.source);
    ui.horizontal(|ui| {
        let selected = match current {
            Some(InputSource::Sample(name)) => name.clone(),
            _ => "—".to_string(),
        };
        egui::ComboBox::from_label("sample")
            .selected_text(selected)
            .show_ui(ui, |ui| {
                for sample in SAMPLES {
                    let is_current =
                        matches!(current, Some(InputSource::Sample(n)) if n == sample.name);
                    if ui.selectable_label(is_current, sample.name).clicked() {
                        commands.push(Command::Open(InputSource::Sample(sample.name.into())));
                    }
                }
            });
        if loading {
            ui.spinner();
        }
    });
    if ui
        .button("Open file…")
        .on_hover_text(".npz, three .npy, .safetensors or CSV (File -> Open)")
        .clicked()
    {
        commands.push(Command::PickFile);
    }
    egui::CollapsingHeader::new("Synthetic input")
        .default_open(false)
        .show(ui, |ui| {
            let synth = &mut state.synth;
            egui::ComboBox::from_label("kind")
                .selected_text(synth.kind.id())
                .show_ui(ui, |ui| {
                    for kind in SynthKind::ALL {
                        ui.selectable_value(&mut synth.kind, kind, kind.id());
                    }
                });
            ui.add(
                egui::Slider::new(&mut synth.seq_len, 1..=MAX_SYNTH_SEQ_LEN)
                    .logarithmic(true)
                    .text("L"),
            );
            ui.add(egui::Slider::new(&mut synth.head_dim, 1..=256).text("head_dim"));
            ui.add(egui::Slider::new(&mut synth.num_heads, 1..=16).text("heads"));
            ui.add(egui::DragValue::new(&mut synth.seed).prefix("seed "));
            if ui.button("Generate").clicked() {
                commands.push(Command::Open(InputSource::Synthetic(*synth)));
            }
        });
}

fn selection_ui(ui: &mut egui::Ui, sel: &Selection, commands: &mut Vec<Command>) {
    let Some(input) = &sel.input else {
        ui.weak("No input loaded.");
        return;
    };
    let set = &input.set;
    ui.label(egui::RichText::new(&set.source).monospace())
        .on_hover_text(&set.interpretation);
    ui.weak(format!(
        "{} layers · {} heads · Lq {} · Lk {} · head_dim {}",
        set.num_layers(),
        set.num_heads(),
        set.seq_len_q(),
        set.seq_len_kv(),
        set.head_dim()
    ));
    let mut layer = sel.layer;
    egui::ComboBox::from_label("layer")
        .selected_text(format!("{} ({})", layer, set.layer_label(layer)))
        .show_ui(ui, |ui| {
            for l in 0..set.num_layers() {
                ui.selectable_value(&mut layer, l, format!("{l} ({})", set.layer_label(l)));
            }
        });
    if layer != sel.layer {
        commands.push(Command::SetLayer(layer));
    }
    let mut head = sel.head;
    let max_head = set.num_heads().saturating_sub(1);
    if ui
        .add(egui::Slider::new(&mut head, 0..=max_head).text("head"))
        .changed()
    {
        commands.push(Command::SetHead(head));
    }
    let mut causal = sel.causal;
    if ui
        .checkbox(&mut causal, "causal")
        .on_hover_text("C1: query i sees key j iff j ≤ i + (Lk − Lq) (bottom-right aligned)")
        .changed()
    {
        commands.push(Command::SetCausal(causal));
    }
    let scale = set.meta.scale.map_or_else(
        || format!("1/√{} (default, C5)", set.head_dim()),
        |s| format!("{s:.6} (sidecar)"),
    );
    ui.label(format!("scale: {scale}"));
}

fn report_ui(ui: &mut egui::Ui, sel: &Selection) {
    let Some(input) = &sel.input else {
        return;
    };
    let set = &input.set;
    if set.non_finite_count > 0 {
        ui.colored_label(
            ui.visuals().warn_fg_color,
            format!("{} non-finite input values (C6):", set.non_finite_count),
        );
        for nf in set.non_finite.iter().take(10) {
            ui.weak(nf.to_string());
        }
    } else {
        ui.weak("All input values are finite.");
    }
    for w in &set.warnings {
        ui.colored_label(ui.visuals().warn_fg_color, w);
    }
    ui.separator();
    egui::CollapsingHeader::new(format!("Tokens ({})", set.seq_len_q()))
        .default_open(true)
        .show(ui, |ui| {
            let row_height = ui.text_style_height(&egui::TextStyle::Monospace);
            egui::ScrollArea::vertical()
                .id_salt("token_list")
                .max_height(320.0)
                .show_rows(ui, row_height, set.seq_len_q(), |ui, range| {
                    for i in range {
                        ui.label(
                            egui::RichText::new(format!("{i:>4}  {}", set.query_token(i)))
                                .monospace(),
                        );
                    }
                });
        });
}
