//! `config.json` of a BERT-family model (Hugging Face `BertConfig`), checked before any weight
//! is read.

use std::path::Path;

use serde::Deserialize;

use super::EncoderError;

/// The largest accepted sizes (far above BERT-large: hidden 1024, 24 layers, 16 heads,
/// intermediate 4096, 512 positions), so that a hostile config cannot make attnscope plan an
/// absurd allocation before the weights are checked against it.
pub mod limits {
    /// `hidden_size`.
    pub const MAX_HIDDEN: usize = 8192;
    /// `num_hidden_layers`.
    pub const MAX_LAYERS: usize = 128;
    /// `num_attention_heads`.
    pub const MAX_HEADS: usize = 256;
    /// `intermediate_size`.
    pub const MAX_INTERMEDIATE: usize = 65_536;
    /// `max_position_embeddings`.
    pub const MAX_POSITIONS: usize = 65_536;
    /// `vocab_size`.
    pub const MAX_VOCAB: usize = 1_000_000;
    /// `type_vocab_size`.
    pub const MAX_TYPE_VOCAB: usize = 1024;
}

/// The feed-forward activation (`hidden_act`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `"gelu"`: exact erf GELU (BERT, MiniLM).
    GeluErf,
    /// `"gelu_new"`, `"gelu_pytorch_tanh"`, `"gelu_fast"`: the tanh approximation.
    GeluTanh,
    /// `"relu"`.
    Relu,
}

impl Activation {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "gelu" => Some(Self::GeluErf),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Some(Self::GeluTanh),
            "relu" => Some(Self::Relu),
            _ => None,
        }
    }
}

/// The fields of `config.json` attnscope reads (others are ignored), as written by Hugging Face
/// `transformers` for `BertModel` and its task heads.
#[derive(Debug, Clone, Deserialize)]
struct RawConfig {
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    #[serde(default = "default_act")]
    hidden_act: String,
    max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    type_vocab_size: usize,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
    #[serde(default)]
    position_embedding_type: Option<String>,
    #[serde(default)]
    is_decoder: bool,
    #[serde(default)]
    add_cross_attention: bool,
}

fn default_act() -> String {
    String::from("gelu")
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}

/// A checked BERT configuration.
///
/// Supported: `model_type: "bert"` (or, when `model_type` is absent, an `architectures` entry
/// starting with `Bert`), absolute position embeddings, bidirectional encoder (not
/// `is_decoder`, no cross-attention), `hidden_act` ∈ {gelu, gelu_new, gelu_pytorch_tanh,
/// gelu_fast, relu}, `hidden_size` divisible by `num_attention_heads`.
#[derive(Debug, Clone, PartialEq)]
pub struct BertConfig {
    /// Rows of the word-embedding table.
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// Number of encoder layers.
    pub num_layers: usize,
    /// Attention heads per layer.
    pub num_heads: usize,
    /// Feed-forward width.
    pub intermediate_size: usize,
    /// Feed-forward activation.
    pub activation: Activation,
    /// Position-embedding rows = the longest input in tokens (special tokens included).
    pub max_positions: usize,
    /// Rows of the token-type (segment) table.
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f32,
}

