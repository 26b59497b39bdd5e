//! Near field (band), far field (linear) and the FMMformer blend: against slow references on
//! seeded inputs, against the hand-checked toy numbers of `fmm_lowrank.md` §1–2, and the edge
//! cases E1, E2, E5, E7, E11, E12, E17 of `edge_cases.md`.

mod common;

use attnscope::analysis::{compare, decompose, metrics::relative_frobenius, svd::thin_svd};
use attnscope::attention::{
    FeatureMap, HeadInput, MatrixBudget, MethodId, MethodParams, Normalization, band, compute,
    dense::dense_reference, fmm, linear,
};
use common::{Tolerance, assert_close, assert_table, randn, toy};
use ndarray::{Array2, array};

const LENGTHS: &[usize] = &[1, 2, 7, 64, 257, 1025];

/// Slow band reference: per row, an f64 softmax over the C2 band (bottom-right aligned).
fn band_reference(head: &HeadInput<'_>, bandwidth: usize) -> Array2<f32> {
    let (lq, lk) = (head.seq_len_q(), head.seq_len_kv());
    let mut out = Array2::<f32>::zeros((lq, head.value_dim()));
    for i in 0..lq {
        let ip = i as i64 + lk as i64 - lq as i64;
        let keys: Vec<usize> = (0..lk)
            .filter(|&j| {
                let d = ip - j as i64;
                if head.causal {
                    (0..=bandwidth as i64).contains(&d)
                } else {
                    d.abs() <= bandwidth as i64
                }
            })
            .collect();
        if keys.is_empty() {
            continue;
        }
        let logits: Vec<f64> = keys
            .iter()
            .map(|&j| {
                head.q
                    .row(i)
                    .iter()
                    .zip(head.k.row(j))
                    .map(|(a, b)| f64::from(*a) * f64::from(*b))
                    .sum::<f64>()
                    * f64::from(head.scale)
            })
            .collect();
        let m = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = logits.iter().map(|s| (s - m).exp()).collect();
        let z: f64 = w.iter().sum();
        for t in 0..head.value_dim() {
            out[[i, t]] = (keys
                .iter()
                .zip(&w)
                .map(|(&j, wj)| wj / z * f64::from(head.v[[j, t]]))
                .sum::<f64>()) as f32;
        }
    }
    out
}

/// Slow linear-attention reference: the O(L²) masked kernel matrix, normalised, times V.
fn linear_reference(head: &HeadInput<'_>, map: FeatureMap, norm: Normalization) -> Array2<f32> {
    let lq = head.seq_len_q();
    let mut out = Array2::<f32>::zeros((lq, head.value_dim()));
    for i in 0..lq {
        let vis = head.visible_keys(i);
        if vis.is_empty() {
            continue;
        }
        let w: Vec<f64> = vis
            .clone()
            .map(|j| {
                head.q
                    .row(i)
                    .iter()
                    .zip(head.k.row(j))
                    .map(|(a, b)| f64::from(map.apply(*a)) * f64::from(map.apply(*b)))
                    .sum()
            })
            .collect();
        let z = match norm {
            Normalization::Row => w.iter().sum::<f64>() + 1e-6,
            Normalization::None => (head.head_dim() as f64).sqrt(),
        };
        for t in 0..head.value_dim() {
            out[[i, t]] = (vis
                .clone()
                .zip(&w)
                .map(|(j, wj)| wj / z * f64::from(head.v[[j, t]]))
                .sum::<f64>()) as f32;
        }
    }
    out
}

fn seeded(
    lq: usize,
    lk: usize,
    d: usize,
    dv: usize,
    seed: u64,
) -> (Array2<f32>, Array2<f32>, Array2<f32>) {
    (
        randn(lq, d, 1.0, seed),
        randn(lk, d, 1.0, seed + 1),
        randn(lk, dv, 1.0, seed + 2),
    )
}

#[test]
fn band_matches_reference_on_seeded_inputs() {
    for &l in LENGTHS {
        for causal in [false, true] {
            for bandwidth in [0, 1, 4, 64] {
                let (q, k, v) = seeded(l, l, 16, 8, l as u64);
                let head = HeadInput::new(q.view(), k.view(), v.view(), None, causal).unwrap();
                let label = format!("band L={l} causal={causal} b={bandwidth}");
                assert_close(
                    &band::band_attention(&head, bandwidth),
                    &band_reference(&head, bandwidth),
                    Tolerance::for_reduction(16 * bandwidth.max(1)),
                    &label,
                );
            }
        }
    }
}

