//! The bundled all-MiniLM-L6-v2 forward pass (6 layers, hidden 384, 12 heads, capture of every
//! layer's Q/K/V) at L = 128 (the issue-16 target: < 100 ms on 2 threads) and L = 512 (the
//! model's limit), on rayon pools of 1 and 2 threads.
//!
//! ```text
//! cargo bench --bench encoder
//! ```
//!
//! Input: the Zen of Python's wordpieces cut to L − 1 plus `[SEP]`. Per point: 3 warm-ups, then
//! 15 timed runs; median and minimum reported, with GFLOP/s counting
//! `2·L·h·(4h + 2i) + 4·L²·h` per layer. Also timed: tokenising the whole Zen text, and the
//! whole text-to-QkvSet path (`TextModel::encode`) at its 191 tokens. The machine's load
//! average is printed before and after.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use attnscope::encoder::{EncodeOptions, TextModel};

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| String::from("n/a"))
}

/// CPU time and run-queue wait time (ns) summed over this process's threads, from
/// `/proc/self/task/*/schedstat` (Linux); zeros elsewhere.
fn schedstat() -> (u64, u64) {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return (0, 0);
    };
    let mut total = (0, 0);
    for task in tasks.flatten() {
        if let Ok(s) = std::fs::read_to_string(task.path().join("schedstat")) {
            let mut it = s.split_whitespace().map(|x| x.parse::<u64>().unwrap_or(0));
            total.0 += it.next().unwrap_or(0);
            total.1 += it.next().unwrap_or(0);
        }
    }
    total
}

/// CPU ms and run-queue wait ms per call of `f`, averaged over `runs` calls: on a loaded
/// machine the CPU time stays near the work, while wall time grows with the wait.
fn cpu_per_call(runs: usize, mut f: impl FnMut()) -> (f64, f64) {
    let before = schedstat();
    for _ in 0..runs {
        f();
    }
    let after = schedstat();
    let per = |a: u64, b: u64| (a.saturating_sub(b)) as f64 / runs as f64 / 1e6;
    (per(after.0, before.0), per(after.1, before.1))
}

/// Median and minimum of `runs` timed calls after `warmup` untimed ones.
fn time(warmup: usize, runs: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    for _ in 0..warmup {
        f();
    }
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    (times[times.len() / 2], times[0])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let model = TextModel::bundled().expect("the bundled model loads");
    let zen = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/zen_of_python.txt"
    ))
    .expect("tests/data/zen_of_python.txt");
    let zen_ids = model.tokenize(&zen, false).expect("zen tokenises").ids;
    let sep = *zen_ids.last().expect("[SEP]");
    let c = model.config().clone();
    println!("# load average before: {}", load_average());
    println!(
        "# model: all-MiniLM-L6-v2, {} layers, hidden {}, {} heads, intermediate {}",
        c.num_layers, c.hidden_size, c.num_heads, c.intermediate_size
    );
    println!(
        "bench,threads,seq_len,median_ms,min_ms,gflops_at_median,cpu_ms_per_call,runqueue_wait_ms_per_call"
    );
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("rayon pool");
        for seq_len in [128_usize, 512] {
            let mut ids: Vec<u32> = zen_ids
                .iter()
                .copied()
                .cycle()
                .skip(1)
                .take(seq_len - 2)
                .collect();
            ids.insert(0, zen_ids[0]);
            ids.push(sep);
            assert_eq!(ids.len(), seq_len);
            let run = || {
                let out = model
                    .encoder()
                    .forward(&ids, &[], None, &mut |_| ControlFlow::Continue(()))
                    .expect("forward");
                std::hint::black_box(out);
            };
            let (median, min) = pool.install(|| time(3, 15, run));
            let (cpu, wait) = pool.install(|| cpu_per_call(10, run));
            let (l, h, i) = (
                seq_len as f64,
                c.hidden_size as f64,
                c.intermediate_size as f64,
            );
            let flops = c.num_layers as f64 * (2.0 * l * h * (4.0 * h + 2.0 * i) + 4.0 * l * l * h);
            println!(
                "forward_l{seq_len}_h384_6layers,{threads},{seq_len},{:.2},{:.2},{:.1},{cpu:.2},{wait:.2}",
                ms(median),
                ms(min),
                flops / median.as_secs_f64() / 1e9
            );
        }
        // The building blocks at the shapes of one L = 128 layer.
        let x = ndarray::Array2::from_shape_fn((128, 384), |(i, j)| {
            ((i * 31 + j * 17) % 13) as f32 * 0.1 - 0.6
        });
        let up = attnscope::nn::Linear::new(
            ndarray::Array2::from_shape_fn((1536, 384), |(i, j)| {
                ((i * 7 + j * 3) % 11) as f32 * 0.01 - 0.05
            }),
            Some(ndarray::Array1::zeros(1536)),
        )
        .expect("linear");
        let (median, min) = pool.install(|| {
            time(3, 15, || {
                std::hint::black_box(up.forward(&x).expect("linear"));
            })
        });
        println!(
            "nn_linear_128x384_to_1536,{threads},128,{:.3},{:.3},{:.1}",
            ms(median),
            ms(min),
            2.0 * 128.0 * 384.0 * 1536.0 / median.as_secs_f64() / 1e9
        );
        let inner = up.forward(&x).expect("linear");
        let (median, min) = pool.install(|| {
            time(3, 15, || {
                let mut y = inner.clone();
                attnscope::nn::gelu_erf(&mut y);
                std::hint::black_box(y);
            })
        });
        println!(
            "nn_gelu_erf_128x1536,{threads},128,{:.3},{:.3},",
            ms(median),
            ms(min)
        );
        let (median, min) = pool.install(|| {
            time(3, 15, || {
                let mut y = x.clone();
                attnscope::nn::layer_norm(
                    &mut y,
                    &ndarray::Array1::ones(384),
                    &ndarray::Array1::zeros(384),
                    1e-12,
                )
                .expect("ln");
                std::hint::black_box(y);
            })
        });
        println!(
            "nn_layer_norm_128x384,{threads},128,{:.3},{:.3},",
            ms(median),
            ms(min)
        );
        let (median, min) = pool.install(|| {
            time(3, 15, || {
                std::hint::black_box(
                    attnscope::nn::multi_head_attention(&x, &x, &x, 12, None, false).expect("mha"),
                );
            })
        });
        println!(
            "nn_attention_128_12heads_d32,{threads},128,{:.3},{:.3},",
            ms(median),
            ms(min)
        );
        let (median, min) = pool.install(|| {
            time(3, 15, || {
                std::hint::black_box(model.tokenize(&zen, false).expect("tokenise"));
            })
        });
        println!(
            "tokenize_zen_191,{threads},191,{:.3},{:.3},",
            ms(median),
            ms(min)
        );
        let (median, min) = pool.install(|| {
            time(3, 15, || {
                let e = model
                    .encode(&zen, "text:zen", &EncodeOptions::default(), &mut |_| {
                        ControlFlow::Continue(())
                    })
                    .expect("encode");
                std::hint::black_box(e);
            })
        });
        println!(
            "encode_text_to_qkvset_zen_191,{threads},191,{:.2},{:.2},",
            ms(median),
            ms(min)
        );
    }
    println!("# load average after: {}", load_average());
}