impl BertConfig {
    /// `hidden_size / num_heads`.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_heads
    }

    /// Parses and checks `config.json` bytes; `path` names the file in errors.
    ///
    /// # Errors
    /// [`EncoderError::Config`] for malformed JSON or a missing field,
    /// [`EncoderError::UnsupportedArchitecture`] for a model that is not BERT,
    /// [`EncoderError::UnsupportedConfig`] for a BERT variant attnscope does not run or a size
    /// outside [`limits`].
    pub fn from_json_bytes(bytes: &[u8], path: &Path) -> Result<Self, EncoderError> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| EncoderError::Config {
                reason: e.to_string(),
                path: path.to_path_buf(),
            })?;
        let model_type = value
            .get("model_type")
            .and_then(|m| m.as_str())
            .map(str::to_string);
        let architectures: Vec<String> = value
            .get("architectures")
            .and_then(|a| a.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let is_bert = match &model_type {
            Some(t) => t == "bert",
            None => architectures.iter().any(|a| a.starts_with("Bert")),
        };
        if !is_bert {
            return Err(EncoderError::UnsupportedArchitecture {
                model_type: model_type.unwrap_or_else(|| String::from("(none)")),
                architectures: if architectures.is_empty() {
                    String::from("(none)")
                } else {
                    architectures.join(", ")
                },
                path: path.to_path_buf(),
            });
        }
        let raw: RawConfig = serde_json::from_value(value).map_err(|e| EncoderError::Config {
            reason: e.to_string(),
            path: path.to_path_buf(),
        })?;
        let unsupported = |field: &'static str, value: String, supported: &'static str| {
            EncoderError::UnsupportedConfig {
                field,
                value,
                supported,
                path: path.to_path_buf(),
            }
        };
        if let Some(p) = &raw.position_embedding_type
            && p != "absolute"
        {
            return Err(unsupported(
                "position_embedding_type",
                format!("\"{p}\""),
                "\"absolute\"",
            ));
        }
        if raw.is_decoder || raw.add_cross_attention {
            return Err(unsupported(
                "is_decoder / add_cross_attention",
                String::from("true"),
                "a bidirectional encoder without cross-attention",
            ));
        }
        let activation = Activation::parse(&raw.hidden_act).ok_or_else(|| {
            unsupported(
                "hidden_act",
                format!("\"{}\"", raw.hidden_act),
                "gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu",
            )
        })?;
        let sizes: [(&'static str, usize, usize, &'static str); 7] = [
            (
                "hidden_size",
                raw.hidden_size,
                limits::MAX_HIDDEN,
                "1..=8192",
            ),
            (
                "num_hidden_layers",
                raw.num_hidden_layers,
                limits::MAX_LAYERS,
                "1..=128",
            ),
            (
                "num_attention_heads",
                raw.num_attention_heads,
                limits::MAX_HEADS,
                "1..=256",
            ),
            (
                "intermediate_size",
                raw.intermediate_size,
                limits::MAX_INTERMEDIATE,
                "1..=65536",
            ),
            (
                "max_position_embeddings",
                raw.max_position_embeddings,
                limits::MAX_POSITIONS,
                "1..=65536",
            ),
            (
                "vocab_size",
                raw.vocab_size,
                limits::MAX_VOCAB,
                "1..=1000000",
            ),
            (
                "type_vocab_size",
                raw.type_vocab_size,
                limits::MAX_TYPE_VOCAB,
                "1..=1024",
            ),
        ];
        for (field, value, max, range) in sizes {
            if value == 0 || value > max {
                return Err(unsupported(field, value.to_string(), range));
            }
        }
        if !raw.hidden_size.is_multiple_of(raw.num_attention_heads) {
            return Err(unsupported(
                "hidden_size / num_attention_heads",
                format!("{} / {}", raw.hidden_size, raw.num_attention_heads),
                "hidden_size divisible by num_attention_heads",
            ));
        }
        let eps = raw.layer_norm_eps as f32;
        if !(eps.is_finite() && eps >= 0.0) {
            return Err(unsupported(
                "layer_norm_eps",
                raw.layer_norm_eps.to_string(),
                "a finite non-negative number",
            ));
        }
        Ok(Self {
            vocab_size: raw.vocab_size,
            hidden_size: raw.hidden_size,
            num_layers: raw.num_hidden_layers,
            num_heads: raw.num_attention_heads,
            intermediate_size: raw.intermediate_size,
            activation,
            max_positions: raw.max_position_embeddings,
            type_vocab_size: raw.type_vocab_size,
            layer_norm_eps: eps,
        })
    }

    /// The `config.json` text of this configuration (`model_type: "bert"`); used by tests that
    /// write small random-weight models.
    pub fn to_json(&self) -> String {
        let act = match self.activation {
            Activation::GeluErf => "gelu",
            Activation::GeluTanh => "gelu_new",
            Activation::Relu => "relu",
        };
        serde_json::json!({
            "architectures": ["BertModel"],
            "model_type": "bert",
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "intermediate_size": self.intermediate_size,
            "hidden_act": act,
            "max_position_embeddings": self.max_positions,
            "type_vocab_size": self.type_vocab_size,
            "layer_norm_eps": self.layer_norm_eps,
            "position_embedding_type": "absolute",
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINILM: &str = r#"{"architectures": ["BertModel"], "hidden_act": "gelu",
        "hidden_size": 384, "intermediate_size": 1536, "layer_norm_eps": 1e-12,
        "max_position_embeddings": 512, "model_type": "bert", "num_attention_heads": 12,
        "num_hidden_layers": 6, "pad_token_id": 0, "position_embedding_type": "absolute",
        "type_vocab_size": 2, "vocab_size": 30522}"#;

    fn parse(s: &str) -> Result<BertConfig, EncoderError> {
        BertConfig::from_json_bytes(s.as_bytes(), Path::new("config.json"))
    }

    #[test]
    fn minilm_config_parses_and_round_trips() {
        let c = parse(MINILM).unwrap();
        assert_eq!(
            (
                c.hidden_size,
                c.num_layers,
                c.num_heads,
                c.head_dim(),
                c.max_positions
            ),
            (384, 6, 12, 32, 512)
        );
        assert_eq!(c.activation, Activation::GeluErf);
        assert_eq!(parse(&c.to_json()).unwrap(), c);
    }

    #[test]
    fn non_bert_and_unsupported_variants_are_named() {
        let gpt2 = r#"{"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_embd": 768}"#;
        let err = parse(gpt2).unwrap_err().to_string();
        assert!(
            err.contains("'gpt2'") && err.contains("GPT2LMHeadModel"),
            "{err}"
        );
        let rel = MINILM.replace("\"absolute\"", "\"relative_key\"");
        let err = parse(&rel).unwrap_err().to_string();
        assert!(
            err.contains("position_embedding_type") && err.contains("relative_key"),
            "{err}"
        );
        let act = MINILM.replace("\"gelu\"", "\"swish\"");
        assert!(parse(&act).unwrap_err().to_string().contains("hidden_act"));
        let heads = MINILM.replace("\"num_attention_heads\": 12", "\"num_attention_heads\": 7");
        assert!(parse(&heads).unwrap_err().to_string().contains("divisible"));
        let huge = MINILM.replace("\"hidden_size\": 384", "\"hidden_size\": 1000000000");
        assert!(
            parse(&huge)
                .unwrap_err()
                .to_string()
                .contains("hidden_size")
        );
        let missing = MINILM.replace("\"vocab_size\": 30522", "\"vocab\": 30522");
        let err = parse(&missing).unwrap_err().to_string();
        assert!(
            err.contains("vocab_size") && err.contains("config.json"),
            "{err}"
        );
        assert!(parse("[1, 2]").is_err() && parse("not json").is_err());
    }
}
