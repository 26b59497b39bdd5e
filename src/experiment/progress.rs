//! Progress events and cancellation shared by the CLI (a progress line on stderr) and the GUI
//! (a channel polled by the view).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::ExperimentError;
use super::sweep::SweepRow;

/// Receives the events of one sweep, in order: [`started`](ProgressSink::started) once, then
/// [`point_done`](ProgressSink::point_done) for every grid point (run or skipped), then
/// [`finished`](ProgressSink::finished) or [`cancelled`](ProgressSink::cancelled).
///
/// Called on the thread that runs the sweep. A sink that writes files returns its I/O error
/// from `point_done`; the sweep stops and returns that error.
pub trait ProgressSink {
    /// The sweep starts; `total_points` is the size of the grid.
    fn started(&mut self, total_points: usize) {
        let _ = total_points;
    }
    /// Point `index` (0-based, `< total_points`) is done; `row` holds its measurements or the
    /// reason it was skipped.
    ///
    /// # Errors
    /// Whatever the sink failed to do (e.g. write the CSV row); the sweep stops.
    fn point_done(&mut self, index: usize, row: &SweepRow) -> Result<(), ExperimentError> {
        let _ = (index, row);
        Ok(())
    }
    /// Every point is done.
    fn finished(&mut self, points_done: usize) {
        let _ = points_done;
    }
    /// The sweep stopped early at the user's request after `points_done` points.
    fn cancelled(&mut self, points_done: usize) {
        let _ = points_done;
    }
}

/// A sink that ignores every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl ProgressSink for NullSink {}

/// A sink that forwards every event to two sinks (e.g. the CSV stream and a progress bar).
pub struct Tee<'a> {
    /// Receives each event first.
    pub first: &'a mut dyn ProgressSink,
    /// Receives each event second.
    pub second: &'a mut dyn ProgressSink,
}

impl ProgressSink for Tee<'_> {
    fn started(&mut self, total_points: usize) {
        self.first.started(total_points);
        self.second.started(total_points);
    }
    fn point_done(&mut self, index: usize, row: &SweepRow) -> Result<(), ExperimentError> {
        self.first.point_done(index, row)?;
        self.second.point_done(index, row)
    }
    fn finished(&mut self, points_done: usize) {
        self.first.finished(points_done);
        self.second.finished(points_done);
    }
    fn cancelled(&mut self, points_done: usize) {
        self.first.cancelled(points_done);
        self.second.cancelled(points_done);
    }
}

/// A shared cancellation flag: set from any thread (the GUI's Cancel button, Ctrl-C), checked
/// by the sweep between grid points and between timing repeats.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A fresh, unset token.
    pub fn new() -> Self {
        Self::default()
    }
    /// Wraps an existing flag.
    pub fn from_flag(flag: Arc<AtomicBool>) -> Self {
        Self(flag)
    }
    /// Requests cancellation.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    /// True once [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
    /// The underlying flag.
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.0)
    }
}
