//! The research notebook (issue 7): pinned findings with their exact configuration, metrics,
//! a thumbnail and a Markdown note; saved as a folder, exported as a Markdown report.
//!
//! ```text
//! NOTEBOOK_DIR/
//!   notebook.json          {"format_version": 1, "next_id": …, "entries": [Entry, …]}
//!   thumbnails/entry-7.png one small heatmap per entry (≤ THUMBNAIL_SIDE px per side)
//! ```
//!
//! * Writes are atomic: a temporary file in the same folder, then `rename` (POSIX rename is
//!   atomic within a file system), so a crash leaves either the old or the new file.
//! * A corrupt `notebook.json` or one with a newer `format_version` is refused with a typed
//!   [`NotebookError`] naming the file; [`Notebook::save`] also refuses to overwrite such a file,
//!   so nothing the user wrote with a newer attnscope is lost.
//! * [`recompute_metrics`] recomputes an entry's metrics headlessly (the GUI's "Reopen" does
//!   the same through its worker) and reports a changed input by checksum.
//!
//! The module has no GUI dependency; the GUI's notebook panel lives in `app::views::notebook`.

pub mod markdown;
pub mod report;

use std::io::Write;
use std::path::{Path, PathBuf};

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use crate::analysis::{compare, decompose};
use crate::attention::{MatrixBudget, MethodId, MethodParams, compute};
use crate::data::load_source;
use crate::render::{ColorScale, Colormap, PoolMode, ValueScale, pool, render};

pub use report::{ReportFiles, export_report};

/// The `format_version` this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;
/// The notebook file inside a notebook folder.
pub const NOTEBOOK_FILE: &str = "notebook.json";
/// The thumbnail folder inside a notebook folder.
pub const THUMBNAIL_DIR: &str = "thumbnails";
/// Largest thumbnail side in pixels (larger matrices are pooled with block max, E15).
pub const THUMBNAIL_SIDE: usize = 256;

/// Errors of notebook files and reports. Each names the offending file.
#[derive(Debug, thiserror::Error)]
pub enum NotebookError {
    /// Reading, writing or renaming a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// `notebook.json` is not valid notebook JSON.
    #[error("{path} is not a valid attnscope notebook (line {line}, column {column}): {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error (0 when unknown).
        line: usize,
        /// 1-based column.
        column: usize,
        /// serde_json's message.
        message: String,
    },
    /// The file was written by a newer attnscope.
    #[error(
        "{path} has format_version {found}; this attnscope reads up to {supported}. \
         Open it with a newer attnscope (the file was left unchanged)"
    )]
    NewerFormat {
        /// The file.
        path: PathBuf,
        /// Its `format_version`.
        found: u64,
        /// [`FORMAT_VERSION`].
        supported: u32,
    },
    /// Encoding a thumbnail failed.
    #[error("could not encode thumbnail {path}: {source}")]
    Image {
        /// The thumbnail file.
        path: PathBuf,
        /// The encoder's error.
        #[source]
        source: image::ImageError,
    },
    /// Writing the metrics CSV failed.
    #[error("{path}: {source}")]
    Csv {
        /// The CSV file.
        path: PathBuf,
        /// The csv crate's error.
        #[source]
        source: csv::Error,
    },
    /// Recomputing an entry failed (input missing, layer out of range, method error, …).
    #[error("cannot recompute entry {id} ({title}): {reason}")]
    Recompute {
        /// Entry id.
        id: u64,
        /// Entry title.
        title: String,
        /// What went wrong.
        reason: String,
    },
}

/// Colour settings of an entry (the serialisable part of the GUI's display settings).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EntryDisplay {
    /// Colour map of non-negative matrices.
    pub colormap: Colormap,
    /// Linear, log or power mapping.
    pub value_scale: ValueScale,
}

impl Default for EntryDisplay {
    fn default() -> Self {
        Self {
            colormap: Colormap::Viridis,
            value_scale: ValueScale::Log { decades: 3.0 },
        }
    }
}

/// The view an entry was pinned from (stored by name in `notebook.json`).
pub mod views {
    /// The near/far decomposition view (metrics: `DecompositionMetrics`).
    pub const DECOMPOSITION: &str = "Decomposition";
    /// The methods view (metrics: `ErrorMetrics` of the method against exact attention).
    pub const METHODS: &str = "Methods";
    /// The sweeps view (metrics: a summary of the sweep rows).
    pub const SWEEPS: &str = "Sweeps";
    /// The Combiner routing view (metrics: `ErrorMetrics` of the variant against exact
    /// attention; recomputed like the methods view).
    pub const ROUTING: &str = "Combiner routing";
    /// The spectrum view (metrics: leading singular values, captured energy).
    pub const SPECTRUM: &str = "Spectrum";
}