#[test]
fn band_with_unequal_lengths_aligns_bottom_right() {
    for (lq, lk) in [(5, 9), (9, 5), (1, 7), (7, 1)] {
        for causal in [false, true] {
            let (q, k, v) = seeded(lq, lk, 8, 3, 11);
            let head = HeadInput::new(q.view(), k.view(), v.view(), None, causal).unwrap();
            let label = format!("band lq={lq} lk={lk} causal={causal}");
            assert_close(
                &band::band_attention(&head, 2),
                &band_reference(&head, 2),
                Tolerance::for_reduction(32),
                &label,
            );
        }
    }
}

#[test]
fn band_matrix_times_values_equals_band_output() {
    let (q, k, v) = seeded(37, 37, 8, 5, 3);
    for causal in [false, true] {
        let head = HeadInput::new(q.view(), k.view(), v.view(), None, causal).unwrap();
        let m = band::band_matrix(&head, 3, MatrixBudget::default()).unwrap();
        assert_close(
            &m.dot(&v),
            &band::band_attention(&head, 3),
            Tolerance::for_reduction(37),
            "band D·V",
        );
        for row in m.rows() {
            assert!((row.sum() - 1.0).abs() < 1e-5);
        }
    }
}

#[test]
fn linear_matches_reference_on_seeded_inputs() {
    for &l in LENGTHS {
        for causal in [false, true] {
            for map in FeatureMap::ALL {
                for norm in [Normalization::Row, Normalization::None] {
                    let (q, k, v) = seeded(l, l, 8, 4, 100 + l as u64);
                    let head = HeadInput::new(q.view(), k.view(), v.view(), None, causal).unwrap();
                    let label = format!("linear L={l} causal={causal} {map:?} {norm:?}");
                    let got = linear::linear_attention(&head, *map, norm);
                    let tol = Tolerance {
                        rel: 1e-4,
                        abs: if norm == Normalization::None {
                            1e-3
                        } else {
                            1e-5
                        },
                    };
                    assert_close(&got, &linear_reference(&head, *map, norm), tol, &label);
                }
            }
        }
    }
}

#[test]
fn linear_with_unequal_lengths_causal_and_not() {
    for (lq, lk) in [(4, 11), (11, 4)] {
        for causal in [false, true] {
            let (q, k, v) = seeded(lq, lk, 6, 2, 5);
            let head = HeadInput::new(q.view(), k.view(), v.view(), None, causal).unwrap();
            let got = linear::linear_attention(&head, FeatureMap::Elu, Normalization::Row);
            let label = format!("linear lq={lq} lk={lk} causal={causal}");
            assert_close(
                &got,
                &linear_reference(&head, FeatureMap::Elu, Normalization::Row),
                Tolerance {
                    rel: 1e-4,
                    abs: 1e-5,
                },
                &label,
            );
            let m = linear::linear_matrix(
                &head,
                FeatureMap::Elu,
                Normalization::Row,
                MatrixBudget::default(),
            )
            .unwrap();
            assert_close(
                &m.dot(&v),
                &got,
                Tolerance {
                    rel: 1e-4,
                    abs: 1e-5,
                },
                "linear Â·V",
            );
        }
    }
}

#[test]
fn fmm_output_equals_matrix_times_values_for_every_kernel_set() {
    let (q, k, v) = seeded(29, 29, 8, 3, 9);
    for causal in [false, true] {
        for maps in [
            vec![FeatureMap::Elu],
            vec![FeatureMap::Elu, FeatureMap::EluNeg],
            FeatureMap::ALL.to_vec(),
        ] {
            let head = HeadInput::new(q.view(), k.view(), v.view(), None, causal).unwrap();
            let params = MethodParams {
                feature_maps: maps.clone(),
                bandwidth: 2,
                w1: 0.3,
                w2: 0.9,
                ..Default::default()
            };
            let m = fmm::fmm_matrix(&head, &params, MatrixBudget::default()).unwrap();
            let label = format!("fmm causal={causal} maps={maps:?}");
            assert_close(
                &m.dot(&v),
                &fmm::fmm_attention(&head, &params),
                Tolerance {
                    rel: 1e-4,
                    abs: 1e-5,
                },
                &label,
            );
        }
    }
}

