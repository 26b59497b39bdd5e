//! The GUI side of the notebook (issue 7): pinning the current view, the notebook's commands
//! (rename, reorder, delete/undo, notes, reopen), autosave on a named I/O thread, folder
//! dialogs, and the UI state persisted across restarts (eframe storage).
//!
//! The notebook format itself is [`crate::notebook`]; the panel is [`super::views::notebook`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

use eframe::egui;
use serde::{Deserialize, Serialize};

use super::heatmap_view::DisplaySettings;
use super::jobs::{InputSource, LoadedInput};
use super::{AttnScopeApp, Command, View};
use crate::attention::{MethodId, MethodParams};
use crate::notebook::{
    Entry, EntryDisplay, Notebook, now_rfc3339, render_thumbnail, thumbnail_name, views,
    write_thumbnail,
};

/// Everything the notebook panel can ask for (wrapped in [`Command::Notebook`]).
#[derive(Debug, Clone)]
pub enum NotebookAction {
    /// Pin the current view's result.
    Pin,
    /// Rename an entry.
    Rename(u64, String),
    /// Replace an entry's Markdown note.
    SetNote(u64, String),
    /// Move an entry one place up.
    MoveUp(u64),
    /// Move an entry one place down.
    MoveDown(u64),
    /// Delete an entry (kept for one undo).
    Delete(u64),
    /// Restore the last deleted entry at its place.
    UndoDelete,
    /// Restore an entry's configuration and recompute.
    Reopen(u64),
    /// Choose a notebook folder to open (file dialog on its own thread).
    PickOpen,
    /// Choose a folder to save the notebook to.
    PickSaveAs,
    /// Choose a folder to export the report to.
    PickExport,
    /// Open the notebook in this folder.
    OpenFolder(PathBuf),
    /// Save the notebook to this folder from now on.
    SaveAs(PathBuf),
    /// Export the report to this folder.
    Export(PathBuf),
    /// The I/O thread finished a save or export (message for errors / confirmations).
    IoDone(Result<String, String>),
}

/// A configuration to re-apply once its input has loaded (reopen, or restart).
#[derive(Debug, Clone)]
pub struct PendingConfig {
    /// Layer.
    pub layer: usize,
    /// Head.
    pub head: usize,
    /// Causal.
    pub causal: bool,
    /// The entry being reopened (its checksum is compared).
    pub entry: Option<(u64, String)>,
}

/// The open notebook and its panel state.
#[derive(Default)]
pub struct NotebookState {
    /// The notebook.
    pub notebook: Notebook,
    /// Its folder (autosaved there); `None` = not saved yet (use "Save as…").
    pub dir: Option<PathBuf>,
    /// The last deleted entry and its position (one undo).
    pub last_deleted: Option<(usize, Entry)>,
    /// Entries whose input changed since they were pinned: id → message.
    pub checksum_flags: HashMap<u64, String>,
    /// Thumbnails by entry id (shown in the panel; written to the folder by autosave).
    pub thumbnails: HashMap<u64, Arc<image::RgbaImage>>,
    /// Thumbnails not yet written to a folder.
    pending_thumbnails: Vec<(String, Arc<image::RgbaImage>)>,
    /// The latest notebook error (inline in the panel).
    pub error: Option<String>,
    /// The latest confirmation (export written, …).
    pub status: Option<String>,
    /// Configuration to apply when the next input lands.
    pub pending: Option<PendingConfig>,
    io: Option<Sender<IoJob>>,
}

impl std::fmt::Debug for NotebookState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotebookState")
            .field("entries", &self.notebook.entries.len())
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// Thumbnail file names with their images.
type Thumbnails = Vec<(String, Arc<image::RgbaImage>)>;

enum IoJob {
    Save {
        dir: PathBuf,
        notebook: Notebook,
        thumbnails: Vec<(String, Arc<image::RgbaImage>)>,
    },
    Export {
        notebook_dir: PathBuf,
        out: PathBuf,
    },
}

