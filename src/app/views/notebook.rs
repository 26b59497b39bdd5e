//! The notebook panel (issue 7): every pinned entry with its thumbnail, configuration, metrics
//! and Markdown note (rendered; edited in place), rename, reorder, delete with undo, reopen,
//! and the folder actions (open, save as, export report).

use std::collections::HashMap;

use eframe::egui;

use super::error_label;
use crate::app::Command;
use crate::app::notebook::{NotebookAction, NotebookState};
use crate::notebook::markdown::{Block, Span, parse};
use crate::notebook::report::flatten_metrics;
use crate::notebook::{Entry, THUMBNAIL_SIDE};

/// Panel-only state: which note is being edited, and thumbnail textures by entry id.
#[derive(Default)]
pub struct NotebookViewState {
    /// Entry whose note is open in the editor.
    pub editing_note: Option<u64>,
    /// Give the note editor keyboard focus on its first frame.
    focus_note: bool,
    textures: HashMap<u64, egui::TextureHandle>,
}

impl std::fmt::Debug for NotebookViewState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotebookViewState")
            .field("editing_note", &self.editing_note)
            .field("textures", &self.textures.len())
            .finish()
    }
}

fn push(commands: &mut Vec<Command>, action: NotebookAction) {
    commands.push(Command::Notebook(action));
}

/// Draws the notebook panel.
pub fn ui(
    ui: &mut egui::Ui,
    state: &NotebookState,
    view: &mut NotebookViewState,
    commands: &mut Vec<Command>,
) {
    ui.horizontal(|ui| {
        ui.heading("Notebook");
        match &state.dir {
            Some(dir) => ui.weak(format!("autosaved to {}", dir.display())),
            None => ui.colored_label(
                ui.visuals().warn_fg_color,
                "not saved to a folder yet — use Save as…",
            ),
        };
    });
    ui.horizontal(|ui| {
        if ui.button("Open notebook…").clicked() {
            push(commands, NotebookAction::PickOpen);
        }
        if ui.button("Save as…").clicked() {
            push(commands, NotebookAction::PickSaveAs);
        }
        if ui
            .add_enabled(state.dir.is_some(), egui::Button::new("Export report…"))
            .on_hover_text("report.md (with thumbnails) and metrics.csv")
            .clicked()
        {
            push(commands, NotebookAction::PickExport);
        }
        if let Some((_, entry)) = &state.last_deleted
            && ui
                .button(format!("Undo delete of “{}”", entry.title))
                .clicked()
        {
            push(commands, NotebookAction::UndoDelete);
        }
    });
    if let Some(e) = &state.error {
        error_label(ui, e);
    }
    if let Some(status) = &state.status {
        ui.weak(status);
    }
    ui.separator();
    let entries = &state.notebook.entries;
    if entries.is_empty() {
        ui.weak("No entries yet. Use “Pin to notebook” in any view.");
        return;
    }
    // Drop textures of deleted entries.
    view.textures
        .retain(|id, _| entries.iter().any(|e| e.id == *id));
    egui::ScrollArea::vertical()
        .id_salt("notebook_entries")
        .auto_shrink(false)
        .show(ui, |ui| {
            for (index, entry) in entries.iter().enumerate() {
                egui::Frame::group(ui.style()).show(ui, |ui| {
                    ui.set_width(ui.available_width());
                    entry_ui(ui, state, view, index, entries.len(), entry, commands);
                });
                ui.add_space(6.0);
            }
        });
}

fn entry_ui(
    ui: &mut egui::Ui,
    state: &NotebookState,
    view: &mut NotebookViewState,
    index: usize,
    count: usize,
    entry: &Entry,
    commands: &mut Vec<Command>,
) {
    let id = entry.id;
    ui.horizontal(|ui| {
        ui.strong(format!("{}.", index + 1));
        let mut title = entry.title.clone();
        if ui
            .add(
                egui::TextEdit::singleline(&mut title)
                    .desired_width(ui.available_width() - 260.0)
                    .id_salt(("entry_title", id)),
            )
            .on_hover_text("Rename")
            .changed()
        {
            push(commands, NotebookAction::Rename(id, title));
        }
        if ui
            .add_enabled(index > 0, egui::Button::new("Up"))
            .on_hover_text("Move up")
            .clicked()
        {
            push(commands, NotebookAction::MoveUp(id));
        }
        if ui
            .add_enabled(index + 1 < count, egui::Button::new("Down"))
            .on_hover_text("Move down")
            .clicked()
        {
            push(commands, NotebookAction::MoveDown(id));
        }
        if ui
            .button("Reopen")
            .on_hover_text("Restore this configuration and recompute")
            .clicked()
        {
            push(commands, NotebookAction::Reopen(id));
        }
        if ui.button("Delete").clicked() {
            push(commands, NotebookAction::Delete(id));
        }
    });
    if let Some(flag) = state.checksum_flags.get(&id) {
        ui.colored_label(
            ui.visuals().error_fg_color,
            format!("Warning: input changed: {flag}"),
        );
    }
    ui.horizontal_top(|ui| {
        if let Some(image) = state.thumbnails.get(&id) {
            let texture = view.textures.entry(id).or_insert_with(|| {
                let pixels = egui::ColorImage::from_rgba_unmultiplied(
                    [image.width() as usize, image.height() as usize],
                    image.as_raw(),
                );
                ui.ctx().load_texture(
                    format!("notebook-thumbnail-{id}"),
                    pixels,
                    egui::TextureOptions::NEAREST,
                )
            });
            let side = 160.0_f32.min(THUMBNAIL_SIDE as f32);
            let [w, h] = texture.size();
            let scale = side / (w.max(h).max(1) as f32);
            ui.add(
                egui::Image::new((texture.id(), egui::vec2(w as f32 * scale, h as f32 * scale)))
                    .alt_text(format!("thumbnail of {}", entry.title)),
            );
        }
        ui.vertical(|ui| {
            ui.weak(format!(
                "{} · {} · layer {} · head {} · {} · {} · b = {}, r = {} · {}",
                entry.view,
                entry.source,
                entry.layer,
                entry.head,
                if entry.causal {
                    "causal"
                } else {
                    "bidirectional"
                },
                entry.method.as_str(),
                entry.params.bandwidth,
                entry.params.rank,
                entry.created
            ));
            egui::CollapsingHeader::new("metrics")
                .id_salt(("entry_metrics", id))
                .show(ui, |ui| {
                    egui::Grid::new(("entry_metrics_grid", id))
                        .num_columns(2)
                        .striped(true)
                        .show(ui, |ui| {
                            for (name, value) in flatten_metrics(&entry.metrics) {
                                ui.label(name);
                                ui.monospace(value);
                                ui.end_row();
                            }
                        });
                });
            note_ui(ui, view, entry, commands);
        });
    });
}

