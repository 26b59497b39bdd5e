//! Loading Q/K/V (npz, npy, safetensors, csv, sidecar JSON), bundled samples, synthetic inputs.
//!
//! Every loader returns a [`QkvSet`]: query/key/value as 4-D arrays
//! `[num_layers, num_heads, seq_len, dim]` (SPEC C0; a 2-D file `[L, d]` becomes `[1, 1, L, d]`,
//! a 3-D file `[H, L, d]` becomes `[1, H, L, d]`), the sidecar metadata, a description of how
//! the axes were read, and the non-finite report of SPEC C6.
//!
//! # Formats (SPEC §4)
//! * `.npz` — arrays `q`, `k`, `v` (aliases `query`, `key`, `value`), plain or
//!   `savez_compressed`. See [`npy`] for the dtypes and orders accepted.
//! * three `.npy` files — [`load_npy_triplet`], or [`load_path`] on a directory holding
//!   `q.npy`/`k.npy`/`v.npy` (or `query.npy`/`key.npy`/`value.npy`), or on one of those files.
//! * `.safetensors` — the same names; f32/f64/f16/bf16; metadata `tokens` (a JSON string).
//! * CSV — one matrix per file ([`csv_matrix`]); [`load_csv_triplet`], or [`load_path`] on a
//!   directory / on one of `q.csv`, `k.csv`, `v.csv`.
//!
//! # Sidecar
//! `<stem>.json` beside the file (`zen.npz` → `zen.json`). For a directory of three files the
//! sidecar is `meta.json` inside it, else `<dirname>.json` beside it; for explicit triplets,
//! `meta.json` in the query file's directory. See [`Sidecar`].
//!
//! # Safety of loading
//! Nothing from a file is executed (object arrays / pickles are refused), no size claimed by a
//! header is allocated before it is checked against the bytes actually present, and no loader
//! panics on any input (property-tested over arbitrary bytes).

pub mod csv_matrix;
pub mod npy;
pub mod safetensors_file;
pub mod samples;
pub mod synth;

use std::fmt;
use std::path::{Path, PathBuf};

use ndarray::{Array4, ArrayD, ArrayView3, Axis, Dimension, Ix4, s};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::attention::{AttentionError, HeadInput, default_scale};

pub use samples::{SAMPLES, Sample, load_sample, sample_dir};
pub use synth::{SynthKind, SynthSpec, generate};

/// Maximum number of non-finite entries recorded individually in [`QkvSet::non_finite`].
pub const MAX_NON_FINITE_RECORDED: usize = 100;
/// Maximum number of non-finite entries spelled out in [`QkvSet::warnings`].
pub const MAX_NON_FINITE_WARNINGS: usize = 10;

