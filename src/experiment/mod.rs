//! Sweeps over methods × parameters × sequence lengths × seeds, with timing, C4 errors against
//! exact attention, progress events and cancellation; CSV/JSON reports and PNG plots.
//!
//! One runner ([`run_sweep`]) serves the CLI (`attnscope sweep`) and the GUI's sweeps view:
//! both build a [`SweepConfig`], pass a [`ProgressSink`] and a [`CancelToken`], and get the
//! rows back (also streamed to the sink as they finish).
//!
//! ```text
//! for seed in seeds:
//!   for L in seq_lens:            input = synth(kind, L, seed) or the file's first L tokens
//!     exact = full_attention(input)  (skipped above max_exact_len, with a reason)
//!     for method in methods:
//!       for bandwidth in bandwidths (methods that use one), rank in ranks (rank-like param):
//!         warm-up, `repeats` timed runs → median/min seconds; C4 errors vs exact
//! ```

pub mod plot;
pub mod progress;
pub mod report;
pub mod sweep;

pub use plot::{
    AxisScale, PlotKind, PlotSeries, PlotSpec, PreparedSeries, SlopeFit, fit_loglog_slope,
    prepare_series, render_plot, write_plots,
};
pub use progress::{CancelToken, NullSink, ProgressSink, Tee};
pub use report::{CsvStream, MachineInfo, SweepReport, read_csv, write_json};
pub use sweep::{InputSpec, SweepConfig, SweepOutcome, SweepRow, run_sweep};

use std::path::PathBuf;

/// Errors of the experiment runner, reports and plots. Each carries the offending value or
/// path.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    /// The input could not be loaded or sliced.
    #[error("input {source_name}: {error}")]
    Data {
        /// The `--data` value.
        source_name: String,
        /// The loader's error (boxed: it is large).
        #[source]
        error: Box<crate::data::DataError>,
    },
    /// The sweep configuration is unusable (empty grid, zero repeats, …).
    #[error("invalid sweep configuration: {0}")]
    InvalidConfig(String),
    /// Exact attention (the error reference) failed.
    #[error("exact reference: {0}")]
    ExactReference(#[source] crate::attention::AttentionError),
    /// The rayon thread pool could not be built.
    #[error("could not build a pool of {threads} threads: {reason}")]
    ThreadPool {
        /// Requested threads.
        threads: usize,
        /// rayon's message.
        reason: String,
    },
    /// A file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A CSV row could not be written or parsed.
    #[error("{path}: {source}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// The csv crate's error.
        #[source]
        source: csv::Error,
    },
    /// The JSON report could not be written.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },
    /// A plot could not be written.
    #[error(transparent)]
    Render(#[from] crate::render::RenderError),
}