/// One pinned finding: the exact configuration, its metrics, a note and a thumbnail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Unique within the notebook (never reused).
    pub id: u64,
    /// Title shown in the list and the report (editable).
    pub title: String,
    /// Creation time, `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339, UTC).
    pub created: String,
    /// The view it was pinned from ([`views`]).
    pub view: String,
    /// The input source string: a path, `sample:NAME` or `synth:…` (as `data::load_source`).
    pub source: String,
    /// SHA-256 of the input when pinned (`QkvSet::checksum`).
    pub source_checksum: String,
    /// Layer index.
    pub layer: usize,
    /// Head index.
    pub head: usize,
    /// Causal (C1) or bidirectional.
    pub causal: bool,
    /// Method (methods view; the decomposition records it too).
    pub method: MethodId,
    /// Every method parameter (bandwidth and rank also drive the decomposition).
    pub params: MethodParams,
    /// Colour settings.
    pub display: EntryDisplay,
    /// The view's metrics as JSON (e.g. `DecompositionMetrics`, `ErrorMetrics`).
    pub metrics: serde_json::Value,
    /// The user's Markdown note.
    #[serde(default)]
    pub note_markdown: String,
    /// Thumbnail file name inside `thumbnails/`, if one was written.
    #[serde(default)]
    pub thumbnail: Option<String>,
}

/// A notebook: entries in the user's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notebook {
    /// [`FORMAT_VERSION`] when written by this build.
    pub format_version: u32,
    /// The next entry id to hand out.
    #[serde(default)]
    pub next_id: u64,
    /// Entries in display order.
    pub entries: Vec<Entry>,
}

impl Default for Notebook {
    fn default() -> Self {
        Self {
            format_version: FORMAT_VERSION,
            next_id: 1,
            entries: Vec::new(),
        }
    }
}

/// Only the version field, read first so a newer file is refused before its body is parsed.
#[derive(Deserialize)]
struct VersionProbe {
    format_version: u64,
}

impl Notebook {
    /// A fresh id (ids are never reused, even after a delete).
    pub fn allocate_id(&mut self) -> u64 {
        let used = self.entries.iter().map(|e| e.id).max().unwrap_or(0);
        let id = self.next_id.max(used + 1);
        self.next_id = id + 1;
        id
    }

    /// The entry with `id`.
    pub fn entry(&self, id: u64) -> Option<&Entry> {
        self.entries.iter().find(|e| e.id == id)
    }

    /// Parses `notebook.json` text; `path` is only used in errors.
    ///
    /// # Errors
    /// [`NotebookError::NewerFormat`] when `format_version` > [`FORMAT_VERSION`];
    /// [`NotebookError::Corrupt`] for anything that is not a notebook.
    pub fn from_json(text: &str, path: &Path) -> Result<Self, NotebookError> {
        let corrupt = |e: serde_json::Error| NotebookError::Corrupt {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        };
        let probe: VersionProbe = serde_json::from_str(text).map_err(corrupt)?;
        if probe.format_version > u64::from(FORMAT_VERSION) || probe.format_version == 0 {
            return Err(NotebookError::NewerFormat {
                path: path.to_path_buf(),
                found: probe.format_version,
                supported: FORMAT_VERSION,
            });
        }
        let mut notebook: Notebook = serde_json::from_str(text).map_err(corrupt)?;
        let used = notebook.entries.iter().map(|e| e.id).max().unwrap_or(0);
        notebook.next_id = notebook.next_id.max(used + 1);
        Ok(notebook)
    }

    /// Loads `dir/notebook.json`.
    ///
    /// # Errors
    /// [`NotebookError::Io`] (missing or unreadable file), [`NotebookError::Corrupt`],
    /// [`NotebookError::NewerFormat`].
    pub fn load(dir: &Path) -> Result<Self, NotebookError> {
        let path = dir.join(NOTEBOOK_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| NotebookError::Io {
            path: path.clone(),
            source,
        })?;
        Self::from_json(&text, &path)
    }

    /// Loads `dir/notebook.json`, or an empty notebook when the folder has none yet.
    ///
    /// # Errors
    /// As [`Notebook::load`], except a missing file.
    pub fn load_or_new(dir: &Path) -> Result<Self, NotebookError> {
        if dir.join(NOTEBOOK_FILE).exists() {
            Self::load(dir)
        } else {
            Ok(Self::default())
        }
    }