/// Errors from loading Q/K/V. Every variant that concerns a file names it (last in the
/// message) and the problem, with the offending values.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file (or directory) could not be read.
    #[error("cannot read: {source}: {path}")]
    Io {
        /// The OS error.
        source: std::io::Error,
        /// The file.
        path: PathBuf,
    },
    /// The file is not in the format its extension claims, or is malformed.
    #[error("not a valid {format} file: {reason}: {path}")]
    Format {
        /// "npy", "npz", "safetensors", "zip" …
        format: &'static str,
        /// What is wrong.
        reason: String,
        /// The file.
        path: PathBuf,
    },
    /// The array's dtype is not one attnscope reads.
    #[error(
        "array '{array}' has unsupported dtype '{dtype}' (supported: float16, bfloat16, float32, float64): {path}"
    )]
    UnsupportedDtype {
        /// Array name in the file.
        array: String,
        /// The dtype as written in the file (e.g. `<i8`, `I64`).
        dtype: String,
        /// The file.
        path: PathBuf,
    },
    /// Object arrays need unpickling, which attnscope never does.
    #[error(
        "array '{array}' has object dtype '{dtype}', which would need unpickling; refused (attnscope never executes anything from a file): {path}"
    )]
    PickleRefused {
        /// Array name in the file.
        array: String,
        /// The dtype as written (e.g. `|O`).
        dtype: String,
        /// The file.
        path: PathBuf,
    },
    /// The header claims more data than the file holds; refused before allocating.
    #[error(
        "array '{array}': header claims shape {shape:?} = {claimed_elements} elements ({claimed_bytes} bytes) but the file holds {available_bytes} data bytes: {path}"
    )]
    SizeMismatch {
        /// Array name in the file.
        array: String,
        /// Shape as claimed by the header.
        shape: Vec<u64>,
        /// Element count claimed (saturating at `u64::MAX`).
        claimed_elements: u64,
        /// Bytes claimed (saturating at `u64::MAX`).
        claimed_bytes: u64,
        /// Data bytes actually present.
        available_bytes: u64,
        /// The file.
        path: PathBuf,
    },
    /// A required array is missing.
    #[error("missing array '{name}' (also accepted: {aliases}); the file holds [{found}]: {path}")]
    MissingArray {
        /// "q", "k" or "v".
        name: &'static str,
        /// Accepted aliases, formatted.
        aliases: String,
        /// Names present in the file, comma separated.
        found: String,
        /// The file.
        path: PathBuf,
    },
    /// An array has a rank other than 2, 3 or 4.
    #[error(
        "array '{array}' has shape {shape}; expected 2-D [tokens, dim], 3-D [heads, tokens, dim] or 4-D [layers, heads, tokens, dim]: {path}"
    )]
    BadRank {
        /// Array name.
        array: String,
        /// Its shape, formatted `(a, b, …)`.
        shape: String,
        /// The file.
        path: PathBuf,
    },
    /// Q/K/V shapes are inconsistent (E16(f)).
    #[error(
        "shape mismatch: {what}: {left_name} has shape {left} but {right_name} has shape {right}: {path}"
    )]
    ShapeMismatch {
        /// Which axis disagrees.
        what: &'static str,
        /// First array name.
        left_name: &'static str,
        /// First shape, formatted `(a, b)`.
        left: String,
        /// Second array name.
        right_name: &'static str,
        /// Second shape, formatted `(a, b)`.
        right: String,
        /// The file(s).
        path: PathBuf,
    },
    /// A CSV file could not be read as a numeric matrix.
    #[error("CSV line {line}{}: {reason}: {path}", column.map(|c| format!(", column {c}")).unwrap_or_default())]
    Csv {
        /// 1-based line number.
        line: u64,
        /// 1-based column number when known.
        column: Option<usize>,
        /// What is wrong.
        reason: String,
        /// The file.
        path: PathBuf,
    },
    /// The sidecar JSON is malformed or has a field of the wrong type.
    #[error("bad sidecar JSON: {reason}: {path}")]
    Sidecar {
        /// What is wrong (from serde_json, with line/column).
        reason: String,
        /// The sidecar file.
        path: PathBuf,
    },
    /// The extension is not one attnscope reads.
    #[error(
        "unsupported input '{extension}' (expected .npz, .npy, .safetensors, .csv or a directory of q/k/v files): {path}"
    )]
    UnsupportedInput {
        /// The extension (or a description).
        extension: String,
        /// The path.
        path: PathBuf,
    },
    /// No bundled sample of that name.
    #[error("unknown sample '{name}' (known: {known})")]
    UnknownSample {
        /// Requested name.
        name: String,
        /// Known names, comma separated.
        known: String,
    },
    /// A `synth:` or `sample:` source string could not be parsed.
    #[error("bad source '{spec}': {reason}")]
    BadSource {
        /// The source string.
        spec: String,
        /// What is wrong.
        reason: String,
    },
    /// A layer index outside `0..num_layers`.
    #[error("layer {layer} out of range: valid layers are 0..{num_layers}: {source_name}")]
    LayerOutOfRange {
        /// Requested layer.
        layer: usize,
        /// Number of layers.
        num_layers: usize,
        /// The input's source.
        source_name: String,
    },
    /// A head index outside `0..num_heads`.
    #[error("head {head} out of range: valid heads are 0..{num_heads}: {source_name}")]
    HeadOutOfRange {
        /// Requested head.
        head: usize,
        /// Number of heads.
        num_heads: usize,
        /// The input's source.
        source_name: String,
    },
    /// A `text:` input could not be encoded (model folder, tokenizer, text length, …).
    #[error("{0}")]
    Encoder(#[from] Box<crate::encoder::EncoderError>),
    /// Building a head input failed (e.g. a non-finite scale).
    #[error("{error}: {source_name}")]
    Attention {
        /// The kernel-side error.
        error: AttentionError,
        /// The input's source.
        source_name: String,
    },
}

impl DataError {
    fn io(source: std::io::Error, path: &Path) -> Self {
        DataError::Io {
            source,
            path: path.to_path_buf(),
        }
    }
    fn format(format: &'static str, reason: impl Into<String>, path: &Path) -> Self {
        DataError::Format {
            format,
            reason: reason.into(),
            path: path.to_path_buf(),
        }
    }
}