// ---- the toy of fmm_lowrank.md (L = 4, d = 2) ----

#[test]
fn toy_exact_softmax_matches_spec() {
    let (q, k, v) = toy();
    let head = HeadInput::new(q.view(), k.view(), v.view(), None, false).unwrap();
    let (out, a) = dense_reference(&head);
    assert_table(
        &a,
        &[
            &[0.4486, 0.2212, 0.1091, 0.2212],
            &[0.1802, 0.3655, 0.3655, 0.0889],
            &[0.3655, 0.3655, 0.1802, 0.0889],
            &[0.1091, 0.2212, 0.4486, 0.2212],
        ],
        1e-4,
        "toy A",
    );
    assert_table(
        &out,
        &[
            &[1.0, 0.3302],
            &[0.7234, 0.7309],
            &[0.7234, 0.5457],
            &[1.0, 0.6698],
        ],
        1e-4,
        "toy AV",
    );
    let causal = HeadInput::new(q.view(), k.view(), v.view(), None, true).unwrap();
    let (_, ac) = dense_reference(&causal);
    assert_table(
        &ac,
        &[
            &[1.0, 0.0, 0.0, 0.0],
            &[0.3302, 0.6698, 0.0, 0.0],
            &[0.4011, 0.4011, 0.1978, 0.0],
            &[0.1091, 0.2212, 0.4486, 0.2212],
        ],
        1e-4,
        "toy causal A",
    );
    let s = thin_svd(&a).unwrap().singular_values;
    for (got, want) in s.iter().zip([1.0248, 0.3868, 0.1925, 0.0]) {
        assert!((got - want).abs() < 1e-4, "σ(A) {s:?}");
    }
}

#[test]
fn toy_band_near_field_bidirectional_and_causal() {
    let (q, k, v) = toy();
    let head = HeadInput::new(q.view(), k.view(), v.view(), None, false).unwrap();
    let d = band::band_matrix(&head, 1, MatrixBudget::default()).unwrap();
    assert_table(
        &d,
        &[
            &[0.6698, 0.3302, 0.0, 0.0],
            &[0.1978, 0.4011, 0.4011, 0.0],
            &[0.0, 0.5760, 0.2840, 0.1400],
            &[0.0, 0.0, 0.6698, 0.3302],
        ],
        1e-4,
        "toy D",
    );
    assert_table(
        &band::band_attention(&head, 1),
        &[
            &[0.6698, 0.3302],
            &[0.5989, 0.8022],
            &[0.5641, 0.8600],
            &[1.3302, 0.6698],
        ],
        1e-4,
        "toy DV",
    );
    let causal = HeadInput::new(q.view(), k.view(), v.view(), None, true).unwrap();
    let dc = band::band_matrix(&causal, 1, MatrixBudget::default()).unwrap();
    assert_table(
        &dc,
        &[
            &[1.0, 0.0, 0.0, 0.0],
            &[0.3302, 0.6698, 0.0, 0.0],
            &[0.0, 0.6698, 0.3302, 0.0],
            &[0.0, 0.0, 0.6698, 0.3302],
        ],
        1e-4,
        "toy causal D (diag_size 2)",
    );
}

