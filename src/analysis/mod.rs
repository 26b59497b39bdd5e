//! Analysis on attention matrices: the C4 error measures, the near/far decomposition
//! `A = band_b(A) + F` with the far field's rank-r truncation, and SVD through faer.

pub mod decompose;
pub mod metrics;
pub mod optimal;
pub mod pooled;
pub mod spectrum;
pub mod svd;

pub use decompose::{Decomposition, DecompositionMetrics, decompose};
pub use metrics::{ErrorMetrics, ErrorValue, KlValue, compare};
pub use pooled::{PooledDecomposition, TileControl, pooled_decomposition};

/// Errors from analysis routines.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnalysisError {
    /// A kernel failed (shape, parameter or budget problem).
    #[error(transparent)]
    Attention(#[from] crate::attention::AttentionError),
    /// An SVD input held NaN or infinity.
    #[error("non-finite values in the {0}; the SVD needs finite input")]
    NonFinite(&'static str),
    /// The user cancelled a long computation (checked between row tiles).
    #[error("cancelled")]
    Cancelled,
    /// faer reported a failure.
    #[error("SVD did not converge: {0}")]
    Svd(String),
}
