//! Exports shared by the GUI and the CLI: heatmap PNG titles, matrices as `.npz`, metrics as
//! JSON and CSV. Every error names the file.

use std::path::{Path, PathBuf};

use ndarray::ArrayView2;
use serde::Serialize;

use super::RenderError;
use super::heatmap::Pooled;
use super::png::{PngOptions, write_png};

/// Errors while exporting.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The file could not be created or written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// Destination file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The `.npz` writer failed.
    #[error("cannot write {path}: {reason}")]
    Npz {
        /// Destination file.
        path: PathBuf,
        /// The writer's message.
        reason: String,
    },
    /// Two arrays of one `.npz` have the same name.
    #[error("cannot write {path}: array name '{name}' is used twice")]
    DuplicateName {
        /// Destination file.
        path: PathBuf,
        /// The repeated name.
        name: String,
    },
    /// Serialising metrics failed.
    #[error("cannot write {path}: {reason}")]
    Format {
        /// Destination file.
        path: PathBuf,
        /// The serialiser's message.
        reason: String,
    },
    /// The PNG could not be rendered or written.
    #[error(transparent)]
    Render(#[from] RenderError),
}

/// What a heatmap shows, for its PNG title (`input / layer / head / method / parameters`).
#[derive(Debug, Clone, Default)]
pub struct HeatmapTitle {
    /// Input source (file name, `sample:…`, `synth:…`).
    pub input: String,
    /// Layer label, e.g. `layer 0` or `model layer 4`.
    pub layer: String,
    /// Head index.
    pub head: usize,
    /// Method or panel, e.g. `fmm Â` or `near field`.
    pub method: String,
    /// Parameters, e.g. `bandwidth 4, rank 8, causal`.
    pub parameters: String,
}

impl HeatmapTitle {
    /// The title lines: `input / layer / head / method` and the parameters.
    pub fn lines(&self) -> Vec<String> {
        vec![
            format!(
                "{} / {} / head {} / {}",
                self.input, self.layer, self.head, self.method
            ),
            self.parameters.clone(),
        ]
    }
}

/// A one-line summary of the parameters `method` reads, for titles and file names, e.g.
/// `method fmm, bandwidth 4, w1 0.500, w2 0.500`.
pub fn method_parameters_summary(
    method: crate::attention::MethodId,
    p: &crate::attention::MethodParams,
) -> String {
    let mut parts = vec![format!("method {}", method.as_str())];
    match method.as_str() {
        "band" => parts.push(format!("bandwidth {}", p.bandwidth)),
        "fmm" => parts.push(format!(
            "bandwidth {}, w1 {:.3}, w2 {:.3}",
            p.bandwidth, p.w1, p.w2
        )),
        "svd" => parts.push(format!("rank {}", p.rank)),
        "performer" => parts.push(format!("num_features {}, seed {}", p.num_features, p.seed)),
        "nystrom" => parts.push(format!("num_landmarks {}", p.num_landmarks)),
        "linformer" => parts.push(format!("proj_dim {}, seed {}", p.proj_dim, p.seed)),
        id if id.starts_with("combiner") => parts.push(match p.block {
            Some(b) => format!("block {b}"),
            None => "block ceil(sqrt(L))".into(),
        }),
        _ => {}
    }
    parts.join(", ")
}

/// Writes a heatmap PNG of `matrix` (exact cells, `opts.upscale` nearest neighbour, pooled only
/// above `opts.max_side`) titled with `title` (prepended to `opts.title`).
///
/// # Errors
/// [`ExportError::Render`] naming the file.
pub fn write_heatmap_png(
    path: &Path,
    matrix: ArrayView2<'_, f32>,
    title: &HeatmapTitle,
    opts: &PngOptions,
) -> Result<(), ExportError> {
    let mut opts = opts.clone();
    let mut lines = title.lines();
    lines.append(&mut opts.title);
    opts.title = lines;
    write_png(path, matrix, &opts)?;
    Ok(())
}

/// Writes an already pooled heatmap (very long inputs, E15): its cells as pixels and its
/// "pooled k×k" label as the last title line.
///
/// # Errors
/// [`ExportError::Render`] naming the file.
pub fn write_pooled_png(
    path: &Path,
    pooled: &Pooled,
    title: &HeatmapTitle,
    opts: &PngOptions,
) -> Result<(), ExportError> {
    let mut opts = opts.clone();
    let mut lines = title.lines();
    lines.append(&mut opts.title);
    lines.extend(pooled.label());
    opts.title = lines;
    // Already pooled: draw every pooled cell.
    opts.max_side = opts
        .max_side
        .max(pooled.data.nrows().max(pooled.data.ncols()));
    write_png(path, pooled.data.view(), &opts)?;
    Ok(())
}