#[test]
fn toy_linear_far_field_normalised_causal_and_lra() {
    let (q, k, v) = toy();
    let b = MatrixBudget::default();
    let head = HeadInput::new(q.view(), k.view(), v.view(), None, false).unwrap();
    let kernel = linear::linear_matrix(&head, FeatureMap::Elu, Normalization::None, b)
        .unwrap()
        .mapv(|x| x * 2f32.sqrt());
    assert_table(
        &kernel,
        &[
            &[5.0, 4.0, 2.7358, 2.3679],
            &[4.0, 5.0, 4.3679, 1.7358],
            &[6.0, 6.0, 4.7358, 2.7358],
            &[1.7358, 2.3679, 2.1353, 0.7358],
        ],
        1e-3,
        "toy φ1(Q)φ1(K)ᵀ",
    );
    let phi2 = linear::linear_matrix(&head, FeatureMap::EluNeg, Normalization::None, b)
        .unwrap()
        .mapv(|x| x * 2f32.sqrt());
    assert_table(
        &phi2,
        &[
            &[1.1353, 0.7358, 1.1036, 2.3679],
            &[0.7358, 1.1353, 2.1353, 1.7358],
            &[0.5032, 0.5032, 0.8711, 1.1036],
            &[1.7358, 2.3679, 4.3679, 4.0],
        ],
        1e-3,
        "toy φ2 kernel",
    );
    let norm = linear::linear_matrix(&head, FeatureMap::Elu, Normalization::Row, b).unwrap();
    assert_table(
        &norm,
        &[
            &[0.3545, 0.2836, 0.1940, 0.1679],
            &[0.2648, 0.3310, 0.2892, 0.1149],
            &[0.3081, 0.3081, 0.2432, 0.1405],
            &[0.2489, 0.3395, 0.3062, 0.1055],
        ],
        1e-4,
        "toy linear row-normalised",
    );
    assert_table(
        &linear::linear_attention(&head, FeatureMap::Elu, Normalization::Row),
        &[
            &[0.8843, 0.4776],
            &[0.7839, 0.6202],
            &[0.8324, 0.5514],
            &[0.7660, 0.6456],
        ],
        1e-4,
        "toy linear AV",
    );
    assert_table(
        &linear::linear_attention(&head, FeatureMap::Elu, Normalization::None),
        &[
            &[8.8187, 4.7629],
            &[8.3717, 6.6241],
            &[11.4603, 7.5913],
            &[3.7778, 3.1843],
        ],
        1e-3,
        "toy LRA unnormalised far output",
    );
    let (_, a) = dense_reference(&head);
    let err: f64 = (&norm - &a)
        .iter()
        .map(|x| f64::from(*x).powi(2))
        .sum::<f64>()
        .sqrt();
    assert!((err - 0.3436).abs() < 1e-4, "‖A − Â‖_F = {err}");
    let causal = HeadInput::new(q.view(), k.view(), v.view(), None, true).unwrap();
    let nc = linear::linear_matrix(&causal, FeatureMap::Elu, Normalization::Row, b).unwrap();
    assert_table(
        &nc,
        &[
            &[1.0, 0.0, 0.0, 0.0],
            &[0.4444, 0.5556, 0.0, 0.0],
            &[0.3585, 0.3585, 0.2830, 0.0],
            &[0.2489, 0.3395, 0.3062, 0.1055],
        ],
        1e-4,
        "toy causal linear",
    );
}

#[test]
fn toy_fmm_blend_half_and_half() {
    let (q, k, v) = toy();
    let head = HeadInput::new(q.view(), k.view(), v.view(), None, false).unwrap();
    let params = MethodParams {
        bandwidth: 1,
        ..Default::default()
    };
    let r = compute(MethodId::Fmm, &params, &head, true, MatrixBudget::default()).unwrap();
    let m = r.matrix.unwrap();
    assert_table(
        &m,
        &[
            &[0.5121, 0.3069, 0.0970, 0.0839],
            &[0.2313, 0.3661, 0.3452, 0.0575],
            &[0.1541, 0.4421, 0.2636, 0.1403],
            &[0.1244, 0.1697, 0.4880, 0.2179],
        ],
        1e-4,
        "toy blend",
    );
    assert!(r.properties.rows_sum_to_one);
}

#[test]
fn fmm_fit_is_the_least_squares_optimum() {
    let (q, k, v) = seeded(40, 40, 8, 4, 21);
    let head = HeadInput::new(q.view(), k.view(), v.view(), None, false).unwrap();
    let params = MethodParams {
        bandwidth: 3,
        fit: true,
        ..Default::default()
    };
    let b = MatrixBudget::default();
    let r = compute(MethodId::Fmm, &params, &head, true, b).unwrap();
    let (w1, w2) = (r.params.w1, r.params.w2);
    assert!(r.notes.iter().any(|n| n.contains("fitted")));
    let (_, a) = dense_reference(&head);
    let err = |x: f32, y: f32| {
        let p = MethodParams {
            w1: x,
            w2: y,
            fit: false,
            ..params.clone()
        };
        relative_frobenius(&fmm::fmm_matrix(&head, &p, b).unwrap(), &a).value()
    };
    let best = err(w1, w2);
    for (dx, dy) in [(0.01, 0.0), (-0.01, 0.0), (0.0, 0.01), (0.0, -0.01)] {
        assert!(
            best <= err(w1 + dx, w2 + dy) + 1e-9,
            "perturbation ({dx},{dy}) improved on the fit"
        );
    }
    assert!(best < err(0.5, 0.5));
}

