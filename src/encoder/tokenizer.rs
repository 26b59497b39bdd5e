//! Text → wordpiece ids through the Hugging Face `tokenizers` crate reading `tokenizer.json`.

use std::path::{Path, PathBuf};

use tokenizers::{Tokenizer, TruncationParams};

use super::EncoderError;

/// The largest text accepted before tokenising, in bytes (1 MiB, far more than 512 tokens need):
/// a pasted book is refused at once instead of being tokenised only to be refused.
pub const MAX_TEXT_BYTES: usize = 1 << 20;

/// A tokenised text.
#[derive(Debug, Clone, PartialEq)]
pub struct Tokens {
    /// Vocabulary ids, `[CLS]` … `[SEP]` included.
    pub ids: Vec<u32>,
    /// Segment (token type) ids.
    pub type_ids: Vec<u32>,
    /// The wordpieces as strings (`"[CLS]"`, `"the"`, `"##ed"`, …).
    pub tokens: Vec<String>,
    /// True when the text was cut to the model's length (only with `truncate`).
    pub truncated: bool,
}

/// A `tokenizer.json` ready to encode single texts with the model's special tokens.
///
/// The file's own truncation and padding settings (MiniLM's says "truncate and pad to 128")
/// are switched off: the whole text is encoded and the caller enforces the model's limit.
#[derive(Debug, Clone)]
pub struct TextTokenizer {
    plain: Tokenizer,
    path: PathBuf,
}

impl TextTokenizer {
    /// Parses `tokenizer.json` bytes; `path` names the file in errors.
    ///
    /// # Errors
    /// [`EncoderError::Tokenizer`] when the file is not a tokenizer the crate reads.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, EncoderError> {
        let mut plain = Tokenizer::from_bytes(bytes).map_err(|e| EncoderError::Tokenizer {
            reason: e.to_string(),
            path: path.to_path_buf(),
        })?;
        plain
            .with_truncation(None)
            .map_err(|e| EncoderError::Tokenizer {
                reason: e.to_string(),
                path: path.to_path_buf(),
            })?;
        plain.with_padding(None);
        Ok(Self {
            plain,
            path: path.to_path_buf(),
        })
    }

    /// The file this tokenizer came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One more than the largest token id the tokenizer can produce (added tokens included):
    /// the model's embedding table must have at least this many rows.
    pub fn id_bound(&self) -> usize {
        self.plain
            .get_vocab(true)
            .values()
            .max()
            .map_or(0, |&m| m as usize + 1)
    }

    /// Encodes one text with the special tokens (`[CLS]` text `[SEP]` for BERT).
    ///
    /// `max_tokens` is the model's limit (its position-embedding rows). Over it, the text is
    /// refused, or with `truncate` cut to the first `max_tokens` tokens, special tokens
    /// included (`[CLS]`, the first `max_tokens − 2` wordpieces, `[SEP]`).
    ///
    /// # Errors
    /// [`EncoderError::EmptyText`] for a text that is empty or only whitespace,
    /// [`EncoderError::TextTooLong`] over `max_tokens` (or over [`MAX_TEXT_BYTES`]) without
    /// `truncate`, [`EncoderError::Tokenizer`] when the tokenizer fails.
    pub fn encode(
        &self,
        text: &str,
        max_tokens: usize,
        truncate: bool,
    ) -> Result<Tokens, EncoderError> {
        if text.trim().is_empty() {
            return Err(EncoderError::EmptyText);
        }
        if text.len() > MAX_TEXT_BYTES {
            return Err(EncoderError::TextTooLong {
                tokens: None,
                bytes: text.len(),
                limit: max_tokens,
            });
        }
        let fail = |e: tokenizers::Error| EncoderError::Tokenizer {
            reason: e.to_string(),
            path: self.path.clone(),
        };
        let encoding = self.plain.encode(text, true).map_err(fail)?;
        let mut truncated = false;
        let encoding = if encoding.len() <= max_tokens {
            encoding
        } else if truncate {
            truncated = true;
            let mut cutter = self.plain.clone();
            cutter
                .with_truncation(Some(TruncationParams {
                    max_length: max_tokens,
                    ..TruncationParams::default()
                }))
                .map_err(fail)?;
            cutter.encode(text, true).map_err(fail)?
        } else {
            return Err(EncoderError::TextTooLong {
                tokens: Some(encoding.len()),
                bytes: text.len(),
                limit: max_tokens,
            });
        };
        if encoding.is_empty() || encoding.len() > max_tokens {
            return Err(EncoderError::Tokenizer {
                reason: format!(
                    "produced {} tokens for a limit of {max_tokens}",
                    encoding.len()
                ),
                path: self.path.clone(),
            });
        }
        Ok(Tokens {
            ids: encoding.get_ids().to_vec(),
            type_ids: encoding.get_type_ids().to_vec(),
            tokens: encoding.get_tokens().to_vec(),
            truncated,
        })
    }
}
