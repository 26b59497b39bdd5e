//! The BERT encoder run in Rust: golden tests against the bundled MiniLM samples and the model's
//! published sentence similarities, and shape / error tests on tiny random-weight BERT folders
//! that the tests write themselves (no network, no Python).

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use attnscope::data::{self, QkvSet};
use attnscope::encoder::{
    BertConfig, EncodeOptions, EncoderError, ModelBudget, ModelSource, TextModel, TextSpec,
    config::Activation,
};
use ndarray::{Array2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safetensors::Dtype;
use safetensors::tensor::TensorView;

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn zen_text() -> String {
    std::fs::read_to_string(manifest().join("tests/data/zen_of_python.txt")).unwrap()
}

fn go() -> impl FnMut(attnscope::encoder::ForwardProgress) -> ControlFlow<()> {
    |_| ControlFlow::Continue(())
}

/// Max |a − b| over two `[layers, heads, tokens, dim]` tensors, and the worst (layer, head).
fn max_abs_diff(a: &ndarray::Array4<f32>, b: &ndarray::Array4<f32>) -> (f32, (usize, usize)) {
    assert_eq!(a.shape(), b.shape());
    let mut worst = (0.0_f32, (0, 0));
    for ((idx, &x), &y) in a.indexed_iter().zip(b.iter()) {
        let d = (x - y).abs();
        assert!(d.is_finite(), "non-finite at {idx:?}: {x} vs {y}");
        if d > worst.0 {
            worst = (d, (idx.0, idx.1));
        }
    }
    worst
}

#[test]
fn minilm_on_the_zen_of_python_reproduces_the_bundled_sample_for_every_layer_and_head() {
    let model = TextModel::bundled().unwrap();
    let encoded = model
        .encode(
            &zen_text(),
            "text:zen",
            &EncodeOptions::default(),
            &mut go(),
        )
        .unwrap();
    let golden = data::load_sample("zen").unwrap();
    // The same wordpieces as the extraction (191, [CLS] … [SEP]).
    assert_eq!(encoded.set.meta.tokens, golden.meta.tokens);
    assert_eq!(encoded.set.q.shape(), &[6, 12, 191, 32]);
    assert_eq!(encoded.set.meta.layers_kept, Some(vec![0, 1, 2, 3, 4, 5]));
    assert_eq!(encoded.set.meta.scale, golden.meta.scale);
    for (name, ours, theirs) in [
        ("q", &encoded.set.q, &golden.q),
        ("k", &encoded.set.k, &golden.k),
        ("v", &encoded.set.v, &golden.v),
    ] {
        let (diff, (layer, head)) = max_abs_diff(ours, theirs);
        eprintln!("zen {name}: max |rust − numpy| = {diff:.3e} (at layer {layer}, head {head})");
        assert!(
            diff <= 1e-4,
            "{name}: max abs diff {diff} at layer {layer} head {head}"
        );
    }
    // Per layer and head, so a failure names the first head that drifts.
    for layer in 0..6 {
        for head in 0..12 {
            let a = encoded
                .set
                .q
                .index_axis(Axis(0), layer)
                .index_axis(Axis(0), head)
                .to_owned();
            let b = golden
                .q
                .index_axis(Axis(0), layer)
                .index_axis(Axis(0), head)
                .to_owned();
            let d = (&a - &b).mapv(f32::abs).fold(0.0_f32, |m, &x| m.max(x));
            assert!(d <= 1e-4, "q layer {layer} head {head}: {d}");
        }
    }
}

#[test]
fn minilm_sentence_similarities_match_the_published_numbers() {
    let model = TextModel::bundled().unwrap();
    let sentences = [
        "The weather is lovely today.",
        "It's so sunny outside!",
        "He drove to the stadium.",
    ];
    let e: Vec<_> = sentences
        .iter()
        .map(|s| model.sentence_embedding(s).unwrap())
        .collect();
    for v in &e {
        assert_eq!(v.len(), 384);
        assert!((v.dot(v) - 1.0).abs() < 1e-5, "normalised");
    }
    let cos = |a: usize, b: usize| f64::from(e[a].dot(&e[b]));
    let got = [cos(0, 1), cos(0, 2), cos(1, 2)];
    eprintln!("cosine similarities: {got:.6?}");
    for (g, want) in got.iter().zip([0.6660, 0.1046, 0.1411]) {
        assert_eq!(format!("{g:.4}"), format!("{want:.4}"), "{got:?}");
    }
}

#[test]
fn text_spec_loads_through_load_source_like_any_input() {
    let set: QkvSet = data::load_source("text:\"The cat sat on the mat.\"").unwrap();
    assert_eq!(set.source, "text:The cat sat on the mat.");
    assert_eq!(
        set.meta.tokens.as_deref().unwrap(),
        [
            "[CLS]", "the", "cat", "sat", "on", "the", "mat", ".", "[SEP]"
        ]
    );
    assert_eq!(set.q.shape(), &[6, 12, 9, 32]);
    assert!(!set.causal());
    assert_eq!(
        set.meta.model.as_deref(),
        Some("sentence-transformers/all-MiniLM-L6-v2")
    );
    assert!(set.info().contains("text: The cat sat on the mat."));
    // Attention of this input runs like any other input's.
    let head = set.head(3, 5, false, None).unwrap();
    let (_, attn) = attnscope::attention::dense::dense_reference(&head);
    for row in attn.rows() {
        assert!((row.sum() - 1.0).abs() < 1e-5);
    }
}

#[test]
fn minilm_refuses_empty_and_too_long_texts_with_the_limit_and_truncates_on_request() {
    let model = TextModel::bundled().unwrap();
    let opts = EncodeOptions::default();
    let err = model
        .encode("  \n ", "text:", &opts, &mut go())
        .unwrap_err();
    assert!(matches!(err, EncoderError::EmptyText), "{err}");
    let long = "word ".repeat(600);
    let err = model
        .encode(&long, "text:long", &opts, &mut go())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the text has 602 tokens ([CLS] and [SEP] included); the model takes at most 512: shorten it (or truncate)"
    );
    let cut = model
        .encode(
            &long,
            "text:long",
            &EncodeOptions {
                truncate: true,
                ..EncodeOptions::default()
            },
            &mut go(),
        )
        .unwrap();
    let tokens = cut.set.meta.tokens.as_ref().unwrap();
    assert_eq!(tokens.len(), 512);
    assert_eq!(
        (tokens[0].as_str(), tokens[511].as_str()),
        ("[CLS]", "[SEP]")
    );
    assert!(cut.set.warnings.iter().any(|w| w.contains("truncated")));
    // Exactly at the limit is accepted: 510 words + [CLS] + [SEP].
    let at_limit = "word ".repeat(510);
    assert_eq!(model.tokenize(&at_limit, false).unwrap().ids.len(), 512);
    // Kept layers and cancellation.
    let some = model
        .encode(
            "Hello there.",
            "text:Hello there.",
            &EncodeOptions {
                layers: Some(vec![4, 1, 4]),
                truncate: false,
            },
            &mut go(),
        )
        .unwrap();
    assert_eq!(some.set.meta.layers_kept, Some(vec![1, 4]));
    assert_eq!(some.set.num_layers(), 2);
    assert_eq!(some.set.layer_label(1), "model layer 4");
    let mut calls = 0;
    let err = model
        .encode("Hello there.", "text:x", &opts, &mut |p| {
            calls += 1;
            if p.layers_done == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap_err();
    assert!(matches!(err, EncoderError::Cancelled));
    assert_eq!(calls, 3, "embeddings, layer 0, layer 1");
}

// ---------------------------------------------------------------------------------------------
// Tiny random-weight BERT folders.

const TINY_VOCAB: [&str; 12] = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat", "sat", "on", "mat", ".", "a", "##s",
];

fn tiny_config() -> BertConfig {
    BertConfig {
        vocab_size: TINY_VOCAB.len(),
        hidden_size: 8,
        num_layers: 2,
        num_heads: 2,
        intermediate_size: 16,
        activation: Activation::GeluErf,
        max_positions: 10,
        type_vocab_size: 2,
        layer_norm_eps: 1e-12,
    }
}

/// A WordPiece `tokenizer.json` over `vocab` with BERT's normaliser, pre-tokeniser and
/// `[CLS] … [SEP]` template.
fn tokenizer_json(vocab: &[&str]) -> String {
    let ids: serde_json::Map<String, serde_json::Value> = vocab
        .iter()
        .enumerate()
        .map(|(i, t)| (t.to_string(), serde_json::json!(i)))
        .collect();
    let id = |t: &str| vocab.iter().position(|v| *v == t).unwrap();
    let added: Vec<serde_json::Value> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
        .iter()
        .map(|t| {
            serde_json::json!({
                "id": id(t), "content": t, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": true
            })
        })
        .collect();
    serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                       "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {
                "[CLS]": {"id": "[CLS]", "ids": [id("[CLS]")], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [id("[SEP]")], "tokens": ["[SEP]"]}}},
        "decoder": null,
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": ids}
    })
    .to_string()
}

