//! Every method's runtime against sequence length, the fitted log-log slope over
//! L ∈ [1k, 32k], and peak heap memory measured with a counting global allocator.
//!
//! ```text
//! cargo bench --bench methods                 # full run (several minutes on 2 cores)
//! ATTNSCOPE_BENCH_QUICK=1 cargo bench --bench methods   # L ≤ 4096, no 64k point
//! ```
//!
//! Input: `synth:local`, one head, d = d_v = 64, bidirectional, default parameters
//! (bandwidth 4, feature map elu+1, …). Threads: rayon's global pool (all cores). Per point:
//! one warm-up, then 5 timed runs (2 when a run takes over a second); the median is reported.
//! Peak memory is the high-water mark of live heap bytes during one extra untimed call, above
//! the bytes live before it (the input is excluded), counted by this binary's global
//! allocator. Writes `target/bench_methods.csv` (with a `# machine:` line).

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use attnscope::attention::{MatrixBudget, MethodId, MethodParams, compute};
use attnscope::data::synth::{SynthKind, SynthSpec, generate};
use attnscope::experiment::{MachineInfo, fit_loglog_slope};

/// Counts live heap bytes and their high-water mark.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn note_alloc(size: usize) {
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: every call forwards to the system allocator with the same layout; the counters are
// only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note_alloc(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note_alloc(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            note_alloc(new_size);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const HEAD_DIM: usize = 64;
const SLOPE_RANGE: (usize, usize) = (1024, 32_768);
const BIG_LEN: usize = 65_536;

/// Methods whose cost is linear in L (these also run at 64k and get a memory check).
fn linear_cost(id: &str) -> bool {
    matches!(
        id,
        "band" | "linear" | "fmm" | "performer" | "nystrom" | "linformer"
    )
}

/// The largest L a method runs at in this bench.
fn max_len(id: &str, quick: bool) -> usize {
    if quick {
        return 4096;
    }
    match id {
        // Analysis only: dense SVD is O(L³).
        "svd" => 1024,
        _ if linear_cost(id) => BIG_LEN,
        _ => SLOPE_RANGE.1,
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        xs[n / 2]
    } else {
        0.5 * (xs[n / 2 - 1] + xs[n / 2])
    }
}

struct Point {
    method: &'static str,
    seq_len: usize,
    median_s: f64,
    min_s: f64,
    runs: usize,
    peak_bytes: usize,
}

fn main() {
    // `cargo test --benches` runs bench binaries with `--bench` absent; do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let quick = std::env::var_os("ATTNSCOPE_BENCH_QUICK").is_some();
    let machine = MachineInfo::detect();
    let threads = rayon::current_num_threads();
    println!("{}", machine.comment_line());
    println!("# threads={threads}, d={HEAD_DIM}, input synth:local, bidirectional, default params");
    let mut lens: Vec<usize> = vec![1024, 2048, 4096, 8192, 16_384, 32_768, BIG_LEN];
    if quick {
        lens.retain(|&l| l <= 4096);
    }
    let params = MethodParams::default();
    let budget = MatrixBudget::default();
    let mut points: Vec<Point> = Vec::new();
    println!(
        "{:<20} {:>7} {:>12} {:>12} {:>5} {:>14}",
        "method", "L", "median_ms", "min_ms", "runs", "peak_MiB"
    );
    for &seq_len in &lens {
        let spec = SynthSpec {
            kind: SynthKind::Local,
            seq_len,
            head_dim: HEAD_DIM,
            num_heads: 1,
            seed: 0,
        };
        let set = generate(&spec);
        let head = match set.head(0, 0, false, None) {
            Ok(h) => h,
            Err(e) => {
                eprintln!("cannot build the input at L={seq_len}: {e}");
                continue;
            }
        };
        for &method in MethodId::ALL {
            let id = method.as_str();
            if seq_len > max_len(id, quick) {
                continue;
            }
            let run = || compute(method, &params, &head, false, budget);
            let t0 = Instant::now();
            if let Err(e) = run() {
                eprintln!("{id} L={seq_len}: {e}");
                continue;
            }
            let warm = t0.elapsed().as_secs_f64();
            let runs = if warm > 1.0 { 2 } else { 5 };
            let times: Vec<f64> = (0..runs)
                .map(|_| {
                    let t = Instant::now();
                    let out = run();
                    let s = t.elapsed().as_secs_f64();
                    drop(out);
                    s
                })
                .collect();
            let base = LIVE.load(Ordering::Relaxed);
            PEAK.store(base, Ordering::Relaxed);
            let out = run();
            let peak_bytes = PEAK.load(Ordering::Relaxed).saturating_sub(base);
            drop(out);
            let p = Point {
                method: id,
                seq_len,
                median_s: median(times.clone()),
                min_s: times.iter().copied().fold(f64::INFINITY, f64::min),
                runs,
                peak_bytes,
            };
            println!(
                "{:<20} {:>7} {:>12.3} {:>12.3} {:>5} {:>14.2}",
                p.method,
                p.seq_len,
                p.median_s * 1e3,
                p.min_s * 1e3,
                p.runs,
                p.peak_bytes as f64 / (1024.0 * 1024.0)
            );
            let _ = std::io::stdout().flush();
            points.push(p);
        }
    }

    println!();
    println!(
        "{:<20} {:>8} {:>8} {:>16}",
        "method", "slope", "points", "peak_MiB@65536"
    );
    for &method in MethodId::ALL {
        let id = method.as_str();
        let in_range: Vec<&Point> = points
            .iter()
            .filter(|p| p.method == id && (SLOPE_RANGE.0..=SLOPE_RANGE.1).contains(&p.seq_len))
            .collect();
        let xs: Vec<f64> = in_range.iter().map(|p| p.seq_len as f64).collect();
        let ys: Vec<f64> = in_range.iter().map(|p| p.median_s).collect();
        let slope = fit_loglog_slope(&xs, &ys)
            .map(|f| format!("{:.2}", f.slope))
            .unwrap_or_else(|| "n/a".into());
        let big = points
            .iter()
            .find(|p| p.method == id && p.seq_len == BIG_LEN)
            .map(|p| format!("{:.1}", p.peak_bytes as f64 / (1024.0 * 1024.0)))
            .unwrap_or_else(|| "-".into());
        println!("{id:<20} {slope:>8} {:>8} {big:>16}", in_range.len());
    }

    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench_methods.csv");
    let mut text = format!(
        "{}\nmethod,seq_len,head_dim,threads,runtime_median_s,runtime_min_s,runs,peak_bytes\n",
        machine.comment_line()
    );
    for p in &points {
        text += &format!(
            "{},{},{HEAD_DIM},{threads},{},{},{},{}\n",
            p.method, p.seq_len, p.median_s, p.min_s, p.runs, p.peak_bytes
        );
    }
    match std::fs::write(&path, text) {
        Ok(()) => println!("\nwrote {}", path.display()),
        Err(e) => eprintln!("could not write {}: {e}", path.display()),
    }
}
