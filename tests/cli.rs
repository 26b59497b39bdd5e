//! The `attnscope` binary on the bundled real sample, as a user runs it.

use std::path::PathBuf;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_attnscope"))
}

fn zen() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sample_data/minilm/zen.npz")
}

#[test]
fn decompose_on_the_zen_sample_writes_six_pngs_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .arg("decompose")
        .arg(zen())
        .args([
            "--layer",
            "0",
            "--head",
            "2",
            "--bandwidth",
            "4",
            "--rank",
            "8",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in [
        "full",
        "near",
        "far",
        "far_rank_r",
        "reconstruction",
        "error",
    ] {
        let path = dir.path().join(format!("{name}.png"));
        let img = image::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // 191 tokens at the default 2× upscale, plus title and colorbar.
        assert!(
            img.width() > 2 * 191 && img.height() > 2 * 191,
            "{name}: {}×{}",
            img.width(),
            img.height()
        );
    }
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("metrics.json")).unwrap())
            .unwrap();
    let head = &metrics["heads"][0];
    assert_eq!(head["head"], 2);
    let m = &head["metrics"];
    assert_eq!(m["bandwidth"], 4);
    assert_eq!(m["rank"], 8);
    let band_only = m["band_only_error"]["value"].as_f64().unwrap();
    let recon = m["reconstruction_error"]["value"].as_f64().unwrap();
    assert!(
        recon < band_only,
        "rank-8 far field must reduce the error: {recon} vs {band_only}"
    );
    let mass = m["band_mass"].as_f64().unwrap();
    assert!(mass > 0.0 && mass < 1.0);
}

#[test]
fn compute_writes_outputs_and_attention_per_head() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fmm.npz");
    let metrics = dir.path().join("m.json");
    let out = bin()
        .arg("compute")
        .arg(zen())
        .args([
            "--method",
            "fmm",
            "--layer",
            "1",
            "--bandwidth",
            "2",
            "--fit",
            "--attn",
            "--out",
        ])
        .arg(&path)
        .arg("--metrics")
        .arg(&metrics)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut npz = ndarray_npy::NpzReader::new(std::fs::File::open(&path).unwrap()).unwrap();
    let o: ndarray::Array3<f32> = npz.by_name("out").unwrap();
    let a: ndarray::Array3<f32> = npz.by_name("attn").unwrap();
    assert_eq!(o.dim(), (12, 191, 32));
    assert_eq!(a.dim(), (12, 191, 191));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&metrics).unwrap()).unwrap();
    assert_eq!(json["heads"].as_array().unwrap().len(), 12);
    let err = json["heads"][0]["metrics"]["matrix_rel_fro"]["value"]
        .as_f64()
        .unwrap();
    assert!(err > 0.0 && err < 1.0, "fitted FMMformer error {err}");
}

#[test]
fn errors_are_one_line_and_name_the_problem() {
    let out = bin().args(["info", "/no/such/file.npz"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/no/such/file.npz"), "{err}");

    let out = bin()
        .arg("compute")
        .arg(zen())
        .args(["--method", "nope", "--out", "/tmp/x.npz"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown method 'nope'"));

    let out = bin()
        .arg("decompose")
        .arg(zen())
        .args(["--head", "12", "--out", "/tmp/attnscope-x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("12 heads"));
}

#[test]
fn info_reports_shapes_and_tokens() {
    let out = bin().arg("info").arg(zen()).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("6 × 12"), "{text}");
    assert!(text.contains("191"), "{text}");
    assert!(text.contains("non-finite:      none"), "{text}");
}

#[test]
fn decompose_npz_and_metrics_csv_hold_six_matrices_and_one_row_per_head() {
    let dir = tempfile::tempdir().unwrap();
    let npz = dir.path().join("m.npz");
    let csv = dir.path().join("m.csv");
    let out = bin()
        .arg("decompose")
        .arg("synth:local-global,L=37,seed=2,heads=2")
        .args(["--bandwidth", "3", "--rank", "4", "--npz"])
        .arg(&npz)
        .arg("--metrics-csv")
        .arg(&csv)
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut reader = ndarray_npy::NpzReader::new(std::fs::File::open(&npz).unwrap()).unwrap();
    let mut names = reader.names().unwrap();
    names.sort();
    assert_eq!(names.len(), 12, "{names:?}");
    let full: ndarray::Array2<f32> = reader.by_name("h1_full").unwrap();
    let near: ndarray::Array2<f32> = reader.by_name("h1_near").unwrap();
    let far: ndarray::Array2<f32> = reader.by_name("h1_far").unwrap();
    assert_eq!(full.dim(), (37, 37));
    // A = band_b(A) + F, entry by entry.
    let residual = (&near + &far - &full)
        .iter()
        .fold(0.0_f32, |m, x| m.max(x.abs()));
    assert!(residual <= 2.0 * f32::EPSILON, "{residual}");
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("head,"), "{}", lines[0]);
    assert!(lines[0].contains("metrics.band_mass"), "{}", lines[0]);
    assert!(lines[2].starts_with("1,"), "{}", lines[2]);
}

#[test]
fn compute_png_writes_exact_approx_and_error_heatmaps() {
    let dir = tempfile::tempdir().unwrap();
    let pngs = dir.path().join("png");
    let out = bin()
        .arg("compute")
        .arg("synth:local,L=29,seed=1")
        .args([
            "--method",
            "band",
            "--bandwidth",
            "2",
            "--upscale",
            "3",
            "--png",
        ])
        .arg(&pngs)
        .arg("--out")
        .arg(dir.path().join("o.npz"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["exact", "approx", "error"] {
        let img = image::open(pngs.join(format!("{name}.png"))).unwrap();
        // 29 cells × 3 (upscale) plus title lines and the colorbar.
        assert!(
            img.width() > 87 && img.height() > 87 + 20,
            "{name}: {}×{}",
            img.width(),
            img.height()
        );
    }
}

#[test]
fn e15_decompose_above_the_budget_writes_pooled_near_far_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .arg("decompose")
        .arg("synth:local,L=300,seed=4")
        .args([
            "--budget-mib",
            "1",
            "--max-side",
            "100",
            "--pool",
            "mean",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("pooled 3×3 (block mean)"), "{stderr}");
    assert!(stderr.contains("SVD"), "{stderr}");
    for name in ["full", "near", "far"] {
        let img = image::open(dir.path().join(format!("{name}.png"))).unwrap();
        assert!(img.width() >= 100, "{name}");
    }
    assert!(!dir.path().join("far_rank_r.png").exists());
}

#[test]
fn decompose_optimal_writes_the_split_and_a_monotone_curve() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .arg("decompose")
        .arg(zen())
        .args([
            "--layer",
            "0",
            "--head",
            "0",
            "--bandwidth",
            "4",
            "--rank",
            "8",
            "--optimal",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["optimal_band", "optimal_low_rank", "optimal_error"] {
        image::open(dir.path().join(format!("{name}.png")))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("metrics.json")).unwrap())
            .unwrap();
    let curve: Vec<f64> = metrics["heads"][0]["optimal_split"]["relative_error_curve"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(curve.len() > 1);
    assert!(curve.windows(2).all(|w| w[1] <= w[0] + 1e-12), "{curve:?}");
    let fixed = metrics["heads"][0]["metrics"]["reconstruction_error"]["value"]
        .as_f64()
        .unwrap();
    assert!(
        (curve[0] - fixed).abs() < 1e-3,
        "curve starts at the fixed split {fixed}: {}",
        curve[0]
    );
    assert!(curve[curve.len() - 1] < fixed);
}