/// Optional metadata beside an input: `<stem>.json` (SPEC §4). Unknown fields are ignored.
///
/// Example: `{"tokens": ["[CLS]", "the", …], "causal": false, "scale": 0.1767767,
/// "layers_kept": [0, 1, 2, 3, 4, 5], "model": "all-MiniLM-L6-v2"}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, serde::Serialize)]
pub struct Sidecar {
    /// One token string per query position.
    #[serde(default)]
    pub tokens: Option<Vec<String>>,
    /// One token string per key position (when keys differ from queries).
    #[serde(default)]
    pub key_tokens: Option<Vec<String>>,
    /// Causal (bottom-right aligned, C1) when true. Default false.
    #[serde(default)]
    pub causal: Option<bool>,
    /// Scale multiplying `q·k` (C5); default `1/sqrt(head_dim)`.
    #[serde(default)]
    pub scale: Option<f32>,
    /// Which model layers the file's layer axis holds.
    #[serde(default)]
    pub layers_kept: Option<Vec<usize>>,
    /// Model name.
    #[serde(default)]
    pub model: Option<String>,
    /// Where the text / data came from (JSON key `source`, or `source_text` as in the bundled
    /// samples).
    #[serde(default, alias = "source_text")]
    pub source: Option<String>,
}

impl Sidecar {
    /// Parses sidecar JSON bytes. `path` is only used in the error.
    ///
    /// # Errors
    /// [`DataError::Sidecar`] for malformed JSON, a non-object top level, a field of the wrong
    /// type, or a non-finite / non-positive `scale`.
    pub fn from_json_bytes(bytes: &[u8], path: &Path) -> Result<Self, DataError> {
        let bad = |reason: String| DataError::Sidecar {
            reason,
            path: path.to_path_buf(),
        };
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if !value.is_object() {
            return Err(bad(String::from("the top level must be a JSON object")));
        }
        let sidecar: Sidecar = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
        if let Some(scale) = sidecar.scale
            && !(scale.is_finite() && scale > 0.0)
        {
            return Err(DataError::Sidecar {
                reason: format!("scale {scale} is not a finite positive number"),
                path: path.to_path_buf(),
            });
        }
        Ok(sidecar)
    }

    /// Reads `path` if it exists; `Ok(None)` when it does not.
    ///
    /// # Errors
    /// [`DataError::Io`] if it exists but cannot be read, [`DataError::Sidecar`] if malformed.
    pub fn read_optional(path: &Path) -> Result<Option<Self>, DataError> {
        if !path.is_file() {
            return Ok(None);
        }
        let bytes = std::fs::read(path).map_err(|e| DataError::io(e, path))?;
        Self::from_json_bytes(&bytes, path).map(Some)
    }

    /// Fills fields that are `None` here from `other`.
    fn fill_from(&mut self, other: Sidecar) {
        if self.tokens.is_none() {
            self.tokens = other.tokens;
        }
        if self.key_tokens.is_none() {
            self.key_tokens = other.key_tokens;
        }
        if self.causal.is_none() {
            self.causal = other.causal;
        }
        if self.scale.is_none() {
            self.scale = other.scale;
        }
        if self.layers_kept.is_none() {
            self.layers_kept = other.layers_kept;
        }
        if self.model.is_none() {
            self.model = other.model;
        }
        if self.source.is_none() {
            self.source = other.source;
        }
    }
}

/// One non-finite input value (SPEC C6).
#[derive(Debug, Clone, PartialEq)]
pub struct NonFinite {
    /// "Q", "K" or "V".
    pub tensor: &'static str,
    /// Index in the file's own axes (a `[L, d]` file gives `[token, dim]`).
    pub index: Vec<usize>,
    /// The value (NaN, +inf or −inf).
    pub value: f32,
}

impl fmt::Display for NonFinite {
    /// `K[2,0] is NaN`, `Q[0,1,3,4] is +inf`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let idx: Vec<String> = self.index.iter().map(|i| i.to_string()).collect();
        let what = if self.value.is_nan() {
            "NaN"
        } else if self.value > 0.0 {
            "+inf"
        } else {
            "-inf"
        };
        write!(f, "{}[{}] is {}", self.tensor, idx.join(","), what)
    }
}

