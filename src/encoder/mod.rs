//! A BERT-family text encoder that runs inside attnscope: type a text, get every layer's
//! per-head queries, keys and values as the same [`QkvSet`] the file loaders return.
//!
//! * [`TextModel`] — a loaded model: `config.json` ([`BertConfig`]), the weights
//!   (`model.safetensors`, read through [`crate::nn::WeightStore`]) and `tokenizer.json` (the
//!   Hugging Face `tokenizers` crate). The bundled all-MiniLM-L6-v2
//!   (`sample_data/models/all-MiniLM-L6-v2`, sha256-checked at every load) is the default;
//!   any local folder of a `model_type: "bert"` model works the same way ([`ModelSource`]).
//! * [`TextModel::encode`] — tokenise (`[CLS]` … `[SEP]`, at most `max_position_embeddings`
//!   tokens), run the encoder ([`bert`]) and capture Q, K, V of every layer and head **before**
//!   the `1/√head_dim` scale, bias included: exactly the contract of `sample_data/minilm/*.npz`
//!   and `scripts/export_qkv.py`.
//! * [`TextSpec`] — the `text:` input spec (`text:The cat sat.`,
//!   `text(model=DIR):The cat sat.`) accepted wherever `sample:` and `synth:` are.
//!
//! Nothing is downloaded at run time; the optional `hub` cargo feature adds a download by model
//! id into the Hugging Face cache ([`ModelSource::Hub`]).

pub mod bert;
pub mod config;
pub mod folder;
pub mod hub;
pub mod tokenizer;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ndarray::{Array1, Array2};

pub use bert::{BertEncoder, EncoderOutput, ForwardProgress, mean_pooled_normalized};
pub use config::BertConfig;
pub use folder::{BUNDLED_NAME, ModelBudget, ModelSource, bundled_dir};
pub use tokenizer::{TextTokenizer, Tokens};

use crate::data::{QkvSet, RawQkv, Sidecar, assemble, sha256_hex};
use crate::nn::{NnError, WeightStore};

/// Errors of loading a text model and of encoding a text. Each names the file or folder (last)
/// and the problem, so the CLI and the GUI show it as one line.
#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    /// A file could not be read.
    #[error("cannot read: {source}: {path}")]
    Io {
        /// The OS error.
        source: std::io::Error,
        /// The file.
        path: PathBuf,
    },
    /// The model path is not a folder.
    #[error(
        "not a model folder (expected a folder holding config.json, model.safetensors, tokenizer.json): {path}"
    )]
    NotAFolder {
        /// The path given.
        path: PathBuf,
    },
    /// A file the model needs is not in its folder.
    #[error("model folder has no {file}: {hint}: {dir}")]
    MissingFile {
        /// The missing file.
        file: &'static str,
        /// What the folder holds instead / what to do.
        hint: String,
        /// The folder.
        dir: PathBuf,
    },
    /// A file is larger than its budget (checked before reading).
    #[error("{what} of {bytes} bytes is over the budget of {budget} bytes: {path}")]
    TooLarge {
        /// Which file.
        what: &'static str,
        /// Its size.
        bytes: u64,
        /// The budget.
        budget: u64,
        /// The file or folder.
        path: PathBuf,
    },
    /// A bundled file does not match its recorded size or checksum.
    #[error("bundled model file is changed or damaged: expected {expected}, found {found}: {path}")]
    Checksum {
        /// Expected size or digest.
        expected: String,
        /// What the file has.
        found: String,
        /// The file.
        path: PathBuf,
    },
    /// A file name read from an index would leave the model folder.
    #[error(
        "refused shard name '{name}' (a path read from a file must stay inside its folder): {path}"
    )]
    UnsafePath {
        /// The name as written in the file.
        name: String,
        /// The index file.
        path: PathBuf,
    },
    /// `config.json` (or the weight index) is malformed or lacks a field.
    #[error("bad model config: {reason}: {path}")]
    Config {
        /// What is wrong.
        reason: String,
        /// The file.
        path: PathBuf,
    },
    /// The model is not a BERT.
    #[error(
        "unsupported architecture: model_type '{model_type}' (architectures: {architectures}); attnscope runs BERT-family encoders (model_type \"bert\"): {path}"
    )]
    UnsupportedArchitecture {
        /// `model_type` in the config.
        model_type: String,
        /// `architectures` in the config.
        architectures: String,
        /// The config file.
        path: PathBuf,
    },
    /// A BERT variant attnscope does not run.
    #[error("unsupported {field} = {value} (supported: {supported}): {path}")]
    UnsupportedConfig {
        /// The config field.
        field: &'static str,
        /// Its value.
        value: String,
        /// What is supported.
        supported: &'static str,
        /// The config file.
        path: PathBuf,
    },
    /// `tokenizer.json` could not be read or used.
    #[error("tokenizer: {reason}: {path}")]
    Tokenizer {
        /// What is wrong.
        reason: String,
        /// The file.
        path: PathBuf,
    },
    /// The tokenizer produces ids the model's embedding table does not have.
    #[error(
        "vocabulary mismatch: the tokenizer has ids up to {tokenizer_ids} but the model's vocab_size is {vocab_size}: {path}"
    )]
    Vocabulary {
        /// One more than the tokenizer's largest id.
        tokenizer_ids: usize,
        /// `vocab_size` of config.json.
        vocab_size: usize,
        /// The folder.
        path: PathBuf,
    },
    /// The weights are malformed, lack a tensor, or have a wrong shape or dtype.
    #[error("{0}")]
    Weights(#[from] NnError),
    /// The text is empty.
    #[error("the text is empty: type a sentence")]
    EmptyText,
    /// The text has more tokens than the model has positions.
    #[error("{}", too_long_message(*tokens, *bytes, *limit))]
    TextTooLong {
        /// Its length in tokens (special tokens included), when it was tokenised.
        tokens: Option<usize>,
        /// Its length in bytes.
        bytes: usize,
        /// The model's limit in tokens.
        limit: usize,
    },
    /// A kept layer that the model does not have.
    #[error("layer {layer} out of range: the model has layers 0..{num_layers}")]
    LayerOutOfRange {
        /// The requested layer.
        layer: usize,
        /// Number of layers.
        num_layers: usize,
    },
    /// The run was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// A `text:` spec could not be parsed.
    #[error("bad text spec '{spec}': {reason}")]
    BadSpec {
        /// The spec.
        spec: String,
        /// What is wrong.
        reason: String,
    },
    /// A model id could not be resolved from the Hugging Face cache or downloaded.
    #[error("model '{id}': {reason}")]
    Hub {
        /// The model id.
        id: String,
        /// What failed.
        reason: String,
    },
}

