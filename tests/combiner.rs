//! Combiner (combiner.md): fast executor vs plan reference, official reference outputs, every
//! worked example and numeric anchor of §3.6, the logsparse level fix, E1/E7(d)/E17, and the
//! per-query cost.

use std::fs::File;

use attnscope::attention::combiner::{
    self, KeySet, Layout, RegionKind, Variant, combiner_attention, combiner_reference,
    plan_for_query, route_query,
};
use attnscope::attention::dense::dense_reference;
use attnscope::attention::method::{KeyRow, Pooling};
use attnscope::attention::{
    AttentionError, HeadInput, MatrixBudget, MethodId, MethodParams, compute,
};
use ndarray::{Array2, Array3, Axis, array, s};
use ndarray_npy::NpzReader;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

const LENGTHS: &[usize] = &[1, 2, 3, 5, 7, 10, 16, 17, 64, 100];
const VARIANTS: &[Variant] = &[
    Variant::Fixed,
    Variant::Logsparse,
    Variant::Axial,
    Variant::Mixture,
];

fn randn(rng: &mut ChaCha8Rng, rows: usize, cols: usize) -> Array2<f32> {
    Array2::from_shape_simple_fn((rows, cols), || StandardNormal.sample(rng))
}

fn random_qkv(seed: u64, l: usize, d: usize, dv: usize) -> (Array2<f32>, Array2<f32>, Array2<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (
        randn(&mut rng, l, d),
        randn(&mut rng, l, d),
        randn(&mut rng, l, dv),
    )
}

fn params(block: Option<usize>) -> MethodParams {
    MethodParams {
        block,
        ..Default::default()
    }
}