/// A loaded input: query/key/value for every layer and head, plus metadata.
///
/// # Shapes (SPEC C0)
/// `q [num_layers, num_heads, seq_len_q, head_dim]`, `k [num_layers, num_heads, seq_len_kv,
/// head_dim]`, `v [num_layers, num_heads, seq_len_kv, value_dim]`. Loaders guarantee that the
/// layer and head axes agree, that `q` and `k` share `head_dim`, and that `k` and `v` share
/// `seq_len_kv` (which may be 0).
#[derive(Debug, Clone)]
pub struct QkvSet {
    /// Queries `[num_layers, num_heads, seq_len_q, head_dim]`.
    pub q: Array4<f32>,
    /// Keys `[num_layers, num_heads, seq_len_kv, head_dim]`.
    pub k: Array4<f32>,
    /// Values `[num_layers, num_heads, seq_len_kv, value_dim]`.
    pub v: Array4<f32>,
    /// Sidecar metadata (tokens, causal, scale, layers kept, model, source).
    pub meta: Sidecar,
    /// Where it came from: a path, `sample:zen`, or `synth:local L=512 d=64 heads=1 seed=0`.
    pub source: String,
    /// How the file's axes were read, e.g.
    /// `q [6, 12, 191, 32] read as [layers, heads, tokens, head_dim]; …`.
    pub interpretation: String,
    /// The first [`MAX_NON_FINITE_RECORDED`] non-finite values found (C6).
    pub non_finite: Vec<NonFinite>,
    /// Total number of non-finite values.
    pub non_finite_count: usize,
    /// Human-readable warnings: non-finite values (`K[2,0] is NaN`), token-count mismatches.
    pub warnings: Vec<String>,
    /// SHA-256 (hex) of the input bytes (triplets: of q, k, v bytes in order; synthetic: of the
    /// source string).
    pub checksum: String,
}

impl QkvSet {
    /// Number of layers (first axis).
    pub fn num_layers(&self) -> usize {
        self.q.shape()[0]
    }
    /// Number of heads (second axis).
    pub fn num_heads(&self) -> usize {
        self.q.shape()[1]
    }
    /// Number of queries.
    pub fn seq_len_q(&self) -> usize {
        self.q.shape()[2]
    }
    /// Number of keys (= values).
    pub fn seq_len_kv(&self) -> usize {
        self.k.shape()[2]
    }
    /// Query/key feature dimension.
    pub fn head_dim(&self) -> usize {
        self.q.shape()[3]
    }
    /// Value feature dimension.
    pub fn value_dim(&self) -> usize {
        self.v.shape()[3]
    }
    /// Sidecar `causal`, default false.
    pub fn causal(&self) -> bool {
        self.meta.causal.unwrap_or(false)
    }

    fn check_layer(&self, layer: usize) -> Result<(), DataError> {
        if layer >= self.num_layers() {
            return Err(DataError::LayerOutOfRange {
                layer,
                num_layers: self.num_layers(),
                source_name: self.source.clone(),
            });
        }
        Ok(())
    }

    /// Views of one layer: `q [H, Lq, d]`, `k [H, Lk, d]`, `v [H, Lk, dv]`.
    ///
    /// # Errors
    /// [`DataError::LayerOutOfRange`] with the valid range.
    #[allow(clippy::type_complexity)]
    pub fn layer_views(
        &self,
        layer: usize,
    ) -> Result<
        (
            ArrayView3<'_, f32>,
            ArrayView3<'_, f32>,
            ArrayView3<'_, f32>,
        ),
        DataError,
    > {
        self.check_layer(layer)?;
        Ok((
            self.q.index_axis(Axis(0), layer),
            self.k.index_axis(Axis(0), layer),
            self.v.index_axis(Axis(0), layer),
        ))
    }