/// The default notebook folder: `$XDG_DATA_HOME/attnscope/notebook` or
/// `~/.local/share/attnscope/notebook`.
pub fn default_notebook_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(base.join("attnscope").join("notebook"))
}

/// The UI state kept across restarts (eframe storage key [`PERSIST_KEY`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PersistedUi {
    /// Input source string (path, `sample:NAME`, `synth:…`).
    pub source: Option<String>,
    /// View title.
    pub view: String,
    /// Layer.
    pub layer: usize,
    /// Head.
    pub head: usize,
    /// Causal.
    pub causal: bool,
    /// Method.
    pub method: MethodId,
    /// Parameters.
    pub params: MethodParams,
    /// Colour settings.
    pub display: EntryDisplay,
    /// Open notebook folder.
    pub notebook_dir: Option<PathBuf>,
}

impl Default for PersistedUi {
    fn default() -> Self {
        Self {
            source: None,
            view: View::Decomposition.title().into(),
            layer: 0,
            head: 0,
            causal: false,
            method: MethodId::Fmm,
            params: MethodParams::default(),
            display: EntryDisplay::default(),
            notebook_dir: None,
        }
    }
}

/// eframe storage key of [`PersistedUi`].
pub const PERSIST_KEY: &str = "attnscope-ui-v1";

fn to_entry_display(d: DisplaySettings) -> EntryDisplay {
    EntryDisplay {
        colormap: d.colormap,
        value_scale: d.value_scale,
    }
}

fn from_entry_display(d: EntryDisplay) -> DisplaySettings {
    DisplaySettings {
        colormap: d.colormap,
        value_scale: d.value_scale,
        ..DisplaySettings::default()
    }
}

fn view_by_title(title: &str) -> Option<View> {
    View::ALL.iter().copied().find(|v| v.title() == title)
}

fn load_thumbnails(dir: &Path, notebook: &Notebook) -> HashMap<u64, Arc<image::RgbaImage>> {
    notebook
        .entries
        .iter()
        .filter_map(|e| {
            let name = e.thumbnail.as_ref()?;
            let path = dir.join(crate::notebook::THUMBNAIL_DIR).join(name);
            let image = image::open(path).ok()?.to_rgba8();
            Some((e.id, Arc::new(image)))
        })
        .collect()
}

fn io_loop(jobs: &Receiver<IoJob>, tx: &Sender<Command>, ctx: &egui::Context) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while let Ok(job) = jobs.try_recv() {
            batch.push(job);
        }
        // Coalesce saves: every thumbnail, the newest notebook per folder.
        let mut saves: Vec<(PathBuf, Notebook, Thumbnails)> = Vec::new();
        let mut exports = Vec::new();
        for job in batch {
            match job {
                IoJob::Save {
                    dir,
                    notebook,
                    thumbnails,
                } => match saves.iter_mut().find(|(d, _, _)| *d == dir) {
                    Some(slot) => {
                        slot.1 = notebook;
                        slot.2.extend(thumbnails);
                    }
                    None => saves.push((dir, notebook, thumbnails)),
                },
                IoJob::Export { notebook_dir, out } => exports.push((notebook_dir, out)),
            }
        }
        for (dir, notebook, thumbnails) in saves {
            let outcome = thumbnails
                .iter()
                .try_for_each(|(name, image)| write_thumbnail(&dir, name, image))
                .and_then(|()| notebook.save(&dir))
                .map(|()| String::new())
                .map_err(|e| format!("Autosave failed: {e}"));
            if outcome.is_err() {
                let _ = tx.send(Command::Notebook(NotebookAction::IoDone(outcome)));
            }
        }
        for (notebook_dir, out) in exports {
            let outcome = crate::notebook::export_report(&notebook_dir, &out)
                .map(|f| format!("Report written: {}", f.markdown.display()))
                .map_err(|e| format!("Export failed: {e}"));
            let _ = tx.send(Command::Notebook(NotebookAction::IoDone(outcome)));
        }
        ctx.request_repaint();
    }
}

