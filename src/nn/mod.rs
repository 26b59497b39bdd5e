//! Building blocks of transformer forward passes, shared by every model that runs inside
//! attnscope (the BERT-family encoder in [`crate::encoder`], and decoder models): a linear
//! layer on faer's GEMM, layer normalisation, GELU, token embeddings, multi-head softmax
//! attention on the crate's exact kernel, and a store of named weights read from
//! `.safetensors` files.
//!
//! # Conventions
//! * Activations are row-major `[seq_len, features]` f32 arrays: one row per token.
//! * Weights follow PyTorch's `nn.Linear` layout `[out_features, in_features]`
//!   (`y = x Wᵀ + b`); [`Linear::from_in_out`] takes the transposed `Conv1D` layout of GPT-2.
//! * Heads are contiguous column blocks: head `h` of a `[seq_len, num_heads·head_dim]`
//!   projection is columns `h·head_dim .. (h+1)·head_dim` (the layout of BERT and GPT-2).
//! * Nothing here reads files, prints or panics on bad input: shapes that disagree give
//!   [`NnError`] naming the operation and both shapes.
//!
//! # Determinism
//! Every function gives bitwise-identical results for any number of rayon threads: rows and
//! heads are independent tasks, and faer's parallel GEMM splits the output, never a sum.

pub mod activation;
pub mod attention;
pub mod embedding;
pub mod linear;
pub mod norm;
pub mod weights;

pub use activation::{gelu_erf, gelu_tanh, relu};
pub use attention::multi_head_attention;
pub use embedding::embedding;
pub use linear::Linear;
pub use norm::layer_norm;
pub use weights::WeightStore;

use std::path::PathBuf;

use crate::attention::AttentionError;

/// Errors of the building blocks and of the weight store. File-related variants name the file
/// last.
#[derive(Debug, thiserror::Error)]
pub enum NnError {
    /// Two operands of an operation disagree in shape.
    #[error("{op}: expected {expected}, got {found}")]
    Shape {
        /// The operation, e.g. `"linear"` or `"layer_norm gamma"`.
        op: &'static str,
        /// What the operation needs, e.g. `"[*, 384]"`.
        expected: String,
        /// What it was given.
        found: String,
    },
    /// A token id is not a row of the embedding table.
    #[error(
        "token id {id} at position {position} is outside the vocabulary of {vocab_size} entries"
    )]
    TokenOutOfRange {
        /// The token id.
        id: u32,
        /// Its position in the sequence.
        position: usize,
        /// Number of rows in the embedding table.
        vocab_size: usize,
    },
    /// The attention kernel refused its input.
    #[error("attention: {0}")]
    Attention(#[from] AttentionError),
    /// A `.safetensors` file is malformed (bad header, offsets outside the file, …).
    #[error("not a valid safetensors file: {reason}: {path}")]
    WeightsFormat {
        /// What is wrong.
        reason: String,
        /// The file.
        path: PathBuf,
    },
    /// A tensor the model needs is not in its weight files.
    #[error("missing tensor '{name}' (the weights hold {count} tensors, e.g. {examples}): {path}")]
    MissingTensor {
        /// The tensor name that was looked for.
        name: String,
        /// Number of tensors present.
        count: usize,
        /// A few names present, comma separated.
        examples: String,
        /// The weight file(s).
        path: PathBuf,
    },
    /// A tensor has a shape other than the one the model configuration implies.
    #[error("tensor '{name}' has shape {found:?}, the configuration implies {expected:?}: {path}")]
    TensorShape {
        /// Tensor name.
        name: String,
        /// Expected shape.
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
        /// The weight file.
        path: PathBuf,
    },
    /// A tensor has a dtype that is not a float type attnscope converts.
    #[error("tensor '{name}' has dtype {dtype} (supported: F32, F16, BF16, F64): {path}")]
    UnsupportedDtype {
        /// Tensor name.
        name: String,
        /// The dtype in the file.
        dtype: String,
        /// The weight file.
        path: PathBuf,
    },
    /// Two weight files (shards) hold a tensor of the same name.
    #[error("tensor '{name}' appears in two weight files: {first} and {second}")]
    DuplicateTensor {
        /// Tensor name.
        name: String,
        /// The first file holding it.
        first: PathBuf,
        /// The second file.
        second: PathBuf,
    },
    /// A tensor holds NaN or ±inf (SPEC C6 for weights).
    #[error(
        "tensor '{name}' holds {count} non-finite values (first at flat index {first}): {path}"
    )]
    NonFiniteWeights {
        /// Tensor name.
        name: String,
        /// Number of non-finite values.
        count: usize,
        /// Flat index of the first one.
        first: usize,
        /// The weight file.
        path: PathBuf,
    },
}

/// Formats a shape as `[a, b]`.
pub(crate) fn fmt_dims(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(usize::to_string).collect();
    format!("[{}]", parts.join(", "))
}
