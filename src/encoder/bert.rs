//! The BERT encoder forward pass, capturing every layer's per-head queries, keys and values.
//!
//! ```text
//! x⁰ = LayerNorm(E_word[ids] + E_pos[0..L] + E_type[type_ids])
//! for each layer ℓ:
//!     Q = x Wqᵀ + bq,  K = x Wkᵀ + bk,  V = x Wvᵀ + bv          ← captured per head
//!     C = [softmax(Q_h K_hᵀ / √d_h) V_h]_h                        (all heads, bidirectional)
//!     x = LayerNorm(x + C Woᵀ + bo)
//!     x = LayerNorm(x + act(x W1ᵀ + b1) W2ᵀ + b2)
//! ```
//!
//! # References
//! Devlin et al., "BERT: Pre-training of Deep Bidirectional Transformers for Language
//! Understanding", NAACL 2019 (arXiv 1810.04805), §3 and Fig. 2; Vaswani et al. 2017
//! (arXiv 1706.03762), §3.2–3.3; Hugging Face `transformers` `modeling_bert.py` for the
//! tensor names (`embeddings.*`, `encoder.layer.N.attention.self.query`, …).

use std::ops::ControlFlow;

use ndarray::{Array1, Array2, Array4, Axis, s};

use super::{BertConfig, EncoderError, config::Activation};
use crate::nn::{self, Linear, WeightStore};

/// The weights of one encoder layer.
#[derive(Debug, Clone)]
struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_output: Linear,
    attention_norm: (Array1<f32>, Array1<f32>),
    intermediate: Linear,
    output: Linear,
    output_norm: (Array1<f32>, Array1<f32>),
}

/// A BERT encoder with its weights in memory (f32).
#[derive(Debug, Clone)]
pub struct BertEncoder {
    config: BertConfig,
    word_embeddings: Array2<f32>,
    position_embeddings: Array2<f32>,
    token_type_embeddings: Array2<f32>,
    embedding_norm: (Array1<f32>, Array1<f32>),
    layers: Vec<Layer>,
}

/// What one forward pass returns.
#[derive(Debug, Clone)]
pub struct EncoderOutput {
    /// Queries of the kept layers, `[kept_layers, num_heads, seq_len, head_dim]`, before the
    /// `1/√head_dim` scale, bias included.
    pub q: Array4<f32>,
    /// Keys, same shape.
    pub k: Array4<f32>,
    /// Values, same shape.
    pub v: Array4<f32>,
    /// The model layers the first axis holds.
    pub layers_kept: Vec<usize>,
    /// The last layer's hidden states `[seq_len, hidden_size]` (only when every layer ran).
    pub hidden: Option<Array2<f32>>,
}

/// Progress of a forward pass, reported after the embeddings and after every layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardProgress {
    /// Layers finished.
    pub layers_done: usize,
    /// Layers that will run.
    pub layers_total: usize,
}

/// Where the tensors of a checkpoint live: BertModel files have no prefix, task models
/// (`BertForMaskedLM`, …) put the encoder under `bert.`.
fn find_prefix(store: &WeightStore) -> Result<&'static str, EncoderError> {
    for prefix in ["", "bert."] {
        if store.contains(&format!("{prefix}embeddings.word_embeddings.weight")) {
            return Ok(prefix);
        }
    }
    Err(nn::NnError::MissingTensor {
        name: String::from("embeddings.word_embeddings.weight (or bert.embeddings.…)"),
        count: store.len(),
        examples: store
            .names()
            .into_iter()
            .take(4)
            .collect::<Vec<_>>()
            .join(", "),
        path: store
            .paths()
            .first()
            .map(|p| p.to_path_buf())
            .unwrap_or_default(),
    }
    .into())
}

/// LayerNorm parameters under `base` (`weight`/`bias`, or the older `gamma`/`beta`).
fn norm(
    store: &WeightStore,
    base: &str,
    width: usize,
) -> Result<(Array1<f32>, Array1<f32>), EncoderError> {
    let (w, b) = if store.contains(&format!("{base}.gamma")) {
        ("gamma", "beta")
    } else {
        ("weight", "bias")
    };
    Ok((
        store.vector(&format!("{base}.{w}"), width)?,
        store.vector(&format!("{base}.{b}"), width)?,
    ))
}

fn linear(
    store: &WeightStore,
    base: &str,
    out_features: usize,
    in_features: usize,
) -> Result<Linear, EncoderError> {
    let weight = store.matrix(&format!("{base}.weight"), out_features, in_features)?;
    let bias = store.vector(&format!("{base}.bias"), out_features)?;
    Ok(Linear::new(weight, Some(bias))?)
}