#[test]
fn toy_fixed_band_plus_rank_one_error() {
    let (q, k, v) = toy();
    let head = HeadInput::new(q.view(), k.view(), v.view(), None, false).unwrap();
    let d = decompose(&head, 1, 1, MatrixBudget::default()).unwrap();
    let abs: f64 = d
        .error
        .iter()
        .map(|x| f64::from(*x).powi(2))
        .sum::<f64>()
        .sqrt();
    assert!((abs - 0.3346).abs() < 1e-4, "fixed-band rank-1 error {abs}");
}

// ---- edge cases ----

fn all_near_far_methods() -> Vec<(MethodId, MethodParams)> {
    vec![
        (MethodId::Full, MethodParams::default()),
        (
            MethodId::Band,
            MethodParams {
                bandwidth: 8,
                ..Default::default()
            },
        ),
        (MethodId::Linear, MethodParams::default()),
        (
            MethodId::Fmm,
            MethodParams {
                bandwidth: 8,
                ..Default::default()
            },
        ),
    ]
}

#[test]
fn e1_query_that_sees_no_key_outputs_zeros() {
    let q = Array2::<f32>::zeros((3, 2));
    let k = Array2::<f32>::zeros((1, 2));
    let v = array![[5.0_f32, -5.0]];
    let head = HeadInput::new(q.view(), k.view(), v.view(), None, true).unwrap();
    for (m, p) in all_near_far_methods() {
        let r = compute(m, &p, &head, true, MatrixBudget::default()).unwrap();
        assert_table(
            &r.output,
            &[&[0.0, 0.0], &[0.0, 0.0], &[5.0, -5.0]],
            1e-5,
            &format!("E1 {m}"),
        );
        let a = r.matrix.unwrap();
        assert_eq!(a.row(0).sum(), 0.0, "E1 {m}: row 0 all zero");
        assert_eq!(a.row(1).sum(), 0.0, "E1 {m}: row 1 all zero");
        assert!(r.output.iter().chain(a.iter()).all(|x| x.is_finite()));
        let (exact_out, exact_a) = dense_reference(&head);
        let metrics = compare(&exact_out, &r.output, Some(&exact_a), Some(&a));
        assert!(
            metrics.output_rel.value().is_finite()
                && metrics.matrix_rel_fro.unwrap().value().is_finite()
        );
    }
    let d = decompose(&head, 0, 1, MatrixBudget::default()).unwrap();
    assert_eq!(d.metrics.empty_rows, vec![0, 1]);
}

#[test]
fn e1_empty_keys_give_all_zero_output_for_every_method() {
    let q = Array2::<f32>::ones((3, 2));
    let k = Array2::<f32>::zeros((0, 2));
    let v = Array2::<f32>::zeros((0, 4));
    for causal in [false, true] {
        let head = HeadInput::new(q.view(), k.view(), v.view(), None, causal).unwrap();
        for (m, p) in all_near_far_methods() {
            let r = compute(m, &p, &head, true, MatrixBudget::default()).unwrap();
            assert_eq!(r.output.dim(), (3, 4));
            assert!(r.output.iter().all(|&x| x == 0.0), "E1 Lk=0 {m}");
        }
    }
}

#[test]
fn e2a_nan_in_a_future_key_never_reaches_earlier_rows() {
    let q = Array2::<f32>::zeros((3, 1));
    let k = array![[0.0_f32], [0.0], [f32::NAN]];
    let v = array![[1.0_f32], [2.0], [f32::NAN]];
    let head = HeadInput::new(q.view(), k.view(), v.view(), None, true).unwrap();
    for (m, p) in all_near_far_methods() {
        let r = compute(m, &p, &head, false, MatrixBudget::default()).unwrap();
        // Exact for softmax methods; linear attention carries its ε = 1e-6 in the denominator.
        assert!(
            (r.output[[0, 0]] - 1.0).abs() < 2e-6,
            "E2a {m} row 0 = {}",
            r.output[[0, 0]]
        );
        assert!(
            (r.output[[1, 0]] - 1.5).abs() < 1e-6,
            "E2a {m} row 1 = {}",
            r.output[[1, 0]]
        );
        assert!(r.output[[2, 0]].is_nan(), "E2a {m} row 2 must be NaN");
    }
}

