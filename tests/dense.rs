//! The fast dense path (`full_attention`) against the f64 oracle (`dense_reference`), plus the
//! edge cases E1, E2(a), E7(b), E17 of `edge_cases.md` and thread-count determinism (C7).
//!
//! Tolerances: with scores `s = scale·q·k` computed in f32 (|Δs| ≲ d·ε·|s|), the vectorised
//! `exp` (≤ 4ε relative) and f32 accumulation of `P V` over up to Lk terms (random-walk growth
//! ≈ √Lk·ε), an output entry is off by at most about `c·ε·(d + √Lk + 8)·max|V|`; we use c = 8
//! and the same bound without `max|V|` for probabilities (≤ 1).

use attnscope::attention::dense::{KEY_BLOCK, QUERY_BLOCK, dense_reference, full_attention};
use attnscope::attention::{AttentionError, HeadInput, MatrixBudget};
use ndarray::{Array2, ArrayView2, array, s};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

fn randn(rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> Array2<f32> {
    Array2::from_shape_simple_fn((rows, cols), || StandardNormal.sample(rng))
}

/// Seeded `(q [lq,d], k [lk,d], v [lk,dv])`.
fn qkv(
    lq: usize,
    lk: usize,
    d: usize,
    dv: usize,
    seed: u64,
) -> (Array2<f32>, Array2<f32>, Array2<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (
        randn(lq, d, &mut rng),
        randn(lk, d, &mut rng),
        randn(lk, dv, &mut rng),
    )
}

fn tolerance(d: usize, lk: usize) -> f32 {
    8.0 * f32::EPSILON * (d as f32 + (lk as f32).sqrt() + 8.0)
}

fn max_abs(a: ArrayView2<'_, f32>) -> f32 {
    a.iter().fold(0.0_f32, |m, x| m.max(x.abs()))
}

/// Compares the fast path (with and without the matrix) against the oracle entry by entry.
fn check_against_reference(head: &HeadInput<'_>, what: &str) {
    let (want_out, want_attn) = dense_reference(head);
    let tol = tolerance(head.head_dim(), head.seq_len_kv());
    let tol_out = tol * max_abs(head.v).max(1.0);
    for want_matrix in [false, true] {
        let (out, attn) = full_attention(head, want_matrix, MatrixBudget::default())
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(out.dim(), want_out.dim(), "{what}");
        for ((idx, &got), &want) in out.indexed_iter().zip(want_out.iter()) {
            assert!(
                (got - want).abs() <= tol_out,
                "{what} matrix={want_matrix}: out{idx:?} = {got}, reference {want}, tol {tol_out}"
            );
        }
        match attn {
            Some(attn) => {
                assert!(want_matrix, "{what}: matrix returned unasked");
                assert_eq!(attn.dim(), want_attn.dim(), "{what}");
                for ((idx, &got), &want) in attn.indexed_iter().zip(want_attn.iter()) {
                    assert!(
                        (got - want).abs() <= tol,
                        "{what}: attn{idx:?} = {got}, reference {want}, tol {tol}"
                    );
                }
            }
            None => assert!(!want_matrix, "{what}: matrix missing"),
        }
    }
}

#[test]
fn fast_matches_reference_square_lengths_causal_and_bidirectional() {
    for (n, &l) in [1_usize, 2, 7, 64, 257, 1025].iter().enumerate() {
        for &d in &[1_usize, 32, 64] {
            let (q, k, v) = qkv(l, l, d, d, 100 + n as u64);
            for causal in [false, true] {
                let head = HeadInput::new(q.view(), k.view(), v.view(), None, causal).unwrap();
                check_against_reference(&head, &format!("L={l} d={d} causal={causal}"));
            }
        }
    }
}

#[test]
fn fast_matches_reference_lq_ne_lk() {
    let shapes = [
        (3, 64),
        (64, 3),
        (7, 257),
        (257, 7),
        (130, 1025),
        (1025, 130),
        (1, 600),
        (600, 1),
    ];
    for (n, &(lq, lk)) in shapes.iter().enumerate() {
        let (q, k, v) = qkv(lq, lk, 32, 32, 200 + n as u64);
        for causal in [true, false] {
            let head = HeadInput::new(q.view(), k.view(), v.view(), None, causal).unwrap();
            check_against_reference(&head, &format!("Lq={lq} Lk={lk} causal={causal}"));
        }
    }
}

#[test]
fn fast_matches_reference_value_dim_differs_from_head_dim() {
    for (n, &dv) in [1_usize, 5, 100].iter().enumerate() {
        let (q, k, v) = qkv(257, 257, 32, dv, 300 + n as u64);
        for causal in [true, false] {
            let head = HeadInput::new(q.view(), k.view(), v.view(), Some(0.3), causal).unwrap();
            check_against_reference(&head, &format!("d=32 dv={dv} causal={causal}"));
        }
    }
}

#[test]
fn fast_matches_reference_on_strided_and_transposed_views() {
    let mut rng = ChaCha8Rng::seed_from_u64(400);
    let (l, d) = (131, 16);
    let q_t = randn(d, l, &mut rng); // q = q_tᵀ: column-major view
    let k_wide = randn(2 * l, d + 3, &mut rng); // every other row, a column window
    let v_rev = randn(l, 9, &mut rng); // columns reversed: negative stride
    let q = q_t.t();
    let k = k_wide.slice(s![..;2, 1..d + 1]);
    let v = v_rev.slice(s![.., ..;-1]);
    assert!(q.as_slice().is_none() && k.as_slice().is_none() && v.as_slice().is_none());
    for causal in [true, false] {
        let head = HeadInput::new(q, k, v, None, causal).unwrap();
        check_against_reference(&head, &format!("strided views causal={causal}"));
        let (q2, k2, v2) = (q.to_owned(), k.to_owned(), v.to_owned());
        let head2 = HeadInput::new(q2.view(), k2.view(), v2.view(), None, causal).unwrap();
        let (a, _) = full_attention(&head, false, MatrixBudget::default()).unwrap();
        let (b, _) = full_attention(&head2, false, MatrixBudget::default()).unwrap();
        assert_eq!(
            a, b,
            "a strided view must give the same bits as its contiguous copy"
        );
    }
}

#[test]
fn e1_query_that_sees_no_key_gets_zero_row() {
    let q = Array2::<f32>::zeros((3, 2));
    let k = array![[0.0_f32, 0.0]];
    let v = array![[5.0_f32, -5.0]];
    let head = HeadInput::new(q.view(), k.view(), v.view(), None, true).unwrap();
    for want_matrix in [false, true] {
        let (out, attn) = full_attention(&head, want_matrix, MatrixBudget::default()).unwrap();
        assert_eq!(out, array![[0.0, 0.0], [0.0, 0.0], [5.0, -5.0]]);
        if let Some(attn) = attn {
            assert_eq!(attn, array![[0.0], [0.0], [1.0]]);
        }
    }
}

#[test]
fn e1_empty_keys_give_zero_output() {
    let q = Array2::<f32>::ones((3, 4));
    let k = Array2::<f32>::zeros((0, 4));
    let v = Array2::<f32>::zeros((0, 2));
    for causal in [true, false] {
        let head = HeadInput::new(q.view(), k.view(), v.view(), None, causal).unwrap();
        let (out, attn) = full_attention(&head, true, MatrixBudget::default()).unwrap();
        assert_eq!(out, Array2::<f32>::zeros((3, 2)));
        assert_eq!(attn.map(|a| a.dim()), Some((3, 0)));
    }
}

#[test]
fn e2a_nan_in_masked_key_and_value_stays_out_of_earlier_rows() {
    let q = Array2::<f32>::zeros((3, 1));
    let k = array![[0.0_f32], [0.0], [f32::NAN]];
    let v = array![[1.0_f32], [2.0], [f32::NAN]];
    let head = HeadInput::new(q.view(), k.view(), v.view(), None, true).unwrap();
    for want_matrix in [false, true] {
        let (out, attn) = full_attention(&head, want_matrix, MatrixBudget::default()).unwrap();
        assert_eq!(out[[0, 0]], 1.0);
        assert_eq!(out[[1, 0]], 1.5);
        assert!(out[[2, 0]].is_nan());
        if let Some(attn) = attn {
            assert_eq!(attn.row(0).to_vec(), vec![1.0, 0.0, 0.0]);
            assert_eq!(attn.row(1).to_vec(), vec![0.5, 0.5, 0.0]);
            assert!(attn.row(2).iter().all(|x| x.is_nan()));
        }
    }
}

#[test]
fn e2a_nan_poisoned_tail_on_long_causal_input_only_reaches_rows_that_see_it() {
    // Poison keys/values from `first_bad` on: inside a query block's diagonal (partly visible
    // key block) and across key-block boundaries.
    let (l, d) = (KEY_BLOCK + 2 * QUERY_BLOCK + 5, 32);
    for (n, first_bad) in [QUERY_BLOCK + 17, KEY_BLOCK - 3, KEY_BLOCK + QUERY_BLOCK]
        .into_iter()
        .enumerate()
    {
        for poison_keys in [true, false] {
            let (q, mut k, mut v) = qkv(l, l, d, d, 500 + n as u64);
            if poison_keys {
                k.slice_mut(s![first_bad.., ..]).fill(f32::NAN);
            }
            v.slice_mut(s![first_bad.., ..]).fill(f32::NAN);
            let head = HeadInput::new(q.view(), k.view(), v.view(), None, true).unwrap();
            let clean = HeadInput::new(
                q.slice(s![..first_bad, ..]),
                k.slice(s![..first_bad, ..]),
                v.slice(s![..first_bad, ..]),
                None,
                true,
            )
            .unwrap();
            let (want, _) = dense_reference(&clean);
            let tol = tolerance(d, l) * max_abs(want.view()).max(1.0);
            for want_matrix in [false, true] {
                let (out, _) = full_attention(&head, want_matrix, MatrixBudget::default()).unwrap();
                let what = format!("first_bad={first_bad} keys={poison_keys} matrix={want_matrix}");
                for i in 0..first_bad {
                    for t in 0..d {
                        let (got, w) = (out[[i, t]], want[[i, t]]);
                        assert!(
                            (got - w).abs() <= tol,
                            "{what}: out[{i},{t}] = {got}, want {w}"
                        );
                    }
                }
                for i in first_bad..l {
                    assert!(
                        out.row(i).iter().all(|x| x.is_nan()),
                        "{what}: row {i} sees a NaN"
                    );
                }
            }
        }
    }
}

#[test]
fn e7b_length_one_past_a_power_of_two_within_1e_5_relative() {
    let l = 1025;
    let (q, k, v) = qkv(l, l, 64, 64, 700);
    for causal in [false, true] {
        let head = HeadInput::new(q.view(), k.view(), v.view(), None, causal).unwrap();
        let (want, want_attn) = dense_reference(&head);
        let (out, attn) = full_attention(&head, true, MatrixBudget::default()).unwrap();
        let (out2, _) = full_attention(&head, false, MatrixBudget::default()).unwrap();
        let rel = |a: &Array2<f32>, b: &Array2<f32>| {
            let num: f64 = a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum();
            let den: f64 = b.iter().map(|y| f64::from(*y).powi(2)).sum();
            (num / den).sqrt()
        };
        assert!(
            rel(&out, &want) < 1e-5,
            "causal={causal}: {}",
            rel(&out, &want)
        );
        assert!(
            rel(&out2, &want) < 1e-5,
            "causal={causal}: {}",
            rel(&out2, &want)
        );
        let attn = attn.unwrap();
        assert!(
            rel(&attn, &want_attn) < 1e-5,
            "causal={causal}: {}",
            rel(&attn, &want_attn)
        );
    }
}

#[test]
fn e17_large_logits_do_not_overflow() {
    let q = array![[10.0_f32], [10.0]];
    let k = array![[10.0_f32], [9.0]];
    let v = array![[1.0_f32], [0.0]];
    let head = HeadInput::new(q.view(), k.view(), v.view(), Some(1.0), false).unwrap();
    let expect = 1.0 / (1.0 + (-10.0_f64).exp());
    for want_matrix in [false, true] {
        let (out, attn) = full_attention(&head, want_matrix, MatrixBudget::default()).unwrap();
        for i in 0..2 {
            assert!((f64::from(out[[i, 0]]) - expect).abs() < 4e-7, "{out:?}");
        }
        if let Some(attn) = attn {
            assert!(attn.iter().all(|x| x.is_finite()));
            assert!((f64::from(attn[[0, 0]]) - expect).abs() < 4e-7);
        }
    }
}

#[test]
fn matrix_over_budget_is_a_typed_error() {
    let (q, k, v) = qkv(64, 64, 8, 8, 800);
    let head = HeadInput::new(q.view(), k.view(), v.view(), None, false).unwrap();
    let budget = MatrixBudget {
        bytes: 64 * 64 * 4 - 1,
    };
    let err = full_attention(&head, true, budget).unwrap_err();
    assert!(
        matches!(
            err,
            AttentionError::OverBudget {
                rows: 64,
                cols: 64,
                ..
            }
        ),
        "{err}"
    );
    assert!(full_attention(&head, false, budget).is_ok());
}

#[test]
fn result_is_bitwise_identical_with_one_and_two_threads() {
    let run = |threads: usize, causal: bool, want_matrix: bool| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let (q, k, v) = qkv(1025, 1100, 64, 48, 900);
        pool.install(|| {
            let head = HeadInput::new(q.view(), k.view(), v.view(), None, causal).unwrap();
            full_attention(&head, want_matrix, MatrixBudget::default()).unwrap()
        })
    };
    for causal in [false, true] {
        for want_matrix in [false, true] {
            let (o1, a1) = run(1, causal, want_matrix);
            let (o2, a2) = run(2, causal, want_matrix);
            let bits = |a: &Array2<f32>| a.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&o1), bits(&o2), "causal={causal} matrix={want_matrix}");
            assert_eq!(a1.as_ref().map(bits), a2.as_ref().map(bits));
        }
    }
}