    /// One head's input. `scale = None` → the sidecar scale → `1/sqrt(head_dim)` (C5).
    ///
    /// # Errors
    /// [`DataError::LayerOutOfRange`] / [`DataError::HeadOutOfRange`] with the valid range;
    /// [`DataError::Attention`] for a non-finite scale.
    pub fn head(
        &self,
        layer: usize,
        head: usize,
        causal: bool,
        scale: Option<f32>,
    ) -> Result<HeadInput<'_>, DataError> {
        self.check_layer(layer)?;
        if head >= self.num_heads() {
            return Err(DataError::HeadOutOfRange {
                head,
                num_heads: self.num_heads(),
                source_name: self.source.clone(),
            });
        }
        let scale = scale
            .or(self.meta.scale)
            .unwrap_or_else(|| default_scale(self.head_dim()));
        HeadInput::new(
            self.q.slice(s![layer, head, .., ..]),
            self.k.slice(s![layer, head, .., ..]),
            self.v.slice(s![layer, head, .., ..]),
            Some(scale),
            causal,
        )
        .map_err(|error| DataError::Attention {
            error,
            source_name: self.source.clone(),
        })
    }

    /// A plain-text report for `attnscope info` and the data panel: source, checksum, axis
    /// interpretation, sizes, causal/scale, the first tokens, the non-finite report (C6) and the
    /// warnings. One fact per line.
    pub fn info(&self) -> String {
        let mut lines = vec![
            format!("source: {}", self.source),
            format!("sha256: {}", self.checksum),
            format!("axes: {}", self.interpretation),
            format!(
                "layers {}, heads {}, query tokens {}, key tokens {}, head_dim {}, value_dim {}",
                self.num_layers(),
                self.num_heads(),
                self.seq_len_q(),
                self.seq_len_kv(),
                self.head_dim(),
                self.value_dim()
            ),
        ];
        if let Some(kept) = &self.meta.layers_kept {
            lines.push(format!("model layers kept: {kept:?}"));
        }
        let scale = match self.meta.scale {
            Some(s) => format!("{s} (sidecar)"),
            None => format!("{} (1/sqrt(head_dim))", default_scale(self.head_dim())),
        };
        lines.push(format!("causal: {}, scale: {scale}", self.causal()));
        if let Some(model) = &self.meta.model {
            lines.push(format!("model: {model}"));
        }
        if let Some(text) = &self.meta.source {
            lines.push(format!("text: {text}"));
        }
        match &self.meta.tokens {
            Some(t) => {
                let shown: Vec<&str> = t.iter().take(12).map(String::as_str).collect();
                let more = if t.len() > shown.len() { " …" } else { "" };
                lines.push(format!("tokens ({}): {}{more}", t.len(), shown.join(" ")));
            }
            None => lines.push(String::from("tokens: none (positions are labelled #i)")),
        }
        if self.non_finite_count == 0 {
            lines.push(String::from("non-finite values: none"));
        } else {
            let first: Vec<String> = self
                .non_finite
                .iter()
                .take(5)
                .map(|n| n.to_string())
                .collect();
            lines.push(format!(
                "non-finite values: {} (first: {})",
                self.non_finite_count,
                first.join(", ")
            ));
        }
        for w in &self.warnings {
            lines.push(format!("warning: {w}"));
        }
        lines.join("\n")
    }

    /// Text of query token `i`, or `#i` when there is no token list or it is too short.
    pub fn query_token(&self, i: usize) -> String {
        self.meta
            .tokens
            .as_ref()
            .and_then(|t| t.get(i))
            .cloned()
            .unwrap_or_else(|| format!("#{i}"))
    }

    /// Text of key token `j`: `key_tokens`, else `tokens`, else `#j`.
    pub fn key_token(&self, j: usize) -> String {
        self.meta
            .key_tokens
            .as_ref()
            .or(self.meta.tokens.as_ref())
            .and_then(|t| t.get(j))
            .cloned()
            .unwrap_or_else(|| format!("#{j}"))
    }

    /// `"model layer 4"` when the sidecar's `layers_kept` names it, else `"layer 1"`.
    pub fn layer_label(&self, layer: usize) -> String {
        match self.meta.layers_kept.as_ref().and_then(|l| l.get(layer)) {
            Some(model_layer) => format!("model layer {model_layer}"),
            None => format!("layer {layer}"),
        }
    }
}

/// Formats a shape numpy-style: `(2, 2)`, `(5,)`, `()`.
pub(crate) fn fmt_shape(shape: &[usize]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => {
            let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            format!("({})", parts.join(", "))
        }
    }
}

/// SHA-256 of byte slices, in order, as lowercase hex.
pub(crate) fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The three raw arrays as read from a file, in the file's own axes.
pub(crate) struct RawQkv {
    pub q: ArrayD<f32>,
    pub k: ArrayD<f32>,
    pub v: ArrayD<f32>,
}

fn axis_names(ndim: usize, last: &str) -> String {
    match ndim {
        2 => format!("[tokens, {last}] (one head)"),
        3 => format!("[heads, tokens, {last}]"),
        _ => format!("[layers, heads, tokens, {last}]"),
    }
}

fn to4(array: ArrayD<f32>, name: &str, path: &Path) -> Result<Array4<f32>, DataError> {
    let bad = |a: &ArrayD<f32>| DataError::BadRank {
        array: name.to_string(),
        shape: fmt_shape(a.shape()),
        path: path.to_path_buf(),
    };
    let array = match array.ndim() {
        2 => array.insert_axis(Axis(0)).insert_axis(Axis(0)),
        3 => array.insert_axis(Axis(0)),
        4 => array,
        _ => return Err(bad(&array)),
    };
    array
        .into_dimensionality::<Ix4>()
        .map_err(|_| DataError::BadRank {
            array: name.to_string(),
            shape: String::from("(?)"),
            path: path.to_path_buf(),
        })
}

