//! Registry of the bundled real samples (`sample_data/`, provenance in `sample_data/README.md`).
//!
//! All three are real Q/K/V from sentence-transformers `all-MiniLM-L6-v2` (BERT, 12 heads,
//! head_dim 32, bidirectional), extracted by a numpy forward pass; each `NAME.npz` holds `q`,
//! `k`, `v` `[layers, 12, tokens, 32]` float32 before the 1/√32 scale, with `NAME.json` giving
//! the wordpiece tokens, `layers_kept`, `scale` and `causal: false`.

use std::path::{Path, PathBuf};

use super::{DataError, QkvSet, load_path};

/// One bundled sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Name used in `sample:NAME` and the GUI picker.
    pub name: &'static str,
    /// File relative to [`sample_dir`].
    pub file: &'static str,
    /// One-line description for the picker.
    pub description: &'static str,
}

/// The bundled samples; the first (`zen`) is the default the app opens at start.
pub const SAMPLES: &[Sample] = &[
    Sample {
        name: "zen",
        file: "minilm/zen.npz",
        description: "The Zen of Python — MiniLM-L6, layers 0–5, 12 heads, 191 tokens",
    },
    Sample {
        name: "gpl_preamble",
        file: "minilm/gpl_preamble.npz",
        description: "GNU GPL v3 preamble — MiniLM-L6, model layers 1 and 4, 12 heads, 512 tokens",
    },
    Sample {
        name: "bisect_py",
        file: "minilm/bisect_py.npz",
        description: "CPython Lib/bisect.py source — MiniLM-L6, model layer 2, 12 heads, 512 tokens",
    },
];

/// Name of the default sample.
pub const DEFAULT_SAMPLE: &str = "zen";

/// Where the samples live: `$ATTNSCOPE_SAMPLES` if set, else `./sample_data` if it is a
/// directory, else the crate's own `sample_data/` (compile-time `CARGO_MANIFEST_DIR`).
pub fn sample_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ATTNSCOPE_SAMPLES") {
        return PathBuf::from(dir);
    }
    let local = Path::new("sample_data");
    if local.is_dir() {
        return local.to_path_buf();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data")
}

/// Loads a bundled sample by name; its `source` becomes `sample:NAME`.
///
/// # Errors
/// [`DataError::UnknownSample`] listing the known names, or the loader's error.
pub fn load_sample(name: &str) -> Result<QkvSet, DataError> {
    let sample =
        SAMPLES
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| DataError::UnknownSample {
                name: name.to_string(),
                known: SAMPLES
                    .iter()
                    .map(|s| s.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
    let mut set = load_path(&sample_dir().join(sample.file))?;
    set.source = format!("sample:{}", sample.name);
    Ok(set)
}
