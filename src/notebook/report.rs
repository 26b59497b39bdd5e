//! The notebook report: `report.md` (every entry in order: title, thumbnail, configuration
//! table, metrics table, the note) plus `metrics.csv` (one row per entry) and a copy of the
//! thumbnails, so the folder reads on any Markdown viewer (relative image links).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{
    Entry, NOTEBOOK_FILE, Notebook, NotebookError, THUMBNAIL_DIR, create_dir, write_atomic,
};

/// The files a report export wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportFiles {
    /// `OUT/report.md`.
    pub markdown: PathBuf,
    /// `OUT/metrics.csv`.
    pub csv: PathBuf,
    /// Thumbnails copied to `OUT/thumbnails/`.
    pub thumbnails: Vec<PathBuf>,
    /// Entries whose thumbnail file was missing (the report says so instead of linking it).
    pub missing_thumbnails: Vec<u64>,
}

/// Loads the notebook in `notebook_dir` and writes its report to `out_dir` (created if
/// missing). Files in `out_dir` are replaced atomically.
///
/// # Errors
/// The load errors of [`Notebook::load`]; [`NotebookError::Io`] / [`NotebookError::Csv`] when
/// writing.
pub fn export_report(notebook_dir: &Path, out_dir: &Path) -> Result<ReportFiles, NotebookError> {
    let notebook = Notebook::load(notebook_dir)?;
    create_dir(out_dir)?;
    let mut thumbnails = Vec::new();
    let mut missing_thumbnails = Vec::new();
    let mut present = BTreeSet::new();
    for entry in &notebook.entries {
        let Some(name) = &entry.thumbnail else {
            continue;
        };
        let from = notebook_dir.join(THUMBNAIL_DIR).join(name);
        match std::fs::read(&from) {
            Ok(bytes) => {
                let dir = out_dir.join(THUMBNAIL_DIR);
                create_dir(&dir)?;
                let to = dir.join(name);
                // Exporting into the notebook folder itself must not rewrite its thumbnails.
                if to != from {
                    write_atomic(&to, &bytes)?;
                }
                thumbnails.push(to);
                present.insert(entry.id);
            }
            Err(_) => missing_thumbnails.push(entry.id),
        }
    }
    let source_name = notebook_dir.join(NOTEBOOK_FILE);
    let markdown = out_dir.join("report.md");
    write_atomic(
        &markdown,
        render_markdown(&notebook, &source_name, &present).as_bytes(),
    )?;
    let csv = out_dir.join("metrics.csv");
    write_atomic(&csv, &render_csv(&notebook, &csv)?)?;
    Ok(ReportFiles {
        markdown,
        csv,
        thumbnails,
        missing_thumbnails,
    })
}

/// Escapes a table cell: pipes, newlines.
fn cell(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

/// The Markdown report. `with_thumbnail` holds the ids whose thumbnail exists.
pub fn render_markdown(
    notebook: &Notebook,
    source: &Path,
    with_thumbnail: &BTreeSet<u64>,
) -> String {
    let mut md = String::new();
    md.push_str("# attnscope notebook report\n\n");
    md.push_str(&format!(
        "{} entries from `{}`, exported {}.\n\n",
        notebook.entries.len(),
        source.display(),
        super::now_rfc3339()
    ));
    for (n, entry) in notebook.entries.iter().enumerate() {
        md.push_str(&format!("## {}. {}\n\n", n + 1, entry.title.trim()));
        match &entry.thumbnail {
            Some(name) if with_thumbnail.contains(&entry.id) => md.push_str(&format!(
                "![{}]({THUMBNAIL_DIR}/{name})\n\n",
                cell(&entry.title).replace(['[', ']'], "")
            )),
            Some(name) => md.push_str(&format!("*(thumbnail `{name}` is missing)*\n\n")),
            None => {}
        }
        md.push_str("| setting | value |\n|---|---|\n");
        for (name, value) in configuration(entry) {
            md.push_str(&format!("| {name} | {} |\n", cell(&value)));
        }
        md.push('\n');
        let metrics = flatten_metrics(&entry.metrics);
        if !metrics.is_empty() {
            md.push_str("| metric | value |\n|---|---|\n");
            for (name, value) in metrics {
                md.push_str(&format!("| {} | {} |\n", cell(&name), cell(&value)));
            }
            md.push('\n');
        }
        let note = entry.note_markdown.trim();
        if !note.is_empty() {
            md.push_str("**Note**\n\n");
            md.push_str(&demote_headings(note));
            md.push_str("\n\n");
        }
    }
    md
}

/// Demotes the note's ATX headings by two levels (`#` → `###`, at most `######`) so they nest
/// under the entry's `##` heading; fenced code is left alone.
fn demote_headings(note: &str) -> String {
    let mut in_code = false;
    let lines: Vec<String> = note
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if trimmed.starts_with("```") {
                in_code = !in_code;
            }
            let level = trimmed.chars().take_while(|&c| c == '#').count();
            let is_heading = (1..=6).contains(&level)
                && trimmed[level..].chars().next().is_none_or(|c| c == ' ');
            if !in_code && is_heading {
                let new_level = (level + 2).min(6);
                format!("{}{}", "#".repeat(new_level), &trimmed[level..])
            } else {
                line.to_string()
            }
        })
        .collect();
    lines.join("\n")
}