/// Scans for non-finite values in the file's own axes.
fn scan_non_finite(
    tensor: &'static str,
    array: &ArrayD<f32>,
    found: &mut Vec<NonFinite>,
    count: &mut usize,
) {
    for (index, &value) in array.indexed_iter() {
        if !value.is_finite() {
            *count += 1;
            if found.len() < MAX_NON_FINITE_RECORDED {
                found.push(NonFinite {
                    tensor,
                    index: index.slice().to_vec(),
                    value,
                });
            }
        }
    }
}

/// Checks shapes, converts to 4-D, attaches metadata, scans non-finite values and token counts.
pub(crate) fn assemble(
    raw: RawQkv,
    meta: Sidecar,
    source: String,
    checksum: String,
    path: &Path,
) -> Result<QkvSet, DataError> {
    let (qs, ks, vs) = (
        raw.q.shape().to_vec(),
        raw.k.shape().to_vec(),
        raw.v.shape().to_vec(),
    );
    let interpretation = format!(
        "q {:?} read as {}; k {:?} read as {}; v {:?} read as {}",
        qs,
        axis_names(qs.len(), "head_dim"),
        ks,
        axis_names(ks.len(), "head_dim"),
        vs,
        axis_names(vs.len(), "value_dim")
    );
    let mut non_finite = Vec::new();
    let mut non_finite_count = 0;
    scan_non_finite("Q", &raw.q, &mut non_finite, &mut non_finite_count);
    scan_non_finite("K", &raw.k, &mut non_finite, &mut non_finite_count);
    scan_non_finite("V", &raw.v, &mut non_finite, &mut non_finite_count);

    let q = to4(raw.q, "q", path)?;
    let k = to4(raw.k, "k", path)?;
    let v = to4(raw.v, "v", path)?;
    let mismatch = |what, ln, l: &[usize], rn, r: &[usize]| DataError::ShapeMismatch {
        what,
        left_name: ln,
        left: fmt_shape(l),
        right_name: rn,
        right: fmt_shape(r),
        path: path.to_path_buf(),
    };
    if q.shape()[3] != k.shape()[3] {
        return Err(mismatch("head_dim differs", "q", &qs, "k", &ks));
    }
    if k.shape()[2] != v.shape()[2] {
        return Err(mismatch("number of tokens differs", "k", &ks, "v", &vs));
    }
    if q.shape()[..2] != k.shape()[..2] {
        return Err(mismatch("layers/heads differ", "q", &qs, "k", &ks));
    }
    if k.shape()[..2] != v.shape()[..2] {
        return Err(mismatch("layers/heads differ", "k", &ks, "v", &vs));
    }

    let mut warnings: Vec<String> = non_finite
        .iter()
        .take(MAX_NON_FINITE_WARNINGS)
        .map(|n| n.to_string())
        .collect();
    if non_finite_count > MAX_NON_FINITE_WARNINGS {
        warnings.push(format!(
            "… {} more non-finite values ({} in total)",
            non_finite_count - MAX_NON_FINITE_WARNINGS,
            non_finite_count
        ));
    }
    let (lq, lk, layers) = (q.shape()[2], k.shape()[2], q.shape()[0]);
    if let Some(tokens) = &meta.tokens
        && tokens.len() != lq
    {
        warnings.push(format!(
            "sidecar has {} tokens but q has {} query positions; positions without a token are labelled by index",
            tokens.len(),
            lq
        ));
    }
    if let Some(tokens) = &meta.key_tokens
        && tokens.len() != lk
    {
        warnings.push(format!(
            "sidecar has {} key_tokens but k has {} key positions; positions without a token are labelled by index",
            tokens.len(),
            lk
        ));
    }
    if let Some(kept) = &meta.layers_kept
        && kept.len() != layers
    {
        warnings.push(format!(
            "sidecar layers_kept lists {} layers but the file holds {}",
            kept.len(),
            layers
        ));
    }
    Ok(QkvSet {
        q,
        k,
        v,
        meta,
        source,
        interpretation,
        non_finite,
        non_finite_count,
        warnings,
        checksum,
    })
}

const Q_NAMES: [&str; 2] = ["q", "query"];
const K_NAMES: [&str; 2] = ["k", "key"];
const V_NAMES: [&str; 2] = ["v", "value"];

