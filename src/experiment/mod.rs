//! Sweeps over methods × parameters × sequence lengths, with progress and cancellation.