impl AttnScopeApp {
    /// Opens the notebook in `dir` (created on the first save) and autosaves there from now
    /// on. A corrupt or newer notebook is refused: the error is shown, the folder is not
    /// used, and its file is left untouched.
    pub fn open_notebook_dir(&mut self, dir: PathBuf) {
        match Notebook::load_or_new(&dir) {
            Ok(notebook) => {
                let nb = &mut self.notebook;
                nb.thumbnails = load_thumbnails(&dir, &notebook);
                nb.notebook = notebook;
                nb.dir = Some(dir);
                nb.last_deleted = None;
                nb.checksum_flags.clear();
                nb.error = None;
            }
            Err(e) => {
                let text = format!("Notebook not opened: {e}");
                self.notebook.error = Some(text.clone());
                self.notify(text);
            }
        }
    }

    /// The state to persist (see [`PersistedUi`]).
    pub fn persisted_ui(&self) -> PersistedUi {
        let sel = &self.selection;
        PersistedUi {
            source: sel.input.as_ref().map(|i| i.source.spec()),
            view: self.view.title().into(),
            layer: sel.layer,
            head: sel.head,
            causal: sel.causal,
            method: sel.method,
            params: sel.params.clone(),
            display: to_entry_display(sel.display),
            notebook_dir: self.notebook.dir.clone(),
        }
    }

    /// Restores persisted UI state (called once at start, before the first frame). The input
    /// is loaded unless `keep_source` (a source was given on the command line).
    pub fn restore_ui(&mut self, ui: PersistedUi, keep_source: bool) {
        let sel = &mut self.selection;
        sel.method = ui.method;
        sel.params = ui.params;
        sel.display = from_entry_display(ui.display);
        if let Some(view) = view_by_title(&ui.view) {
            self.view = view;
        }
        // Layer, head and causal belong to the remembered input: they are re-applied only
        // when that input is reopened (a new input keeps its own causal flag, C1).
        if !keep_source
            && let Some(spec) = ui.source
            && let Ok(source) = InputSource::from_spec(&spec)
        {
            self.notebook.pending = Some(PendingConfig {
                layer: ui.layer,
                head: ui.head,
                causal: ui.causal,
                entry: None,
            });
            self.apply(Command::Open(source));
        }
        if let Some(dir) = ui.notebook_dir.or_else(default_notebook_dir) {
            self.open_notebook_dir(dir);
        }
        self.mark_dirty();
    }

    /// Re-applies a pending configuration once its input landed; flags a changed checksum.
    pub(super) fn apply_pending_config(&mut self, input: &Arc<LoadedInput>) {
        let Some(pending) = self.notebook.pending.take() else {
            return;
        };
        let set = &input.set;
        let sel = &mut self.selection;
        sel.layer = pending.layer.min(set.num_layers().saturating_sub(1));
        sel.head = pending.head.min(set.num_heads().saturating_sub(1));
        sel.causal = pending.causal;
        if let Some((id, checksum)) = pending.entry {
            if set.checksum == checksum {
                self.notebook.checksum_flags.remove(&id);
            } else {
                let text = format!(
                    "The input changed since this entry was pinned: recorded sha256 {}…, now {}…. \
                     The recomputed result is NOT the pinned one.",
                    &checksum.get(..12).unwrap_or(&checksum),
                    set.checksum.get(..12).unwrap_or(&set.checksum)
                );
                self.notebook.checksum_flags.insert(id, text.clone());
                self.notify(format!("Reopen: {text}"));
            }
        }
    }

    fn autosave(&mut self) {
        let Some(dir) = self.notebook.dir.clone() else {
            return;
        };
        if self.notebook.io.is_none() {
            let (job_tx, job_rx) = channel();
            let tx = self.commands_tx.clone();
            let ctx = self.ctx.clone();
            match std::thread::Builder::new()
                .name("attnscope-notebook-io".into())
                .spawn(move || io_loop(&job_rx, &tx, &ctx))
            {
                Ok(_) => self.notebook.io = Some(job_tx),
                Err(e) => {
                    self.notify(format!("cannot start the notebook I/O thread: {e}"));
                    return;
                }
            }
        }
        let thumbnails = std::mem::take(&mut self.notebook.pending_thumbnails);
        let job = IoJob::Save {
            dir,
            notebook: self.notebook.notebook.clone(),
            thumbnails,
        };
        if let Some(io) = &self.notebook.io
            && io.send(job).is_err()
        {
            self.notebook.io = None;
        }
    }