/// Picks the first present name among `names` (file name lookups), else a MissingArray error.
pub(crate) fn find_name<'a>(
    available: &[&'a str],
    names: &[&str; 2],
    path: &Path,
) -> Result<&'a str, DataError> {
    for want in names {
        if let Some(found) = available.iter().find(|a| **a == *want) {
            return Ok(found);
        }
    }
    Err(DataError::MissingArray {
        name: match names[0] {
            "q" => "q",
            "k" => "k",
            _ => "v",
        },
        aliases: format!("'{}'", names[1]),
        found: available.join(", "),
        path: path.to_path_buf(),
    })
}

fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|e| DataError::io(e, path))
}

/// `<stem>.json` beside `path`.
fn sidecar_beside(path: &Path) -> PathBuf {
    path.with_extension("json")
}

fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_default()
}

fn finish_single(
    raw: RawQkv,
    embedded: Sidecar,
    bytes: &[u8],
    path: &Path,
) -> Result<QkvSet, DataError> {
    let mut meta = Sidecar::read_optional(&sidecar_beside(path))?.unwrap_or_default();
    meta.fill_from(embedded);
    assemble(
        raw,
        meta,
        path.display().to_string(),
        sha256_hex(&[bytes]),
        path,
    )
}

/// Loads an `.npz` already in memory; `path` names it in errors and locates the sidecar.
///
/// # Errors
/// See [`DataError`]; never panics on any bytes.
pub fn load_npz_bytes(bytes: &[u8], path: &Path) -> Result<QkvSet, DataError> {
    let raw = npy::read_npz_qkv(bytes, path)?;
    finish_single(raw, Sidecar::default(), bytes, path)
}

/// Loads a `.safetensors` file already in memory (metadata `tokens` etc. used when no sidecar
/// file gives them).
///
/// # Errors
/// See [`DataError`]; never panics on any bytes.
pub fn load_safetensors_bytes(bytes: &[u8], path: &Path) -> Result<QkvSet, DataError> {
    let (raw, embedded) = safetensors_file::read_qkv(bytes, path)?;
    finish_single(raw, embedded, bytes, path)
}

/// Loads an input by its path (see the module docs for formats and sidecar rules):
/// `.npz`, `.safetensors`, a directory holding `q/k/v.npy` or `q/k/v.csv`, or one of
/// `q.npy`/`k.npy`/`v.npy` (`query.npy`, … or `NAME_q.npy`, …) with the other two beside it
/// (likewise `.csv`).
///
/// # Errors
/// See [`DataError`].
pub fn load_path(path: &Path) -> Result<QkvSet, DataError> {
    if path.is_dir() {
        return load_dir(path);
    }
    match extension(path).as_str() {
        "npz" => load_npz_bytes(&read_file(path)?, path),
        "safetensors" => load_safetensors_bytes(&read_file(path)?, path),
        ext @ ("npy" | "csv") => {
            let (q, k, v) = sibling_triplet(path, ext)?;
            if ext == "npy" {
                load_npy_triplet(&q, &k, &v)
            } else {
                load_csv_triplet(&q, &k, &v)
            }
        }
        other => Err(DataError::UnsupportedInput {
            extension: if other.is_empty() {
                String::from("(no extension)")
            } else {
                format!(".{other}")
            },
            path: path.to_path_buf(),
        }),
    }
}

/// Given `dir/q.npy` (or `query.npy`, `x_q.npy`, `x_query.npy`), the three sibling paths.
fn sibling_triplet(path: &Path, ext: &str) -> Result<(PathBuf, PathBuf, PathBuf), DataError> {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let dir = path.parent().unwrap_or(Path::new(""));
    let families: [[&str; 3]; 2] = [["q", "k", "v"], ["query", "key", "value"]];
    for family in families {
        for member in family {
            let prefix = if stem == member {
                Some("")
            } else {
                stem.strip_suffix(member)
                    .filter(|p| p.ends_with('_') || p.ends_with('-') || p.ends_with('.'))
            };
            if let Some(prefix) = prefix {
                let p = |m: &str| dir.join(format!("{prefix}{m}.{ext}"));
                let (q, k, v) = (p(family[0]), p(family[1]), p(family[2]));
                for f in [&q, &k, &v] {
                    if !f.is_file() {
                        return Err(DataError::Io {
                            source: std::io::Error::new(
                                std::io::ErrorKind::NotFound,
                                format!(
                                    "a .{ext} file holds one matrix; expected {} beside it",
                                    f.display()
                                ),
                            ),
                            path: path.to_path_buf(),
                        });
                    }
                }
                return Ok((q, k, v));
            }
        }
    }
    Err(DataError::UnsupportedInput {
        extension: format!(
            ".{ext} file not named q/k/v (a .{ext} holds one matrix: name them q.{ext}, k.{ext}, v.{ext} or pass a directory)"
        ),
        path: path.to_path_buf(),
    })
}

