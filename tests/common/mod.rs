//! Shared helpers for integration tests: seeded inputs and tolerance-aware comparisons.
#![allow(dead_code)]

use ndarray::Array2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// A seeded `[rows, cols]` matrix of N(0, sd²) entries.
pub fn randn(rows: usize, cols: usize, sd: f32, seed: u64) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((rows, cols), |_| {
        let x: f32 = StandardNormal.sample(&mut rng);
        x * sd
    })
}

/// Relative + absolute tolerance derived from f32 ε and the reduction length.
#[derive(Debug, Clone, Copy)]
pub struct Tolerance {
    pub rel: f32,
    pub abs: f32,
}

impl Tolerance {
    /// Tolerance for sums of `n` f32 products: `c · ε · sqrt(n)` with a floor.
    pub fn for_reduction(n: usize) -> Self {
        let e = f32::EPSILON * 64.0 * (n.max(1) as f32).sqrt();
        Self { rel: e, abs: e }
    }
}

/// Asserts `|a − b| ≤ abs + rel·|b|` entrywise; NaN must match NaN. `label` names the scenario.
pub fn assert_close(a: &Array2<f32>, b: &Array2<f32>, tol: Tolerance, label: &str) {
    assert_eq!(a.dim(), b.dim(), "{label}: shapes differ");
    for ((idx, &x), &y) in a.indexed_iter().zip(b.iter()) {
        if x.is_nan() || y.is_nan() {
            assert!(
                x.is_nan() && y.is_nan(),
                "{label}: NaN mismatch at {idx:?}: {x} vs {y}"
            );
            continue;
        }
        assert!(
            (x - y).abs() <= tol.abs + tol.rel * y.abs(),
            "{label}: at {idx:?}: {x} vs {y} (tol {tol:?})"
        );
    }
}

/// Asserts every entry matches an expected table within `tol` (hand-checked spec numbers).
pub fn assert_table(a: &Array2<f32>, expected: &[&[f32]], tol: f32, label: &str) {
    assert_eq!(a.nrows(), expected.len(), "{label}: rows");
    for (i, row) in expected.iter().enumerate() {
        assert_eq!(a.ncols(), row.len(), "{label}: cols");
        for (j, &e) in row.iter().enumerate() {
            assert!(
                (a[[i, j]] - e).abs() <= tol,
                "{label}: [{i},{j}] = {} expected {e}",
                a[[i, j]]
            );
        }
    }
}

/// The spec's running toy (fmm_lowrank.md, L = 4, d = 2).
pub fn toy() -> (Array2<f32>, Array2<f32>, Array2<f32>) {
    let q = ndarray::array![[1.0_f32, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]];
    let k = ndarray::array![[1.0_f32, 0.0], [0.0, 1.0], [-1.0, 1.0], [0.0, -1.0]];
    let v = ndarray::array![[1.0_f32, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 0.0]];
    (q, k, v)
}