/// Writes named 2-D matrices to a compressed `.npz` (one `.npy` member per name, f32, C order),
/// readable by `numpy.load`.
///
/// # Errors
/// [`ExportError::DuplicateName`], [`ExportError::Io`] or [`ExportError::Npz`] naming the file.
pub fn write_npz(path: &Path, arrays: &[(&str, ArrayView2<'_, f32>)]) -> Result<(), ExportError> {
    for (n, (name, _)) in arrays.iter().enumerate() {
        if arrays[..n].iter().any(|(other, _)| other == name) {
            return Err(ExportError::DuplicateName {
                path: path.to_path_buf(),
                name: (*name).to_string(),
            });
        }
    }
    let npz_err = |e: &dyn std::fmt::Display| ExportError::Npz {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let file = std::fs::File::create(path).map_err(|source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut npz = ndarray_npy::NpzWriter::new_compressed(file);
    for (name, array) in arrays {
        npz.add_array(*name, array).map_err(|e| npz_err(&e))?;
    }
    npz.finish().map_err(|e| npz_err(&e))?;
    Ok(())
}

/// Writes `value` as pretty JSON.
///
/// # Errors
/// [`ExportError::Format`] or [`ExportError::Io`] naming the file.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<(), ExportError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| ExportError::Format {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    std::fs::write(path, text).map_err(|source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Flattens a JSON value into `(column, cell)` pairs: nested objects join their keys with `.`,
/// arrays are kept as JSON text, strings unquoted, `null` empty.
///
/// ```
/// let v = serde_json::json!({"head": 1, "metrics": {"band_mass": 0.5, "rank": 8}});
/// let cols = attnscope::render::export::flatten(&serde_json::to_value(&v).unwrap());
/// assert_eq!(cols[1], ("metrics.band_mass".to_string(), "0.5".to_string()));
/// ```
pub fn flatten(value: &serde_json::Value) -> Vec<(String, String)> {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, x) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, x, out);
                }
            }
            serde_json::Value::String(s) => out.push((prefix.to_string(), s.clone())),
            serde_json::Value::Null => out.push((prefix.to_string(), String::new())),
            other => out.push((prefix.to_string(), other.to_string())),
        }
    }
    let mut out = Vec::new();
    walk("", value, &mut out);
    out
}

/// Writes metrics as CSV: one row per record (e.g. per head), columns the union of the
/// records' flattened keys ([`flatten`]) in order of first appearance; missing cells empty.
///
/// # Errors
/// [`ExportError::Format`] (a record is not serialisable, or the CSV writer failed) or
/// [`ExportError::Io`], naming the file.
pub fn write_metrics_csv<T: Serialize>(path: &Path, records: &[T]) -> Result<(), ExportError> {
    let fmt_err = |e: &dyn std::fmt::Display| ExportError::Format {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut rows = Vec::with_capacity(records.len());
    for r in records {
        let value = serde_json::to_value(r).map_err(|e| fmt_err(&e))?;
        rows.push(flatten(&value));
    }
    let mut columns: Vec<String> = Vec::new();
    for row in &rows {
        for (k, _) in row {
            if !columns.contains(k) {
                columns.push(k.clone());
            }
        }
    }
    let file = std::fs::File::create(path).map_err(|source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut w = csv::Writer::from_writer(file);
    w.write_record(&columns).map_err(|e| fmt_err(&e))?;
    for row in &rows {
        let cells = columns.iter().map(|c| {
            row.iter()
                .find(|(k, _)| k == c)
                .map_or("", |(_, v)| v.as_str())
        });
        w.write_record(cells).map_err(|e| fmt_err(&e))?;
    }
    w.flush().map_err(|source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{ColorScale, Colormap, ValueScale};

    #[test]
    fn npz_round_trip_and_duplicate_names() {
        let dir = tempfile::tempdir().unwrap();
        let a = ndarray::array![[1.0_f32, 2.0], [3.0, 4.0]];
        let b = ndarray::Array2::<f32>::eye(3);
        let path = dir.path().join("m.npz");
        write_npz(&path, &[("A", a.view()), ("near", b.view())]).unwrap();
        let mut r = ndarray_npy::NpzReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        let back: ndarray::Array2<f32> = r.by_name("A").unwrap();
        assert_eq!(back, a);
        let back: ndarray::Array2<f32> = r.by_name("near").unwrap();
        assert_eq!(back, b);
        let err = write_npz(&path, &[("A", a.view()), ("A", b.view())]).unwrap_err();
        assert!(err.to_string().contains("'A'"), "{err}");
        let err = write_npz(&dir.path().join("no/dir/x.npz"), &[("A", a.view())]).unwrap_err();
        assert!(err.to_string().contains("x.npz"), "{err}");
    }

    #[test]
    fn metrics_csv_has_union_of_columns_one_row_per_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        let records = vec![
            serde_json::json!({"head": 0, "m": {"x": 0.5, "kind": "relative"}}),
            serde_json::json!({"head": 1, "m": {"x": 0.25}, "extra": null}),
        ];
        write_metrics_csv(&path, &records).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "head,m.kind,m.x,extra");
        assert_eq!(lines[1], "0,relative,0.5,");
        assert_eq!(lines[2], "1,,0.25,");
    }

    #[test]
    fn heatmap_png_title_and_pooled_label() {
        let dir = tempfile::tempdir().unwrap();
        let a = ndarray::Array2::<f32>::eye(6);
        let scale = ColorScale::fit(Colormap::Viridis, ValueScale::Linear, a.iter().copied());
        let title = HeatmapTitle {
            input: "synth:local".into(),
            layer: "layer 0".into(),
            head: 2,
            method: "full A".into(),
            parameters: "bandwidth 4".into(),
        };
        assert_eq!(title.lines()[0], "synth:local / layer 0 / head 2 / full A");
        let mut opts = PngOptions::new(scale);
        opts.upscale = 3;
        let path = dir.path().join("a.png");
        write_heatmap_png(&path, a.view(), &title, &opts).unwrap();
        let img = image::open(&path).unwrap();
        assert!(img.width() >= 18 && img.height() >= 18 + 20);
        let pooled = crate::render::pool(a.view(), 3, crate::render::PoolMode::Max);
        let path = dir.path().join("p.png");
        write_pooled_png(&path, &pooled, &title, &opts).unwrap();
        let small = image::open(&path).unwrap();
        // Three title lines (10 px each) instead of two.
        assert!(small.height() >= 9 + 30, "{}", small.height());
    }
}