#[test]
fn e2b_nan_outside_the_band_never_reaches_the_row() {
    let q = Array2::<f32>::zeros((4, 1));
    let k = array![[0.0_f32], [0.0], [0.0], [f32::NAN]];
    let v = array![[1.0_f32], [2.0], [3.0], [f32::NAN]];
    let head = HeadInput::new(q.view(), k.view(), v.view(), None, false).unwrap();
    let out = band::band_attention(&head, 1);
    assert_eq!(out[[0, 0]], 1.5);
    assert_eq!(out[[1, 0]], 2.0);
    assert!(out[[2, 0]].is_nan() && out[[3, 0]].is_nan());
}

#[test]
fn e5_off_by_one_in_the_band() {
    let z = Array2::<f32>::zeros((6, 1));
    let v = Array2::from_shape_fn((6, 1), |(i, _)| (i + 1) as f32);
    let causal = HeadInput::new(z.view(), z.view(), v.view(), None, true).unwrap();
    let keys: Vec<usize> = (0..6)
        .map(|i| band::band_keys(i, 6, 6, 1, true).len())
        .collect();
    assert_eq!(keys, vec![1, 2, 2, 2, 2, 2]);
    assert_eq!(band::band_attention(&causal, 1)[[5, 0]], 5.5);
    let bidir = HeadInput::new(z.view(), z.view(), v.view(), None, false).unwrap();
    let rows: Vec<f32> = band::band_attention(&bidir, 1).column(0).to_vec();
    assert_eq!(rows, vec![1.5, 2.0, 3.0, 4.0, 5.0, 5.5]);
    for b in [5, 6, 100, usize::MAX] {
        assert_close(
            &band::band_attention(&causal, b),
            &dense_reference(&causal).0,
            Tolerance::for_reduction(6),
            "E5 wide causal band = dense",
        );
        assert_close(
            &band::band_attention(&bidir, b),
            &dense_reference(&bidir).0,
            Tolerance::for_reduction(6),
            "E5 wide band = dense",
        );
    }
    assert!((band::band_attention(&causal, 5)[[5, 0]] - 3.5).abs() < 1e-6);
}

#[test]
fn e7a_band_wider_than_the_sequence() {
    let z = Array2::<f32>::zeros((2, 1));
    let v = array![[1.0_f32], [3.0]];
    let bidir = HeadInput::new(z.view(), z.view(), v.view(), None, false).unwrap();
    assert_eq!(
        band::band_attention(&bidir, 8).column(0).to_vec(),
        vec![2.0, 2.0]
    );
    let causal = HeadInput::new(z.view(), z.view(), v.view(), None, true).unwrap();
    assert_eq!(
        band::band_attention(&causal, 8).column(0).to_vec(),
        vec![1.0, 2.0]
    );
}

#[test]
fn e7b_length_one_more_than_a_tile() {
    let (q, k, v) = seeded(1025, 1025, 32, 16, 7);
    for causal in [false, true] {
        let head = HeadInput::new(q.view(), k.view(), v.view(), None, causal).unwrap();
        let got = band::band_attention(&head, 64);
        let want = band_reference(&head, 64);
        assert_close(
            &got,
            &want,
            Tolerance {
                rel: 1e-5,
                abs: 1e-5,
            },
            "E7b band 1025",
        );
    }
}

#[test]
fn e7c_single_token_outputs_its_value() {
    let q = array![[0.3_f32, -1.0]];
    let k = array![[2.0_f32, 0.5]];
    let v = array![[4.0_f32, -2.0, 1.0]];
    for causal in [false, true] {
        let head = HeadInput::new(q.view(), k.view(), v.view(), None, causal).unwrap();
        for (m, p) in all_near_far_methods() {
            let r = compute(m, &p, &head, false, MatrixBudget::default()).unwrap();
            assert_table(&r.output, &[&[4.0, -2.0, 1.0]], 1e-5, &format!("E7c {m}"));
        }
    }
}

#[test]
fn e11a_errors_with_zero_exact_column() {
    let z = Array2::<f32>::zeros((2, 1));
    let v = array![[1.0_f32, 5.0], [-1.0, 5.0]];
    let head = HeadInput::new(z.view(), z.view(), v.view(), None, false).unwrap();
    let (exact_out, a) = dense_reference(&head);
    assert_table(&exact_out, &[&[0.0, 5.0], &[0.0, 5.0]], 1e-6, "E11a exact");
    let r = compute(
        MethodId::Band,
        &MethodParams {
            bandwidth: 0,
            ..Default::default()
        },
        &head,
        true,
        MatrixBudget::default(),
    )
    .unwrap();
    assert_table(
        &r.output,
        &[&[1.0, 5.0], &[-1.0, 5.0]],
        1e-6,
        "E11a band 0 = V",
    );
    let m = compare(&exact_out, &r.output, Some(&a), r.matrix.as_ref());
    assert!(
        (m.output_rel.value() - 0.2).abs() < 1e-7,
        "{:?}",
        m.output_rel
    );
    assert!((m.matrix_rel_fro.unwrap().value() - 1.0).abs() < 1e-7);
    assert!(m.output_max_abs.is_finite());
}

