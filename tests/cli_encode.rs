//! `attnscope encode` and `text:"…"` inputs on the command line, as a user runs them.

use std::path::PathBuf;
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_attnscope"))
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The one-line error of a failed run (exit code 2): the last line of stderr, the only one
/// that starts with `error:` (progress lines may precede it).
fn fails(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let last = err
        .trim_end()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    assert!(last.starts_with("error: "), "{err}");
    assert_eq!(err.matches("error").count(), 1, "one error line: {err}");
    last
}

fn bundled_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("sample_data/models/all-MiniLM-L6-v2")
        .join(name)
}

#[test]
fn encode_writes_the_npz_and_sidecar_of_export_qkv() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("sub/cat.npz");
    let out = bin()
        .args([
            "encode",
            "--text",
            "The cat sat on the mat.",
            "--layers",
            "0,-1",
            "--out",
        ])
        .arg(&out_path)
        .output()
        .unwrap();
    ok(&out);
    let set = attnscope::data::load_path(&out_path).unwrap();
    assert_eq!(set.q.shape(), &[2, 12, 9, 32]);
    assert_eq!(set.meta.layers_kept, Some(vec![0, 5]));
    assert_eq!(set.layer_label(1), "model layer 5");
    assert_eq!(set.meta.tokens.as_ref().unwrap()[2], "cat");
    assert!(!set.causal());
    let sidecar: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("sub/cat.json")).unwrap())
            .unwrap();
    assert_eq!(sidecar["model"], "sentence-transformers/all-MiniLM-L6-v2");
    assert_eq!(sidecar["source"], "The cat sat on the mat.");
    assert!((sidecar["scale"].as_f64().unwrap() - 32f64.sqrt().recip()).abs() < 1e-15);
    // The file holds exactly what a `text:` input computes in memory.
    let direct = attnscope::data::load_source("text:The cat sat on the mat.").unwrap();
    assert_eq!(
        set.q.index_axis(ndarray::Axis(0), 1),
        direct.q.index_axis(ndarray::Axis(0), 5)
    );
    assert_eq!(
        set.v.index_axis(ndarray::Axis(0), 0),
        direct.v.index_axis(ndarray::Axis(0), 0)
    );
}

#[test]
fn every_subcommand_takes_a_text_input() {
    let stdout = ok(&bin()
        .args(["info", "text:\"Attention is all you need.\""])
        .output()
        .unwrap());
    assert!(
        stdout.contains("0:[CLS] 1:attention 2:is 3:all 4:you 5:need 6:. 7:[SEP]"),
        "{stdout}"
    );
    assert!(stdout.contains("layers × heads:  6 × 12"), "{stdout}");
    let dir = tempfile::tempdir().unwrap();
    ok(&bin()
        .args([
            "decompose",
            "text:The quick brown fox jumps over the lazy dog.",
            "--layer",
            "2",
            "--head",
            "7",
            "--bandwidth",
            "1",
            "--rank",
            "2",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap());
    assert!(dir.path().join("full.png").is_file());
    let metrics = std::fs::read_to_string(dir.path().join("metrics.json")).unwrap();
    assert!(metrics.contains("text:The quick brown fox"), "{metrics}");
    let npz = dir.path().join("out.npz");
    ok(&bin()
        .args([
            "compute",
            "text:Hello world",
            "--method",
            "band",
            "--bandwidth",
            "1",
            "--out",
        ])
        .arg(&npz)
        .output()
        .unwrap());
    assert!(npz.is_file());
}

#[test]
fn text_and_model_errors_are_one_line_with_exit_code_2() {
    let err = fails(&bin().args(["info", "text:"]).output().unwrap());
    assert!(err.contains("the text is empty"), "{err}");
    let long = format!("text:{}", "word ".repeat(700));
    let err = fails(&bin().args(["info", &long]).output().unwrap());
    assert!(
        err.contains("702 tokens") && err.contains("at most 512"),
        "{err}"
    );

    // A folder with a config and a tokenizer but no weights.
    let dir = tempfile::tempdir().unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(bundled_file(f), dir.path().join(f)).unwrap();
    }
    let out = bin()
        .args(["encode", "--text", "hi", "--out", "x.npz", "--model"])
        .arg(dir.path())
        .output()
        .unwrap();
    let err = fails(&out);
    assert!(
        err.contains("model folder has no model.safetensors"),
        "{err}"
    );
    let out = bin()
        .args(["info", "text:hi", "--model"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(fails(&out).contains("model folder has no model.safetensors"));

    // --model only applies to text inputs.
    let err = fails(
        &bin()
            .args(["info", "sample:zen", "--model", "x"])
            .output()
            .unwrap(),
    );
    assert!(err.contains("--model applies to text"), "{err}");
    let err = fails(
        &bin()
            .args(["encode", "--text", "hi", "--layers", "6", "--out", "x.npz"])
            .output()
            .unwrap(),
    );
    assert!(
        err.contains("--layers: 6 is out of range: the model has 6 layers"),
        "{err}"
    );
}