fn max_abs_diff(a: &Array2<f32>, b: &Array2<f32>) -> f32 {
    assert_eq!(a.dim(), b.dim());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// f32 executor vs f64 reference: a few ε per accumulated term, scaled by the value size.
fn tolerance(l: usize, vmax: f32) -> f32 {
    32.0 * f32::EPSILON * (l.max(1) as f32).sqrt() * vmax.max(1.0)
}

fn run(head: &HeadInput<'_>, variant: Variant, p: &MethodParams) -> (Array2<f32>, Array2<f32>) {
    let r =
        combiner_attention(head, variant, p, true, MatrixBudget::default()).expect("valid input");
    (r.output, r.matrix.expect("small matrix fits the budget"))
}

fn check_against_reference(
    variant: Variant,
    l: usize,
    block: Option<usize>,
    causal: bool,
    p: &MethodParams,
    seed: u64,
) {
    let (q, k, v) = random_qkv(seed, l, 8, 5);
    let head = HeadInput::new(q.view(), k.view(), v.view(), None, causal).unwrap();
    let p = MethodParams { block, ..p.clone() };
    let (out, mat) = run(&head, variant, &p);
    let (ref_out, ref_mat) =
        combiner_reference(&head, variant, &p, MatrixBudget::default()).unwrap();
    let vmax = v.iter().fold(0.0_f32, |m, x| m.max(x.abs()));
    let tol = tolerance(l, vmax);
    let ctx = format!(
        "{variant} L={l} block={block:?} causal={causal} pooling={:?} key_row={:?}",
        p.pooling, p.key_row
    );
    let e_out = max_abs_diff(&out, &ref_out);
    assert!(e_out <= tol, "{ctx}: output error {e_out} > {tol}");
    let e_mat = max_abs_diff(&mat, &ref_mat);
    assert!(e_mat <= tol, "{ctx}: matrix error {e_mat} > {tol}");
    // Rows of the effective matrix are distributions over the visible keys, with full support.
    for i in 0..l {
        let row = mat.row(i);
        let sum: f32 = row.iter().sum();
        assert!(
            (sum - 1.0).abs() <= 4.0 * f32::EPSILON * l as f32,
            "{ctx}: row {i} sums to {sum}"
        );
        let vis = head.visible_keys(i);
        for (j, &x) in row.iter().enumerate() {
            if vis.contains(&j) {
                assert!(x > 0.0, "{ctx}: q({j}|{i}) = {x}, expected full support");
            } else {
                assert_eq!(x, 0.0, "{ctx}: q({j}|{i}) = {x} outside the visible keys");
            }
        }
    }
    // Output = effective matrix × V (eq. 8).
    let via_matrix = mat.dot(&v);
    let e = max_abs_diff(&via_matrix, &out);
    assert!(e <= tol, "{ctx}: A_eff·V differs from output by {e}");
}

#[test]
fn fast_executor_matches_plan_reference_every_variant_causal_and_bidirectional() {
    for &variant in VARIANTS {
        for causal in [true, false] {
            for &l in LENGTHS {
                for block in [Some(1), Some(2), Some(3), None] {
                    check_against_reference(
                        variant,
                        l,
                        block,
                        causal,
                        &MethodParams::default(),
                        11 + l as u64,
                    );
                }
            }
        }
    }
}

#[test]
fn fast_executor_matches_plan_reference_mean_pooling_and_key_row_none() {
    let mean = MethodParams {
        pooling: Pooling::Mean,
        ..Default::default()
    };
    let none = MethodParams {
        key_row: KeyRow::None,
        ..Default::default()
    };
    for causal in [true, false] {
        for &l in &[5, 10, 17, 64] {
            for block in [Some(3), None] {
                for &variant in VARIANTS {
                    check_against_reference(variant, l, block, causal, &mean, 7);
                }
                check_against_reference(Variant::Axial, l, block, causal, &none, 8);
            }
        }
    }
}

#[test]
fn e7d_combiner_prime_length_7_and_length_10_block_3() {
    for &variant in VARIANTS {
        for causal in [true, false] {
            check_against_reference(variant, 7, None, causal, &MethodParams::default(), 70);
            check_against_reference(variant, 10, Some(3), causal, &MethodParams::default(), 100);
        }
    }
}

#[test]
fn degenerate_blocks_reduce_to_exact_attention() {
    // Block 1 makes every region a single key (an exact term); block ≥ L puts every key in the
    // direct set. Both must equal dense softmax attention (Logsparse: L ≤ 2 has no regions).
    for causal in [true, false] {
        let (q, k, v) = random_qkv(5, 13, 6, 3);
        let head = HeadInput::new(q.view(), k.view(), v.view(), None, causal).unwrap();
        let (dense_out, dense_mat) = dense_reference(&head);
        for variant in [Variant::Fixed, Variant::Axial, Variant::Mixture] {
            for block in [1, 13, 50] {
                let (out, mat) = run(&head, variant, &params(Some(block)));
                let tol = tolerance(13, 3.0);
                assert!(
                    max_abs_diff(&out, &dense_out) <= tol,
                    "{variant} block {block} causal {causal}"
                );
                assert!(
                    max_abs_diff(&mat, &dense_mat) <= tol,
                    "{variant} block {block} causal {causal}"
                );
            }
        }
        let (q, k, v) = random_qkv(6, 2, 6, 3);
        let head = HeadInput::new(q.view(), k.view(), v.view(), None, causal).unwrap();
        let (out, _) = run(&head, Variant::Logsparse, &params(None));
        assert!(max_abs_diff(&out, &dense_reference(&head).0) <= 1e-6);
    }
}

#[test]
fn block_zero_is_a_typed_error_and_block_above_length_is_clamped() {
    let (q, k, v) = random_qkv(1, 9, 4, 2);
    let head = HeadInput::new(q.view(), k.view(), v.view(), None, true).unwrap();
    for &variant in VARIANTS {
        let err = combiner_attention(
            &head,
            variant,
            &params(Some(0)),
            false,
            MatrixBudget::default(),
        )
        .unwrap_err();
        assert!(
            matches!(err, AttentionError::InvalidParameter { param: "block", ref value, .. } if value == "0"),
            "{err}"
        );
        let big = combiner_attention(
            &head,
            variant,
            &params(Some(1000)),
            false,
            MatrixBudget::default(),
        )
        .unwrap();
        let at_l = combiner_attention(
            &head,
            variant,
            &params(Some(9)),
            false,
            MatrixBudget::default(),
        )
        .unwrap();
        assert_eq!(big.output, at_l.output, "{variant}");
    }
    assert!(plan_for_query(Variant::Fixed, 9, Some(0), true, 0).is_err());
    assert!(plan_for_query(Variant::Fixed, 9, None, true, 9).is_err());
}

#[test]
fn e1_combiner_rejects_cross_attention_naming_both_lengths() {
    // E1's input (Lq = 3, Lk = 1) is cross-attention, which Combiner does not define.
    let q = Array2::<f32>::zeros((3, 2));
    let k = Array2::<f32>::zeros((1, 2));
    let v = array![[5.0_f32, -5.0]];
    let head = HeadInput::new(q.view(), k.view(), v.view(), None, true).unwrap();
    for &variant in VARIANTS {
        let err = combiner_attention(
            &head,
            variant,
            &MethodParams::default(),
            true,
            MatrixBudget::default(),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("seq_len_q = 3") && msg.contains("seq_len_kv = 1"),
            "{msg}"
        );
        assert!(route_query(&head, variant, &MethodParams::default(), 0).is_err());
    }
    // Empty input: an empty output, no panic.
    let e = Array2::<f32>::zeros((0, 2));
    let head = HeadInput::new(e.view(), e.view(), e.view(), None, true).unwrap();
    for &variant in VARIANTS {
        let r = combiner_attention(
            &head,
            variant,
            &MethodParams::default(),
            true,
            MatrixBudget::default(),
        )
        .unwrap();
        assert_eq!(r.output.dim(), (0, 2));
    }
}

#[test]
fn e17_softmax_overflow_through_joint_and_region_softmaxes() {
    let expect = 1.0 / (1.0 + (-10.0_f64).exp());
    // Joint softmax: L = 2, block 1 → query 1 has direct {1} (logit 90) and region {0}
    // (summary key k_0, logit 100); bidirectional row 0 likewise.
    let q = array![[10.0_f32], [10.0]];
    let k = array![[10.0_f32], [9.0]];
    let v = array![[1.0_f32], [0.0]];
    for &variant in VARIANTS {
        for causal in [true, false] {
            let head = HeadInput::new(q.view(), k.view(), v.view(), Some(1.0), causal).unwrap();
            let (out, mat) = run(&head, variant, &params(Some(1)));
            assert!(
                out.iter().chain(mat.iter()).all(|x| x.is_finite()),
                "{variant}"
            );
            let rows: &[usize] = if causal { &[1] } else { &[0, 1] };
            for &i in rows {
                assert!(
                    (f64::from(out[[i, 0]]) - expect).abs() < 1e-6,
                    "{variant} causal {causal} row {i}: {}",
                    out[[i, 0]]
                );
            }
        }
    }
    // Region softmax: Fixed causal L = 4, block 2; query 2 sees region {0, 1} with summary
    // query max(q0, q1) = 10, within-region logits 100 and 90, and two equal joint logits 0.
    let q = array![[10.0_f32], [10.0], [0.0], [0.0]];
    let k = array![[10.0_f32], [9.0], [0.0], [0.0]];
    let v = array![[1.0_f32], [0.0], [0.0], [0.0]];
    let head = HeadInput::new(q.view(), k.view(), v.view(), Some(1.0), true).unwrap();
    let (out, _) = run(&head, Variant::Fixed, &params(Some(2)));
    assert!(
        (f64::from(out[[2, 0]]) - 0.5 * expect).abs() < 1e-6,
        "{}",
        out[[2, 0]]
    );
    let routed = route_query(&head, Variant::Fixed, &params(Some(2)), 2).unwrap();
    assert!((f64::from(routed.regions[0].within[0]) - expect).abs() < 1e-6);
}

fn keysets(plan: &combiner::QueryPlan) -> Vec<Vec<usize>> {
    plan.regions.iter().map(|r| r.keys.to_vec()).collect()
}

/// Keys of one region.
type KeyList = Vec<usize>;
/// (query, direct keys, regions' keys) of a worked example.
type PlanRow = (usize, KeyList, Vec<KeyList>);

fn r(a: usize, b: usize) -> Vec<usize> {
    (a..=b).collect()
}

#[test]
fn worked_example_index_sets_l16_block4() {
    let plan = |v, causal, i| plan_for_query(v, 16, Some(4), causal, i).unwrap();
    // Fixed, causal.
    let fixed: &[PlanRow] = &[
        (0, vec![0], vec![]),
        (3, r(0, 3), vec![]),
        (5, vec![4, 5], vec![r(0, 3)]),
        (9, vec![8, 9], vec![r(0, 3), r(4, 7)]),
        (15, r(12, 15), vec![r(0, 3), r(4, 7), r(8, 11)]),
    ];
    for (i, direct, regions) in fixed {
        let p = plan(Variant::Fixed, true, *i);
        assert_eq!(&p.direct, direct, "fixed i={i}");
        assert_eq!(&keysets(&p), regions, "fixed i={i}");
        assert_eq!(p.terms(), direct.len() + regions.len());
    }
    // Fixed, bidirectional (eq. 10): i = 5 → direct {4..7}, regions [0..3], [8..11], [12..15].
    let p = plan(Variant::Fixed, false, 5);
    assert_eq!(p.direct, r(4, 7));
    assert_eq!(keysets(&p), vec![r(0, 3), r(8, 11), r(12, 15)]);
    assert_eq!(p.terms(), 7);
    // Logsparse, causal (regions listed small to large).
    let logsparse: &[PlanRow] = &[
        (0, vec![0], vec![]),
        (1, vec![0, 1], vec![]),
        (2, vec![2], vec![r(0, 1)]),
        (3, vec![2, 3], vec![r(0, 1)]),
        (5, vec![4, 5], vec![r(0, 3)]),
        (6, vec![6], vec![r(4, 5), r(0, 3)]),
        (7, vec![6, 7], vec![r(4, 5), r(0, 3)]),
        (8, vec![8], vec![r(0, 7)]),
        (9, vec![8, 9], vec![r(0, 7)]),
        (12, vec![12], vec![r(8, 11), r(0, 7)]),
        (13, vec![12, 13], vec![r(8, 11), r(0, 7)]),
        (14, vec![14], vec![r(12, 13), r(8, 11), r(0, 7)]),
        (15, vec![14, 15], vec![r(12, 13), r(8, 11), r(0, 7)]),
    ];
    for (i, direct, regions) in logsparse {
        let p = plan(Variant::Logsparse, true, *i);
        assert_eq!(&p.direct, direct, "logsparse i={i}");
        assert_eq!(&keysets(&p), regions, "logsparse i={i}");
    }
    // Rowmajor, causal: i = 9 = (2,1) → direct {8, 9}; rows 0 and 1 via positions 1 and 5.
    let p = plan(Variant::Axial, true, 9);
    assert_eq!(p.direct, vec![8, 9]);
    assert_eq!(keysets(&p), vec![r(0, 3), r(4, 7)]);
    let via: Vec<_> = p.regions.iter().map(|r| r.summary).collect();
    use combiner::SummarySource::Position;
    assert_eq!(via, vec![Position(1), Position(5)]);
    assert_eq!(p.terms(), 4);
    let p = plan(Variant::Axial, true, 15);
    assert_eq!(p.direct, r(12, 15));
    let via: Vec<_> = p.regions.iter().map(|r| r.summary).collect();
    assert_eq!(via, vec![Position(3), Position(7), Position(11)]);
    // Mixture, causal: direct sets, region sets (as sets) and term counts.
    let mixture: &[(usize, Vec<usize>, Vec<KeyList>, usize)] = &[
        (0, vec![0], vec![], 1),
        (3, r(0, 3), vec![], 4),
        (
            5,
            vec![1, 4, 5],
            vec![vec![0], vec![2], vec![3], vec![0], vec![2, 3]],
            8,
        ),
        (
            9,
            vec![1, 5, 8, 9],
            vec![
                vec![0, 4],
                vec![2, 6],
                vec![3, 7],
                vec![0],
                vec![4],
                vec![2, 3],
                vec![6, 7],
            ],
            11,
        ),
        (
            10,
            vec![2, 6, 8, 9, 10],
            vec![
                vec![0, 4],
                vec![1, 5],
                vec![3, 7],
                vec![0, 1],
                vec![4, 5],
                vec![3],
                vec![7],
            ],
            12,
        ),
        (
            15,
            vec![3, 7, 11, 12, 13, 14, 15],
            vec![
                vec![0, 4, 8],
                vec![1, 5, 9],
                vec![2, 6, 10],
                vec![0, 1, 2],
                vec![4, 5, 6],
                vec![8, 9, 10],
            ],
            13,
        ),
    ];
    for (i, direct, regions, terms) in mixture {
        let p = plan(Variant::Mixture, true, *i);
        assert_eq!(&p.direct, direct, "mixture i={i}");
        let mut got = keysets(&p);
        let mut want = regions.clone();
        got.sort();
        want.sort();
        assert_eq!(got, want, "mixture i={i}");
        assert_eq!(p.terms(), *terms, "mixture i={i}");
    }
    // Coverage multiplicity of mixture i = 9.
    let p = plan(Variant::Mixture, true, 9);
    let mut cover = [0usize; 16];
    p.direct.iter().for_each(|&j| cover[j] += 1);
    p.regions
        .iter()
        .flat_map(|r| r.keys.iter())
        .for_each(|j| cover[j] += 1);
    assert_eq!(cover, [2, 1, 2, 2, 2, 1, 2, 2, 1, 1, 0, 0, 0, 0, 0, 0]);
}

/// Q = 0, V = I: the output row is the effective row q(·|i).
fn closed_form_rows(variant: Variant) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let q = Array2::<f32>::zeros((16, 3));
    let k = randn(&mut rng, 16, 3);
    let v = Array2::<f32>::eye(16);
    let head = HeadInput::new(q.view(), k.view(), v.view(), None, true).unwrap();
    combiner_attention(
        &head,
        variant,
        &params(Some(4)),
        false,
        MatrixBudget::default(),
    )
    .unwrap()
    .output
}