/// Seeded random weights for `config` with `prefix` ("" or "bert.") and LayerNorm names
/// `weight`/`bias` or `gamma`/`beta`.
fn tiny_weights(
    config: &BertConfig,
    prefix: &str,
    gamma_beta: bool,
    seed: u64,
) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut t = Vec::new();
    let (h, i) = (config.hidden_size, config.intermediate_size);
    let mut add = |name: String, shape: Vec<usize>, rng: &mut ChaCha8Rng| {
        let n = shape.iter().product();
        let data = (0..n).map(|_| rng.random_range(-0.5_f32..0.5)).collect();
        t.push((name, shape, data));
    };
    let (w, b) = if gamma_beta {
        ("gamma", "beta")
    } else {
        ("weight", "bias")
    };
    let e = format!("{prefix}embeddings");
    add(
        format!("{e}.word_embeddings.weight"),
        vec![config.vocab_size, h],
        &mut rng,
    );
    add(
        format!("{e}.position_embeddings.weight"),
        vec![config.max_positions, h],
        &mut rng,
    );
    add(
        format!("{e}.token_type_embeddings.weight"),
        vec![config.type_vocab_size, h],
        &mut rng,
    );
    add(format!("{e}.LayerNorm.{w}"), vec![h], &mut rng);
    add(format!("{e}.LayerNorm.{b}"), vec![h], &mut rng);
    for l in 0..config.num_layers {
        let base = format!("{prefix}encoder.layer.{l}");
        for (name, out, inp) in [
            ("attention.self.query", h, h),
            ("attention.self.key", h, h),
            ("attention.self.value", h, h),
            ("attention.output.dense", h, h),
            ("intermediate.dense", i, h),
            ("output.dense", h, i),
        ] {
            add(format!("{base}.{name}.weight"), vec![out, inp], &mut rng);
            add(format!("{base}.{name}.bias"), vec![out], &mut rng);
        }
        for ln in ["attention.output.LayerNorm", "output.LayerNorm"] {
            add(format!("{base}.{ln}.{w}"), vec![h], &mut rng);
            add(format!("{base}.{ln}.{b}"), vec![h], &mut rng);
        }
    }
    t
}