    /// Writes `dir/notebook.json` atomically (creating `dir` and `dir/thumbnails`).
    ///
    /// Refuses to replace an existing `notebook.json` that does not load (corrupt or newer
    /// format): that file is left exactly as it was.
    ///
    /// # Errors
    /// [`NotebookError::Io`]; the load errors of the existing file.
    pub fn save(&self, dir: &Path) -> Result<(), NotebookError> {
        let path = dir.join(NOTEBOOK_FILE);
        if path.exists() {
            Self::load(dir)?;
        }
        create_dir(&dir.join(THUMBNAIL_DIR))?;
        let mut text = serde_json::to_string_pretty(&Notebook {
            format_version: FORMAT_VERSION,
            next_id: self.next_id,
            entries: self.entries.clone(),
        })
        .map_err(|e| NotebookError::Io {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        text.push('\n');
        write_atomic(&path, text.as_bytes())
    }
}

fn create_dir(dir: &Path) -> Result<(), NotebookError> {
    std::fs::create_dir_all(dir).map_err(|source| NotebookError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename.
///
/// # Errors
/// [`NotebookError::Io`] naming the temporary file or the destination.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), NotebookError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| NotebookError::Io { path: p, source }
    };
    let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io(&tmp));
    drop(file);
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(path)(e)
    })
}

/// The thumbnail file name of entry `id`.
pub fn thumbnail_name(id: u64) -> String {
    format!("entry-{id}.png")
}

/// Renders `matrix` with `scale`, block-max pooled to ≤ [`THUMBNAIL_SIDE`] per side (E15).
///
/// # Complexity
/// O(Lq·Lk) for the pooling, O(THUMBNAIL_SIDE²) for the colours.
pub fn render_thumbnail(matrix: ArrayView2<'_, f32>, scale: &ColorScale) -> image::RgbaImage {
    let pooled = pool(matrix, THUMBNAIL_SIDE, PoolMode::Max);
    let heat = render(pooled.data.view(), scale);
    image::RgbaImage::from_raw(heat.width as u32, heat.height as u32, heat.rgba)
        .unwrap_or_else(|| image::RgbaImage::new(1, 1))
}

/// Writes `image` as `dir/thumbnails/name` (atomic).
///
/// # Errors
/// [`NotebookError::Image`] when encoding fails, [`NotebookError::Io`] when writing fails.
pub fn write_thumbnail(
    dir: &Path,
    name: &str,
    image: &image::RgbaImage,
) -> Result<(), NotebookError> {
    let folder = dir.join(THUMBNAIL_DIR);
    create_dir(&folder)?;
    let path = folder.join(name);
    let mut bytes = Vec::new();
    image
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(|source| NotebookError::Image {
            path: path.clone(),
            source,
        })?;
    write_atomic(&path, &bytes)
}

/// Current UTC time as RFC 3339 (`YYYY-MM-DDTHH:MM:SSZ`).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    crate::experiment::report::utc_timestamp(secs)
}

/// The outcome of [`recompute_metrics`].
#[derive(Debug, Clone, PartialEq)]
pub struct Recomputed {
    /// The metrics, in the same JSON shape the view pins.
    pub metrics: serde_json::Value,
    /// The input's checksum now.
    pub checksum: String,
    /// Whether it differs from the recorded one (the input changed since the pin).
    pub checksum_changed: bool,
}

/// Recomputes an entry's metrics from its recorded configuration (headless "Reopen").
///
/// Decomposition entries: `DecompositionMetrics` of [`decompose`] at the recorded bandwidth and
/// rank. Methods entries: `ErrorMetrics` of [`compare`] of the method against exact attention.
///
/// # Errors
/// [`NotebookError::Recompute`] when the input cannot be loaded, the layer/head is out of range,
/// the computation fails, or the view has no headless recomputation (sweeps).
pub fn recompute_metrics(entry: &Entry) -> Result<Recomputed, NotebookError> {
    let fail = |reason: String| NotebookError::Recompute {
        id: entry.id,
        title: entry.title.clone(),
        reason,
    };
    let set = load_source(&entry.source).map_err(|e| fail(e.to_string()))?;
    let head = set
        .head(entry.layer, entry.head, entry.causal, None)
        .map_err(|e| fail(e.to_string()))?;
    let budget = MatrixBudget::default();
    let metrics = match entry.view.as_str() {
        views::DECOMPOSITION => {
            let d = decompose(&head, entry.params.bandwidth, entry.params.rank, budget)
                .map_err(|e| fail(e.to_string()))?;
            serde_json::to_value(&d.metrics)
        }
        views::METHODS | views::ROUTING => {
            let exact = compute(MethodId::Full, &entry.params, &head, true, budget)
                .map_err(|e| fail(e.to_string()))?;
            let approx = compute(entry.method, &entry.params, &head, true, budget)
                .map_err(|e| fail(e.to_string()))?;
            serde_json::to_value(compare(
                &exact.output,
                &approx.output,
                exact.matrix.as_ref(),
                approx.matrix.as_ref(),
            ))
        }
        other => {
            return Err(fail(format!(
                "the {other} view has no headless recomputation"
            )));
        }
    }
    .map_err(|e| fail(e.to_string()))?;
    Ok(Recomputed {
        metrics,
        checksum_changed: set.checksum != entry.source_checksum,
        checksum: set.checksum,
    })
}