fn assert_row(out: &Array2<f32>, i: usize, expect: &[f64], what: &str) {
    for (j, (&got, &want)) in out.row(i).iter().zip(expect).enumerate() {
        assert!(
            (f64::from(got) - want).abs() < 1e-6,
            "{what} i={i} j={j}: {got} vs {want}"
        );
    }
}

fn spread(parts: &[(std::ops::RangeInclusive<usize>, f64)]) -> Vec<f64> {
    let mut row = vec![0.0; 16];
    for (range, x) in parts {
        for j in range.clone() {
            row[j] = *x;
        }
    }
    row
}

#[test]
fn closed_form_fractions_with_zero_queries_and_identity_values() {
    let f = closed_form_rows(Variant::Fixed);
    assert_row(
        &f,
        5,
        &spread(&[(0..=3, 1.0 / 12.0), (4..=5, 1.0 / 3.0)]),
        "fixed",
    );
    assert_row(
        &f,
        9,
        &spread(&[(0..=7, 1.0 / 16.0), (8..=9, 1.0 / 4.0)]),
        "fixed",
    );
    assert_row(
        &f,
        15,
        &spread(&[(0..=11, 1.0 / 28.0), (12..=15, 1.0 / 7.0)]),
        "fixed",
    );
    let l = closed_form_rows(Variant::Logsparse);
    assert_row(
        &l,
        6,
        &spread(&[(0..=3, 1.0 / 12.0), (4..=5, 1.0 / 6.0), (6..=6, 1.0 / 3.0)]),
        "logsparse",
    );
    assert_row(
        &l,
        13,
        &spread(&[
            (0..=7, 1.0 / 32.0),
            (8..=11, 1.0 / 16.0),
            (12..=13, 1.0 / 4.0),
        ]),
        "logsparse",
    );
    assert_row(
        &l,
        15,
        &spread(&[
            (0..=7, 1.0 / 40.0),
            (8..=11, 1.0 / 20.0),
            (12..=13, 1.0 / 10.0),
            (14..=15, 1.0 / 5.0),
        ]),
        "logsparse",
    );
    let m = closed_form_rows(Variant::Mixture);
    let mut m5 = vec![0.0; 16];
    m5[..6].copy_from_slice(&[0.25, 0.125, 3.0 / 16.0, 3.0 / 16.0, 0.125, 0.125]);
    assert_row(&m, 5, &m5, "mixture");
    let mut m9 = spread(&[(0..=9, 1.0 / 11.0)]);
    m9[0] = 3.0 / 22.0;
    m9[4] = 3.0 / 22.0;
    assert_row(&m, 9, &m9, "mixture");
    let mut m15 = spread(&[(0..=10, 2.0 / 39.0), (11..=15, 1.0 / 13.0)]);
    m15[3] = 1.0 / 13.0;
    m15[7] = 1.0 / 13.0;
    assert_row(&m, 15, &m15, "mixture");
    // With Q = 0, Rowmajor equals Fixed.
    let a = closed_form_rows(Variant::Axial);
    assert!(max_abs_diff(&a, &f) < 1e-6);
}

