//! Model folders: the bundled all-MiniLM-L6-v2 and local Hugging Face snapshots
//! (`config.json`, `model.safetensors` or `model.safetensors.index.json` + shards,
//! `tokenizer.json`), with size budgets checked before reading and checksums.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::EncoderError;
use crate::data::sha256_hex;

/// Folder of the bundled model, relative to [`crate::data::sample_dir`].
pub const BUNDLED_DIR: &str = "models/all-MiniLM-L6-v2";

/// Name the bundled model is shown and recorded under.
pub const BUNDLED_NAME: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// The bundled files with their exact size and sha256 (see the folder's README.md); checked
/// every time the bundled model is loaded.
pub const BUNDLED_FILES: [(&str, u64, &str); 3] = [
    (
        "config.json",
        612,
        "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    ),
    (
        "model.safetensors",
        90_868_376,
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    ),
    (
        "tokenizer.json",
        466_247,
        "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    ),
];

/// Size limits checked against each file's length before it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelBudget {
    /// `config.json` and `model.safetensors.index.json` (default 1 MiB).
    pub max_config_bytes: u64,
    /// `tokenizer.json` (default 64 MiB; multilingual tokenizers reach ~20 MB).
    pub max_tokenizer_bytes: u64,
    /// All weight files together (default 4 GiB: BERT-large in f32 is 1.3 GB).
    pub max_weight_bytes: u64,
}

impl Default for ModelBudget {
    fn default() -> Self {
        Self {
            max_config_bytes: 1 << 20,
            max_tokenizer_bytes: 64 << 20,
            max_weight_bytes: 4 << 30,
        }
    }
}

/// Which model a text runs through.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, serde::Serialize, Deserialize)]
pub enum ModelSource {
    /// The bundled all-MiniLM-L6-v2 (`sample_data/models/all-MiniLM-L6-v2`).
    #[default]
    Bundled,
    /// A local folder (a Hugging Face snapshot).
    Folder(PathBuf),
    /// A Hugging Face model id, resolved through the local cache and, with the `hub` feature,
    /// downloaded into it (see [`super::hub`]).
    Hub(String),
}

impl ModelSource {
    /// `DIR` → a folder, `hub:ORG/NAME` → a model id, `bundled` (or empty) → the bundled model.
    pub fn parse(s: &str) -> Self {
        let s = s.trim();
        if s.is_empty() || s == "bundled" {
            ModelSource::Bundled
        } else if let Some(id) = s.strip_prefix("hub:") {
            ModelSource::Hub(id.to_string())
        } else {
            ModelSource::Folder(PathBuf::from(s))
        }
    }

    /// The inverse of [`parse`](ModelSource::parse).
    pub fn spec(&self) -> String {
        match self {
            ModelSource::Bundled => String::from("bundled"),
            ModelSource::Folder(p) => p.display().to_string(),
            ModelSource::Hub(id) => format!("hub:{id}"),
        }
    }

    /// The name shown to the user and recorded in sidecars.
    pub fn display_name(&self) -> String {
        match self {
            ModelSource::Bundled => String::from(BUNDLED_NAME),
            ModelSource::Folder(p) => p.display().to_string(),
            ModelSource::Hub(id) => id.clone(),
        }
    }
}

/// The bundled model's folder.
pub fn bundled_dir() -> PathBuf {
    crate::data::sample_dir().join(BUNDLED_DIR)
}

/// The bytes of a model's files, read within the budget.
#[derive(Debug)]
pub struct ModelFiles {
    /// The folder.
    pub dir: PathBuf,
    /// `config.json`.
    pub config: Vec<u8>,
    /// `tokenizer.json`.
    pub tokenizer: Vec<u8>,
    /// Weight files (one, or the shards in the index's order) with their paths.
    pub weights: Vec<(PathBuf, Vec<u8>)>,
    /// sha256 over the weight files' bytes, in order (hex).
    pub weights_sha256: String,
}

fn io(source: std::io::Error, path: &Path) -> EncoderError {
    EncoderError::Io {
        source,
        path: path.to_path_buf(),
    }
}

/// Reads a file after checking its length against `max`.
fn read_within(path: &Path, max: u64, what: &'static str) -> Result<Vec<u8>, EncoderError> {
    let len = std::fs::metadata(path).map_err(|e| io(e, path))?.len();
    if len > max {
        return Err(EncoderError::TooLarge {
            what,
            bytes: len,
            budget: max,
            path: path.to_path_buf(),
        });
    }
    std::fs::read(path).map_err(|e| io(e, path))
}

/// What a folder without safetensors weights holds instead, for the error's hint.
fn weights_hint(dir: &Path) -> String {
    let others = [
        ("pytorch_model.bin", "pickled PyTorch weights"),
        (
            "pytorch_model.bin.index.json",
            "sharded pickled PyTorch weights",
        ),
        ("tf_model.h5", "TensorFlow weights"),
        ("flax_model.msgpack", "Flax weights"),
        ("model.onnx", "ONNX weights"),
    ];
    for (name, what) in others {
        if dir.join(name).exists() {
            return format!(
                "the folder has {name} ({what}); attnscope reads only model.safetensors (it never unpickles); convert with transformers: AutoModel.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)"
            );
        }
    }
    String::from("expected model.safetensors or model.safetensors.index.json")
}

#[derive(Deserialize)]
struct ShardIndex {
    weight_map: std::collections::BTreeMap<String, String>,
}

/// A shard name from `model.safetensors.index.json` as a path inside `dir`: a plain file name
/// (no separator, not `.`/`..`, not absolute), so a path read from the file never leaves its
/// folder.
fn shard_path(dir: &Path, name: &str, index: &Path) -> Result<PathBuf, EncoderError> {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && !Path::new(name).is_absolute()
        && Path::new(name).components().count() == 1;
    if !plain {
        return Err(EncoderError::UnsafePath {
            name: name.to_string(),
            path: index.to_path_buf(),
        });
    }
    Ok(dir.join(name))
}

/// Reads a model folder within `budget`.
///
/// # Errors
/// [`EncoderError::NotAFolder`], [`EncoderError::MissingFile`] naming the file and what the
/// folder holds instead, [`EncoderError::TooLarge`], [`EncoderError::UnsafePath`] for a shard
/// name that leaves the folder, [`EncoderError::Config`] for a malformed index, I/O errors.
pub fn read_folder(dir: &Path, budget: ModelBudget) -> Result<ModelFiles, EncoderError> {
    if !dir.is_dir() {
        return Err(EncoderError::NotAFolder {
            path: dir.to_path_buf(),
        });
    }
    let config_path = dir.join("config.json");
    if !config_path.is_file() {
        return Err(EncoderError::MissingFile {
            file: "config.json",
            hint: String::from(
                "a Hugging Face model folder holds config.json, model.safetensors and tokenizer.json",
            ),
            dir: dir.to_path_buf(),
        });
    }
    let tokenizer_path = dir.join("tokenizer.json");
    if !tokenizer_path.is_file() {
        let hint = if dir.join("vocab.txt").is_file() {
            "the folder has only vocab.txt; attnscope reads tokenizer.json (write it with transformers: AutoTokenizer.from_pretrained(dir).save_pretrained(dir))"
        } else {
            "a Hugging Face model folder holds config.json, model.safetensors and tokenizer.json"
        };
        return Err(EncoderError::MissingFile {
            file: "tokenizer.json",
            hint: hint.to_string(),
            dir: dir.to_path_buf(),
        });
    }
    let single = dir.join("model.safetensors");
    let index_path = dir.join("model.safetensors.index.json");
    let weight_paths: Vec<PathBuf> = if single.is_file() {
        vec![single]
    } else if index_path.is_file() {
        let bytes = read_within(&index_path, budget.max_config_bytes, "weight index")?;
        let index: ShardIndex =
            serde_json::from_slice(&bytes).map_err(|e| EncoderError::Config {
                reason: e.to_string(),
                path: index_path.clone(),
            })?;
        let mut names: Vec<&String> = index.weight_map.values().collect();
        names.sort_unstable();
        names.dedup();
        names
            .into_iter()
            .map(|n| shard_path(dir, n, &index_path))
            .collect::<Result<_, _>>()?
    } else {
        return Err(EncoderError::MissingFile {
            file: "model.safetensors",
            hint: weights_hint(dir),
            dir: dir.to_path_buf(),
        });
    };
    let mut total = 0_u64;
    for p in &weight_paths {
        total = total.saturating_add(std::fs::metadata(p).map_err(|e| io(e, p))?.len());
    }
    if total > budget.max_weight_bytes {
        return Err(EncoderError::TooLarge {
            what: "weights",
            bytes: total,
            budget: budget.max_weight_bytes,
            path: dir.to_path_buf(),
        });
    }
    let config = read_within(&config_path, budget.max_config_bytes, "config.json")?;
    let tokenizer = read_within(
        &tokenizer_path,
        budget.max_tokenizer_bytes,
        "tokenizer.json",
    )?;
    let mut weights = Vec::with_capacity(weight_paths.len());
    for p in weight_paths {
        let bytes = read_within(&p, budget.max_weight_bytes, "weights")?;
        weights.push((p, bytes));
    }
    let parts: Vec<&[u8]> = weights.iter().map(|(_, b)| b.as_slice()).collect();
    let weights_sha256 = sha256_hex(&parts);
    Ok(ModelFiles {
        dir: dir.to_path_buf(),
        config,
        tokenizer,
        weights,
        weights_sha256,
    })
}

/// Checks the bundled files against [`BUNDLED_FILES`] (size, then sha256).
///
/// # Errors
/// [`EncoderError::Checksum`] naming the file, the expected and the found digest or size.
pub fn verify_bundled(files: &ModelFiles) -> Result<(), EncoderError> {
    let weights_len = files.weights.first().map_or(0, |(_, b)| b.len());
    let found: [(usize, String); 3] = [
        (files.config.len(), sha256_hex(&[&files.config])),
        // A single weight file: its digest is `weights_sha256` (hashed once, in read_folder).
        (weights_len, files.weights_sha256.clone()),
        (files.tokenizer.len(), sha256_hex(&[&files.tokenizer])),
    ];
    for ((name, size, sha), (len, digest)) in BUNDLED_FILES.iter().zip(found) {
        let path = files.dir.join(name);
        if files.weights.len() != 1 || len as u64 != *size {
            return Err(EncoderError::Checksum {
                expected: format!("{size} bytes"),
                found: format!("{len} bytes"),
                path,
            });
        }
        if digest != *sha {
            return Err(EncoderError::Checksum {
                expected: format!("sha256 {sha}"),
                found: format!("sha256 {digest}"),
                path,
            });
        }
    }
    Ok(())
}