fn too_long_message(tokens: Option<usize>, bytes: usize, limit: usize) -> String {
    match tokens {
        Some(t) => format!(
            "the text has {t} tokens ([CLS] and [SEP] included); the model takes at most {limit}: shorten it (or truncate)"
        ),
        None => format!(
            "the text has {bytes} bytes, far over the model's {limit} tokens: shorten it (or truncate)"
        ),
    }
}

/// Options of [`TextModel::encode`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncodeOptions {
    /// Model layers to keep (sorted and deduplicated); `None` keeps every layer.
    pub layers: Option<Vec<usize>>,
    /// Cut a text over the limit to its first tokens instead of refusing it.
    pub truncate: bool,
}

/// A text run through a model.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// Q, K, V `[layers, heads, tokens, head_dim]` with tokens, scale `1/√head_dim`,
    /// `causal: false`, layers kept, model name and the text in the sidecar.
    pub set: QkvSet,
    /// The tokenisation.
    pub tokens: Tokens,
    /// Last hidden states `[tokens, hidden_size]` (when every layer ran).
    pub hidden: Option<Array2<f32>>,
}

/// A loaded text model: configuration, weights and tokenizer.
#[derive(Debug)]
pub struct TextModel {
    source: ModelSource,
    dir: PathBuf,
    weights_sha256: String,
    tokenizer: TextTokenizer,
    encoder: BertEncoder,
}

impl TextModel {
    /// Loads a model with the default [`ModelBudget`].
    ///
    /// # Errors
    /// See [`TextModel::load_with_budget`].
    pub fn load(source: &ModelSource) -> Result<Self, EncoderError> {
        Self::load_with_budget(source, ModelBudget::default())
    }

    /// The bundled all-MiniLM-L6-v2.
    ///
    /// # Errors
    /// As [`TextModel::load_with_budget`]; [`EncoderError::Checksum`] when a bundled file
    /// changed.
    pub fn bundled() -> Result<Self, EncoderError> {
        Self::load(&ModelSource::Bundled)
    }

