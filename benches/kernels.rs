//! Kernel benchmarks in one run (harness = false): dense attention against a plain faer SGEMM of
//! the same shapes, the linear-cost kernels with fitted log-log slopes, and the interactive
//! recompute path of the Decomposition view.
//!
//! ```text
//! cargo bench --bench kernels                      # everything (~3 min on 2 cores)
//! cargo bench --bench kernels -- dense             # groups: dense, linear-cost, interactive
//! ATTNSCOPE_BENCH_OUT=/tmp/k.csv cargo bench --bench kernels -- interactive
//! ATTNSCOPE_BENCH_QUICK=1 …                        # fewer repeats, smaller sizes (smoke)
//! ```
//!
//! Writes a CSV (one row per point; a `# machine:` comment line first) and a JSON summary
//! (machine, slopes, dense/SGEMM ratios) next to it; prints a table. FLOPs counted:
//! `4·Lq·Lk·d` for attention (`QKᵀ` and `PV`, halved for causal is *not* applied, so causal
//! GFLOP/s compare against the same dense count), `2·M·N·K` for SGEMM.
//!
//! Columns: `source,kernel,variant,causal,seq_len,head_dim,threads,repeats,median_ms,min_ms,flops,gflops,cpu_ms`
//! (`gflops` from the median wall time; `cpu_ms` = mean CPU time per call summed over threads,
//! which on a shared machine excludes time spent preempted: compare `flops / cpu_ms` for a
//! 1-thread setting when the machine is busy).
//! `scripts/bench_numpy.py` writes the same columns.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use attnscope::analysis::decompose::decompose_matrix;
use attnscope::analysis::svd::thin_svd;
use attnscope::attention::band::{band_attention, band_part};
use attnscope::attention::dense::full_attention;
use attnscope::attention::fmm::fmm_attention;
use attnscope::attention::linear::linear_attention;
use attnscope::attention::{FeatureMap, HeadInput, MatrixBudget, MethodParams, Normalization};
use attnscope::with_faer;
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};
use ndarray::Array2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

const HEAD_DIM: usize = 64;

struct Row {
    source: &'static str,
    kernel: &'static str,
    variant: String,
    causal: bool,
    seq_len: usize,
    threads: usize,
    repeats: usize,
    median_ms: f64,
    min_ms: f64,
    cpu_ms: f64,
    flops: f64,
}

impl Row {
    fn gflops(&self) -> f64 {
        if self.flops > 0.0 {
            self.flops / (self.median_ms * 1e-3) / 1e9
        } else {
            f64::NAN
        }
    }
    fn csv(&self) -> String {
        format!(
            "{},{},{},{},{},{},{},{},{:.4},{:.4},{:.0},{:.2},{:.4}",
            self.source,
            self.kernel,
            self.variant,
            self.causal,
            self.seq_len,
            HEAD_DIM,
            self.threads,
            self.repeats,
            self.median_ms,
            self.min_ms,
            self.flops,
            self.gflops(),
            self.cpu_ms
        )
    }
}

struct Timing {
    repeats: usize,
    median_ms: f64,
    min_ms: f64,
    /// Mean CPU time per call summed over the process's threads (NaN where unavailable).
    cpu_ms: f64,
}

/// CPU time of each thread of this process so far, in ns, keyed by thread id, from
/// `/proc/self/task/*/schedstat` (None off Linux). On a shared, overloaded machine this excludes
/// time spent preempted.
fn thread_cpu_ns() -> Option<std::collections::HashMap<String, u64>> {
    let mut times = std::collections::HashMap::new();
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let task = task.ok()?;
        // A thread may exit between listing and reading: skip it.
        let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        let ns = text.split_whitespace().next()?.parse::<u64>().ok()?;
        times.insert(task.file_name().to_string_lossy().into_owned(), ns);
    }
    Some(times)
}

/// CPU time spent between two [`thread_cpu_ns`] readings by threads alive at the second.
fn cpu_delta_ns(
    start: &std::collections::HashMap<String, u64>,
    end: &std::collections::HashMap<String, u64>,
) -> u64 {
    end.iter()
        .map(|(tid, &ns)| ns.saturating_sub(start.get(tid).copied().unwrap_or(0)))
        .sum()
}