fn safetensors_bytes(tensors: &[(String, Vec<usize>, Vec<f32>)], dtype: Dtype) -> Vec<u8> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, d)| match dtype {
            Dtype::F16 => d
                .iter()
                .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
                .collect(),
            _ => d.iter().flat_map(|x| x.to_le_bytes()).collect(),
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((n, s, _), b)| (n.clone(), TensorView::new(dtype, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize(views, None).unwrap()
}

/// Writes a complete tiny model folder and returns it.
fn write_tiny(dir: &Path, prefix: &str, gamma_beta: bool) -> PathBuf {
    let config = tiny_config();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("config.json"), config.to_json()).unwrap();
    std::fs::write(dir.join("tokenizer.json"), tokenizer_json(&TINY_VOCAB)).unwrap();
    let weights = tiny_weights(&config, prefix, gamma_beta, 7);
    std::fs::write(
        dir.join("model.safetensors"),
        safetensors_bytes(&weights, Dtype::F32),
    )
    .unwrap();
    dir.to_path_buf()
}

fn load(dir: &Path) -> Result<TextModel, EncoderError> {
    TextModel::load(&ModelSource::Folder(dir.to_path_buf()))
}

fn tiny_qkv(model: &TextModel, text: &str) -> QkvSet {
    model
        .encode(text, "text:tiny", &EncodeOptions::default(), &mut go())
        .unwrap()
        .set
}

#[test]
fn tiny_bert_folder_gives_per_head_qkv_of_the_right_shape_and_names() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_tiny(&root.path().join("tiny"), "", false);
    let model = load(&dir).unwrap();
    let set = tiny_qkv(&model, "The cats sat on a mat.");
    assert_eq!(
        set.meta.tokens.as_deref().unwrap(),
        [
            "[CLS]", "the", "cat", "##s", "sat", "on", "a", "mat", ".", "[SEP]"
        ]
    );
    assert_eq!(set.q.shape(), &[2, 2, 10, 4]);
    assert_eq!(set.k.shape(), &[2, 2, 10, 4]);
    assert_eq!(set.v.shape(), &[2, 2, 10, 4]);
    assert_eq!(set.meta.scale, Some(0.5));
    assert_eq!(
        set.meta.model.as_deref(),
        Some(dir.display().to_string().as_str())
    );
    assert_eq!(set.non_finite_count, 0);
    // Layer 0's query is the embedding LayerNorm output times Wq plus bq: check one head
    // against a direct computation from the weight file.
    let weights = tiny_weights(&tiny_config(), "", false, 7);
    let get = |name: &str| weights.iter().find(|(n, _, _)| n == name).unwrap().clone();
    let emb = |name: &str, row: usize| {
        let (_, s, d) = get(name);
        d[row * s[1]..(row + 1) * s[1]].to_vec()
    };
    let ids = [2usize, 4, 5, 11];
    let mut x = Array2::<f64>::zeros((4, 8));
    for (p, &id) in ids.iter().enumerate() {
        for c in 0..8 {
            x[[p, c]] = f64::from(emb("embeddings.word_embeddings.weight", id)[c])
                + f64::from(emb("embeddings.position_embeddings.weight", p)[c])
                + f64::from(emb("embeddings.token_type_embeddings.weight", 0)[c]);
        }
    }
    let (g, b) = (
        get("embeddings.LayerNorm.weight").2,
        get("embeddings.LayerNorm.bias").2,
    );
    for mut row in x.rows_mut() {
        let mean = row.sum() / 8.0;
        let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 8.0;
        for (c, v) in row.iter_mut().enumerate() {
            *v = (*v - mean) / (var + 1e-12).sqrt() * f64::from(g[c]) + f64::from(b[c]);
        }
    }
    let (wq, bq) = (
        get("encoder.layer.0.attention.self.query.weight").2,
        get("encoder.layer.0.attention.self.query.bias").2,
    );
    for p in 0..4 {
        for head in 0..2 {
            for d in 0..4 {
                let o = head * 4 + d;
                let want: f64 = f64::from(bq[o])
                    + (0..8)
                        .map(|c| x[[p, c]] * f64::from(wq[o * 8 + c]))
                        .sum::<f64>();
                let got = f64::from(set.q[[0, head, p, d]]);
                assert!(
                    (got - want).abs() < 1e-5,
                    "q[0,{head},{p},{d}] = {got}, want {want}"
                );
            }
        }
    }
}

