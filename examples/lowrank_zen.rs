//! Matrix error of the low-rank family at matched rank on real attention, beside the
//! Eckart–Young bound.
//!
//! ```text
//! cargo run --release --no-default-features --example lowrank_zen -- \
//!     [sample_data/minilm/zen.npz] [layer] [seeds]
//! ```
//!
//! For every head of the layer (bidirectional, scale 1/√head_dim): relative Frobenius error
//! `‖Â − A‖_F/‖A‖_F` of performer (num_features = r, mean over `seeds` seeds), nystrom
//! (num_landmarks = r, 6-step and exact pseudo-inverse), linformer (mean-pool, proj_dim = r) and svd
//! (rank r) at r = 8, 16, 32, plus linear attention (elu+1, rank ≤ head_dim) and the
//! Eckart–Young bound `sqrt(Σ_{t≥r} σ_t²)/‖A‖_F`. Reads the `.npz` directly (q, k, v as
//! `[layers, heads, L, d]` or `[heads, L, d]` f32).

use anyhow::{Context, Result, bail};
use attnscope::analysis::metrics::relative_frobenius;
use attnscope::analysis::spectrum::{eckart_young_curve, matched_params};
use attnscope::analysis::svd::singular_values;
use attnscope::attention::method::{MethodId, MethodParams, compute};
use attnscope::attention::{HeadInput, MatrixBudget, dense::full_attention};
use ndarray::{Array3, Array4, ArrayD, Axis, Ix3, Ix4};
use ndarray_npy::NpzReader;

fn load(path: &str, name: &str, layer: usize) -> Result<Array3<f32>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {path}"))?;
    let mut npz = NpzReader::new(file).with_context(|| format!("reading {path} as npz"))?;
    let a: ArrayD<f32> = npz
        .by_name(name)
        .with_context(|| format!("array '{name}' in {path}"))?;
    match a.ndim() {
        4 => {
            let a: Array4<f32> = a.into_dimensionality::<Ix4>()?;
            if layer >= a.len_of(Axis(0)) {
                bail!(
                    "layer {layer} out of range (file has {})",
                    a.len_of(Axis(0))
                );
            }
            Ok(a.index_axis(Axis(0), layer).to_owned())
        }
        3 => Ok(a.into_dimensionality::<Ix3>()?),
        n => bail!("array '{name}' has {n} dimensions; expected 3 or 4"),
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .map_or("sample_data/minilm/zen.npz", String::as_str);
    let layer: usize = args.get(2).map_or(Ok(0), |s| s.parse())?;
    let seeds: u64 = args.get(3).map_or(Ok(5), |s| s.parse())?;
    let (q, k, v) = (
        load(path, "q", layer)?,
        load(path, "k", layer)?,
        load(path, "v", layer)?,
    );
    let heads = q.len_of(Axis(0));
    let ranks = [8usize, 16, 32];
    // (method, Nyström exact pseudo-inverse)
    let methods = [
        (MethodId::Performer, false),
        (MethodId::Nystrom, false),
        (MethodId::Nystrom, true),
        (MethodId::Linformer, false),
        (MethodId::Svd, false),
    ];
    let budget = MatrixBudget::default();
    let base = MethodParams::default();
    // errors[rank][method][head]; linear[head]; bound[rank][head]
    let mut errors = vec![vec![vec![0.0_f64; heads]; methods.len()]; ranks.len()];
    let mut bound = vec![vec![0.0_f64; heads]; ranks.len()];
    let mut linear = vec![0.0_f64; heads];
    println!(
        "{path} layer {layer}: {heads} heads, L = {}, d = {}, bidirectional, scale 1/sqrt(d); \
         performer = mean over {seeds} seeds",
        q.len_of(Axis(1)),
        q.len_of(Axis(2))
    );
    for h in 0..heads {
        let head = HeadInput::new(
            q.index_axis(Axis(0), h),
            k.index_axis(Axis(0), h),
            v.index_axis(Axis(0), h),
            None,
            false,
        )?;
        let (_, a) = full_attention(&head, true, budget)?;
        let a = a.context("exact matrix over budget")?;
        let curve = eckart_young_curve(&singular_values(&a)?, 64);
        let r = compute(MethodId::Linear, &base, &head, true, budget)?;
        linear[h] = relative_frobenius(r.matrix.as_ref().context("linear matrix")?, &a).value();
        for (ri, &rank) in ranks.iter().enumerate() {
            bound[ri][h] = curve[rank.min(curve.len() - 1)];
            for (mi, &(m, exact_pinv)) in methods.iter().enumerate() {
                let n = if m == MethodId::Performer { seeds } else { 1 };
                let mut acc = 0.0;
                for seed in 0..n {
                    let p = MethodParams {
                        seed,
                        exact_pinv,
                        ..matched_params(m, rank, &base)
                    };
                    let r = compute(m, &p, &head, true, budget)?;
                    let mat = r.matrix.as_ref().context("method matrix")?;
                    acc += relative_frobenius(mat, &a).value();
                }
                errors[ri][mi][h] = acc / n as f64;
            }
        }
    }
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len().max(1) as f64;
    println!("\nMean over heads (relative Frobenius error of the matrix):");
    println!(
        "| rank | performer | nystrom | nystrom (exact pinv) | linformer | svd | Eckart–Young bound | linear (rank ≤ d) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (ri, rank) in ranks.iter().enumerate() {
        println!(
            "| {rank} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} |",
            mean(&errors[ri][0]),
            mean(&errors[ri][1]),
            mean(&errors[ri][2]),
            mean(&errors[ri][3]),
            mean(&errors[ri][4]),
            mean(&bound[ri]),
            mean(&linear)
        );
    }
    println!("\nPer head:");
    println!(
        "| head | rank | performer | nystrom | nystrom exact | linformer | svd | bound | linear |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for h in 0..heads {
        for (ri, rank) in ranks.iter().enumerate() {
            println!(
                "| {h} | {rank} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} |",
                errors[ri][0][h],
                errors[ri][1][h],
                errors[ri][2][h],
                errors[ri][3][h],
                errors[ri][4][h],
                bound[ri][h],
                linear[h]
            );
        }
    }
    Ok(())
}
