//! Command-line interface (SPEC §5). Flags use the same names as sweep grids, notebook entries
//! and CSV columns.

mod commands;
mod encode;
mod params;
mod sweep;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

pub use params::{DisplayArgs, ParamArgs};

/// attnscope — see where attention puts its mass, and what each efficient approximation costs.
#[derive(Debug, Parser)]
#[command(name = "attnscope", version, about, long_about = None)]
pub struct Cli {
    /// The model for `text:"…"` inputs and `encode`: a local Hugging Face folder of a BERT-family
    /// model (config.json, model.safetensors, tokenizer.json) or `hub:ORG/NAME` (from the
    /// Hugging Face cache; downloaded only in builds with the `hub` feature). Default: the bundled
    /// all-MiniLM-L6-v2.
    #[arg(long, global = true, value_name = "DIR")]
    pub model: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open the GUI on FILE (or the bundled zen sample).
    Gui {
        /// An .npz/.npy/.safetensors/.csv file, `sample:NAME`, `synth:KIND` or `text:"…"`.
        file: Option<String>,
    },
    /// Shapes, heads/layers, tokens and the non-finite report of an input.
    Info {
        /// An .npz/.npy/.safetensors/.csv file, `sample:NAME`, `synth:KIND` or `text:"…"`.
        file: String,
        /// Print every token (default: the first 32).
        #[arg(long)]
        all_tokens: bool,
    },
    /// Run one method on an input and write its output (and effective matrix) as .npz.
    Compute {
        /// Input file, `sample:NAME`, `synth:KIND` or `text:"…"` (a text run through the model).
        file: String,
        /// Method id (full, band, linear, fmm, …).
        #[arg(long)]
        method: String,
        /// Layer index (files with a layer axis).
        #[arg(long, default_value_t = 0)]
        layer: usize,
        /// Head index (default: all heads).
        #[arg(long)]
        head: Option<usize>,
        #[command(flatten)]
        params: ParamArgs,
        /// Also write the effective attention matrix `attn [H, Lq, Lk]` (within the budget).
        #[arg(long)]
        attn: bool,
        /// Also write C4 metrics against exact attention to this JSON file.
        #[arg(long)]
        metrics: Option<PathBuf>,
        /// Also write PNG heatmaps of exact A, the method's Â and the error Â − A per head into
        /// this directory (above the budget: exact A pooled from row tiles only).
        #[arg(long)]
        png: Option<PathBuf>,
        #[command(flatten)]
        display: DisplayArgs,
        /// Output .npz (`out [H, Lq, d_v]`, optional `attn`).
        #[arg(long)]
        out: PathBuf,
    },
    /// Near/far decomposition: PNG heatmaps (full, near, far, far rank-r, reconstruction,
    /// error) and metrics.json.
    Decompose {
        /// Input file, `sample:NAME`, `synth:KIND` or `text:"…"` (a text run through the model).
        file: String,
        /// Layer index.
        #[arg(long, default_value_t = 0)]
        layer: usize,
        /// Head index (default: all heads, one set of files per head).
        #[arg(long)]
        head: Option<usize>,
        #[command(flatten)]
        params: ParamArgs,
        #[command(flatten)]
        display: DisplayArgs,
        /// Also write the six matrices (full, near, far, far_rank_r, reconstruction, error;
        /// prefixed `h{head}_` when several heads) to this .npz.
        #[arg(long)]
        npz: Option<PathBuf>,
        /// Also write the metrics as CSV (one row per head) to this file.
        #[arg(long)]
        metrics_csv: Option<PathBuf>,
        /// Also run the optimal band + low-rank split by alternating projections
        /// (`optimal_band.png`, `optimal_low_rank.png`, `optimal_error.png`; its error curve and
        /// the fixed-split error in metrics.json).
        #[arg(long)]
        optimal: bool,
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
    /// Sweep methods × parameters × sequence lengths × seeds: runtime and C4 errors to CSV
    /// (+ JSON), optional PNG plots, progress on stderr.
    Sweep {
        #[command(flatten)]
        args: sweep::SweepArgs,
        #[command(flatten)]
        params: ParamArgs,
    },
    /// Run a text through a BERT-family model (default: the bundled all-MiniLM-L6-v2) and write
    /// every layer's per-head Q, K, V (before the 1/√d scale) as .npz + sidecar .json, like
    /// scripts/export_qkv.py. Other subcommands take the text directly as `text:"…"`.
    Encode {
        /// The text (at most the model's 512 tokens, [CLS] and [SEP] included).
        #[arg(
            long,
            required_unless_present = "text_file",
            conflicts_with = "text_file"
        )]
        text: Option<String>,
        /// A UTF-8 file holding the text.
        #[arg(long)]
        text_file: Option<PathBuf>,
        /// Model layers to keep: comma-separated indices (negative from the end) or `all`.
        #[arg(long, default_value = "all")]
        layers: String,
        /// Cut a text over the model's limit to its first tokens instead of refusing it.
        #[arg(long)]
        truncate: bool,
        /// Output .npz (`q`, `k`, `v` `[layers, heads, tokens, head_dim]` float32); the
        /// sidecar .json is written beside it.
        #[arg(long)]
        out: PathBuf,
    },
    /// Notebook folders (`notebook.json` + thumbnails) written by the GUI.
    Notebook {
        #[command(subcommand)]
        action: NotebookAction,
    },
}

/// `attnscope notebook …` actions.
#[derive(Debug, Subcommand)]
pub enum NotebookAction {
    /// Write `report.md` (entries, configuration and metrics tables, notes, thumbnails) and
    /// `metrics.csv` (one row per entry) to DIR.
    Export {
        /// The notebook folder (holds `notebook.json`).
        notebook_dir: PathBuf,
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs a parsed command line.
///
/// # Errors
/// Any input, parameter or output problem, as one line of context.
pub fn run(cli: Cli) -> Result<()> {
    let model = cli.model.as_deref();
    let input = |spec: &str| encode::apply_model(spec, model);
    match cli.command {
        None => commands::gui(None),
        Some(Command::Gui { file }) => commands::gui(file.as_deref().map(input).transpose()?),
        Some(Command::Info { file, all_tokens }) => commands::info(&input(&file)?, all_tokens),
        Some(Command::Compute {
            file,
            method,
            layer,
            head,
            params,
            attn,
            metrics,
            png,
            display,
            out,
        }) => commands::compute(
            &input(&file)?,
            &method,
            layer,
            head,
            &params,
            attn,
            metrics.as_deref(),
            png.as_deref(),
            &display,
            &out,
        ),
        Some(Command::Decompose {
            file,
            layer,
            head,
            params,
            display,
            npz,
            metrics_csv,
            optimal,
            out,
        }) => commands::decompose(
            &input(&file)?,
            layer,
            head,
            &params,
            &display,
            npz.as_deref(),
            metrics_csv.as_deref(),
            optimal,
            &out,
        ),
        Some(Command::Sweep { mut args, params }) => {
            args.data = input(&args.data)?;
            sweep::run(&args, &params)
        }
        Some(Command::Encode {
            text,
            text_file,
            layers,
            truncate,
            out,
        }) => encode::encode(
            text.as_deref(),
            text_file.as_deref(),
            model,
            &layers,
            truncate,
            &out,
        ),
        Some(Command::Notebook {
            action: NotebookAction::Export { notebook_dir, out },
        }) => commands::notebook_export(&notebook_dir, &out),
    }
}
