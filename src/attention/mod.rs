//! Attention kernels: pure functions from one head's query/key/value to an output (and, on
//! request, the method's effective attention matrix Â). No I/O, no printing, no UI.
//!
//! # Conventions (SPEC C0–C8)
//!
//! * **C0 shapes.** One head: `q [seq_len_q, head_dim]`, `k [seq_len_kv, head_dim]`,
//!   `v [seq_len_kv, value_dim]`; output `[seq_len_q, value_dim]`; attention matrix
//!   `A [seq_len_q, seq_len_kv]`, row = query, column = key. Storage f32.
//! * **C1 causal alignment is bottom-right:** query `i` may see key `j` iff
//!   `j <= i + (seq_len_kv - seq_len_q)`.
//! * **C2 bandwidth:** see [`band`].
//! * **C3** a query row that sees no key outputs zeros and has an all-zero attention row.
//! * **C5 scale** defaults to `1/sqrt(head_dim)`.
//! * **C6** masked-out keys never contaminate visible rows: masking removes entries.
//! * **C7** every random method takes an explicit seed; results do not depend on thread count.
//! * **C8** an L×L matrix is only materialised within a [`MatrixBudget`].

pub mod band;
pub mod combiner;
pub mod dense;
pub mod fmm;
pub mod linear;
pub mod linformer;
pub mod method;
pub mod nystrom;
pub mod performer;
pub mod simd;
pub mod softmax;
pub mod svd;

use std::ops::Range;

use ndarray::{Array2, ArrayView2};

pub use method::{
    FeatureMap, MethodId, MethodParams, MethodProperties, MethodResult, Normalization, compute,
};

/// Errors from attention kernels. Each variant carries the offending values.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AttentionError {
    /// Q and K disagree on `head_dim`.
    #[error("query head_dim {query} does not match key head_dim {key}")]
    HeadDimMismatch {
        /// `q.ncols()`
        query: usize,
        /// `k.ncols()`
        key: usize,
    },
    /// K and V disagree on `seq_len_kv`.
    #[error("key has {keys} rows but value has {values} rows")]
    KeyValueLengthMismatch {
        /// `k.nrows()`
        keys: usize,
        /// `v.nrows()`
        values: usize,
    },
    /// A parameter is outside the range the method accepts.
    #[error("{method}: invalid {param} = {value}: {reason}")]
    InvalidParameter {
        /// Method id.
        method: &'static str,
        /// Parameter name (SPEC §5 spelling).
        param: &'static str,
        /// The offending value, formatted.
        value: String,
        /// What is allowed.
        reason: String,
    },
    /// The method does not define the requested causality (e.g. Nyström is bidirectional only).
    #[error("{method} is not defined for {mode} attention")]
    UnsupportedCausality {
        /// Method id.
        method: &'static str,
        /// "causal" or "bidirectional".
        mode: &'static str,
    },
    /// Materialising a matrix would exceed the C8 memory budget.
    #[error(
        "a {rows}×{cols} f32 matrix needs {needed_bytes} bytes, over the budget of {budget_bytes} bytes"
    )]
    OverBudget {
        /// Rows requested.
        rows: usize,
        /// Columns requested.
        cols: usize,
        /// Bytes needed.
        needed_bytes: usize,
        /// Bytes allowed.
        budget_bytes: usize,
    },
    /// The scale is not a finite number.
    #[error("scale {0} is not finite")]
    NonFiniteScale(f32),
    /// A numerical step the method needs failed (e.g. the SVD of a matrix holding NaN).
    #[error("{method}: {reason}")]
    Numerical {
        /// Method id.
        method: &'static str,
        /// What failed, with the offending values.
        reason: String,
    },
}

/// The C8 budget: the largest L×L f32 matrix (in bytes) one request may materialise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatrixBudget {
    /// Maximum bytes for one materialised matrix. Default 256 MiB.
    pub bytes: usize,
}

impl Default for MatrixBudget {
    fn default() -> Self {
        Self {
            bytes: 256 * 1024 * 1024,
        }
    }
}

impl MatrixBudget {
    /// `Ok(())` if a `rows × cols` f32 matrix fits, else [`AttentionError::OverBudget`].
    ///
    /// # Errors
    /// [`AttentionError::OverBudget`] when `rows·cols·4` exceeds the budget.
    pub fn check(&self, rows: usize, cols: usize) -> Result<(), AttentionError> {
        let needed_bytes = rows.saturating_mul(cols).saturating_mul(4);
        if needed_bytes > self.bytes {
            Err(AttentionError::OverBudget {
                rows,
                cols,
                needed_bytes,
                budget_bytes: self.bytes,
            })
        } else {
            Ok(())
        }
    }
}

