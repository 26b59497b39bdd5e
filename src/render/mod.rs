//! Colormaps, heatmaps as RGBA buffers, PNG export (shared by the CLI and the GUI).