    fn pick_folder(&mut self, title: &'static str, make: fn(PathBuf) -> NotebookAction) {
        let tx = self.commands_tx.clone();
        let ctx = self.ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("attnscope-folder-dialog".into())
            .spawn(move || {
                if let Some(path) = rfd::FileDialog::new().set_title(title).pick_folder()
                    && tx.send(Command::Notebook(make(path))).is_ok()
                {
                    ctx.request_repaint();
                }
            });
        if let Err(e) = spawned {
            self.notify(format!("cannot open the folder dialog: {e}"));
        }
    }

    /// Builds an entry from the current view's last good result.
    fn pin_entry(&mut self) -> Result<(Entry, Option<image::RgbaImage>), String> {
        let id = self.notebook.notebook.allocate_id();
        let sel = &self.selection;
        let display = to_entry_display(sel.display);
        let (view, head, method, params, metrics, thumbnail) = match self.view {
            View::Decomposition => {
                let d = self
                    .results
                    .decomposition
                    .as_ref()
                    .ok_or("no decomposition to pin yet")?;
                let m = &d.decomposition.metrics;
                let scale = sel.display.sequential_scale(&d.decomposition.full);
                let image = render_thumbnail(d.decomposition.full.view(), &scale);
                let mut params = sel.params.clone();
                params.bandwidth = m.bandwidth;
                let metrics = serde_json::to_value(m).map_err(|e| e.to_string())?;
                (
                    views::DECOMPOSITION,
                    d.head.clone(),
                    sel.method,
                    params,
                    metrics,
                    Some(image),
                )
            }
            View::Methods => {
                let run = self
                    .results
                    .method
                    .as_ref()
                    .ok_or("no method run to pin yet")?;
                let image = match (&run.exact, &run.approx) {
                    (Some(exact), Some(approx)) => {
                        let scale = sel.display.sequential_scale(exact);
                        Some(render_thumbnail(approx.view(), &scale))
                    }
                    _ => None,
                };
                let mut params = run.params.clone();
                params.fit = false;
                let metrics = serde_json::to_value(&run.metrics).map_err(|e| e.to_string())?;
                (
                    views::METHODS,
                    run.head.clone(),
                    run.method,
                    params,
                    metrics,
                    image,
                )
            }
            View::Routing => {
                let r = self
                    .results
                    .routing
                    .matrix
                    .as_ref()
                    .ok_or("no routing result to pin yet")?;
                let method = MethodId::parse(r.settings.variant.as_str())?;
                let scale = sel.display.sequential_scale(&r.exact);
                let image = render_thumbnail(r.effective.view(), &scale);
                let mut params = r.settings.method_params(&sel.params);
                params.block = Some(r.block);
                let metrics = serde_json::to_value(&r.metrics).map_err(|e| e.to_string())?;
                (
                    views::ROUTING,
                    r.head.clone(),
                    method,
                    params,
                    metrics,
                    Some(image),
                )
            }
            View::Spectrum => {
                let sp = self
                    .results
                    .spectrum
                    .spectrum
                    .as_ref()
                    .ok_or("no spectrum to pin yet")?;
                let s = &sp.spectrum;
                let rank = sel.params.rank;
                let at = |v: &[f64]| v.get(rank.saturating_sub(1)).copied();
                let metrics = serde_json::json!({
                    "bandwidth": s.bandwidth,
                    "rank": rank,
                    "captured_energy_at_rank": at(&s.captured_energy),
                    "far_captured_energy_at_rank": at(&s.far_captured_energy),
                    "eckart_young_at_rank": at(&s.eckart_young),
                    "singular_values_first_8": s.singular_values.iter().take(8).collect::<Vec<_>>(),
                    "far_singular_values_first_8":
                        s.far_singular_values.iter().take(8).collect::<Vec<_>>(),
                });
                let mut params = sel.params.clone();
                params.bandwidth = s.bandwidth;
                (
                    views::SPECTRUM,
                    sp.head.clone(),
                    sel.method,
                    params,
                    metrics,
                    None,
                )
            }
            View::Sweeps => return self.pin_sweep(id),
            other => return Err(format!("the {} view cannot be pinned", other.title())),
        };
        let name = thumbnail.as_ref().map(|_| thumbnail_name(id));
        let layer_label = head.input.set.layer_label(head.layer);
        let title = match view {
            views::METHODS => format!(
                "{method} on {} ({layer_label}, head {})",
                head.input.source.spec(),
                head.head
            ),
            _ => format!(
                "Decomposition b = {}, r = {} on {} ({layer_label}, head {})",
                params.bandwidth,
                params.rank,
                head.input.source.spec(),
                head.head
            ),
        };
        let entry = Entry {
            id,
            title,
            created: now_rfc3339(),
            view: view.into(),
            source: head.input.source.spec(),
            source_checksum: head.input.set.checksum.clone(),
            layer: head.layer,
            head: head.head,
            causal: head.causal,
            method,
            params,
            display,
            metrics,
            note_markdown: String::new(),
            thumbnail: name,
        };
        Ok((entry, thumbnail))
    }