/// The configuration rows of an entry (name, value), in report order.
pub fn configuration(entry: &Entry) -> Vec<(&'static str, String)> {
    let p = &entry.params;
    let mut rows = vec![
        ("view", entry.view.clone()),
        ("created", entry.created.clone()),
        ("input", format!("`{}`", entry.source)),
        (
            "input sha256",
            if entry.source_checksum.is_empty() {
                "(not recorded)".into()
            } else {
                format!("`{}`", entry.source_checksum)
            },
        ),
        ("layer", entry.layer.to_string()),
        ("head", entry.head.to_string()),
        (
            "mask",
            if entry.causal {
                "causal".into()
            } else {
                "bidirectional".into()
            },
        ),
        ("method", entry.method.as_str().to_string()),
        ("bandwidth", p.bandwidth.to_string()),
        ("rank", p.rank.to_string()),
    ];
    rows.push((
        "all parameters",
        format!(
            "`{}`",
            serde_json::to_string(p).unwrap_or_else(|e| format!("unserialisable: {e}"))
        ),
    ));
    rows.push((
        "colour",
        format!(
            "{} / {:?}",
            entry.display.colormap.name(),
            entry.display.value_scale
        ),
    ));
    rows
}

/// Flattens a metrics JSON object to (dotted name, value) pairs. Tagged values
/// (`{"kind": …, "value": …}`, e.g. `ErrorValue`) become one column; arrays become compact
/// JSON; `null` becomes an empty string.
pub fn flatten_metrics(metrics: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    flatten_into("", metrics, &mut out);
    out
}

fn flatten_into(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, String)>) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            if let (Some(Value::String(kind)), Some(inner), 2) =
                (map.get("kind"), map.get("value"), map.len())
            {
                let shown = match inner {
                    Value::String(s) => format!("{kind}: {s}"),
                    other if kind == "relative" || kind == "defined" => other.to_string(),
                    other => format!("{other} ({kind})"),
                };
                out.push((prefix.to_string(), shown));
                return;
            }
            for (key, inner) in map {
                let name = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten_into(&name, inner, out);
            }
        }
        Value::Null => out.push((prefix.to_string(), String::new())),
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// `metrics.csv`: fixed configuration columns then the union of every entry's metric names
/// (sorted); an entry without a metric leaves its cell empty.
///
/// # Errors
/// [`NotebookError::Csv`] naming `path`.
pub fn render_csv(notebook: &Notebook, path: &Path) -> Result<Vec<u8>, NotebookError> {
    let flat: Vec<Vec<(String, String)>> = notebook
        .entries
        .iter()
        .map(|e| flatten_metrics(&e.metrics))
        .collect();
    let names: BTreeSet<&str> = flat
        .iter()
        .flat_map(|m| m.iter().map(|(n, _)| n.as_str()))
        .collect();
    let csv_error = |source| NotebookError::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut writer = csv::Writer::from_writer(Vec::new());
    let fixed = [
        "position",
        "id",
        "title",
        "view",
        "created",
        "source",
        "source_checksum",
        "layer",
        "head",
        "causal",
        "method",
        "bandwidth",
        "rank",
        "thumbnail",
    ];
    // A metric named like a configuration column (e.g. `bandwidth`) gets a `metrics.` prefix.
    let header: Vec<String> = names
        .iter()
        .map(|n| {
            if fixed.contains(n) {
                format!("metrics.{n}")
            } else {
                (*n).to_string()
            }
        })
        .collect();
    writer
        .write_record(
            fixed
                .iter()
                .copied()
                .chain(header.iter().map(String::as_str)),
        )
        .map_err(csv_error)?;
    for (n, (entry, metrics)) in notebook.entries.iter().zip(&flat).enumerate() {
        let mut record = vec![
            (n + 1).to_string(),
            entry.id.to_string(),
            entry.title.clone(),
            entry.view.clone(),
            entry.created.clone(),
            entry.source.clone(),
            entry.source_checksum.clone(),
            entry.layer.to_string(),
            entry.head.to_string(),
            entry.causal.to_string(),
            entry.method.as_str().to_string(),
            entry.params.bandwidth.to_string(),
            entry.params.rank.to_string(),
            entry.thumbnail.clone().unwrap_or_default(),
        ];
        for name in &names {
            record.push(
                metrics
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default(),
            );
        }
        writer.write_record(&record).map_err(csv_error)?;
    }
    writer
        .into_inner()
        .map_err(|e| csv_error(csv::Error::from(e.into_error())))
}