    /// Reads and checks a model folder: files and budgets, the bundled checksums, the config
    /// (BERT only), the tokenizer, the vocabulary (every tokenizer id must be a row of the
    /// embedding table), then every weight tensor's presence, shape and dtype.
    ///
    /// # Errors
    /// Every [`EncoderError`] variant about files, configs, tokenizers and weights; each names
    /// the file or folder.
    pub fn load_with_budget(
        source: &ModelSource,
        budget: ModelBudget,
    ) -> Result<Self, EncoderError> {
        let dir = match source {
            ModelSource::Bundled => bundled_dir(),
            ModelSource::Folder(dir) => dir.clone(),
            ModelSource::Hub(id) => hub::resolve(id)?,
        };
        let files = folder::read_folder(&dir, budget)?;
        if *source == ModelSource::Bundled {
            folder::verify_bundled(&files)?;
        }
        let config = BertConfig::from_json_bytes(&files.config, &dir.join("config.json"))?;
        let tokenizer = TextTokenizer::from_bytes(&files.tokenizer, &dir.join("tokenizer.json"))?;
        let tokenizer_ids = tokenizer.id_bound();
        if tokenizer_ids > config.vocab_size {
            return Err(EncoderError::Vocabulary {
                tokenizer_ids,
                vocab_size: config.vocab_size,
                path: dir,
            });
        }
        let mut store = WeightStore::default();
        for (path, bytes) in files.weights {
            store.add_file(bytes, &path)?;
        }
        let encoder = BertEncoder::from_weights(config, &store)?;
        Ok(Self {
            source: source.clone(),
            dir,
            weights_sha256: files.weights_sha256,
            tokenizer,
            encoder,
        })
    }

    /// Where the model came from.
    pub fn source(&self) -> &ModelSource {
        &self.source
    }

    /// Its folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// sha256 (hex) of the weight bytes.
    pub fn weights_sha256(&self) -> &str {
        &self.weights_sha256
    }

    /// The configuration.
    pub fn config(&self) -> &BertConfig {
        self.encoder.config()
    }

    /// The encoder.
    pub fn encoder(&self) -> &BertEncoder {
        &self.encoder
    }

    /// The longest input in tokens, special tokens included (`max_position_embeddings`).
    pub fn max_tokens(&self) -> usize {
        self.config().max_positions
    }

    /// Tokenises `text` for this model.
    ///
    /// # Errors
    /// See [`TextTokenizer::encode`].
    pub fn tokenize(&self, text: &str, truncate: bool) -> Result<Tokens, EncoderError> {
        self.tokenizer.encode(text, self.max_tokens(), truncate)
    }

    /// Tokenises and encodes `text`, capturing Q, K, V (see the module docs). `spec` becomes the
    /// set's `source` (e.g. the `text:` spec that reproduces it).
    ///
    /// # Errors
    /// [`EncoderError::EmptyText`], [`EncoderError::TextTooLong`],
    /// [`EncoderError::LayerOutOfRange`], [`EncoderError::Cancelled`] (from `progress`).
    pub fn encode(
        &self,
        text: &str,
        spec: &str,
        options: &EncodeOptions,
        progress: &mut dyn FnMut(ForwardProgress) -> ControlFlow<()>,
    ) -> Result<Encoded, EncoderError> {
        let tokens = self.tokenize(text, options.truncate)?;
        let out = self.encoder.forward(
            &tokens.ids,
            &tokens.type_ids,
            options.layers.as_deref(),
            progress,
        )?;
        let head_dim = self.config().head_dim();
        let meta = Sidecar {
            tokens: Some(tokens.tokens.clone()),
            key_tokens: None,
            causal: Some(false),
            scale: Some(1.0 / (head_dim as f32).sqrt()),
            layers_kept: Some(out.layers_kept.clone()),
            model: Some(self.source.display_name()),
            source: Some(text.to_string()),
        };
        let raw = RawQkv {
            q: out.q.into_dyn(),
            k: out.k.into_dyn(),
            v: out.v.into_dyn(),
        };
        let checksum = sha256_hex(&[spec.as_bytes(), b"\0", self.weights_sha256.as_bytes()]);
        let mut set = assemble(raw, meta, spec.to_string(), checksum, &self.dir).map_err(|e| {
            EncoderError::BadSpec {
                spec: spec.to_string(),
                reason: e.to_string(),
            }
        })?;
        set.interpretation = format!(
            "q/k/v [{}, {}, {}, {}] computed by {} as [layers, heads, tokens, head_dim] (before the 1/sqrt({head_dim}) scale)",
            set.num_layers(),
            set.num_heads(),
            set.seq_len_q(),
            head_dim,
            self.source.display_name()
        );
        if tokens.truncated {
            set.warnings.push(format!(
                "the text was truncated to the model's {} tokens",
                self.max_tokens()
            ));
        }
        Ok(Encoded {
            set,
            tokens,
            hidden: out.hidden,
        })
    }

    /// The sentence embedding of `text`: mean-pooled, L2-normalised last hidden states (how
    /// sentence-transformers uses all-MiniLM-L6-v2).
    ///
    /// # Errors
    /// As [`TextModel::encode`].
    pub fn sentence_embedding(&self, text: &str) -> Result<Array1<f32>, EncoderError> {
        let tokens = self.tokenize(text, false)?;
        let out = self
            .encoder
            .forward(&tokens.ids, &tokens.type_ids, None, &mut |_| {
                ControlFlow::Continue(())
            })?;
        let hidden = out.hidden.expect("every layer ran");
        Ok(mean_pooled_normalized(&hidden))
    }
}