    /// A sweeps entry: the form as configuration (`metrics.config`), a per-method summary of
    /// the rows, and the shown plot as thumbnail. Reopen restores the form (press Run to
    /// recompute); there is no checksum (the sweep loads its own input).
    fn pin_sweep(&self, id: u64) -> Result<(Entry, Option<image::RgbaImage>), String> {
        let sw = &self.views.sweeps;
        if sw.rows.is_empty() {
            return Err("no sweep rows to pin yet".into());
        }
        let methods: Vec<&str> = sw
            .methods
            .iter()
            .filter(|(_, on)| *on)
            .map(|(m, _)| m.as_str())
            .collect();
        let mut summary = serde_json::Map::new();
        for &method in &methods {
            let rows: Vec<_> = sw.rows.iter().filter(|r| r.method == method).collect();
            let max_len = rows.iter().map(|r| r.seq_len).max();
            let at_max = rows.iter().find(|r| Some(r.seq_len) == max_len);
            let max_err = rows
                .iter()
                .filter_map(|r| r.output_rel)
                .fold(None, |acc: Option<f64>, x| {
                    Some(acc.map_or(x, |a| a.max(x)))
                });
            summary.insert(
                method.to_string(),
                serde_json::json!({
                    "points": rows.len(),
                    "max_seq_len": max_len,
                    "runtime_median_s_at_max_len": at_max.and_then(|r| r.runtime_median_s),
                    "max_output_rel": max_err,
                }),
            );
        }
        let metrics = serde_json::json!({
            "points": sw.rows.len(),
            "skipped": sw.rows.iter().filter(|r| r.skipped.is_some()).count(),
            "methods": summary,
            "config": {
                "methods": methods.join(","),
                "seq_lens": sw.seq_lens,
                "ranks": sw.ranks,
                "bandwidths": sw.bandwidths,
                "seeds": sw.seeds,
                "repeats": sw.repeats,
                "plot": sw.plot.name(),
            },
        });
        let image = sw
            .plot
            .build(&sw.rows)
            .map(|spec| crate::experiment::render_plot(&spec, 384, 256));
        let sel = &self.selection;
        let entry = Entry {
            id,
            title: format!(
                "Sweep: {} on {} ({})",
                methods.join(", "),
                sw.source,
                sw.plot.name()
            ),
            created: now_rfc3339(),
            view: views::SWEEPS.into(),
            source: sw.source.clone(),
            source_checksum: String::new(),
            layer: sw.layer,
            head: sw.head,
            causal: sw.causal,
            method: sel.method,
            params: sel.params.clone(),
            display: to_entry_display(sel.display),
            metrics,
            note_markdown: String::new(),
            thumbnail: image.as_ref().map(|_| thumbnail_name(id)),
        };
        Ok((entry, image))
    }

