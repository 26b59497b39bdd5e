//! The subcommands. Each loads through `attnscope::data`, computes through the library and
//! writes files; progress goes to stderr.

use std::fs::File;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use attnscope::analysis::{self, ErrorMetrics};
use attnscope::attention::{HeadInput, MethodId, compute as run_method, dense::full_attention};
use attnscope::data::{QkvSet, load_source};
use attnscope::render::{ColorScale, Colormap, PngOptions, ValueScale, write_png};
use ndarray::{Array3, Axis};
use serde::Serialize;

use super::{DisplayArgs, ParamArgs};

/// `attnscope` / `attnscope gui [FILE]`.
#[cfg(feature = "gui")]
pub fn gui(file: Option<String>) -> Result<()> {
    attnscope::app::run(file)
}

/// Without the `gui` feature the binary is CLI-only.
#[cfg(not(feature = "gui"))]
pub fn gui(_file: Option<String>) -> Result<()> {
    bail!("this attnscope was built without the `gui` feature; use a subcommand (see --help)")
}

fn load(file: &str) -> Result<QkvSet> {
    load_source(file).with_context(|| format!("cannot load {file}"))
}

fn heads_of(set: &QkvSet, head: Option<usize>) -> Result<Vec<usize>> {
    match head {
        Some(h) if h >= set.num_heads() => bail!(
            "--head {h} is out of range: the input has {} heads (0..={})",
            set.num_heads(),
            set.num_heads().saturating_sub(1)
        ),
        Some(h) => Ok(vec![h]),
        None => Ok((0..set.num_heads()).collect()),
    }
}

fn check_layer(set: &QkvSet, layer: usize) -> Result<()> {
    if layer >= set.num_layers() {
        bail!(
            "--layer {layer} is out of range: the input has {} layers (0..={})",
            set.num_layers(),
            set.num_layers().saturating_sub(1)
        );
    }
    Ok(())
}

/// `attnscope info FILE`.
pub fn info(file: &str, all_tokens: bool) -> Result<()> {
    let set = load(file)?;
    println!("source:          {}", set.source);
    println!("interpretation:  {}", set.interpretation);
    println!(
        "layers × heads:  {} × {}",
        set.num_layers(),
        set.num_heads()
    );
    for layer in 0..set.num_layers() {
        println!("  layer {layer}: {}", set.layer_label(layer));
    }
    println!("seq_len_q:       {}", set.seq_len_q());
    println!("seq_len_kv:      {}", set.seq_len_kv());
    println!("head_dim:        {}", set.head_dim());
    println!("value_dim:       {}", set.value_dim());
    println!("causal:          {}", set.causal());
    match set.meta.scale {
        Some(s) => println!("scale:           {s} (sidecar)"),
        None => println!(
            "scale:           {} (default 1/sqrt(head_dim))",
            attnscope::attention::default_scale(set.head_dim())
        ),
    }
    if let Some(model) = &set.meta.model {
        println!("model:           {model}");
    }
    match &set.meta.tokens {
        Some(tokens) => {
            let shown = if all_tokens {
                tokens.len()
            } else {
                tokens.len().min(32)
            };
            println!("tokens:          {} (showing {shown})", tokens.len());
            let line: Vec<String> = tokens
                .iter()
                .take(shown)
                .enumerate()
                .map(|(i, t)| format!("{i}:{t}"))
                .collect();
            println!("  {}", line.join(" "));
        }
        None => println!("tokens:          none (indices shown instead)"),
    }
    if set.non_finite_count == 0 {
        println!("non-finite:      none");
    } else {
        println!("non-finite:      {} values", set.non_finite_count);
        for nf in set.non_finite.iter().take(20) {
            let idx: Vec<String> = nf.index.iter().map(ToString::to_string).collect();
            println!("  {}[{}] is {}", nf.tensor, idx.join(","), nf.value);
        }
    }
    for w in &set.warnings {
        println!("warning:         {w}");
    }
    Ok(())
}

#[derive(Serialize)]
struct HeadMetrics {
    head: usize,
    runtime_secs: f64,
    metrics: Option<ErrorMetrics>,
    notes: Vec<String>,
}