#[test]
fn tiny_hand_example_fixed_causal_7_5_5_2_666667() {
    let ln3 = 3.0_f32.ln();
    let q = array![[1.0_f32], [2.0], [2.0], [0.0]];
    let k = array![[0.0_f32], [ln3 / 2.0], [0.0], [0.0]];
    let v = array![[4.0_f32], [8.0], [1.0], [0.0]];
    let head = HeadInput::new(q.view(), k.view(), v.view(), Some(1.0), true).unwrap();
    let (out, _) = run(&head, Variant::Fixed, &params(Some(2)));
    assert!((out[[0, 0]] - 4.0).abs() < 1e-6);
    assert!((out[[1, 0]] - 7.0).abs() < 1e-5, "{}", out[[1, 0]]);
    assert!((out[[2, 0]] - 5.5).abs() < 1e-5, "{}", out[[2, 0]]);
    assert!((out[[3, 0]] - 2.666_667).abs() < 1e-5, "{}", out[[3, 0]]);
    let routed = route_query(&head, Variant::Fixed, &params(Some(2)), 2).unwrap();
    assert!((routed.regions[0].weight - 0.75).abs() < 1e-6);
    assert!((routed.regions[0].summary_logit - ln3).abs() < 1e-6);
    assert!((routed.direct[0].weight - 0.25).abs() < 1e-6);
}