    /// Applies one notebook action (called from [`AttnScopeApp::apply`]).
    pub(super) fn apply_notebook(&mut self, action: NotebookAction) {
        let changed = match action {
            NotebookAction::Pin => match self.pin_entry() {
                Ok((entry, image)) => {
                    if let (Some(image), Some(name)) = (image, &entry.thumbnail) {
                        let image = Arc::new(image);
                        self.notebook
                            .thumbnails
                            .insert(entry.id, Arc::clone(&image));
                        self.notebook.pending_thumbnails.push((name.clone(), image));
                    }
                    self.notebook.status = Some(format!("Pinned “{}”", entry.title));
                    self.notebook.notebook.entries.push(entry);
                    true
                }
                Err(e) => {
                    self.notify(format!("Pin failed: {e}"));
                    false
                }
            },
            NotebookAction::Rename(id, title) => self.edit_entry(id, |e| e.title = title),
            NotebookAction::SetNote(id, note) => self.edit_entry(id, |e| e.note_markdown = note),
            NotebookAction::MoveUp(id) => self.move_entry(id, -1),
            NotebookAction::MoveDown(id) => self.move_entry(id, 1),
            NotebookAction::Delete(id) => {
                let entries = &mut self.notebook.notebook.entries;
                match entries.iter().position(|e| e.id == id) {
                    Some(index) => {
                        let entry = entries.remove(index);
                        self.notebook.last_deleted = Some((index, entry));
                        true
                    }
                    None => false,
                }
            }
            NotebookAction::UndoDelete => match self.notebook.last_deleted.take() {
                Some((index, entry)) => {
                    let entries = &mut self.notebook.notebook.entries;
                    entries.insert(index.min(entries.len()), entry);
                    true
                }
                None => false,
            },
            NotebookAction::Reopen(id) => {
                self.reopen(id);
                false
            }
            NotebookAction::PickOpen => {
                self.pick_folder("Open notebook folder", NotebookAction::OpenFolder);
                false
            }
            NotebookAction::PickSaveAs => {
                self.pick_folder("Save notebook to folder", NotebookAction::SaveAs);
                false
            }
            NotebookAction::PickExport => {
                self.pick_folder("Export report to folder", NotebookAction::Export);
                false
            }
            NotebookAction::OpenFolder(dir) => {
                self.open_notebook_dir(dir);
                false
            }
            NotebookAction::SaveAs(dir) => {
                if dir.join(crate::notebook::NOTEBOOK_FILE).exists() {
                    let text = format!(
                        "{} already holds a notebook; open it or choose an empty folder",
                        dir.display()
                    );
                    self.notebook.error = Some(text.clone());
                    self.notify(text);
                    false
                } else {
                    // Every thumbnail goes to the new folder.
                    self.notebook.pending_thumbnails = self
                        .notebook
                        .notebook
                        .entries
                        .iter()
                        .filter_map(|e| {
                            let image = self.notebook.thumbnails.get(&e.id)?;
                            Some((e.thumbnail.clone()?, Arc::clone(image)))
                        })
                        .collect();
                    self.notebook.dir = Some(dir);
                    self.notebook.error = None;
                    true
                }
            }
            NotebookAction::Export(out) => {
                match self.notebook.dir.clone() {
                    Some(notebook_dir) => {
                        // Save first so the export sees every change (same I/O thread, in order).
                        self.autosave();
                        if let Some(io) = &self.notebook.io {
                            let _ = io.send(IoJob::Export { notebook_dir, out });
                        }
                    }
                    None => {
                        let text = "Save the notebook to a folder first (Save as…)".to_string();
                        self.notebook.error = Some(text.clone());
                        self.notify(text);
                    }
                }
                false
            }
            NotebookAction::IoDone(outcome) => {
                match outcome {
                    Ok(message) if !message.is_empty() => self.notebook.status = Some(message),
                    Ok(_) => {}
                    Err(e) => {
                        self.notebook.error = Some(e.clone());
                        self.notify(e);
                    }
                }
                false
            }
        };
        if changed {
            self.autosave();
        }
    }