fn note_ui(
    ui: &mut egui::Ui,
    view: &mut NotebookViewState,
    entry: &Entry,
    commands: &mut Vec<Command>,
) {
    let id = entry.id;
    let editing = view.editing_note == Some(id);
    ui.horizontal(|ui| {
        ui.strong("Note");
        let label = if editing { "Done" } else { "Edit note" };
        if ui.small_button(label).clicked() {
            view.editing_note = if editing { None } else { Some(id) };
            view.focus_note = !editing;
        }
    });
    if editing {
        let mut note = entry.note_markdown.clone();
        let response = ui.add(
            egui::TextEdit::multiline(&mut note)
                .id_salt(("entry_note", id))
                .desired_rows(4)
                .desired_width(f32::INFINITY)
                .hint_text("Markdown: # heading, - list, **bold**, *italic*, `code`"),
        );
        if std::mem::take(&mut view.focus_note) {
            response.request_focus();
        }
        if response.changed() {
            push(commands, NotebookAction::SetNote(id, note));
        }
    }
    if entry.note_markdown.trim().is_empty() {
        if !editing {
            ui.weak("(no note)");
        }
    } else {
        markdown_ui(ui, &entry.note_markdown);
    }
}

/// Renders the Markdown subset of [`crate::notebook::markdown`].
pub fn markdown_ui(ui: &mut egui::Ui, text: &str) {
    for block in parse(text) {
        match block {
            Block::Heading { level, spans } => {
                let size = match level {
                    1 => 20.0,
                    2 => 17.0,
                    _ => 15.0,
                };
                let mut job = egui::text::LayoutJob::default();
                for span in &spans {
                    append(ui, &mut job, span, Some(size), true);
                }
                ui.label(job);
            }
            Block::Bullet { marker, spans } => {
                ui.horizontal_wrapped(|ui| {
                    ui.label(format!("  {marker}"));
                    ui.label(spans_job(ui, &spans));
                });
            }
            Block::Paragraph(spans) => {
                ui.label(spans_job(ui, &spans));
            }
            Block::Code(code) => {
                egui::Frame::default()
                    .fill(ui.visuals().extreme_bg_color)
                    .inner_margin(4.0)
                    .show(ui, |ui| {
                        ui.monospace(code);
                    });
            }
        }
    }
}

fn spans_job(ui: &egui::Ui, spans: &[Span]) -> egui::text::LayoutJob {
    let mut job = egui::text::LayoutJob::default();
    for span in spans {
        append(ui, &mut job, span, None, false);
    }
    job
}

fn append(
    ui: &egui::Ui,
    job: &mut egui::text::LayoutJob,
    span: &Span,
    size: Option<f32>,
    strong: bool,
) {
    let body = egui::TextStyle::Body.resolve(ui.style());
    let mono = egui::TextStyle::Monospace.resolve(ui.style());
    let mut font = body.clone();
    if let Some(size) = size {
        font.size = size;
    }
    let visuals = ui.visuals();
    let plain = if strong {
        visuals.strong_text_color()
    } else {
        visuals.text_color()
    };
    let (text, format) = match span {
        Span::Text(t) => (t, egui::TextFormat::simple(font, plain)),
        Span::Bold(t) => (
            t,
            egui::TextFormat::simple(font, visuals.strong_text_color()),
        ),
        Span::Italic(t) => (
            t,
            egui::TextFormat {
                italics: true,
                ..egui::TextFormat::simple(font, plain)
            },
        ),
        Span::Code(t) => (
            t,
            egui::TextFormat {
                background: visuals.code_bg_color,
                ..egui::TextFormat::simple(mono, plain)
            },
        ),
    };
    job.append(text, 0.0, format);
}

/// The inspector of the notebook view: a short summary.
pub fn inspector_ui(ui: &mut egui::Ui, state: &NotebookState) {
    ui.heading("Notebook");
    ui.label(format!("{} entries", state.notebook.entries.len()));
    if !state.checksum_flags.is_empty() {
        ui.colored_label(
            ui.visuals().error_fg_color,
            format!(
                "{} reopened entries have a changed input",
                state.checksum_flags.len()
            ),
        );
    }
    ui.weak(
        "Pin findings from any view with a result (“Pin to notebook” in the top bar). Every change is saved to the \
         notebook folder at once; “Export report…” writes report.md and metrics.csv.",
    );
}