fn anchor_head() -> (Array2<f32>, Array2<f32>, Array2<f32>) {
    let l = 16;
    let q = Array2::from_shape_fn((l, 2), |(i, c)| {
        0.5 * if c == 0 {
            (i as f32).sin()
        } else {
            (i as f32).cos()
        }
    });
    let k = Array2::from_shape_fn((l, 2), |(i, c)| {
        if c == 0 {
            (0.7 * i as f32).cos()
        } else {
            (0.3 * i as f32).sin()
        }
    });
    let v = Array2::from_shape_fn((l, 2), |(i, c)| {
        if c == 0 {
            i as f32
        } else if i % 2 == 0 {
            1.0
        } else {
            -1.0
        }
    });
    (q, k, v)
}

const ANCHOR_ROWS: [usize; 6] = [0, 1, 5, 6, 9, 15];

fn check_anchor(out: &Array2<f32>, expect: [[f64; 2]; 6], what: &str) {
    for (&i, want) in ANCHOR_ROWS.iter().zip(expect) {
        for c in 0..2 {
            let got = f64::from(out[[i, c]]);
            assert!(
                (got - want[c]).abs() < 1e-5,
                "{what} i={i} c={c}: {got} vs {}",
                want[c]
            );
        }
    }
}

#[test]
fn numeric_anchors_table_l16_block4() {
    let (q, k, v) = anchor_head();
    let causal = HeadInput::new(q.view(), k.view(), v.view(), Some(1.0), true).unwrap();
    let bidir = HeadInput::new(q.view(), k.view(), v.view(), Some(1.0), false).unwrap();
    let p4 = params(Some(4));
    let out = |head: &HeadInput<'_>, variant, p: &MethodParams| {
        combiner_attention(head, variant, p, false, MatrixBudget::default())
            .unwrap()
            .output
    };
    check_anchor(
        &dense_reference(&causal).0,
        [
            [0.0, 1.0],
            [0.495224, 0.009552],
            [3.149622, -0.073384],
            [3.459326, 0.119546],
            [4.262905, 0.015272],
            [7.847319, 0.002771],
        ],
        "full causal",
    );
    check_anchor(
        &out(&causal, Variant::Fixed, &p4),
        [
            [0.0, 1.0],
            [0.495224, 0.009552],
            [3.998042, 0.002555],
            [4.293742, 0.256850],
            [6.162701, -0.046169],
            [10.353590, -0.019219],
        ],
        "fixed causal",
    );
    check_anchor(
        &out(&causal, Variant::Logsparse, &p4),
        [
            [0.0, 1.0],
            [0.495224, 0.009552],
            [3.998042, 0.002555],
            [4.212233, 0.362188],
            [7.028778, -0.062024],
            [11.106754, -0.017673],
        ],
        "logsparse causal",
    );
    check_anchor(
        &out(&causal, Variant::Mixture, &p4),
        [
            [0.0, 1.0],
            [0.495224, 0.009552],
            [2.849000, 0.028683],
            [3.169037, -0.030214],
            [4.132878, 0.103889],
            [8.541144, -0.078180],
        ],
        "mixture causal",
    );
    let none = MethodParams {
        key_row: KeyRow::None,
        ..p4.clone()
    };
    check_anchor(
        &out(&causal, Variant::Axial, &none),
        [
            [0.0, 1.0],
            [0.495224, 0.009552],
            [3.970762, 0.006200],
            [4.245515, 0.272592],
            [5.884080, -0.017344],
            [10.886241, -0.033430],
        ],
        "rowmajor causal key_row none",
    );
    check_anchor(
        &out(&bidir, Variant::Fixed, &p4),
        [
            [4.700584, -0.035779],
            [4.532071, 0.032719],
            [6.402497, 0.058835],
            [6.066153, 0.029912],
            [8.785842, -0.017838],
            [10.353590, -0.019219],
        ],
        "fixed bidirectional eq. 10",
    );
}