    fn edit_entry(&mut self, id: u64, edit: impl FnOnce(&mut Entry)) -> bool {
        match self
            .notebook
            .notebook
            .entries
            .iter_mut()
            .find(|e| e.id == id)
        {
            Some(entry) => {
                edit(entry);
                true
            }
            None => false,
        }
    }

    fn move_entry(&mut self, id: u64, delta: isize) -> bool {
        let entries = &mut self.notebook.notebook.entries;
        let Some(index) = entries.iter().position(|e| e.id == id) else {
            return false;
        };
        let Some(target) = index
            .checked_add_signed(delta)
            .filter(|&t| t < entries.len())
        else {
            return false;
        };
        entries.swap(index, target);
        true
    }

    fn reopen(&mut self, id: u64) {
        let Some(entry) = self.notebook.notebook.entry(id).cloned() else {
            return;
        };
        if entry.view == views::SWEEPS {
            self.reopen_sweep(&entry);
            return;
        }
        let source = match InputSource::from_spec(&entry.source) {
            Ok(s) => s,
            Err(e) => {
                self.notify(format!("Reopen failed: {e}"));
                return;
            }
        };
        let sel = &mut self.selection;
        sel.method = entry.method;
        sel.params = entry.params.clone();
        sel.display = from_entry_display(entry.display);
        if let Some(view) = view_by_title(&entry.view) {
            self.view = view;
        }
        if entry.view == views::ROUTING
            && let Some(variant) = crate::attention::combiner::Variant::ALL
                .iter()
                .copied()
                .find(|v| v.as_str() == entry.method.as_str())
        {
            self.selection.routing = super::view_jobs::RoutingSettings {
                variant,
                block: entry.params.block,
                pooling: entry.params.pooling,
                key_row: entry.params.key_row,
                query: None,
            };
        }
        self.notebook.pending = Some(PendingConfig {
            layer: entry.layer,
            head: entry.head,
            causal: entry.causal,
            entry: Some((entry.id, entry.source_checksum.clone())),
        });
        let same_input = self
            .selection
            .input
            .as_ref()
            .is_some_and(|i| i.source.spec() == entry.source);
        match (same_input, self.selection.input.clone()) {
            // Files are always reloaded: the file on disk may have changed since it was loaded.
            (true, Some(input)) if !matches!(input.source, InputSource::File(_)) => {
                self.apply_pending_config(&input);
                self.mark_dirty();
            }
            _ => self.apply(Command::Open(source)),
        }
    }

    fn reopen_sweep(&mut self, entry: &Entry) {
        let sw = &mut self.views.sweeps;
        let config = &entry.metrics["config"];
        let text = |key: &str| config[key].as_str().map(str::to_string);
        sw.source = entry.source.clone();
        sw.layer = entry.layer;
        sw.head = entry.head;
        sw.causal = entry.causal;
        if let Some(methods) = text("methods") {
            let chosen: Vec<&str> = methods.split(',').collect();
            for (m, on) in &mut sw.methods {
                *on = chosen.contains(&m.as_str());
            }
        }
        for (key, field) in [
            ("seq_lens", &mut sw.seq_lens),
            ("ranks", &mut sw.ranks),
            ("bandwidths", &mut sw.bandwidths),
            ("seeds", &mut sw.seeds),
        ] {
            if let Some(value) = text(key) {
                *field = value;
            }
        }
        if let Some(repeats) = config["repeats"].as_u64() {
            sw.repeats = usize::try_from(repeats).unwrap_or(sw.repeats);
        }
        sw.status = format!(
            "Restored from the notebook entry “{}”: press Run to recompute.",
            entry.title
        );
        self.selection.params = entry.params.clone();
        self.selection.method = entry.method;
        self.view = View::Sweeps;
    }
}
