//! # attnscope
//!
//! A desktop research notebook and visualizer for efficient attention: exact softmax attention,
//! FMMformer's banded near field plus low-rank far field, the low-rank family and Combiner, with
//! the analysis (decompositions, spectra, errors) and rendering behind the GUI and the CLI.
//!
//! ## Conventions (SPEC C0–C8)
//! * **C0** one head: `q [seq_len_q, head_dim]`, `k [seq_len_kv, head_dim]`,
//!   `v [seq_len_kv, value_dim]`; attention `A [seq_len_q, seq_len_kv]`, row = query.
//! * **C1** causal alignment is bottom-right: query `i` sees key `j` iff
//!   `j <= i + (seq_len_kv − seq_len_q)`.
//! * **C2** bandwidth `b`: bidirectional keeps `|i' − j| <= b`, causal `i' − b <= j <= i'`;
//!   FMMformer's `diag_size = b + 1`.
//! * **C3** a query that sees no key outputs zeros and has an all-zero attention row.
//! * **C4** errors: relative Frobenius of the matrix, relative output error, max abs error, mean
//!   row KL where defined.
//! * **C5** scale defaults to `1/sqrt(head_dim)`.
//! * **C6** non-finite input is reported on load; masked keys never contaminate visible rows.
//! * **C7** randomness always takes an explicit seed; results do not depend on thread count.
//! * **C8** an L×L matrix is materialised only within a budget (default 256 MiB).
//!
//! ## Modules
//! * [`attention`] — kernels (pure; no I/O).
//! * [`encoder`] — a BERT-family text encoder run in Rust (the bundled all-MiniLM-L6-v2 or a
//!   local model folder): text in, per-layer per-head Q/K/V out, as a [`data::QkvSet`].
//! * [`nn`] — transformer building blocks (linear, layer norm, GELU, multi-head attention,
//!   safetensors weight store) shared by the models that run inside attnscope.
//! * [`notebook`] — pinned findings saved as a folder, Markdown/CSV reports.
//! * `app` (feature `gui`) — the desktop GUI; the only module that uses egui.

pub mod analysis;
#[cfg(feature = "gui")]
pub mod app;
pub mod attention;
pub mod data;
pub mod encoder;
pub mod experiment;
pub mod nn;
pub mod notebook;
pub mod render;

mod faer_guard;
pub use faer_guard::{with_faer, zero_upper};
