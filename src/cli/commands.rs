//! The subcommands. Each loads through `attnscope::data`, computes through the library and
//! writes files; progress goes to stderr.

use std::fs::File;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use attnscope::analysis::TileControl;
use attnscope::analysis::{self, ErrorMetrics};
use attnscope::attention::{HeadInput, MethodId, compute as run_method, dense::full_attention};
use attnscope::data::{QkvSet, load_source};
use attnscope::render::export::{
    HeatmapTitle, method_parameters_summary, write_heatmap_png, write_json, write_metrics_csv,
    write_npz, write_pooled_png,
};
use attnscope::render::{ColorScale, Colormap, PngOptions, ValueScale};
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
    png_dir: Option<&Path>,
    display: &DisplayArgs,
    out: &Path,
) -> Result<()> {
    let method = MethodId::parse(method).map_err(anyhow::Error::msg)?;
    if let Some(dir) = png_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
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
        let result = run_method(
            method,
            &method_params,
            &input,
            // The matrix error is C4's primary measure: `--metrics` materialises Â too.
            attn || png_dir.is_some() || metrics_path.is_some(),
            budget,
        )
        .with_context(|| format!("{method} on layer {layer} head {h}"))?;
        let runtime_secs = start.elapsed().as_secs_f64();
        outputs.index_axis_mut(Axis(0), n).assign(&result.output);
        if let (Some(all), Some(m)) = (matrices.as_mut(), result.matrix.as_ref()) {
            all.index_axis_mut(Axis(0), n).assign(m);
        }
        if let Some(dir) = png_dir {
            let title = HeatmapTitle {
                input: source_name(&set.source),
                layer: set.layer_label(layer),
                head: h,
                method: String::new(),
                parameters: format!(
                    "{}, {}",
                    method_parameters_summary(method, &result.params),
                    if causal { "causal" } else { "bidirectional" }
                ),
            };
            method_pngs(
                dir,
                &input,
                method,
                result.matrix.as_ref(),
                &title,
                display,
                budget,
                heads.len() > 1,
            )?;
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

/// `attnscope decompose FILE …`: six PNGs and metrics.json per head (optionally the matrices as
/// .npz and the metrics as CSV). Above the budget: A, near and far field pooled from row tiles.
#[allow(clippy::too_many_arguments)]
pub fn decompose(
    file: &str,
    layer: usize,
    head: Option<usize>,
    params: &ParamArgs,
    display: &DisplayArgs,
    npz_path: Option<&Path>,
    metrics_csv: Option<&Path>,
    optimal: bool,
    out: &Path,
) -> Result<()> {
    let set = load(file)?;
    check_layer(&set, layer)?;
    let heads = heads_of(&set, head)?;
    let (colormap, value_scale, pool_mode) = display.parse()?;
    let causal = params.causal_or(set.causal());
    let budget = params.budget();
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut all_metrics = Vec::new();
    let mut csv_rows = Vec::new();
    let mut npz_arrays: Vec<(String, ndarray::Array2<f32>)> = Vec::new();
    let name = source_name(&set.source);
    let mut pngs = 0;
    for (n, &h) in heads.iter().enumerate() {
        let input = set.head(layer, h, causal, params.scale)?;
        let start = Instant::now();
        let prefix = if heads.len() == 1 {
            String::new()
        } else {
            format!("h{h}_")
        };
        let title = |panel: &str, parameters: String| HeatmapTitle {
            input: name.clone(),
            layer: set.layer_label(layer),
            head: h,
            method: panel.to_string(),
            parameters,
        };
        let (lq, lk) = (input.seq_len_q(), input.seq_len_kv());
        if budget.check(lq, lk.saturating_mul(6)).is_err() {
            // E15: too long for six L×L matrices and an SVD.
            let progress = |f: f32| eprint!("\r  tiles {:>5.1}%", f * 100.0);
            let d = analysis::pooled_decomposition(
                &input,
                params.bandwidth,
                display.max_side,
                pool_mode,
                TileControl {
                    cancel: None,
                    progress: Some(&progress),
                },
            )
            .with_context(|| format!("decomposing layer {layer} head {h}"))?;
            eprintln!();
            let shared = ColorScale::fit(colormap, value_scale, d.full.data.iter().copied());
            let parameters = format!(
                "bandwidth {}, {}",
                d.bandwidth,
                if causal { "causal" } else { "bidirectional" }
            );
            let mut opts = PngOptions::new(shared);
            opts.upscale = 1;
            for (stem, panel, pooled) in [
                ("full", "full attention A", &d.full),
                ("near", "near field band_b(A)", &d.near),
                ("far", "far field F = A - band_b(A)", &d.far),
            ] {
                let path = out.join(format!("{prefix}{stem}.png"));
                write_pooled_png(&path, pooled, &title(panel, parameters.clone()), &opts)?;
                pngs += 1;
                if npz_path.is_some() {
                    npz_arrays.push((format!("{prefix}{stem}_pooled"), pooled.data.clone()));
                }
            }
            for note in &d.notes {
                eprintln!("  note: {note}");
            }
            eprintln!(
                "[{}/{}] layer {layer} head {h}: band mass {:.3}, band-only error {} ({:.2} s)",
                n + 1,
                heads.len(),
                d.band_mass,
                d.band_only_error,
                start.elapsed().as_secs_f64()
            );
            let record = serde_json::json!({
                "head": h,
                "metrics": {
                    "bandwidth": d.bandwidth, "band_mass": d.band_mass,
                    "band_only_error": d.band_only_error, "pooled_factor": d.full.factor,
                    "pool_mode": pool_mode, "notes": d.notes,
                },
            });
            csv_rows.push(record.clone());
            all_metrics.push(record);
            continue;
        }
        let d = analysis::decompose(&input, params.bandwidth, params.rank, budget)
            .with_context(|| format!("decomposing layer {layer} head {h}"))?;
        // One scale for the five non-negative-by-construction panels, fitted over all of them:
        // the truncated far field (and so the reconstruction) can dip below zero.
        let shared = ColorScale::fit(
            colormap,
            value_scale,
            d.full
                .iter()
                .chain(d.far_rank_r.iter())
                .chain(d.reconstruction.iter())
                .copied(),
        );
        let signed = ColorScale::fit(
            Colormap::RedBlue,
            ValueScale::Linear,
            d.error.iter().copied(),
        );
        let parameters = format!(
            "bandwidth {}, rank {}, {}",
            d.metrics.bandwidth,
            d.metrics.rank,
            if causal { "causal" } else { "bidirectional" }
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
        // One PNG per panel, all drawn the same way (the optimal split below reuses it).
        let write_panel = |file_stem: &str,
                           panel: &str,
                           matrix: &ndarray::Array2<f32>,
                           scale: ColorScale|
         -> Result<()> {
            let mut opts = PngOptions::new(scale);
            opts.upscale = display.upscale;
            opts.max_side = display.max_side;
            opts.pool_mode = pool_mode;
            let path = out.join(format!("{prefix}{file_stem}.png"));
            write_heatmap_png(
                &path,
                matrix.view(),
                &title(panel, parameters.clone()),
                &opts,
            )?;
            Ok(())
        };
        for (file_stem, panel, matrix, scale) in panels {
            write_panel(file_stem, panel, matrix, scale)?;
            pngs += 1;
            if npz_path.is_some() {
                npz_arrays.push((format!("{prefix}{file_stem}"), matrix.clone()));
            }
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
        csv_rows.push(serde_json::json!({"head": h, "metrics": d.metrics}));
        let mut record = serde_json::json!({
            "head": h,
            "metrics": d.metrics,
            "far_singular_values": d.far_singular_values.iter().take(64).collect::<Vec<_>>(),
        });
        if optimal {
            let opts = attnscope::analysis::optimal::SplitOptions {
                bandwidth: params.bandwidth,
                rank: params.rank,
                causal,
                ..Default::default()
            };
            let split = attnscope::analysis::optimal::optimal_split(&d.full, opts)
                .with_context(|| format!("optimal split of layer {layer} head {h}"))?;
            let parts = [
                (
                    "optimal_band",
                    "optimal split: banded part D",
                    &split.band,
                    shared,
                ),
                (
                    "optimal_low_rank",
                    "optimal split: low-rank part L",
                    &split.low_rank,
                    shared,
                ),
                (
                    "optimal_error",
                    "optimal split: signed error (D + L - A)",
                    &split.error_matrix,
                    signed,
                ),
            ];
            for (file_stem, panel, matrix, scale) in parts {
                write_panel(file_stem, panel, matrix, scale)?;
                pngs += 1;
            }
            let curve = split.relative_curve();
            eprintln!(
                "  optimal split: {:.6} (fixed) -> {:.6} in {} iterations{}",
                curve.first().copied().unwrap_or(f64::NAN),
                curve.last().copied().unwrap_or(f64::NAN),
                split.iterations,
                if split.converged { ", converged" } else { "" }
            );
            record["optimal_split"] = serde_json::json!({
                "relative_error_curve": curve,
                "iterations": split.iterations,
                "converged": split.converged,
                "notes": split.notes,
            });
        }
        all_metrics.push(record);
    }
    let json = serde_json::json!({
        "source": set.source, "layer": layer, "causal": causal,
        "bandwidth": params.bandwidth, "rank": params.rank, "heads": all_metrics,
    });
    let path = out.join("metrics.json");
    write_json(&path, &json)?;
    eprintln!("wrote {pngs} PNGs and {}", path.display());
    if let Some(npz) = npz_path {
        let views: Vec<(&str, ndarray::ArrayView2<'_, f32>)> = npz_arrays
            .iter()
            .map(|(n, a)| (n.as_str(), a.view()))
            .collect();
        write_npz(npz, &views)?;
        eprintln!("wrote {}", npz.display());
    }
    if let Some(csv) = metrics_csv {
        write_metrics_csv(csv, &csv_rows)?;
        eprintln!("wrote {}", csv.display());
    }
    Ok(())
}

/// `compute --png DIR`: A, Â and Â − A of one head (exact A pooled from row tiles when it
/// exceeds the budget; Â and the error then are skipped with a note).
#[allow(clippy::too_many_arguments)]
fn method_pngs(
    dir: &Path,
    input: &HeadInput<'_>,
    method: MethodId,
    approx: Option<&ndarray::Array2<f32>>,
    title: &HeatmapTitle,
    display: &DisplayArgs,
    budget: attnscope::attention::MatrixBudget,
    several_heads: bool,
) -> Result<()> {
    let (colormap, value_scale, pool_mode) = display.parse()?;
    let prefix = if several_heads {
        format!("h{}_", title.head)
    } else {
        String::new()
    };
    let with_method = |m: &str| HeatmapTitle {
        method: m.to_string(),
        ..title.clone()
    };
    let exact = if budget.check(input.seq_len_q(), input.seq_len_kv()).is_ok() {
        full_attention(input, true, budget)?.1
    } else {
        None
    };
    let Some(exact) = exact else {
        let d = analysis::pooled_decomposition(
            input,
            0,
            display.max_side,
            pool_mode,
            TileControl::default(),
        )?;
        let scale = ColorScale::fit(colormap, value_scale, d.full.data.iter().copied());
        let path = dir.join(format!("{prefix}exact.png"));
        write_pooled_png(
            &path,
            &d.full,
            &with_method("exact A"),
            &PngOptions::new(scale),
        )?;
        eprintln!(
            "  note: A is over the budget: {} written pooled; Â and the error need the full matrices (raise --budget-mib)",
            path.display()
        );
        return Ok(());
    };
    let scale = ColorScale::fit(colormap, value_scale, exact.iter().copied());
    let mut opts = PngOptions::new(scale);
    opts.upscale = display.upscale;
    opts.max_side = display.max_side;
    opts.pool_mode = pool_mode;
    write_heatmap_png(
        &dir.join(format!("{prefix}exact.png")),
        exact.view(),
        &with_method("exact A"),
        &opts,
    )?;
    let Some(approx) = approx else {
        eprintln!("  note: {method}'s matrix Â is not available (budget); only exact.png written");
        return Ok(());
    };
    write_heatmap_png(
        &dir.join(format!("{prefix}approx.png")),
        approx.view(),
        &with_method(&format!("{method} A-hat")),
        &opts,
    )?;
    let error = approx - &exact;
    let mut signed = opts.clone();
    signed.scale = ColorScale::fit(Colormap::RedBlue, ValueScale::Linear, error.iter().copied());
    write_heatmap_png(
        &dir.join(format!("{prefix}error.png")),
        error.view(),
        &with_method(&format!("error {method} A-hat - A")),
        &signed,
    )?;
    Ok(())
}

fn source_name(source: &str) -> String {
    Path::new(source)
        .file_stem()
        .map_or_else(|| source.to_string(), |s| s.to_string_lossy().into_owned())
}

/// `attnscope notebook export NOTEBOOK_DIR --out DIR`.
pub fn notebook_export(notebook_dir: &Path, out: &Path) -> Result<()> {
    let files = attnscope::notebook::export_report(notebook_dir, out)
        .with_context(|| format!("cannot export the notebook {}", notebook_dir.display()))?;
    eprintln!(
        "wrote {} and {} ({} thumbnails)",
        files.markdown.display(),
        files.csv.display(),
        files.thumbnails.len()
    );
    for id in files.missing_thumbnails {
        eprintln!("warning: the thumbnail of entry {id} is missing; the report says so");
    }
    Ok(())
}