#[test]
fn e11b_linear_attention_is_exact_when_q_and_k_are_zero() {
    let z = Array2::<f32>::zeros((9, 3));
    let v = randn(9, 2, 1.0, 4);
    let head = HeadInput::new(z.view(), z.view(), v.view(), None, false).unwrap();
    let (exact_out, a) = dense_reference(&head);
    let r = compute(
        MethodId::Linear,
        &MethodParams::default(),
        &head,
        true,
        MatrixBudget::default(),
    )
    .unwrap();
    let m = compare(&exact_out, &r.output, Some(&a), r.matrix.as_ref());
    assert!(m.matrix_rel_fro.unwrap().value() < 1e-6);
    assert!(m.output_rel.value() < 1e-6);
}

#[test]
fn e12_rank_larger_than_the_matrix() {
    let q = Array2::<f32>::eye(3) * 10.0;
    let v = Array2::<f32>::eye(3);
    let head = HeadInput::new(q.view(), q.view(), v.view(), None, false).unwrap();
    let (_, a) = dense_reference(&head);
    let svd = thin_svd(&a).unwrap();
    let norm = svd.tail_norm(0);
    for (rank, want) in [(1, 0.816497), (2, 0.577350), (3, 0.0)] {
        let rel = svd.tail_norm(rank) / norm;
        assert!((rel - want).abs() < 1e-5, "rank {rank}: {rel}");
        let direct = relative_frobenius(&svd.reconstruct(rank), &a).value();
        assert!(
            (direct - want).abs() < 1e-5,
            "rank {rank} reconstructed: {direct}"
        );
    }
    assert!((relative_frobenius(&svd.reconstruct(0), &a).value() - 1.0).abs() < 1e-6);
    let d = decompose(&head, 0, 6, MatrixBudget::default()).unwrap();
    assert_eq!(d.metrics.rank, 3);
    assert!(d.metrics.notes.iter().any(|n| n.contains("clamped")));
    let (q5, k5, v5) = seeded(3, 5, 4, 2, 8);
    let rect = HeadInput::new(q5.view(), k5.view(), v5.view(), None, false).unwrap();
    let d = decompose(&rect, 1, 4, MatrixBudget::default()).unwrap();
    assert_eq!(d.metrics.rank, 3);
}

#[test]
fn e17_softmax_overflow_in_dense_and_band() {
    let q = array![[10.0_f32], [10.0]];
    let k = array![[10.0_f32], [9.0]];
    let v = array![[1.0_f32], [0.0]];
    let head = HeadInput::new(q.view(), k.view(), v.view(), Some(1.0), false).unwrap();
    for (m, p) in [
        (MethodId::Full, MethodParams::default()),
        (
            MethodId::Band,
            MethodParams {
                bandwidth: 1,
                ..Default::default()
            },
        ),
    ] {
        let r = compute(m, &p, &head, false, MatrixBudget::default()).unwrap();
        for i in 0..2 {
            assert!(
                (r.output[[i, 0]] - 0.999_954_6).abs() < 1e-6,
                "E17 {m} row {i}"
            );
        }
    }
}

#[test]
fn over_budget_matrix_is_skipped_with_a_note_not_an_error() {
    let (q, k, v) = seeded(64, 64, 4, 4, 1);
    let head = HeadInput::new(q.view(), k.view(), v.view(), None, false).unwrap();
    let tiny = MatrixBudget { bytes: 1024 };
    for (m, p) in all_near_far_methods() {
        let r = compute(m, &p, &head, true, tiny).unwrap();
        assert!(r.matrix.is_none(), "{m}");
        assert!(
            r.matrix_note.as_deref().unwrap_or("").contains("budget"),
            "{m}"
        );
    }
    assert!(decompose(&head, 2, 2, tiny).is_err());
}
