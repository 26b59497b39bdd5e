//! Rendering shared by the CLI and the GUI: colormaps (colorous), matrix → RGBA heatmaps,
//! pooling of large matrices (E15), and PNG export with a colorbar and a title.

pub mod colormap;
pub mod export;
pub mod heatmap;
pub mod png;

pub use colormap::{ColorScale, Colormap, ValueScale};
pub use heatmap::{Heatmap, PoolMode, Pooled, pool, pool_factor, pool_with_factor, render};
pub use png::{PngOptions, write_png};

/// Errors while rendering or writing images.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The image could not be encoded or written.
    #[error("could not write image {path}: {source}")]
    Write {
        /// Destination file.
        path: std::path::PathBuf,
        /// The encoder's error.
        #[source]
        source: image::ImageError,
    },
    /// The requested image is empty or too large.
    #[error("cannot render a {rows}×{cols} matrix: {reason}")]
    BadSize {
        /// Matrix rows.
        rows: usize,
        /// Matrix columns.
        cols: usize,
        /// Why.
        reason: String,
    },
}
