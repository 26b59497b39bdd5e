//! `attnscope sweep`: runs [`crate::experiment::run_sweep`] from the command line, streaming
//! rows to a CSV (plus a JSON report), with a progress line on stderr and optional PNG plots.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;

use attnscope::attention::MethodId;

use super::ParamArgs;
use attnscope::experiment::report::PEAK_MEMORY_SOURCE;
use attnscope::experiment::sweep::{DEFAULT_MAX_EXACT_LEN, parse_seq_len_item};
use attnscope::experiment::{
    CancelToken, CsvStream, ExperimentError, InputSpec, MachineInfo, ProgressSink, SweepConfig,
    SweepReport, SweepRow, Tee, run_sweep, write_json, write_plots,
};

/// Arguments of `attnscope sweep` (the method parameter flags come from the shared
/// parameter arguments; the grid axes here are plural: `--bandwidths`, `--ranks`, `--seeds`).
#[derive(Debug, Clone, Args)]
pub struct SweepArgs {
    /// Methods, comma-separated or repeated (full, band, linear, fmm, …).
    #[arg(long = "method", value_delimiter = ',', required = true)]
    pub methods: Vec<String>,
    /// Input: `synth:KIND[,d=..]` (gaussian, local, local-global, low-rank-far), `sample:NAME`,
    /// `text:"…"` or a file (.npz/.safetensors; lengths beyond it are skipped with a reason).
    #[arg(long, default_value = "synth:local")]
    pub data: String,
    /// Layer of a file input.
    #[arg(long, default_value_t = 0)]
    pub layer: usize,
    /// Head of a file input (one head per sweep).
    #[arg(long, default_value_t = 0)]
    pub head: usize,
    /// Sequence lengths: a comma list, and/or `A..B` for the powers-of-two doubling from A to B
    /// (e.g. `256..16384`).
    #[arg(long = "seq-lens", value_delimiter = ',', required = true, value_parser = parse_seq_len_item)]
    pub seq_lens: Vec<Vec<usize>>,
    /// Values of the rank-like parameter (rank, num_features, num_landmarks or proj_dim,
    /// whichever the method has).
    #[arg(long, value_delimiter = ',')]
    pub ranks: Vec<usize>,
    /// Bandwidths (methods with a near field: band, fmm).
    #[arg(long, value_delimiter = ',')]
    pub bandwidths: Vec<usize>,
    /// Seeds (synthetic input and random methods); default: `--seed`.
    #[arg(long, value_delimiter = ',')]
    pub seeds: Vec<u64>,
    /// Timed runs per point (median and min are reported).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Untimed warm-up runs per point.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Threads for the kernels (0 = one per logical core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Above this L the exact reference (and every error) is skipped.
    #[arg(long, default_value_t = DEFAULT_MAX_EXACT_LEN)]
    pub max_exact_len: usize,
    /// Output CSV (one row per grid point, first line `# machine: …`).
    #[arg(long)]
    pub out: PathBuf,
    /// JSON report (machine, configuration, rows); default: the CSV path with `.json`.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Directory for PNG plots (runtime vs L with fitted slopes, error vs L / rank /
    /// bandwidth).
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
}

/// The progress line on stderr: `[ 5/28] fmm L=1024 b=4  3.1 ms  err 1.2e-1  (elapsed 4 s)`.
struct StderrProgress {
    total: usize,
    start: Instant,
    tty: bool,
}

impl StderrProgress {
    fn new() -> Self {
        Self {
            total: 0,
            start: Instant::now(),
            tty: std::io::stderr().is_terminal(),
        }
    }
}

