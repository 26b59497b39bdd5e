//! Robustness: any kernel parameters give `Ok` or a typed error (never a panic), and very long
//! inputs (E15) go through the tiled, pooled decomposition.

mod common;

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

use attnscope::analysis::{self, AnalysisError, TileControl, pooled_decomposition};
use attnscope::attention::band::band_part;
use attnscope::attention::dense::full_attention;
use attnscope::attention::method::{KeyRow, Pooling, Projection};
use attnscope::attention::{
    FeatureMap, HeadInput, MatrixBudget, MethodId, MethodParams, Normalization, compute,
};
use attnscope::data::synth::{SynthSpec, generate};
use attnscope::render::{ColorScale, Colormap, PoolMode, ValueScale, pool, render};
use common::randn;
use proptest::prelude::*;

/// 0, 1, small, out-of-range and huge sizes.
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0usize),
        Just(1usize),
        2usize..48,
        Just(1usize << 20),
        Just(1usize << 40),
        Just(usize::MAX),
    ]
}

fn weight() -> impl Strategy<Value = f32> {
    prop_oneof![
        -2.0f32..2.0,
        Just(0.0f32),
        Just(f32::NAN),
        Just(f32::INFINITY),
        Just(f32::MAX),
    ]
}

fn feature_map() -> impl Strategy<Value = FeatureMap> {
    prop_oneof![
        Just(FeatureMap::Elu),
        Just(FeatureMap::EluNeg),
        Just(FeatureMap::Tanh)
    ]
}