impl BertEncoder {
    /// Reads every tensor the configuration implies, checking each one's shape before
    /// converting it.
    ///
    /// # Errors
    /// [`EncoderError::Weights`] naming the missing or mis-shaped tensor and the file.
    pub fn from_weights(config: BertConfig, store: &WeightStore) -> Result<Self, EncoderError> {
        let p = find_prefix(store)?;
        let (h, i) = (config.hidden_size, config.intermediate_size);
        let word_embeddings = store.matrix(
            &format!("{p}embeddings.word_embeddings.weight"),
            config.vocab_size,
            h,
        )?;
        let position_embeddings = store.matrix(
            &format!("{p}embeddings.position_embeddings.weight"),
            config.max_positions,
            h,
        )?;
        let token_type_embeddings = store.matrix(
            &format!("{p}embeddings.token_type_embeddings.weight"),
            config.type_vocab_size,
            h,
        )?;
        let embedding_norm = norm(store, &format!("{p}embeddings.LayerNorm"), h)?;
        let layers = (0..config.num_layers)
            .map(|l| {
                let base = format!("{p}encoder.layer.{l}");
                Ok(Layer {
                    query: linear(store, &format!("{base}.attention.self.query"), h, h)?,
                    key: linear(store, &format!("{base}.attention.self.key"), h, h)?,
                    value: linear(store, &format!("{base}.attention.self.value"), h, h)?,
                    attention_output: linear(
                        store,
                        &format!("{base}.attention.output.dense"),
                        h,
                        h,
                    )?,
                    attention_norm: norm(store, &format!("{base}.attention.output.LayerNorm"), h)?,
                    intermediate: linear(store, &format!("{base}.intermediate.dense"), i, h)?,
                    output: linear(store, &format!("{base}.output.dense"), h, i)?,
                    output_norm: norm(store, &format!("{base}.output.LayerNorm"), h)?,
                })
            })
            .collect::<Result<Vec<_>, EncoderError>>()?;
        Ok(Self {
            config,
            word_embeddings,
            position_embeddings,
            token_type_embeddings,
            embedding_norm,
            layers,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// Runs the encoder on one sequence and captures Q, K, V of `layers` (sorted, unique model
    /// layer indices; `None` = every layer). Only the layers up to the last kept one run.
    ///
    /// `progress` is called after the embeddings and after each layer; returning
    /// `ControlFlow::Break(())` stops the pass with [`EncoderError::Cancelled`].
    ///
    /// # Shapes
    /// `ids [seq_len]`, `type_ids [seq_len]` (empty means all 0); output as [`EncoderOutput`].
    ///
    /// # Errors
    /// [`EncoderError::TextTooLong`] when `seq_len` exceeds the position table,
    /// [`EncoderError::EmptyText`] for no tokens, [`EncoderError::LayerOutOfRange`],
    /// [`EncoderError::Nn`] for an id outside the vocabulary, [`EncoderError::Cancelled`].
    ///
    /// # Complexity
    /// Per layer `2·L·h·(4h + 2i) + 4·L²·h` FLOPs (h = hidden, i = intermediate); the matrix
    /// products run on all rayon threads. Deterministic for any thread count.
    pub fn forward(
        &self,
        ids: &[u32],
        type_ids: &[u32],
        layers: Option<&[usize]>,
        progress: &mut dyn FnMut(ForwardProgress) -> ControlFlow<()>,
    ) -> Result<EncoderOutput, EncoderError> {
        let c = &self.config;
        let seq_len = ids.len();
        if seq_len == 0 {
            return Err(EncoderError::EmptyText);
        }
        if seq_len > c.max_positions {
            return Err(EncoderError::TextTooLong {
                tokens: Some(seq_len),
                bytes: 0,
                limit: c.max_positions,
            });
        }
        let layers_kept: Vec<usize> = match layers {
            None => (0..c.num_layers).collect(),
            Some(list) => {
                let mut list = list.to_vec();
                list.sort_unstable();
                list.dedup();
                if let Some(&bad) = list.iter().find(|&&l| l >= c.num_layers) {
                    return Err(EncoderError::LayerOutOfRange {
                        layer: bad,
                        num_layers: c.num_layers,
                    });
                }
                if list.is_empty() {
                    return Err(EncoderError::LayerOutOfRange {
                        layer: 0,
                        num_layers: 0,
                    });
                }
                list
            }
        };
        let layers_to_run = layers_kept.last().map_or(0, |&l| l + 1);
        let (heads, head_dim) = (c.num_heads, c.head_dim());
        let scale = 1.0 / (head_dim as f32).sqrt();
        let stop =
            |p: ForwardProgress, progress: &mut dyn FnMut(ForwardProgress) -> ControlFlow<()>| {
                match progress(p) {
                    ControlFlow::Continue(()) => Ok(()),
                    ControlFlow::Break(()) => Err(EncoderError::Cancelled),
                }
            };

        // Embeddings: word + position + token type, then LayerNorm.
        let mut x = nn::embedding(&self.word_embeddings, ids)?;
        x += &self.position_embeddings.slice(s![..seq_len, ..]);
        let zeros;
        let type_ids = if type_ids.is_empty() {
            zeros = vec![0_u32; seq_len];
            &zeros
        } else {
            type_ids
        };
        if type_ids.len() != seq_len {
            return Err(nn::NnError::Shape {
                op: "token type ids",
                expected: format!("[{seq_len}]"),
                found: format!("[{}]", type_ids.len()),
            }
            .into());
        }
        x += &nn::embedding(&self.token_type_embeddings, type_ids)?;
        nn::layer_norm(
            &mut x,
            &self.embedding_norm.0,
            &self.embedding_norm.1,
            c.layer_norm_eps,
        )?;
        stop(
            ForwardProgress {
                layers_done: 0,
                layers_total: layers_to_run,
            },
            progress,
        )?;

        let shape = (layers_kept.len(), heads, seq_len, head_dim);
        let (mut q4, mut k4, mut v4) = (
            Array4::<f32>::zeros(shape),
            Array4::<f32>::zeros(shape),
            Array4::<f32>::zeros(shape),
        );
        for (l, layer) in self.layers.iter().enumerate().take(layers_to_run) {
            let q = layer.query.forward(&x)?;
            let k = layer.key.forward(&x)?;
            let v = layer.value.forward(&x)?;
            if let Ok(slot) = layers_kept.binary_search(&l) {
                for (dst, src) in [(&mut q4, &q), (&mut k4, &k), (&mut v4, &v)] {
                    // [L, H·d] → [L, H, d] → [H, L, d]
                    let per_head = src
                        .view()
                        .into_shape_with_order((seq_len, heads, head_dim))
                        .expect("hidden_size = heads · head_dim (checked by the config)")
                        .permuted_axes([1, 0, 2]);
                    dst.index_axis_mut(Axis(0), slot).assign(&per_head);
                }
            }
            let context = nn::multi_head_attention(&q, &k, &v, heads, Some(scale), false)?;
            let mut attended = layer.attention_output.forward(&context)?;
            attended += &x;
            nn::layer_norm(
                &mut attended,
                &layer.attention_norm.0,
                &layer.attention_norm.1,
                c.layer_norm_eps,
            )?;
            let mut inner = layer.intermediate.forward(&attended)?;
            match c.activation {
                Activation::GeluErf => nn::gelu_erf(&mut inner),
                Activation::GeluTanh => nn::gelu_tanh(&mut inner),
                Activation::Relu => nn::relu(&mut inner),
            }
            let mut out = layer.output.forward(&inner)?;
            out += &attended;
            nn::layer_norm(
                &mut out,
                &layer.output_norm.0,
                &layer.output_norm.1,
                c.layer_norm_eps,
            )?;
            x = out;
            stop(
                ForwardProgress {
                    layers_done: l + 1,
                    layers_total: layers_to_run,
                },
                progress,
            )?;
        }
        let hidden = (layers_to_run == c.num_layers).then_some(x);
        Ok(EncoderOutput {
            q: q4,
            k: k4,
            v: v4,
            layers_kept,
            hidden,
        })
    }
}

/// Mean of the token rows of `hidden` (every token, `[CLS]` and `[SEP]` included, as
/// sentence-transformers' mean pooling with an all-ones attention mask), L2-normalised: the
/// sentence embedding of all-MiniLM-L6-v2 (its `1_Pooling` + `2_Normalize` modules).
///
/// # Shapes
/// `hidden [seq_len, hidden_size]` → `[hidden_size]`; a zero vector stays zero.
pub fn mean_pooled_normalized(hidden: &Array2<f32>) -> Array1<f32> {
    let n = hidden.nrows().max(1) as f64;
    let mean: Vec<f64> = hidden
        .columns()
        .into_iter()
        .map(|c| c.iter().map(|&v| f64::from(v)).sum::<f64>() / n)
        .collect();
    let norm = mean.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
    mean.iter().map(|v| (v / norm) as f32).collect()
}
