//! Combiner vs dense attention timing (harness = false): every variant (causal, default block
//! ⌈√L⌉, max pooling) and `full_attention` at L ∈ {1024, 4096, 16384}, one head, d = d_v = 64.
//! Prints the best-of-N time per call (the least disturbed by other load) and the fitted log-log slope of time vs L per method.
//!
//! Run: `cargo bench --bench combiner`. Timings are noisy on a shared machine: compare ratios
//! inside one run.

use std::time::Instant;

use attnscope::attention::combiner::{Variant, combiner_attention};
use attnscope::attention::dense::full_attention;
use attnscope::attention::{HeadInput, MatrixBudget, MethodParams};
use ndarray::Array2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

const LENGTHS: [usize; 3] = [1024, 4096, 16384];
const HEAD_DIM: usize = 64;

/// (seq_len, seconds) points of one method.
type Series = Vec<(usize, f64)>;

/// CPU time consumed so far by every thread of this process, in seconds, from
/// `/proc/self/task/*/schedstat` (nanosecond run time; Linux only, `None` elsewhere). Unlike wall
/// time it is not inflated when other processes share the cores.
fn cpu_seconds() -> Option<f64> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total as f64 * 1e-9)
}

/// (best wall time, mean CPU time) per call over `rounds` calls after one warm-up call.
fn time_call(rounds: usize, mut f: impl FnMut()) -> (f64, f64) {
    f();
    let cpu0 = cpu_seconds();
    let mut t: Vec<f64> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    let cpu = match (cpu0, cpu_seconds()) {
        (Some(a), Some(b)) => (b - a) / rounds as f64,
        _ => f64::NAN,
    };
    t.sort_by(f64::total_cmp);
    (t[0], cpu)
}

/// Least-squares slope of ln(time) against ln(L).
fn slope(points: &[(usize, f64)]) -> f64 {
    let xs: Vec<f64> = points.iter().map(|(l, _)| (*l as f64).ln()).collect();
    let ys: Vec<f64> = points.iter().map(|(_, t)| t.ln()).collect();
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    sxy / sxx
}

fn main() {
    let mut rng = ChaCha8Rng::seed_from_u64(2021);
    let mut results: Vec<(String, Series, Series)> = Vec::new();
    let methods: Vec<(&str, Option<Variant>)> = vec![
        ("full", None),
        ("combiner-fixed", Some(Variant::Fixed)),
        ("combiner-logsparse", Some(Variant::Logsparse)),
        ("combiner-axial", Some(Variant::Axial)),
        ("combiner-mixture", Some(Variant::Mixture)),
    ];
    for (name, _) in &methods {
        results.push((name.to_string(), Vec::new(), Vec::new()));
    }
    println!("method,seq_len,best_wall_ms,cpu_ms,wall_ratio_to_full,cpu_ratio_to_full");
    for &l in &LENGTHS {
        let mut randn = |r: usize| {
            Array2::<f32>::from_shape_simple_fn((r, HEAD_DIM), || StandardNormal.sample(&mut rng))
        };
        let (q, k, v) = (randn(l), randn(l), randn(l));
        let head = HeadInput::new(q.view(), k.view(), v.view(), None, true).expect("valid shapes");
        let rounds = if l >= 16384 { 3 } else { 9 };
        let mut full_time = (f64::NAN, f64::NAN);
        for (idx, (name, variant)) in methods.iter().enumerate() {
            let t = match variant {
                None => time_call(rounds, || {
                    std::hint::black_box(
                        full_attention(&head, false, MatrixBudget::default()).expect("no matrix"),
                    );
                }),
                Some(v) => time_call(rounds, || {
                    std::hint::black_box(
                        combiner_attention(
                            &head,
                            *v,
                            &MethodParams::default(),
                            false,
                            MatrixBudget::default(),
                        )
                        .expect("valid input"),
                    );
                }),
            };
            if variant.is_none() {
                full_time = t;
            }
            println!(
                "{name},{l},{:.3},{:.3},{:.4},{:.4}",
                t.0 * 1e3,
                t.1 * 1e3,
                t.0 / full_time.0,
                t.1 / full_time.1
            );
            results[idx].1.push((l, t.0));
            results[idx].2.push((l, t.1));
        }
    }
    println!("\nfitted log-log slope vs L over {LENGTHS:?} (wall, cpu):");
    for (name, wall, cpu) in &results {
        println!("  {name:<20} {:.2}  {:.2}", slope(wall), slope(cpu));
    }
}