#[test]
fn official_reference_outputs_match_within_1e5() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut checked = 0;
    for name in [
        "combiner-fixed_L64_b8_h2_d8_seed1.npz",
        "combiner-logsparse_L64_b8_h2_d8_seed1.npz",
        "combiner-mixture_L64_b8_h2_d8_seed1.npz",
    ] {
        let mut parts = name.trim_end_matches(".npz").split('_');
        let method = MethodId::parse(parts.next().unwrap()).unwrap();
        let variant = combiner::variant_of(method).unwrap();
        let l: usize = parts
            .next()
            .unwrap()
            .trim_start_matches('L')
            .parse()
            .unwrap();
        let block: usize = parts
            .next()
            .unwrap()
            .trim_start_matches('b')
            .parse()
            .unwrap();
        let mut npz = NpzReader::new(File::open(dir.join(name)).unwrap()).unwrap();
        let q: Array3<f32> = npz.by_name("q").unwrap();
        let k: Array3<f32> = npz.by_name("k").unwrap();
        let v: Array3<f32> = npz.by_name("v").unwrap();
        let expect: Array3<f32> = npz.by_name("out").unwrap();
        assert_eq!(q.dim().1, l);
        for h in 0..q.dim().0 {
            let head = HeadInput::new(
                q.index_axis(Axis(0), h),
                k.index_axis(Axis(0), h),
                v.index_axis(Axis(0), h),
                None,
                true,
            )
            .unwrap();
            let out = combiner_attention(
                &head,
                variant,
                &params(Some(block)),
                false,
                MatrixBudget::default(),
            )
            .unwrap()
            .output;
            let err = max_abs_diff(&out, &expect.index_axis(Axis(0), h).to_owned());
            assert!(err <= 1e-5, "{name} head {h}: max abs error {err}");
            checked += 1;
        }
    }
    assert_eq!(checked, 6);
}

#[test]
fn logsparse_level_fix_last_query_reaches_every_earlier_key() {
    for l in [3usize, 5, 9, 17] {
        let p = plan_for_query(Variant::Logsparse, l, None, true, l - 1).unwrap();
        let mut keys: Vec<usize> = p.direct.clone();
        keys.extend(p.regions.iter().flat_map(|r| r.keys.iter()));
        keys.sort_unstable();
        assert_eq!(
            keys,
            (0..l).collect::<Vec<_>>(),
            "L = {l}: the official code reaches only {{L-1}}"
        );
        // And through the numbers: with Q = 0 and V = I, every earlier key gets weight > 0.
        let q = Array2::<f32>::zeros((l, 2));
        let v = Array2::<f32>::eye(l);
        let head = HeadInput::new(q.view(), q.view(), v.view(), None, true).unwrap();
        let out = combiner_attention(
            &head,
            Variant::Logsparse,
            &MethodParams::default(),
            false,
            MatrixBudget::default(),
        )
        .unwrap()
        .output;
        assert!(
            out.row(l - 1).iter().all(|&x| x > 0.0),
            "L = {l}: {:?}",
            out.row(l - 1)
        );
    }
}