#[test]
fn tiny_bert_task_model_prefix_gamma_beta_and_f16_weights_give_the_same_encoder() {
    let root = tempfile::tempdir().unwrap();
    let plain = tiny_qkv(
        &load(&write_tiny(&root.path().join("a"), "", false)).unwrap(),
        "the cat sat",
    );
    let task = tiny_qkv(
        &load(&write_tiny(&root.path().join("b"), "bert.", true)).unwrap(),
        "the cat sat",
    );
    assert_eq!(plain.q, task.q);
    assert_eq!(plain.v, task.v);
    // f16 weights load (converted to f32) and stay close.
    let dir = write_tiny(&root.path().join("c"), "", false);
    let weights = tiny_weights(&tiny_config(), "", false, 7);
    std::fs::write(
        dir.join("model.safetensors"),
        safetensors_bytes(&weights, Dtype::F16),
    )
    .unwrap();
    let half = tiny_qkv(&load(&dir).unwrap(), "the cat sat");
    let diff = (&half.k - &plain.k)
        .mapv(f32::abs)
        .fold(0.0_f32, |m, &x| m.max(x));
    assert!(diff > 0.0 && diff < 0.05, "{diff}");
}

#[test]
fn tiny_bert_refuses_texts_longer_than_its_positions() {
    let root = tempfile::tempdir().unwrap();
    let model = load(&write_tiny(&root.path().join("t"), "", false)).unwrap();
    assert_eq!(model.max_tokens(), 10);
    let err = model
        .encode(
            "the cat sat on the mat the cat sat",
            "t",
            &EncodeOptions::default(),
            &mut go(),
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("11 tokens") && err.to_string().contains("at most 10"),
        "{err}"
    );
    let set = tiny_qkv(&model, "the cat sat on the mat the cat");
    assert_eq!(set.seq_len_q(), 10);
}

