//! `attnscope encode`: a text through a BERT-family model in Rust, written as the `.npz` +
//! sidecar `.json` that `scripts/export_qkv.py` writes, and the `--model` option that applies
//! to every `text:` input.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use attnscope::encoder::{EncodeOptions, ModelSource, TextModel, TextSpec, load_cached};

/// `text:TEXT` → `text(model=MODEL):TEXT` when `--model` is given; other specs unchanged, but
/// `--model` with a non-text input is an error (it would be silently ignored otherwise).
pub fn apply_model(spec: &str, model: Option<&str>) -> Result<String> {
    let Some(model) = model else {
        return Ok(spec.to_string());
    };
    if !TextSpec::is_text_spec(spec) {
        bail!("--model applies to text:\"…\" inputs and to `encode`; '{spec}' is not a text input");
    }
    let mut parsed = TextSpec::parse(spec)?;
    if parsed.model != ModelSource::Bundled {
        bail!("the input '{spec}' names its model already; drop --model or the (model=…) part");
    }
    parsed.model = ModelSource::parse(model);
    Ok(parsed.spec())
}

/// `"all"` or `"0,5,-1"` (negative counts from the end) → model layer indices.
fn parse_layers(spec: &str, num_layers: usize) -> Result<Option<Vec<usize>>> {
    if spec.trim() == "all" {
        return Ok(None);
    }
    let mut layers = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let index: i64 = part.parse().with_context(|| {
            format!("--layers: '{part}' is not an integer (e.g. --layers 0,5,-1)")
        })?;
        let resolved = if index < 0 {
            index + num_layers as i64
        } else {
            index
        };
        if resolved < 0 || resolved >= num_layers as i64 {
            bail!("--layers: {part} is out of range: the model has {num_layers} layers");
        }
        layers.push(resolved as usize);
    }
    if layers.is_empty() {
        bail!("--layers: no layer given");
    }
    Ok(Some(layers))
}

/// `attnscope encode --text … [--model DIR] --out OUT.npz`.
pub fn encode(
    text: Option<&str>,
    text_file: Option<&Path>,
    model: Option<&str>,
    layers: &str,
    truncate: bool,
    out: &Path,
) -> Result<()> {
    let text = match (text, text_file) {
        (Some(t), None) => t.to_string(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .with_context(|| format!("cannot read the text file {}", f.display()))?,
        _ => bail!("give the text with --text \"…\" or --text-file FILE"),
    };
    let source = model.map_or(ModelSource::Bundled, ModelSource::parse);
    let started = Instant::now();
    let model: std::sync::Arc<TextModel> = load_cached(&source)?;
    eprintln!(
        "model {} ({} layers × {} heads, head_dim {}, at most {} tokens) loaded in {:.2} s",
        source.display_name(),
        model.config().num_layers,
        model.config().num_heads,
        model.config().head_dim(),
        model.max_tokens(),
        started.elapsed().as_secs_f64()
    );
    let options = EncodeOptions {
        layers: parse_layers(layers, model.config().num_layers)?,
        truncate,
    };
    let spec = TextSpec {
        text: text.clone(),
        model: source.clone(),
    }
    .spec();
    let started = Instant::now();
    let encoded = model.encode(&text, &spec, &options, &mut |_| ControlFlow::Continue(()))?;
    let set = &encoded.set;
    for w in &set.warnings {
        eprintln!("warning: {w}");
    }

    let out: PathBuf = if out.extension().is_some_and(|e| e == "npz") {
        out.to_path_buf()
    } else {
        out.with_extension("npz")
    };
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let file =
        std::fs::File::create(&out).with_context(|| format!("cannot write {}", out.display()))?;
    let mut npz = ndarray_npy::NpzWriter::new_compressed(file);
    for (name, array) in [("q", &set.q), ("k", &set.k), ("v", &set.v)] {
        npz.add_array(name, array)
            .with_context(|| format!("cannot write {name} to {}", out.display()))?;
    }
    npz.finish()
        .with_context(|| format!("cannot write {}", out.display()))?;
    let sidecar_path = out.with_extension("json");
    let head_dim = set.head_dim();
    let sidecar = serde_json::json!({
        "tokens": set.meta.tokens,
        "layers_kept": set.meta.layers_kept,
        "scale": 1.0 / (head_dim as f64).sqrt(),
        "causal": false,
        "model": source.display_name(),
        "source": text,
        "weights_sha256": model.weights_sha256(),
        "extracted_with": format!(
            "attnscope encode {} (Rust BERT forward); q, k, v are the per-head projections with bias, before the 1/sqrt({head_dim}) scale",
            env!("CARGO_PKG_VERSION")
        ),
    });
    let json = serde_json::to_string_pretty(&sidecar).context("sidecar JSON")?;
    std::fs::write(&sidecar_path, json)
        .with_context(|| format!("cannot write {}", sidecar_path.display()))?;
    eprintln!(
        "wrote {} (q/k/v {:?} = [layers, heads, tokens, head_dim]) and {} in {:.2} s",
        out.display(),
        set.q.shape(),
        sidecar_path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