impl ProgressSink for StderrProgress {
    fn started(&mut self, total_points: usize) {
        self.total = total_points;
        self.start = Instant::now();
        eprintln!("sweep: {total_points} points");
    }
    fn point_done(&mut self, index: usize, row: &SweepRow) -> Result<(), ExperimentError> {
        let what = match (&row.skipped, row.runtime_median_s) {
            (Some(why), _) => format!("skipped: {why}"),
            (None, Some(t)) => {
                let err = row
                    .output_rel
                    .map(|e| format!("  err {e:.2e}"))
                    .unwrap_or_default();
                format!("{:.3} ms{err}", t * 1e3)
            }
            (None, None) => String::new(),
        };
        let line = format!(
            "[{:>w$}/{}] {} L={} b={} seed={}  {what}  (elapsed {:.0} s)",
            index + 1,
            self.total,
            row.method,
            row.seq_len,
            row.bandwidth,
            row.seed,
            self.start.elapsed().as_secs_f64(),
            w = self.total.to_string().len()
        );
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
        Ok(())
    }
    fn finished(&mut self, points_done: usize) {
        if self.tty {
            eprintln!();
        }
        eprintln!(
            "sweep: {points_done} points in {:.1} s",
            self.start.elapsed().as_secs_f64()
        );
    }
    fn cancelled(&mut self, points_done: usize) {
        if self.tty {
            eprintln!();
        }
        eprintln!("sweep: cancelled after {points_done} points");
    }
}

/// Builds the [`SweepConfig`] from the arguments and the shared parameter flags
/// (`--budget-mib` bounds the matrix errors; causal only with `--causal`).
///
/// # Errors
/// Unknown method ids or parameter spellings, a bad `--seq-lens` list.
pub fn config_from_args(args: &SweepArgs, flags: &ParamArgs) -> anyhow::Result<SweepConfig> {
    let params = flags.method_params()?;
    let methods = args
        .methods
        .iter()
        .map(|m| MethodId::parse(m.trim()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let mut seq_lens: Vec<usize> = args.seq_lens.iter().flatten().copied().collect();
    seq_lens.dedup();
    if seq_lens.is_empty() {
        bail!("--seq-lens gave no lengths");
    }
    Ok(SweepConfig {
        input: InputSpec {
            source: args.data.clone(),
            layer: args.layer,
            head: args.head,
        },
        methods,
        params,
        seq_lens,
        ranks: args.ranks.clone(),
        bandwidths: args.bandwidths.clone(),
        seeds: args.seeds.clone(),
        causal: flags.causal_or(false),
        scale: flags.scale,
        warmup: args.warmup,
        repeats: args.repeats,
        threads: args.threads,
        max_exact_len: args.max_exact_len,
        matrix_budget_bytes: flags.budget().bytes,
    })
}

/// Runs `attnscope sweep`: CSV (streamed), JSON report, plots; a summary on stderr.
///
/// # Errors
/// Configuration, input, I/O and plotting errors, with the file named.
pub fn run(args: &SweepArgs, flags: &ParamArgs) -> anyhow::Result<()> {
    let config = config_from_args(args, flags)?;
    let machine = MachineInfo::detect();
    let mut csv = CsvStream::create(&args.out, &machine)?;
    let mut progress = StderrProgress::new();
    let mut null = attnscope::experiment::NullSink;
    let cancel = CancelToken::new();
    let outcome = {
        let second: &mut dyn ProgressSink = if args.quiet { &mut null } else { &mut progress };
        let mut tee = Tee {
            first: &mut csv,
            second,
        };
        run_sweep(&config, &mut tee, &cancel)?
    };
    drop(csv);
    let json_path = args
        .json
        .clone()
        .unwrap_or_else(|| args.out.with_extension("json"));
    let report = SweepReport {
        machine,
        peak_memory_source: PEAK_MEMORY_SOURCE.into(),
        config,
        cancelled: outcome.cancelled,
        total_points: outcome.total_points,
        rows: outcome.rows,
    };
    write_json(&json_path, &report)?;
    let skipped = report.rows.iter().filter(|r| r.skipped.is_some()).count();
    eprintln!(
        "wrote {} ({} rows, {skipped} skipped, {} threads) and {}",
        args.out.display(),
        report.rows.len(),
        outcome.threads,
        json_path.display()
    );
    if let Some(dir) = &args.plot {
        let written = write_plots(&report.rows, dir)
            .with_context(|| format!("writing plots to {}", dir.display()))?;
        for p in written {
            eprintln!("wrote {}", p.display());
        }
    }
    Ok(())
}