#[test]
fn plans_tile_the_visible_keys() {
    // Fixed, Logsparse, Axial: direct set and regions partition the visible keys; Mixture:
    // direct keys once, every other visible key in one or two regions.
    for &variant in VARIANTS {
        for causal in [true, false] {
            for &l in LENGTHS {
                for block in [1, 2, 3, 4, 7] {
                    let layout = Layout::new(variant, l, block, causal).unwrap();
                    for i in 0..l {
                        let p = layout.plan(i);
                        let mut cover = vec![0usize; l];
                        let mut direct = vec![false; l];
                        for &j in &p.direct {
                            cover[j] += 1;
                            direct[j] = true;
                        }
                        for reg in &p.regions {
                            assert!(!reg.keys.is_empty());
                            assert_eq!(
                                layout.region(reg.id),
                                Some(*reg),
                                "{variant} region id stable"
                            );
                            reg.keys.iter().for_each(|j| cover[j] += 1);
                        }
                        let vis = if causal { i + 1 } else { l };
                        for j in 0..l {
                            let ok = match (variant, j < vis) {
                                (_, false) => cover[j] == 0,
                                (Variant::Mixture, true) if !direct[j] => {
                                    (1..=2).contains(&cover[j])
                                }
                                (_, true) => cover[j] == 1,
                            };
                            assert!(
                                ok,
                                "{variant} causal={causal} L={l} s={block} i={i} j={j}: covered {}",
                                cover[j]
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn logits_per_query_prove_subquadratic_cost() {
    for &l in &[64usize, 100, 1000, 1024, 4096] {
        let (q, k, v) = random_qkv(9, l, 4, 2);
        let sqrt_l = (l as f64).sqrt();
        let log2_l = (l as f64).log2().ceil() as usize;
        for &variant in VARIANTS {
            for causal in [true, false] {
                let head = HeadInput::new(q.view(), k.view(), v.view(), None, causal).unwrap();
                let r = combiner_attention(
                    &head,
                    variant,
                    &MethodParams::default(),
                    false,
                    MatrixBudget::default(),
                )
                .unwrap();
                let s = r.layout.block();
                let n = l.div_ceil(s);
                let st = r.stats;
                assert_eq!(st.queries, l);
                // Terms per query (combiner.md §3.7).
                let bound = match variant {
                    Variant::Fixed | Variant::Axial => s + n,
                    Variant::Mixture => 3 * n + 3 * s,
                    Variant::Logsparse => 1 + log2_l,
                };
                assert!(
                    st.max_query_logits <= bound,
                    "{variant} L={l}: {} terms > {bound}",
                    st.max_query_logits
                );
                // Total work = joint logits + within-region logits.
                let work = (st.query_logits + st.summary_logits) as f64;
                let budget = match variant {
                    Variant::Logsparse => 3.0 * l as f64 * (log2_l as f64 + 1.0),
                    Variant::Fixed => 3.0 * l as f64 * sqrt_l,
                    Variant::Axial => 4.0 * l as f64 * sqrt_l,
                    Variant::Mixture => 12.0 * l as f64 * sqrt_l,
                };
                assert!(
                    work <= budget,
                    "{variant} causal={causal} L={l}: {work} logits > {budget}"
                );
                assert!(
                    work < (l * l) as f64 || l < 200,
                    "{variant} L={l}: not sub-quadratic ({work})"
                );
            }
        }
    }
}

#[test]
fn route_query_matches_executor_and_rows_sum_to_one() {
    for &variant in VARIANTS {
        for causal in [true, false] {
            let (q, k, v) = random_qkv(21, 23, 5, 3);
            let head = HeadInput::new(q.view(), k.view(), v.view(), None, causal).unwrap();
            let p = params(Some(4));
            let (out, mat) = run(&head, variant, &p);
            for i in [0, 4, 11, 22] {
                let routed = route_query(&head, variant, &p, i).unwrap();
                let total: f32 = routed.direct.iter().map(|d| d.weight).sum::<f32>()
                    + routed.regions.iter().map(|r| r.weight).sum::<f32>();
                assert!((total - 1.0).abs() < 1e-5);
                let sum: f32 = routed.effective.iter().sum();
                assert!((sum - 1.0).abs() < 1e-5);
                for (j, &x) in routed.effective.iter().enumerate() {
                    assert!((x - mat[[i, j]]).abs() < 1e-6, "{variant} i={i} j={j}");
                }
                for (c, &x) in routed.output.iter().enumerate() {
                    assert!((x - out[[i, c]]).abs() < 1e-5);
                }
                for reg in &routed.regions {
                    assert_eq!(reg.within.len(), reg.region.keys.len());
                    let s: f32 = reg.within.iter().sum();
                    assert!((s - 1.0).abs() < 1e-5);
                }
            }
        }
    }
}

#[test]
fn method_dispatch_serde_names_matrix_and_budget_note() {
    let names: Vec<&str> = [
        MethodId::CombinerFixed,
        MethodId::CombinerLogsparse,
        MethodId::CombinerAxial,
        MethodId::CombinerMixture,
    ]
    .iter()
    .map(|m| m.as_str())
    .collect();
    assert_eq!(
        names,
        [
            "combiner-fixed",
            "combiner-logsparse",
            "combiner-axial",
            "combiner-mixture"
        ]
    );
    for name in names {
        let m = MethodId::parse(name).unwrap();
        assert!(MethodId::ALL.contains(&m));
        let variant = combiner::variant_of(m).unwrap();
        assert_eq!(combiner::method_of(variant), m);
        assert_eq!(variant.as_str(), name);
        assert_eq!(serde_json::to_string(&m).unwrap(), format!("\"{name}\""));
        let (q, k, v) = random_qkv(4, 20, 4, 3);
        let head = HeadInput::new(q.view(), k.view(), v.view(), None, true).unwrap();
        let r = compute(
            m,
            &MethodParams::default(),
            &head,
            true,
            MatrixBudget::default(),
        )
        .unwrap();
        let direct = combiner_attention(
            &head,
            combiner::variant_of(m).unwrap(),
            &MethodParams::default(),
            false,
            MatrixBudget::default(),
        )
        .unwrap();
        assert_eq!(r.output, direct.output);
        assert!(r.matrix.is_some() && r.matrix_note.is_none());
        assert!(r.properties.rows_sum_to_one && r.properties.non_negative);
        if m != MethodId::CombinerLogsparse {
            assert_eq!(r.params.block, Some(5), "default block ⌈√20⌉ recorded");
        }
        let tiny = MatrixBudget { bytes: 100 };
        let r = compute(m, &MethodParams::default(), &head, true, tiny).unwrap();
        assert!(r.matrix.is_none() && r.matrix_note.is_some());
        assert_eq!(r.output, direct.output);
    }
}

#[test]
fn strided_views_nan_isolation_and_thread_count_determinism() {
    let (q, k, v) = random_qkv(31, 37, 6, 4);
    let kt = k.t().to_owned();
    for &variant in VARIANTS {
        // A transposed (non-standard-layout) key view gives the same result.
        let head = HeadInput::new(q.view(), k.view(), v.view(), None, true).unwrap();
        let strided = HeadInput::new(q.view(), kt.t(), v.view(), None, true).unwrap();
        let a = combiner_attention(
            &head,
            variant,
            &MethodParams::default(),
            false,
            MatrixBudget::default(),
        )
        .unwrap();
        let b = combiner_attention(
            &strided,
            variant,
            &MethodParams::default(),
            false,
            MatrixBudget::default(),
        )
        .unwrap();
        assert_eq!(a.output, b.output);
        // One thread or two: bit-identical.
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let c = one.install(|| {
            combiner_attention(
                &head,
                variant,
                &MethodParams::default(),
                false,
                MatrixBudget::default(),
            )
            .unwrap()
        });
        assert_eq!(a.output, c.output);
        // A NaN in the last key/value only reaches the last query under causal attention.
        let (mut k2, mut v2) = (k.clone(), v.clone());
        k2[[36, 0]] = f32::NAN;
        v2[[36, 1]] = f32::NAN;
        let head = HeadInput::new(q.view(), k2.view(), v2.view(), None, true).unwrap();
        let out = combiner_attention(
            &head,
            variant,
            &MethodParams::default(),
            false,
            MatrixBudget::default(),
        )
        .unwrap()
        .output;
        assert!(
            out.slice(s![..36, ..]).iter().all(|x| x.is_finite()),
            "{variant}"
        );
        assert!(out.row(36).iter().any(|x| x.is_nan()), "{variant}");
    }
}

#[test]
fn keyset_and_region_labels() {
    let col = KeySet::strided(1, 4, 3);
    assert_eq!(col.to_vec(), vec![1, 5, 9]);
    assert!(col.contains(5) && !col.contains(4) && !col.contains(13));
    assert_eq!(KeySet::range(4..8).to_string(), "[4..7]");
    assert_eq!(RegionKind::Block { block: 2 }.to_string(), "block 2");
    assert_eq!(combiner::default_block(16), 4);
    assert_eq!(combiner::default_block(17), 5);
    assert_eq!(combiner::default_block(1), 1);
    assert_eq!(combiner::default_block(0), 1);
}