/// Loads `dir` and returns the error message (the test fails if it loads).
fn load_error(dir: &Path) -> String {
    match load(dir) {
        Ok(_) => panic!("{} loaded", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn broken_model_folders_each_give_one_clear_error() {
    let root = tempfile::tempdir().unwrap();
    let fresh = |name: &str| write_tiny(&root.path().join(name), "", false);

    // Not a folder.
    let err = load_error(&root.path().join("nowhere"));
    assert!(err.starts_with("not a model folder"), "{err}");

    // A folder without weights, one with only pickled weights.
    let dir = fresh("no_weights");
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    let err = load_error(&dir);
    assert!(
        err.contains("model folder has no model.safetensors"),
        "{err}"
    );
    std::fs::write(dir.join("pytorch_model.bin"), b"PK").unwrap();
    let err = load_error(&dir);
    assert!(
        err.contains("pytorch_model.bin") && err.contains("never unpickles"),
        "{err}"
    );

    // No tokenizer.json (only vocab.txt); no config.json.
    let dir = fresh("no_tokenizer");
    std::fs::remove_file(dir.join("tokenizer.json")).unwrap();
    std::fs::write(dir.join("vocab.txt"), TINY_VOCAB.join("\n")).unwrap();
    let err = load_error(&dir);
    assert!(
        err.contains("no tokenizer.json") && err.contains("vocab.txt"),
        "{err}"
    );
    let dir = fresh("no_config");
    std::fs::remove_file(dir.join("config.json")).unwrap();
    assert!(load_error(&dir).contains("no config.json"));

    // A non-BERT config.
    let dir = fresh("gpt2");
    std::fs::write(
        dir.join("config.json"),
        r#"{"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_layer": 2}"#,
    )
    .unwrap();
    let err = load_error(&dir);
    assert!(
        err.starts_with("unsupported architecture: model_type 'gpt2'"),
        "{err}"
    );

    // A corrupt (truncated) safetensors file; random bytes.
    let dir = fresh("corrupt");
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    std::fs::write(dir.join("model.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    let err = load_error(&dir);
    assert!(
        err.starts_with("not a valid safetensors file") && err.contains("model.safetensors"),
        "{err}"
    );
    std::fs::write(
        dir.join("model.safetensors"),
        b"\xff\xff\xff\xff\xff\xff\xff\x7fgarbage",
    )
    .unwrap();
    assert!(load_error(&dir).starts_with("not a valid safetensors file"));

    // A missing tensor; a tensor of the wrong shape; an integer dtype.
    let dir = fresh("missing_tensor");
    let mut weights = tiny_weights(&tiny_config(), "", false, 7);
    weights.retain(|(n, _, _)| n != "encoder.layer.1.output.dense.bias");
    std::fs::write(
        dir.join("model.safetensors"),
        safetensors_bytes(&weights, Dtype::F32),
    )
    .unwrap();
    let err = load_error(&dir);
    assert!(
        err.contains("missing tensor 'encoder.layer.1.output.dense.bias'"),
        "{err}"
    );
    let dir = fresh("wrong_shape");
    let config = BertConfig {
        intermediate_size: 12,
        ..tiny_config()
    };
    std::fs::write(dir.join("config.json"), config.to_json()).unwrap();
    let err = load_error(&dir);
    assert!(
        err.contains("'encoder.layer.0.intermediate.dense.weight' has shape [16, 8], the configuration implies [12, 8]"),
        "{err}"
    );
    let dir = fresh("int_dtype");
    let weights = tiny_weights(&tiny_config(), "", false, 7);
    let ints: Vec<u8> = vec![0; 4 * TINY_VOCAB.len() * 8];
    let bytes: Vec<Vec<u8>> = weights
        .iter()
        .map(|(_, _, d)| d.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views: Vec<(String, TensorView<'_>)> = weights
        .iter()
        .zip(&bytes)
        .map(|((n, s, _), b)| {
            let view = if n == "embeddings.word_embeddings.weight" {
                TensorView::new(Dtype::I32, s.clone(), &ints)
            } else {
                TensorView::new(Dtype::F32, s.clone(), b)
            };
            (n.clone(), view.unwrap())
        })
        .collect();
    std::fs::write(
        dir.join("model.safetensors"),
        safetensors::serialize(views, None).unwrap(),
    )
    .unwrap();
    let err = load_error(&dir);
    assert!(
        err.contains("'embeddings.word_embeddings.weight' has dtype I32"),
        "{err}"
    );

    // A tokenizer whose ids exceed the model's vocabulary.
    let dir = fresh("vocab");
    let mut bigger: Vec<&str> = TINY_VOCAB.to_vec();
    bigger.extend(["dog", "ran"]);
    std::fs::write(dir.join("tokenizer.json"), tokenizer_json(&bigger)).unwrap();
    let err = load_error(&dir);
    assert!(
        err.contains(
            "vocabulary mismatch: the tokenizer has ids up to 14 but the model's vocab_size is 12"
        ),
        "{err}"
    );

    // A malformed tokenizer.json.
    let dir = fresh("bad_tokenizer");
    std::fs::write(dir.join("tokenizer.json"), "{\"model\": 3}").unwrap();
    assert!(load_error(&dir).starts_with("tokenizer:"));

    // Weights over the budget are refused before they are read.
    let dir = fresh("budget");
    let err = TextModel::load_with_budget(
        &ModelSource::Folder(dir.clone()),
        ModelBudget {
            max_weight_bytes: 100,
            ..ModelBudget::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("over the budget of 100 bytes"), "{err}");
}

#[test]
fn sharded_weights_load_and_shard_names_never_leave_the_folder() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_tiny(&root.path().join("sharded"), "", false);
    let whole = tiny_qkv(&load(&dir).unwrap(), "a cat");
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    let weights = tiny_weights(&tiny_config(), "", false, 7);
    let (first, second) = weights.split_at(weights.len() / 2);
    std::fs::write(
        dir.join("model-00001-of-00002.safetensors"),
        safetensors_bytes(first, Dtype::F32),
    )
    .unwrap();
    std::fs::write(
        dir.join("model-00002-of-00002.safetensors"),
        safetensors_bytes(second, Dtype::F32),
    )
    .unwrap();
    let map: serde_json::Map<String, serde_json::Value> = first
        .iter()
        .map(|(n, _, _)| {
            (
                n.clone(),
                serde_json::json!("model-00001-of-00002.safetensors"),
            )
        })
        .chain(second.iter().map(|(n, _, _)| {
            (
                n.clone(),
                serde_json::json!("model-00002-of-00002.safetensors"),
            )
        }))
        .collect();
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        serde_json::json!({"metadata": {}, "weight_map": map}).to_string(),
    )
    .unwrap();
    let sharded = tiny_qkv(&load(&dir).unwrap(), "a cat");
    assert_eq!(whole.q, sharded.q);

    for evil in [
        "../outside.safetensors",
        "/etc/passwd",
        "sub/x.safetensors",
        "..",
    ] {
        std::fs::write(
            dir.join("model.safetensors.index.json"),
            serde_json::json!({"weight_map": {"embeddings.word_embeddings.weight": evil}})
                .to_string(),
        )
        .unwrap();
        let err = load_error(&dir);
        assert!(err.contains("must stay inside its folder"), "{evil}: {err}");
    }
}

#[test]
fn text_specs_with_a_model_folder_load_through_load_source() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_tiny(&root.path().join("spec model"), "", false);
    let spec = TextSpec {
        text: String::from("the cat"),
        model: ModelSource::Folder(dir.clone()),
    };
    let set = data::load_source(&spec.spec()).unwrap();
    assert_eq!(set.source, spec.spec());
    assert_eq!(set.q.shape(), &[2, 2, 4, 4]);
    let err = data::load_source(&format!("text(model={}):", dir.display())).unwrap_err();
    assert_eq!(err.to_string(), "the text is empty: type a sentence");
    let err = data::load_source("text(model=/nonexistent/folder):hi").unwrap_err();
    assert!(err.to_string().starts_with("not a model folder"), "{err}");
}