/// `attnscope compute FILE --method M …`.
#[allow(clippy::too_many_arguments)]
pub fn compute(
    file: &str,
    method: &str,
    layer: usize,
    head: Option<usize>,
    params: &ParamArgs,
    attn: bool,
    metrics_path: Option<&Path>,
    out: &Path,
) -> Result<()> {
    let method = MethodId::parse(method).map_err(anyhow::Error::msg)?;
    let set = load(file)?;
    check_layer(&set, layer)?;
    let heads = heads_of(&set, head)?;
    let method_params = params.method_params()?;
    let budget = params.budget();
    let causal = params.causal_or(set.causal());
    let (lq, lk, dv) = (set.seq_len_q(), set.seq_len_kv(), set.value_dim());
    let mut outputs = Array3::<f32>::zeros((heads.len(), lq, dv));
    let mut matrices = if attn {
        budget.check(heads.len() * lq, lk).with_context(
            || "--attn: the effective matrices do not fit the budget (raise --budget-mib)",
        )?;
        Some(Array3::<f32>::zeros((heads.len(), lq, lk)))
    } else {
        None
    };
    let mut report = Vec::new();
    for (n, &h) in heads.iter().enumerate() {
        let input: HeadInput<'_> = set.head(layer, h, causal, params.scale)?;
        let start = Instant::now();
        let result = run_method(method, &method_params, &input, attn, budget)
            .with_context(|| format!("{method} on layer {layer} head {h}"))?;
        let runtime_secs = start.elapsed().as_secs_f64();
        outputs.index_axis_mut(Axis(0), n).assign(&result.output);
        if let (Some(all), Some(m)) = (matrices.as_mut(), result.matrix.as_ref()) {
            all.index_axis_mut(Axis(0), n).assign(m);
        }
        let metrics = if metrics_path.is_some() {
            let want = result.matrix.is_some();
            let (exact_out, exact_a) = full_attention(&input, want, budget)?;
            Some(analysis::compare(
                &exact_out,
                &result.output,
                exact_a.as_ref(),
                result.matrix.as_ref(),
            ))
        } else {
            None
        };
        eprintln!(
            "[{}/{}] {method} layer {layer} head {h}: {:.3} ms",
            n + 1,
            heads.len(),
            runtime_secs * 1e3
        );
        for note in result.notes.iter().chain(result.matrix_note.iter()) {
            eprintln!("  note: {note}");
        }
        report.push(HeadMetrics {
            head: h,
            runtime_secs,
            metrics,
            notes: result.notes.clone(),
        });
    }
    let f = File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut npz = ndarray_npy::NpzWriter::new_compressed(f);
    npz.add_array("out", &outputs)
        .with_context(|| format!("cannot write {}", out.display()))?;
    if let Some(m) = &matrices {
        npz.add_array("attn", m)
            .with_context(|| format!("cannot write {}", out.display()))?;
    }
    npz.finish()
        .with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!("wrote {}", out.display());
    if let Some(path) = metrics_path {
        let json = serde_json::json!({
            "source": set.source, "method": method.as_str(), "layer": layer,
            "causal": causal, "params": method_params, "heads": report,
        });
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// `attnscope decompose FILE …`: six PNGs and metrics.json per head.
pub fn decompose(
    file: &str,
    layer: usize,
    head: Option<usize>,
    params: &ParamArgs,
    display: &DisplayArgs,
    out: &Path,
) -> Result<()> {
    let set = load(file)?;
    check_layer(&set, layer)?;
    let heads = heads_of(&set, head)?;
    let (colormap, value_scale, pool_mode) = display.parse()?;
    let causal = params.causal_or(set.causal());
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut all_metrics = Vec::new();
    for (n, &h) in heads.iter().enumerate() {
        let input = set.head(layer, h, causal, params.scale)?;
        let start = Instant::now();
        let d = analysis::decompose(&input, params.bandwidth, params.rank, params.budget())
            .with_context(|| format!("decomposing layer {layer} head {h}"))?;
        let prefix = if heads.len() == 1 {
            String::new()
        } else {
            format!("h{h}_")
        };
        let shared = ColorScale::fit(colormap, value_scale, d.full.iter().copied());
        let signed = ColorScale::fit(
            Colormap::RedBlue,
            ValueScale::Linear,
            d.error.iter().copied(),
        );
        let name = source_name(&set.source);
        let subtitle = format!(
            "layer {layer} ({}) head {h}, {}, bandwidth {}, rank {}",
            set.layer_label(layer),
            if causal { "causal" } else { "bidirectional" },
            d.metrics.bandwidth,
            d.metrics.rank
        );
        let panels = [
            ("full", "full attention A", &d.full, shared),
            ("near", "near field band_b(A)", &d.near, shared),
            ("far", "far field F = A - band_b(A)", &d.far, shared),
            ("far_rank_r", "far field rank-r F_r", &d.far_rank_r, shared),
            (
                "reconstruction",
                "reconstruction band_b(A) + F_r",
                &d.reconstruction,
                shared,
            ),
            (
                "error",
                "signed error (reconstruction - A)",
                &d.error,
                signed,
            ),
        ];
        for (file_stem, title, matrix, scale) in panels {
            let mut opts = PngOptions::new(scale);
            opts.upscale = display.upscale;
            opts.max_side = display.max_side;
            opts.pool_mode = pool_mode;
            opts.title = vec![format!("{name}: {title}"), subtitle.clone()];
            let path = out.join(format!("{prefix}{file_stem}.png"));
            write_png(&path, matrix.view(), &opts)?;
        }
        eprintln!(
            "[{}/{}] layer {layer} head {h}: band mass {:.3}, band-only error {}, reconstruction error {} ({:.2} s)",
            n + 1,
            heads.len(),
            d.metrics.band_mass,
            d.metrics.band_only_error,
            d.metrics.reconstruction_error,
            start.elapsed().as_secs_f64()
        );
        all_metrics.push(serde_json::json!({
            "head": h,
            "metrics": d.metrics,
            "far_singular_values": d.far_singular_values.iter().take(64).collect::<Vec<_>>(),
        }));
    }
    let json = serde_json::json!({
        "source": set.source, "layer": layer, "causal": causal,
        "bandwidth": params.bandwidth, "rank": params.rank, "heads": all_metrics,
    });
    let path = out.join("metrics.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("wrote {} PNGs and {}", heads.len() * 6, path.display());
    Ok(())
}

fn source_name(source: &str) -> String {
    Path::new(source)
        .file_stem()
        .map_or_else(|| source.to_string(), |s| s.to_string_lossy().into_owned())
}
