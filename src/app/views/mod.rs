//! One file per view. Each view is a function `ui(ui, &Selection, &Results, busy, …,
//! &mut Vec<Command>)`: it draws from the shared state and its own small state, and asks for
//! changes by pushing [`super::Command`]s; it never computes and never mutates shared state.

pub mod data;
pub mod decomposition;
pub mod methods;
pub mod notebook;
pub mod routing;
pub mod spectrum;
pub mod sweeps;

/// Per-view UI state that is not part of the shared selection.
#[derive(Debug, Default)]
pub struct ViewStates {
    /// Data panel state (synthetic generator settings).
    pub data: data::DataViewState,
    /// Sweeps view state (form, running sweep, rows).
    pub sweeps: sweeps::SweepsViewState,
    /// Notebook panel state (edit buffers, thumbnail textures).
    pub notebook: notebook::NotebookViewState,
}

/// An inline error label (the tests look for labels starting with "Error").
pub fn error_label(ui: &mut eframe::egui::Ui, message: &str) {
    ui.colored_label(ui.visuals().error_fg_color, format!("Error: {message}"));
}

/// A two-column striped grid of `name | value` rows (metrics and properties panels). `add_rows`
/// receives the row writer; values are drawn monospaced when `monospace`.
pub fn value_grid(
    ui: &mut eframe::egui::Ui,
    id: &str,
    monospace: bool,
    add_rows: impl FnOnce(&mut dyn FnMut(&str, String)),
) {
    eframe::egui::Grid::new(id)
        .num_columns(2)
        .striped(true)
        .show(ui, |ui| {
            let mut row = |name: &str, value: String| {
                ui.label(name);
                if monospace {
                    ui.monospace(value);
                } else {
                    ui.label(value);
                }
                ui.end_row();
            };
            add_rows(&mut row);
        });
}