/// A `text:` input: a text and the model that encodes it.
///
/// Syntax: `text:TEXT` (the bundled model), `text(model=DIR):TEXT` or
/// `text(model=hub:ORG/NAME):TEXT`. One pair of double quotes around TEXT is removed
/// (`text:"The cat sat."`). The model part ends at the first `):`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TextSpec {
    /// The text.
    pub text: String,
    /// The model.
    pub model: ModelSource,
}

impl TextSpec {
    /// True when `spec` is a `text:` / `text(…):` spec.
    pub fn is_text_spec(spec: &str) -> bool {
        spec.starts_with("text:") || spec.starts_with("text(")
    }

    /// Parses a `text:` spec.
    ///
    /// # Errors
    /// [`EncoderError::BadSpec`] for a spec that is not `text:…` or `text(model=…):…`.
    pub fn parse(spec: &str) -> Result<Self, EncoderError> {
        let bad = |reason: &str| EncoderError::BadSpec {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        let (model, text) = if let Some(rest) = spec.strip_prefix("text:") {
            (ModelSource::Bundled, rest)
        } else if let Some(rest) = spec.strip_prefix("text(") {
            let (inside, text) = rest
                .split_once("):")
                .ok_or_else(|| bad("expected text(model=DIR):TEXT"))?;
            let dir = inside
                .strip_prefix("model=")
                .ok_or_else(|| bad("expected text(model=DIR):TEXT"))?;
            (ModelSource::parse(dir), text)
        } else {
            return Err(bad("expected text:TEXT or text(model=DIR):TEXT"));
        };
        let text = text
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(text);
        Ok(Self {
            text: text.to_string(),
            model,
        })
    }

    /// The spec string ([`parse`](TextSpec::parse) gives this spec back).
    pub fn spec(&self) -> String {
        match &self.model {
            ModelSource::Bundled => format!("text:{}", self.text),
            other => format!("text(model={}):{}", other.spec(), self.text),
        }
    }
}

/// The most recently used model, kept so that successive texts do not reload it.
static CACHE: Mutex<Option<Arc<TextModel>>> = Mutex::new(None);

/// Loads `source`, or returns the cached model when it is the last one loaded (only one model is
/// kept, so memory stays bounded).
///
/// # Errors
/// As [`TextModel::load`].
pub fn load_cached(source: &ModelSource) -> Result<Arc<TextModel>, EncoderError> {
    let mut cache = CACHE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(model) = cache.as_ref()
        && model.source() == source
    {
        return Ok(Arc::clone(model));
    }
    // Drop the old model before loading the new one.
    *cache = None;
    let model = Arc::new(TextModel::load(source)?);
    *cache = Some(Arc::clone(&model));
    Ok(model)
}

/// Forgets the cached model (e.g. after its folder changed on disk).
pub fn forget_cached() {
    *CACHE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
}

/// Encodes a `text:` spec with the (cached) model it names: every layer, no truncation.
///
/// # Errors
/// Any [`EncoderError`].
pub fn load_text(spec: &TextSpec) -> Result<QkvSet, EncoderError> {
    let model = load_cached(&spec.model)?;
    Ok(model
        .encode(
            &spec.text,
            &spec.spec(),
            &EncodeOptions::default(),
            &mut |_| ControlFlow::Continue(()),
        )?
        .set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_specs_round_trip() {
        for (spec, text, model) in [
            ("text:The cat sat.", "The cat sat.", ModelSource::Bundled),
            ("text:\"quoted: yes\"", "quoted: yes", ModelSource::Bundled),
            (
                "text(model=/m/bert-base):a (b): c",
                "a (b): c",
                ModelSource::Folder(PathBuf::from("/m/bert-base")),
            ),
            (
                "text(model=hub:google-bert/bert-base-uncased):hi",
                "hi",
                ModelSource::Hub(String::from("google-bert/bert-base-uncased")),
            ),
        ] {
            let parsed = TextSpec::parse(spec).unwrap();
            assert_eq!(
                (parsed.text.as_str(), &parsed.model),
                (text, &model),
                "{spec}"
            );
            assert_eq!(TextSpec::parse(&parsed.spec()).unwrap(), parsed);
        }
        for bad in ["text(model=x)", "text(dir=x):hi", "sample:zen"] {
            assert!(TextSpec::parse(bad).is_err(), "{bad}");
        }
        assert!(TextSpec::is_text_spec("text:x") && !TextSpec::is_text_spec("textual.npz"));
    }
}