fn load_dir(dir: &Path) -> Result<QkvSet, DataError> {
    for ext in ["npy", "csv"] {
        for family in [["q", "k", "v"], ["query", "key", "value"]] {
            let p = |m: &str| dir.join(format!("{m}.{ext}"));
            if p(family[0]).is_file() {
                let (q, k, v) = (p(family[0]), p(family[1]), p(family[2]));
                // Directory sidecar: meta.json inside, else <dirname>.json beside it.
                let inside = dir.join("meta.json");
                let sidecar = if inside.is_file() {
                    inside
                } else {
                    dir.with_extension("json")
                };
                let parse = if ext == "npy" {
                    npy::parse_npy
                } else {
                    parse_csv_dyn
                };
                let mut set = load_triplet_with(&q, &k, &v, parse, &sidecar)?;
                set.source = dir.display().to_string();
                return Ok(set);
            }
        }
    }
    Err(DataError::UnsupportedInput {
        extension: String::from("directory without q.npy/k.npy/v.npy or q.csv/k.csv/v.csv"),
        path: dir.to_path_buf(),
    })
}

/// Parses one array file (bytes, array name, path) into the file's own axes.
type MatrixParser = fn(&[u8], &str, &Path) -> Result<ArrayD<f32>, DataError>;

fn load_triplet_with(
    q: &Path,
    k: &Path,
    v: &Path,
    parse: MatrixParser,
    sidecar: &Path,
) -> Result<QkvSet, DataError> {
    let (qb, kb, vb) = (read_file(q)?, read_file(k)?, read_file(v)?);
    let raw = RawQkv {
        q: parse(&qb, "q", q)?,
        k: parse(&kb, "k", k)?,
        v: parse(&vb, "v", v)?,
    };
    let meta = Sidecar::read_optional(sidecar)?.unwrap_or_default();
    let names = PathBuf::from(format!("{}, {}, {}", q.display(), k.display(), v.display()));
    assemble(
        raw,
        meta,
        q.display().to_string(),
        sha256_hex(&[&qb, &kb, &vb]),
        &names,
    )
}

/// Loads three `.npy` files (query, key, value). Sidecar: `meta.json` in `q`'s directory.
///
/// # Errors
/// See [`DataError`]; errors name the file they concern.
pub fn load_npy_triplet(q: &Path, k: &Path, v: &Path) -> Result<QkvSet, DataError> {
    load_triplet_with(q, k, v, npy::parse_npy, &triplet_sidecar(q))
}

fn triplet_sidecar(q: &Path) -> PathBuf {
    q.parent().unwrap_or(Path::new("")).join("meta.json")
}

fn parse_csv_dyn(bytes: &[u8], _name: &str, path: &Path) -> Result<ArrayD<f32>, DataError> {
    csv_matrix::parse_csv(bytes, path).map(|m| m.into_dyn())
}

/// Loads three CSV files (one matrix each, see [`csv_matrix`]). Sidecar: `meta.json` in `q`'s
/// directory.
///
/// # Errors
/// See [`DataError`]; errors name the file and line.
pub fn load_csv_triplet(q: &Path, k: &Path, v: &Path) -> Result<QkvSet, DataError> {
    load_triplet_with(q, k, v, parse_csv_dyn, &triplet_sidecar(q))
}

/// Loads from a source string: `sample:NAME` (see [`SAMPLES`]), `synth:KIND` with optional
/// `,L=..,d=..,heads=..,seed=..` (see [`SynthSpec::parse`]), `text:TEXT` or
/// `text(model=DIR):TEXT` (the text run through a BERT-family model, see
/// [`crate::encoder::TextSpec`]), or a path.
///
/// # Errors
/// [`DataError::UnknownSample`], [`DataError::BadSource`], [`DataError::Encoder`], or any
/// loader error.
pub fn load_source(spec: &str) -> Result<QkvSet, DataError> {
    if crate::encoder::TextSpec::is_text_spec(spec) {
        let text = crate::encoder::TextSpec::parse(spec).map_err(Box::new)?;
        Ok(crate::encoder::load_text(&text).map_err(Box::new)?)
    } else if let Some(name) = spec.strip_prefix("sample:") {
        load_sample(name)
    } else if spec.starts_with("synth:") {
        Ok(generate(&SynthSpec::parse(spec)?))
    } else {
        load_path(Path::new(spec))
    }
}
