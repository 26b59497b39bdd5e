//! `attnscope sweep` as a user runs it: synthetic and sample inputs, CSV/JSON/PNG outputs.

use std::path::{Path, PathBuf};
use std::process::Command;

use attnscope::experiment::read_csv;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_attnscope"))
}

fn zen() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sample_data/minilm/zen.npz")
}

fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
    let img = image::load_from_memory(&bytes).expect("decodes");
    assert!(img.width() >= 600 && img.height() >= 400);
}

#[test]
fn cli_sweep_synth_local_writes_csv_json_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("results.csv");
    let plots = dir.path().join("plots");
    let out = bin()
        .args([
            "sweep",
            "--method",
            "full,band,fmm",
            "--data",
            "synth:local,d=16",
            "--seq-lens",
            "32..64",
            "--bandwidths",
            "1,3",
            "--repeats",
            "1",
            "--threads",
            "1",
            "--out",
        ])
        .arg(&csv)
        .arg("--plot")
        .arg(&plots)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    assert!(stderr.contains("sweep: 10 points"), "progress: {stderr}");
    assert!(stderr.contains("[10/10]"), "progress: {stderr}");
    let rows = read_csv(&csv).expect("csv parses");
    // per L: full ×1, band ×2, fmm ×2
    assert_eq!(rows.len(), 10);
    assert!(rows.iter().all(|r| r.skipped.is_none() && r.threads == 1));
    let bands: Vec<usize> = rows
        .iter()
        .filter(|r| r.method == "band")
        .map(|r| r.bandwidth)
        .collect();
    assert_eq!(bands, vec![1, 3, 1, 3]);
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.starts_with("# machine: cpu="));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(csv.with_extension("json")).unwrap())
            .expect("json report");
    assert_eq!(json["rows"].as_array().map(Vec::len), Some(10));
    assert_eq!(json["cancelled"], serde_json::Value::Bool(false));
    for name in [
        "runtime_vs_len.png",
        "error_vs_len.png",
        "error_vs_bandwidth.png",
    ] {
        assert_png(&plots.join(name));
    }
    assert!(
        !plots.join("error_vs_rank.png").exists(),
        "no rank-like parameter was swept"
    );
}

#[test]
fn cli_sweep_sample_file_skips_lengths_beyond_it() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("zen.csv");
    let out = bin()
        .args(["sweep", "--method", "band,linear", "--data"])
        .arg(zen())
        .args([
            "--layer",
            "2",
            "--head",
            "5",
            "--seq-lens",
            "64,191,256",
            "--repeats",
            "1",
            "--quiet",
            "--out",
        ])
        .arg(&csv)
        .arg("--plot")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = read_csv(&csv).unwrap();
    assert_eq!(rows.len(), 6);
    for r in &rows {
        assert_eq!((r.layer, r.head), (Some(2), Some(5)));
        if r.seq_len == 256 {
            let why = r.skipped.as_deref().unwrap_or_default();
            assert!(why.contains("191"), "{why}");
        } else {
            assert!(r.skipped.is_none());
            assert!(r.output_rel.is_some_and(|e| e.is_finite()));
        }
    }
    assert_png(&dir.path().join("runtime_vs_len.png"));
    assert_png(&dir.path().join("error_vs_len.png"));
}

#[test]
fn cli_sweep_rank_axis_sets_the_low_rank_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("r.csv");
    let out = bin()
        .args([
            "sweep",
            "--method",
            "performer,linformer",
            "--data",
            "synth:low-rank-far,d=16",
            "--seq-lens",
            "48",
            "--ranks",
            "4,8,16",
            "--repeats",
            "1",
            "--quiet",
            "--out",
        ])
        .arg(&csv)
        .arg("--plot")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = read_csv(&csv).unwrap();
    assert_eq!(rows.len(), 6);
    let perf: Vec<usize> = rows
        .iter()
        .filter(|r| r.method == "performer")
        .map(|r| r.num_features)
        .collect();
    assert_eq!(perf, vec![4, 8, 16]);
    let lin: Vec<usize> = rows
        .iter()
        .filter(|r| r.method == "linformer")
        .map(|r| r.proj_dim)
        .collect();
    assert_eq!(lin, vec![4, 8, 16]);
    assert_png(&dir.path().join("error_vs_rank.png"));
}

#[test]
fn cli_sweep_bad_method_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["sweep", "--method", "nope", "--seq-lens", "32", "--out"])
        .arg(dir.path().join("x.csv"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown method 'nope'"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}