prop_compose! {
    fn params()(
        bandwidth in size(),
        rank in size(),
        feature_maps in prop::collection::vec(feature_map(), 0..5),
        normalization in prop_oneof![Just(Normalization::Row), Just(Normalization::None)],
        w1 in weight(),
        w2 in weight(),
        lambdas in prop::option::of(prop::collection::vec(weight(), 0..5)),
        fit in any::<bool>(),
        num_features in size(),
        num_landmarks in size(),
        exact_pinv in any::<bool>(),
        proj_dim in size(),
        projection in prop_oneof![Just(Projection::MeanPool), Just(Projection::Gaussian)],
        block in prop::option::of(size()),
        pooling in prop_oneof![Just(Pooling::Max), Just(Pooling::Mean)],
        key_row in prop_oneof![Just(KeyRow::Wsum), Just(KeyRow::None)],
        seed in any::<u64>(),
    ) -> MethodParams {
        MethodParams {
            bandwidth, rank, feature_maps, normalization, w1, w2, lambdas, fit, num_features,
            num_landmarks, exact_pinv, proj_dim, projection, block, pooling, key_row, seed,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    /// Every method of `MethodId::ALL` on any parameters and shapes (L ∈ 0..40, Lq ≠ Lk,
    /// head_dim and value_dim including 0, causal or not): `Ok` or a typed error, never a
    /// panic; outputs have the documented shapes.
    #[test]
    fn any_kernel_parameters_give_ok_or_a_typed_error(
        p in params(),
        lq in 0usize..40,
        lk in 0usize..40,
        same_length in any::<bool>(),
        d in 0usize..6,
        dv in 0usize..5,
        causal in any::<bool>(),
        want_matrix in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let lk = if same_length { lq } else { lk };
        let (q, k, v) = (randn(lq, d, 1.0, seed), randn(lk, d, 1.0, seed ^ 1), randn(lk, dv, 1.0, seed ^ 2));
        let head = HeadInput::new(q.view(), k.view(), v.view(), None, causal).unwrap();
        let budget = MatrixBudget::default();
        for &method in MethodId::ALL {
            if let Ok(r) = compute(method, &p, &head, want_matrix, budget) {
                prop_assert_eq!(r.output.dim(), (lq, dv), "{} output shape", method.as_str());
                if let Some(m) = &r.matrix {
                    prop_assert_eq!(m.dim(), (lq, lk), "{} matrix shape", method.as_str());
                }
            }
        }
        if let Ok(dec) = analysis::decompose(&head, p.bandwidth, p.rank, budget) {
            prop_assert_eq!(dec.full.dim(), (lq, lk));
            prop_assert!(dec.metrics.rank <= lq.min(lk).max(1));
        }
        let pooled = pooled_decomposition(&head, p.bandwidth, p.rank.clamp(1, 64), PoolMode::Max, TileControl::default());
        prop_assert!(pooled.is_ok(), "pooled decomposition failed: {:?}", pooled.err());
    }
}

fn synth_head_set(kind: &str, seq_len: usize, seed: u64) -> attnscope::data::QkvSet {
    let spec = SynthSpec::parse(&format!("synth:{kind},L={seq_len},seed={seed}")).unwrap();
    generate(&spec)
}

/// Tolerance of two computations of one softmax probability (≤ 1) on different row tilings.
fn probability_tolerance(seq_len_kv: usize) -> f32 {
    8.0 * f32::EPSILON * (seq_len_kv as f32).log2().max(1.0)
}

fn max_abs_diff(a: &ndarray::Array2<f32>, b: &ndarray::Array2<f32>) -> f32 {
    assert_eq!(a.dim(), b.dim());
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn e15_tiled_pooled_path_l2049_equals_pooling_the_materialised_matrix() {
    let set = synth_head_set("local-global", 2049, 5);
    for causal in [false, true] {
        let head = set.head(0, 0, causal, None).unwrap();
        let (_, full) = full_attention(&head, true, MatrixBudget::default()).unwrap();
        let full = full.unwrap();
        let near = band_part(&full, 6, causal);
        let far = &full - &near;
        for mode in [PoolMode::Max, PoolMode::Mean] {
            let tiled = pooled_decomposition(&head, 6, 2048, mode, TileControl::default()).unwrap();
            assert_eq!(tiled.full.factor, 2);
            assert_eq!(tiled.full.data.dim(), (1025, 1025));
            assert_eq!(
                tiled.full.label().unwrap(),
                format!("pooled 2×2 ({})", mode.name())
            );
            let tol = probability_tolerance(2049);
            for (name, got, matrix) in [
                ("full", &tiled.full, &full),
                ("near", &tiled.near, &near),
                ("far", &tiled.far, &far),
            ] {
                let want = pool(matrix.view(), 2048, mode);
                let diff = max_abs_diff(&got.data, &want.data);
                assert!(
                    diff <= tol,
                    "{name} causal={causal} {mode:?}: max diff {diff} > {tol}"
                );
            }
            let total: f64 = full.iter().map(|&x| f64::from(x)).sum();
            let in_band: f64 = near.iter().map(|&x| f64::from(x)).sum();
            assert!((tiled.band_mass - in_band / total).abs() < 1e-6);
            // Exact output from the tiles equals the dense kernel's.
            let (out, _) = full_attention(&head, false, MatrixBudget::default()).unwrap();
            assert!(max_abs_diff(&tiled.output, &out) <= 1e-5);
        }
    }
}

#[test]
fn e15_tiled_path_keeps_causal_alignment_when_lq_differs_from_lk() {
    // Lq = 97 queries against Lk = 131 keys, bottom-right aligned (C1); factor 3.
    let (q, k, v) = (
        randn(97, 8, 1.0, 1),
        randn(131, 8, 1.0, 2),
        randn(131, 4, 1.0, 3),
    );
    for causal in [false, true] {
        let head = HeadInput::new(q.view(), k.view(), v.view(), None, causal).unwrap();
        let (_, full) = full_attention(&head, true, MatrixBudget::default()).unwrap();
        let full = full.unwrap();
        let tiled =
            pooled_decomposition(&head, 2, 50, PoolMode::Mean, TileControl::default()).unwrap();
        assert_eq!(tiled.full.factor, 3);
        let want = pool(full.view(), 50, PoolMode::Mean);
        assert!(max_abs_diff(&tiled.full.data, &want.data) <= probability_tolerance(131));
        let near = pool(band_part(&full, 2, causal).view(), 50, PoolMode::Mean);
        assert!(max_abs_diff(&tiled.near.data, &near.data) <= probability_tolerance(131));
    }
}

#[test]
fn e15_l2049_and_l4097_pooled_images_never_panic() {
    for (seq_len, seed) in [(2049, 11), (4097, 12)] {
        let set = synth_head_set("local", seq_len, seed);
        let head = set.head(0, 0, true, None).unwrap();
        // The six-matrix decomposition at 4097 exceeds the default budget: a typed error.
        if seq_len == 4097 {
            let err = analysis::decompose(&head, 4, 8, MatrixBudget::default()).unwrap_err();
            assert!(err.to_string().contains("budget"), "{err}");
        }
        let d =
            pooled_decomposition(&head, 4, 2048, PoolMode::Max, TileControl::default()).unwrap();
        let factor = seq_len.div_ceil(2048);
        assert_eq!(d.full.factor, factor);
        assert!(d.full.data.nrows() <= 2048 && d.full.data.ncols() <= 2048);
        assert!(d.band_mass > 0.0 && d.band_mass <= 1.0 + 1e-9);
        for pooled in [&d.full, &d.near, &d.far] {
            let scale = ColorScale::fit(
                Colormap::Viridis,
                ValueScale::Log { decades: 3.0 },
                pooled.data.iter().copied(),
            );
            let image = render(pooled.data.view(), &scale);
            assert_eq!(image.width, seq_len.div_ceil(factor));
            assert_eq!(image.rgba.len(), image.width * image.height * 4);
        }
    }
}

#[test]
fn e15_cancel_stops_the_tiled_loop_and_progress_is_reported() {
    let set = synth_head_set("local", 4097, 3);
    let head = set.head(0, 0, false, None).unwrap();
    let cancel = AtomicBool::new(false);
    let calls = Cell::new(0usize);
    let progress = |f: f32| {
        assert!((0.0..=1.0).contains(&f));
        calls.set(calls.get() + 1);
        if f > 0.0 {
            cancel.store(true, Ordering::Relaxed);
        }
    };
    let control = TileControl {
        cancel: Some(&cancel),
        progress: Some(&progress),
    };
    let r = pooled_decomposition(&head, 4, 2048, PoolMode::Mean, control);
    assert!(matches!(r, Err(AnalysisError::Cancelled)), "{r:?}");
    // 0 at the start, one tile done, then the check stops the loop.
    assert_eq!(calls.get(), 2);
}

/// E15 end to end at L = 16,385 (release build: about 6 s on two idle cores).
#[test]
fn e15_l16385_tiled_pooled_path_end_to_end() {
    let set = synth_head_set("local", 16385, 0);
    let head = set.head(0, 0, false, None).unwrap();
    let last = Cell::new(0.0f32);
    let progress = |f: f32| {
        assert!(f >= last.get());
        last.set(f);
    };
    let control = TileControl {
        cancel: None,
        progress: Some(&progress),
    };
    let d = pooled_decomposition(&head, 4, 2048, PoolMode::Max, control).unwrap();
    assert_eq!(d.full.factor, 9);
    assert_eq!(d.full.data.dim(), (1821, 1821));
    assert_eq!(last.get(), 1.0);
    assert!(d.output.iter().all(|x| x.is_finite()));
    assert!(d.band_mass > 0.0 && d.band_mass <= 1.0 + 1e-9);
    // The local kind concentrates mass near the diagonal: pooled diagonal blocks dominate.
    let diag: f32 = (0..1821).map(|i| d.full.data[[i, i]]).sum::<f32>() / 1821.0;
    let corner = d.full.data[[0, 1820]].abs();
    assert!(diag > corner, "diagonal {diag} vs corner {corner}");
}