/// One warm-up call, then repeats until `budget` is spent (at least `min_reps`, at most 30).
/// `min_reps = 1` with a zero budget times one cold call (for multi-second stages).
fn time<T>(budget: Duration, min_reps: usize, mut f: impl FnMut() -> T) -> Timing {
    if !(min_reps == 1 && budget.is_zero()) {
        std::hint::black_box(f());
    }
    let mut samples = Vec::new();
    let cpu_start = thread_cpu_ns();
    let start = Instant::now();
    while samples.len() < min_reps || (start.elapsed() < budget && samples.len() < 30) {
        let t = Instant::now();
        std::hint::black_box(f());
        samples.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let cpu_ms = match (cpu_start, thread_cpu_ns()) {
        (Some(a), Some(b)) => cpu_delta_ns(&a, &b) as f64 / 1e6 / samples.len() as f64,
        _ => f64::NAN,
    };
    samples.sort_by(f64::total_cmp);
    Timing {
        cpu_ms,
        repeats: samples.len(),
        median_ms: samples[samples.len() / 2],
        min_ms: samples[0],
    }
}

fn randn(rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> Array2<f32> {
    Array2::from_shape_simple_fn((rows, cols), || StandardNormal.sample(rng))
}

fn qkv(l: usize, seed: u64) -> (Array2<f32>, Array2<f32>, Array2<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (
        randn(l, HEAD_DIM, &mut rng),
        randn(l, HEAD_DIM, &mut rng),
        randn(l, HEAD_DIM, &mut rng),
    )
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("rayon pool")
}

fn machine() -> (String, usize) {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let simd = format!("{:?}", attnscope::attention::simd::Isa::detected());
    (
        format!("{model}; {threads} hardware threads; kernel SIMD level {simd}"),
        threads,
    )
}

/// Least-squares slope of log(time) against log(L).
fn slope(points: &[(usize, f64)]) -> f64 {
    let n = points.len() as f64;
    let xs: Vec<f64> = points.iter().map(|p| (p.0 as f64).ln()).collect();
    let ys: Vec<f64> = points.iter().map(|p| p.1.ln()).collect();
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let cov: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let var: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    cov / var
}

struct Config {
    quick: bool,
    budget: Duration,
    thread_counts: Vec<usize>,
}

fn bench_dense(cfg: &Config, rows: &mut Vec<Row>) {
    let lens: &[usize] = if cfg.quick {
        &[512, 1024]
    } else {
        &[512, 1024, 2048, 4096, 8192]
    };
    for &l in lens {
        let (q, k, v) = qkv(l, l as u64);
        for &threads in &cfg.thread_counts {
            let pool = pool(threads);
            // Plain SGEMM of the same shapes: [L, d]·[d, L].
            let a = Mat::<f32>::from_fn(l, HEAD_DIM, |i, j| q[[i, j]]);
            let b = Mat::<f32>::from_fn(HEAD_DIM, l, |i, j| k[[j, i]]);
            let mut c = Mat::<f32>::zeros(l, l);
            let t = pool.install(|| {
                time(cfg.budget, 3, || {
                    with_faer(|| {
                        matmul(
                            c.as_mut(),
                            Accum::Replace,
                            a.as_ref(),
                            b.as_ref(),
                            1.0,
                            Par::rayon(threads),
                        )
                    })
                })
            });
            push(
                rows,
                "faer",
                "sgemm",
                format!("{l}x{HEAD_DIM}x{l}"),
                false,
                l,
                threads,
                t,
                2.0 * (l * l * HEAD_DIM) as f64,
            );
            drop(c);
            for causal in [false, true] {
                let head =
                    HeadInput::new(q.view(), k.view(), v.view(), None, causal).expect("shapes");
                let t = pool.install(|| {
                    time(cfg.budget, 3, || {
                        full_attention(&head, false, MatrixBudget::default())
                    })
                });
                push(
                    rows,
                    "attnscope",
                    "full",
                    String::new(),
                    causal,
                    l,
                    threads,
                    t,
                    4.0 * (l * l * HEAD_DIM) as f64,
                );
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn push(
    rows: &mut Vec<Row>,
    source: &'static str,
    kernel: &'static str,
    variant: String,
    causal: bool,
    seq_len: usize,
    threads: usize,
    t: Timing,
    flops: f64,
) {
    let row = Row {
        source,
        kernel,
        variant,
        causal,
        seq_len,
        threads,
        repeats: t.repeats,
        median_ms: t.median_ms,
        min_ms: t.min_ms,
        cpu_ms: t.cpu_ms,
        flops,
    };
    eprintln!(
        "{:<10} {:<12} {:<18} causal={:<5} L={:<6} t={} {:>10.3} ms (min {:.3}, cpu {:.3}, n={}) {:>8.1} GFLOP/s",
        row.source,
        row.kernel,
        row.variant,
        row.causal,
        row.seq_len,
        row.threads,
        row.median_ms,
        row.min_ms,
        row.cpu_ms,
        row.repeats,
        row.gflops()
    );
    rows.push(row);
}

fn bench_linear_cost(cfg: &Config, rows: &mut Vec<Row>) {
    let lens: &[usize] = if cfg.quick {
        &[1024, 4096]
    } else {
        &[1024, 4096, 16384, 65536]
    };
    let threads = *cfg.thread_counts.iter().max().unwrap_or(&1);
    let pool = pool(threads);
    let fmm_params = MethodParams::default();
    for &l in lens {
        let (q, k, v) = qkv(l, 7 + l as u64);
        let head = HeadInput::new(q.view(), k.view(), v.view(), None, false).expect("shapes");
        let min_reps = if l >= 65536 { 2 } else { 3 };
        for bw in [4_usize, 64] {
            let t = pool.install(|| time(cfg.budget, min_reps, || band_attention(&head, bw)));
            let flops = 4.0 * (l * (2 * bw + 1) * HEAD_DIM) as f64;
            push(
                rows,
                "attnscope",
                "band",
                format!("bw{bw}"),
                false,
                l,
                threads,
                t,
                flops,
            );
        }
        let t = pool.install(|| {
            time(cfg.budget, min_reps, || {
                linear_attention(&head, FeatureMap::Elu, Normalization::Row)
            })
        });
        let flops = 4.0 * (l * HEAD_DIM * HEAD_DIM) as f64;
        push(
            rows,
            "attnscope",
            "linear",
            "elu-row".into(),
            false,
            l,
            threads,
            t,
            flops,
        );
        let t = pool.install(|| time(cfg.budget, min_reps, || fmm_attention(&head, &fmm_params)));
        push(
            rows,
            "attnscope",
            "fmm",
            "bw4-elu".into(),
            false,
            l,
            threads,
            t,
            0.0,
        );
    }
}

/// Rank-`rank` truncated SVD of `a` by randomized range finding (Halko, Martinsson & Tropp,
/// SIAM Review 2011, Alg. 4.4 with `power` subspace iterations, oversampling 8): f32 faer
/// matmuls and QR, then a small SVD. Returns `U_r Σ_r V_rᵀ` `[m, n]`.
fn randomized_truncated_svd(a: &Array2<f32>, rank: usize, power: usize, seed: u64) -> Array2<f32> {
    let (m, n) = a.dim();
    let p = (rank + 8).min(m.min(n));
    let r = rank.min(p);
    let data = a.as_slice().expect("standard layout");
    let am = MatRef::from_row_major_slice(data, m, n);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let omega = Mat::<f32>::from_fn(n, p, |_, _| StandardNormal.sample(&mut rng));
    let mut y = Mat::<f32>::zeros(m, p);
    let mut z = Mat::<f32>::zeros(n, p);
    with_faer(|| {
        matmul(
            y.as_mut(),
            Accum::Replace,
            am,
            omega.as_ref(),
            1.0,
            Par::Seq,
        )
    });
    for _ in 0..power {
        let qy = with_faer(|| y.qr().compute_thin_Q());
        with_faer(|| {
            matmul(
                z.as_mut(),
                Accum::Replace,
                am.transpose(),
                qy.as_ref(),
                1.0,
                Par::Seq,
            )
        });
        let qz = with_faer(|| z.qr().compute_thin_Q());
        with_faer(|| matmul(y.as_mut(), Accum::Replace, am, qz.as_ref(), 1.0, Par::Seq));
    }
    let qm = with_faer(|| y.qr().compute_thin_Q()); // [m, p]
    // Bᵀ = Aᵀ Q = W S Xᵀ, so B = X S Wᵀ and A ≈ Q B = (Q X) S Wᵀ.
    with_faer(|| {
        matmul(
            z.as_mut(),
            Accum::Replace,
            am.transpose(),
            qm.as_ref(),
            1.0,
            Par::Seq,
        )
    });
    let svd = with_faer(|| z.thin_svd()).expect("small SVD converges");
    let (w, x) = (svd.U(), svd.V());
    let s: Vec<f32> = (0..r).map(|t| svd.S().column_vector()[t]).collect();
    let mut left = Mat::<f32>::zeros(m, r);
    with_faer(|| {
        matmul(
            left.as_mut(),
            Accum::Replace,
            qm.as_ref(),
            x.subcols(0, r),
            1.0,
            Par::Seq,
        )
    });
    let right = Mat::<f32>::from_fn(n, r, |j, t| w[(j, t)] * s[t]);
    let mut out = Array2::<f32>::zeros((m, n));
    let out_slice = out.as_slice_mut().expect("fresh array");
    let dst = faer::MatMut::from_row_major_slice_mut(out_slice, m, n);
    with_faer(|| {
        matmul(
            dst,
            Accum::Replace,
            left.as_ref(),
            right.as_ref().transpose(),
            1.0,
            Par::Seq,
        )
    });
    out
}

fn bench_interactive(cfg: &Config, rows: &mut Vec<Row>) {
    let (bandwidth, rank) = (4_usize, 8_usize);
    let threads = *cfg.thread_counts.iter().max().unwrap_or(&1);
    let pool = pool(threads);
    for l in [512_usize, 2048] {
        let (q, k, v) = qkv(l, 11 + l as u64);
        let head = HeadInput::new(q.view(), k.view(), v.view(), None, false).expect("shapes");
        let budget = MatrixBudget::default();
        let full = || full_attention(&head, true, budget).expect("within budget");
        let (exact_out, a) = full();
        let a = a.expect("matrix requested");
        let near = band_part(&a, bandwidth, false);
        let far = &a - &near;
        let svd_budget = if l > 1024 { Duration::ZERO } else { cfg.budget };
        let mut stage = |name: &str, t: Timing| {
            push(
                rows,
                "attnscope",
                "interactive",
                name.to_string(),
                false,
                l,
                threads,
                t,
                0.0,
            )
        };
        stage("full-matrix", pool.install(|| time(cfg.budget, 3, full)));
        stage(
            "band-part",
            pool.install(|| time(cfg.budget, 3, || band_part(&a, bandwidth, false))),
        );
        stage("far", pool.install(|| time(cfg.budget, 3, || &a - &near)));
        stage(
            "svd-thin-f64",
            pool.install(|| {
                time(svd_budget, 1, || {
                    thin_svd(&far).map(|s| s.reconstruct(rank))
                })
            }),
        );
        stage(
            "svd-randomized-f32",
            pool.install(|| time(cfg.budget, 3, || randomized_truncated_svd(&far, rank, 2, 1))),
        );
        stage(
            "decompose-total",
            pool.install(|| {
                time(svd_budget, 1, || {
                    let (o, a) = full();
                    decompose_matrix(a.expect("matrix"), &o, &head, bandwidth, rank)
                })
            }),
        );
        stage(
            "total-randomized",
            pool.install(|| {
                time(cfg.budget, 3, || {
                    let (_, a) = full();
                    let a = a.expect("matrix");
                    let near = band_part(&a, bandwidth, false);
                    let far = &a - &near;
                    let far_r = randomized_truncated_svd(&far, rank, 2, 1);
                    let recon = &near + &far_r;
                    let err = &recon - &a;
                    (far, recon, err)
                })
            }),
        );
        drop(exact_out);
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let want = |group: &str| args.is_empty() || args.iter().any(|a| group.contains(a.as_str()));
    let quick = std::env::var_os("ATTNSCOPE_BENCH_QUICK").is_some();
    let out_path =
        std::env::var("ATTNSCOPE_BENCH_OUT").unwrap_or_else(|_| "target/bench/kernels.csv".into());
    let (machine, hw_threads) = machine();
    let mut thread_counts = vec![1];
    if hw_threads >= 2 {
        thread_counts.push(2);
    }
    let cfg = Config {
        quick,
        budget: Duration::from_millis(if quick { 100 } else { 600 }),
        thread_counts,
    };
    eprintln!("machine: {machine}");
    let mut rows = Vec::new();
    if want("dense") {
        bench_dense(&cfg, &mut rows);
    }
    if want("linear-cost band linear fmm") {
        bench_linear_cost(&cfg, &mut rows);
    }
    if want("interactive") {
        bench_interactive(&cfg, &mut rows);
    }

    // Summary: slopes and dense/SGEMM ratios.
    let mut summary = String::new();
    let mut slopes = serde_json::Map::new();
    let series: Vec<(&str, &str, bool, usize)> = rows
        .iter()
        .filter(|r| r.kernel != "interactive")
        .map(|r| (r.kernel, r.variant.as_str(), r.causal, r.threads))
        .fold(Vec::new(), |mut acc, key| {
            if !acc.contains(&key) {
                acc.push(key);
            }
            acc
        });
    for (kernel, variant, causal, threads) in series {
        let pts: Vec<(usize, f64)> = rows
            .iter()
            .filter(|r| {
                r.kernel == kernel
                    && r.variant == variant
                    && r.causal == causal
                    && r.threads == threads
            })
            .filter(|r| kernel == "sgemm" || r.seq_len >= 1024)
            .map(|r| (r.seq_len, r.median_ms))
            .collect();
        let cpu_pts: Vec<(usize, f64)> = rows
            .iter()
            .filter(|r| {
                r.kernel == kernel
                    && r.variant == variant
                    && r.causal == causal
                    && r.threads == threads
            })
            .filter(|r| r.seq_len >= 1024 && r.cpu_ms > 0.0)
            .map(|r| (r.seq_len, r.cpu_ms))
            .collect();
        if pts.len() >= 2 && kernel != "sgemm" {
            let s = slope(&pts);
            let s_cpu = if cpu_pts.len() == pts.len() {
                slope(&cpu_pts)
            } else {
                f64::NAN
            };
            let key = format!(
                "{kernel}{}{} causal={causal} threads={threads}",
                if variant.is_empty() { "" } else { "/" },
                variant
            );
            let _ = writeln!(
                summary,
                "slope {key}: wall {s:.3}, CPU time {s_cpu:.3} (L = {}..{})",
                pts[0].0,
                pts[pts.len() - 1].0
            );
            slopes.insert(key, serde_json::json!({ "wall": s, "cpu_time": s_cpu }));
        }
    }
    let mut ratios = Vec::new();
    for r in rows.iter().filter(|r| r.kernel == "full") {
        if let Some(g) = rows
            .iter()
            .find(|g| g.kernel == "sgemm" && g.seq_len == r.seq_len && g.threads == r.threads)
        {
            let ratio = r.gflops() / g.gflops();
            let cpu_gflops = |x: &Row| x.flops / (x.cpu_ms * 1e-3) / 1e9 * x.threads as f64;
            let cpu_ratio = cpu_gflops(r) / cpu_gflops(g);
            let _ = writeln!(
                summary,
                "dense/sgemm L={} causal={} threads={}: wall {:.1} / {:.1} GFLOP/s = {:.2}; per CPU-time (approx.) {:.1} / {:.1} = {:.2}",
                r.seq_len,
                r.causal,
                r.threads,
                r.gflops(),
                g.gflops(),
                ratio,
                cpu_gflops(r),
                cpu_gflops(g),
                cpu_ratio
            );
            ratios.push(serde_json::json!({
                "seq_len": r.seq_len, "causal": r.causal, "threads": r.threads,
                "dense_gflops": r.gflops(), "sgemm_gflops": g.gflops(), "ratio": ratio,
                "dense_gflops_cpu_time": cpu_gflops(r), "sgemm_gflops_cpu_time": cpu_gflops(g), "ratio_cpu_time": cpu_ratio
            }));
        }
    }

    let mut csv = format!(
        "# machine: {machine}\nsource,kernel,variant,causal,seq_len,head_dim,threads,repeats,median_ms,min_ms,flops,gflops\n"
    );
    for r in &rows {
        csv.push_str(&r.csv());
        csv.push('\n');
    }
    println!("{csv}");
    println!("{summary}");
    let out = std::path::Path::new(&out_path);
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(dir);
    }
    let json = serde_json::json!({ "machine": machine, "hardware_threads": hw_threads, "slopes": slopes, "dense_vs_sgemm": ratios });
    match std::fs::write(out, &csv).and_then(|()| {
        std::fs::write(
            out.with_extension("json"),
            serde_json::to_string_pretty(&json).unwrap_or_default(),
        )
    }) {
        Ok(()) => eprintln!(
            "wrote {} and {}",
            out.display(),
            out.with_extension("json").display()
        ),
        Err(e) => eprintln!("could not write {}: {e}", out.display()),
    }
}