/// One head's attention input: borrowed query/key/value plus scale and causality.
///
/// # Shapes
/// `q [seq_len_q, head_dim]`, `k [seq_len_kv, head_dim]`, `v [seq_len_kv, value_dim]`.
/// Views may be strided or transposed.
#[derive(Debug, Clone, Copy)]
pub struct HeadInput<'a> {
    /// Queries, `[seq_len_q, head_dim]`.
    pub q: ArrayView2<'a, f32>,
    /// Keys, `[seq_len_kv, head_dim]`.
    pub k: ArrayView2<'a, f32>,
    /// Values, `[seq_len_kv, value_dim]`.
    pub v: ArrayView2<'a, f32>,
    /// Multiplies `q·k` (C5). Default `1/sqrt(head_dim)`.
    pub scale: f32,
    /// Causal (bottom-right aligned, C1) or bidirectional.
    pub causal: bool,
}

impl<'a> HeadInput<'a> {
    /// Checks shapes and builds a head input. `scale = None` means `1/sqrt(head_dim)` (C5;
    /// `head_dim = 0` gives scale 1).
    ///
    /// # Errors
    /// [`AttentionError::HeadDimMismatch`], [`AttentionError::KeyValueLengthMismatch`],
    /// [`AttentionError::NonFiniteScale`].
    pub fn new(
        q: ArrayView2<'a, f32>,
        k: ArrayView2<'a, f32>,
        v: ArrayView2<'a, f32>,
        scale: Option<f32>,
        causal: bool,
    ) -> Result<Self, AttentionError> {
        if q.ncols() != k.ncols() {
            return Err(AttentionError::HeadDimMismatch {
                query: q.ncols(),
                key: k.ncols(),
            });
        }
        if k.nrows() != v.nrows() {
            return Err(AttentionError::KeyValueLengthMismatch {
                keys: k.nrows(),
                values: v.nrows(),
            });
        }
        let scale = scale.unwrap_or_else(|| default_scale(q.ncols()));
        if !scale.is_finite() {
            return Err(AttentionError::NonFiniteScale(scale));
        }
        Ok(Self {
            q,
            k,
            v,
            scale,
            causal,
        })
    }

    /// Number of queries.
    pub fn seq_len_q(&self) -> usize {
        self.q.nrows()
    }
    /// Number of keys (= values).
    pub fn seq_len_kv(&self) -> usize {
        self.k.nrows()
    }
    /// Query/key feature dimension.
    pub fn head_dim(&self) -> usize {
        self.q.ncols()
    }
    /// Value feature dimension.
    pub fn value_dim(&self) -> usize {
        self.v.ncols()
    }
    /// Keys query `i` may see under the causal rule C1 (all keys when bidirectional).
    pub fn visible_keys(&self, i: usize) -> Range<usize> {
        visible_keys(i, self.seq_len_q(), self.seq_len_kv(), self.causal)
    }
    /// The query's position on the key axis: `i' = i + (seq_len_kv − seq_len_q)` (may be < 0).
    pub fn aligned_position(&self, i: usize) -> i64 {
        aligned_position(i, self.seq_len_q(), self.seq_len_kv())
    }
    /// An all-zero output `[seq_len_q, value_dim]`.
    pub fn zero_output(&self) -> Array2<f32> {
        Array2::zeros((self.seq_len_q(), self.value_dim()))
    }
}

/// Default scale `1/sqrt(head_dim)` (C5); 1 when `head_dim = 0`.
pub fn default_scale(head_dim: usize) -> f32 {
    if head_dim == 0 {
        1.0
    } else {
        1.0 / (head_dim as f32).sqrt()
    }
}

/// Query `i`'s position on the key axis, `i + (seq_len_kv − seq_len_q)` (C1), as i64.
pub fn aligned_position(i: usize, seq_len_q: usize, seq_len_kv: usize) -> i64 {
    i as i64 + seq_len_kv as i64 - seq_len_q as i64
}

/// Key range visible to query `i` (C1). Causal: `0..=i'` clipped to `0..seq_len_kv`, empty when
/// `i' < 0`; bidirectional: every key.
pub fn visible_keys(i: usize, seq_len_q: usize, seq_len_kv: usize, causal: bool) -> Range<usize> {
    if !causal {
        return 0..seq_len_kv;
    }
    let pos = aligned_position(i, seq_len_q, seq_len_kv);
    if pos < 0 {
        0..0
    } else {
        0..(pos as usize + 1).min(seq_len_kv)
    }
}
