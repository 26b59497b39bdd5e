//! Notebook folders (issue 7): lossless round trip, refusal of corrupt and newer files without
//! data loss, atomic writes, recomputation of pinned metrics, and the report export (library and
//! `attnscope notebook export`).

use std::path::Path;
use std::process::Command;

use attnscope::analysis::decompose;
use attnscope::attention::{FeatureMap, MatrixBudget, MethodId, MethodParams};
use attnscope::data::load_source;
use attnscope::notebook::{
    Entry, EntryDisplay, FORMAT_VERSION, NOTEBOOK_FILE, Notebook, NotebookError, THUMBNAIL_DIR,
    export_report, recompute_metrics, render_thumbnail, thumbnail_name, views, write_thumbnail,
};
use attnscope::render::{ColorScale, Colormap, ValueScale};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A decomposition entry on sample:zen with its real metrics and a real thumbnail.
fn zen_entry(notebook: &mut Notebook, dir: &Path, bandwidth: usize, rank: usize) -> Entry {
    let set = load_source("sample:zen").expect("the zen sample loads");
    let head = set.head(0, 0, false, None).expect("head 0");
    let d = decompose(&head, bandwidth, rank, MatrixBudget::default()).expect("decomposition");
    let id = notebook.allocate_id();
    let scale = ColorScale::fit(
        Colormap::Viridis,
        ValueScale::Log { decades: 3.0 },
        d.full.iter().copied(),
    );
    let name = thumbnail_name(id);
    write_thumbnail(dir, &name, &render_thumbnail(d.full.view(), &scale)).expect("thumbnail");
    Entry {
        id,
        title: format!("zen b = {bandwidth}, r = {rank}"),
        created: "2026-11-29T14:00:00Z".into(),
        view: views::DECOMPOSITION.into(),
        source: "sample:zen".into(),
        source_checksum: set.checksum.clone(),
        layer: 0,
        head: 0,
        causal: false,
        method: MethodId::Fmm,
        params: MethodParams {
            bandwidth,
            rank,
            ..MethodParams::default()
        },
        display: EntryDisplay::default(),
        metrics: serde_json::to_value(&d.metrics).expect("metrics json"),
        note_markdown: "## Finding\n- band mass is **high** | with `b`\n".into(),
        thumbnail: Some(name),
    }
}

/// An entry with seeded random floats in every numeric field that is stored.
fn random_entry(notebook: &mut Notebook, rng: &mut ChaCha8Rng) -> Entry {
    let id = notebook.allocate_id();
    let params = MethodParams {
        bandwidth: rng.random_range(0..100),
        rank: rng.random_range(1..64),
        feature_maps: vec![FeatureMap::Elu, FeatureMap::Tanh],
        w1: rng.random::<f32>() * 3.0 - 1.0,
        w2: rng.random::<f32>() * 1e-7,
        lambdas: Some(vec![rng.random::<f32>(), rng.random::<f32>()]),
        block: Some(rng.random_range(1..32)),
        seed: rng.random(),
        ..MethodParams::default()
    };
    Entry {
        id,
        title: format!("random «{id}» with \"quotes\" and ünïcode"),
        created: "2026-11-29T14:00:00Z".into(),
        view: views::METHODS.into(),
        source: "synth:local,L=37,d=8,heads=2,seed=5".into(),
        source_checksum: format!("{:064x}", rng.random::<u128>()),
        layer: 0,
        head: 1,
        causal: true,
        method: MethodId::ALL[rng.random_range(0..MethodId::ALL.len())],
        params,
        display: EntryDisplay {
            colormap: Colormap::Magma,
            value_scale: ValueScale::Power {
                gamma: rng.random::<f32>(),
            },
        },
        metrics: serde_json::json!({
            "output_rel": {"kind": "relative", "value": rng.random::<f64>() * 1e-9},
            "matrix_max_abs": rng.random::<f64>(),
            "mean_row_kl": {"kind": "not-applicable", "value": "rows do not sum to 1"},
            "matrix_rel_fro": null,
        }),
        note_markdown: "line 1\n\n* bullet\n```\ncode\n```".into(),
        thumbnail: None,
    }
}

#[test]
fn notebook_save_load_round_trip_is_lossless() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut notebook = Notebook::default();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let zen = zen_entry(&mut notebook, dir.path(), 4, 8);
    notebook.entries.push(zen);
    for _ in 0..5 {
        let entry = random_entry(&mut notebook, &mut rng);
        notebook.entries.push(entry);
    }
    notebook.save(dir.path()).expect("save");
    let loaded = Notebook::load(dir.path()).expect("load");
    assert_eq!(loaded, notebook);
    assert_eq!(loaded.format_version, FORMAT_VERSION);
    // Saving what was loaded writes the same bytes (nothing drifts on repeated autosaves).
    let first = std::fs::read(dir.path().join(NOTEBOOK_FILE)).expect("read");
    loaded.save(dir.path()).expect("save again");
    let second = std::fs::read(dir.path().join(NOTEBOOK_FILE)).expect("read");
    assert_eq!(first, second);
    // No temporary file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(dir.path().join(THUMBNAIL_DIR).join("entry-1.png").is_file());
}

#[test]
fn notebook_ids_are_never_reused_after_delete() {
    let mut notebook = Notebook::default();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let a = random_entry(&mut notebook, &mut rng);
    let b = random_entry(&mut notebook, &mut rng);
    assert_ne!(a.id, b.id);
    notebook.entries.push(a);
    notebook.entries.push(b.clone());
    notebook.entries.retain(|e| e.id != b.id);
    let c = random_entry(&mut notebook, &mut rng);
    assert!(c.id > b.id);
}

#[test]
fn notebook_corrupt_json_is_refused_and_left_unchanged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(NOTEBOOK_FILE);
    let corrupt = b"{\"format_version\": 1, \"entries\": [ {\"id\": 1, \"title\": ";
    std::fs::write(&path, corrupt).expect("write");
    match Notebook::load(dir.path()) {
        Err(NotebookError::Corrupt { path: p, line, .. }) => {
            assert_eq!(p, path);
            assert_eq!(line, 1);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // An autosave of another notebook into this folder is refused too.
    let err = Notebook::default()
        .save(dir.path())
        .expect_err("overwriting a corrupt notebook must be refused");
    assert!(err.to_string().contains(NOTEBOOK_FILE), "{err}");
    assert_eq!(std::fs::read(&path).expect("read"), corrupt);
}

#[test]
fn notebook_newer_format_version_is_refused_and_left_unchanged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(NOTEBOOK_FILE);
    let newer = format!(
        "{{\"format_version\": {}, \"entries\": [], \"from_the_future\": {{\"x\": 1}}}}",
        FORMAT_VERSION + 1
    );
    std::fs::write(&path, &newer).expect("write");
    match Notebook::load(dir.path()) {
        Err(NotebookError::NewerFormat {
            path: p,
            found,
            supported,
        }) => {
            assert_eq!(p, path);
            assert_eq!(found, u64::from(FORMAT_VERSION) + 1);
            assert_eq!(supported, FORMAT_VERSION);
        }
        other => panic!("expected NewerFormat, got {other:?}"),
    }
    let err = Notebook::default().save(dir.path()).expect_err("refused");
    assert!(matches!(err, NotebookError::NewerFormat { .. }), "{err}");
    assert_eq!(std::fs::read_to_string(&path).expect("read"), newer);
}

#[test]
fn notebook_reopened_decomposition_entry_reproduces_its_metrics() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut notebook = Notebook::default();
    let entry = zen_entry(&mut notebook, dir.path(), 3, 5);
    notebook.entries.push(entry);
    notebook.save(dir.path()).expect("save");
    let loaded = Notebook::load(dir.path()).expect("load");
    let entry = &loaded.entries[0];
    let again = recompute_metrics(entry).expect("recompute");
    assert!(!again.checksum_changed);
    assert_eq!(again.metrics, entry.metrics);
    // A different recorded configuration gives different metrics (the comparison can fail).
    let mut other = entry.clone();
    other.params.bandwidth = 9;
    let changed = recompute_metrics(&other).expect("recompute b = 9");
    assert_ne!(changed.metrics, entry.metrics);
}

#[test]
fn notebook_reopen_flags_a_changed_input_by_checksum() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut notebook = Notebook::default();
    let mut entry = zen_entry(&mut notebook, dir.path(), 3, 5);
    entry.source_checksum = "0".repeat(64);
    let again = recompute_metrics(&entry).expect("recompute");
    assert!(again.checksum_changed);
    assert_ne!(again.checksum, entry.source_checksum);
}

fn export_fixture(dir: &Path) -> Notebook {
    let mut notebook = Notebook::default();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let a = zen_entry(&mut notebook, dir, 4, 8);
    let b = random_entry(&mut notebook, &mut rng);
    let c = zen_entry(&mut notebook, dir, 2, 3);
    notebook.entries = vec![a, b, c];
    notebook.save(dir).expect("save");
    notebook
}

#[test]
fn notebook_report_lists_entries_in_order_with_images_and_csv_rows() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = tempfile::tempdir().expect("out dir");
    let notebook = export_fixture(dir.path());
    let files = export_report(dir.path(), out.path()).expect("export");
    let md = std::fs::read_to_string(&files.markdown).expect("report.md");
    let positions: Vec<usize> = notebook
        .entries
        .iter()
        .map(|e| md.find(&e.title).unwrap_or(usize::MAX))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert!(md.contains("![zen b = 4, r = 8](thumbnails/entry-1.png)"));
    assert!(md.contains("| band_mass |"), "{md}");
    // Pipes in notes survive as Markdown; pipes in table cells are escaped.
    assert!(md.contains("- band mass is **high** | with `b`"));
    // The note's heading nests under the entry's `##` heading.
    assert!(md.contains("\n#### Finding\n"), "{md}");
    assert!(out.path().join("thumbnails/entry-3.png").is_file());
    assert_eq!(files.thumbnails.len(), 2);
    let mut reader = csv::Reader::from_path(&files.csv).expect("metrics.csv");
    let headers = reader.headers().expect("header").clone();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), 3);
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("column {name} in {headers:?}"))
    };
    assert_eq!(&rows[1][col("title")], notebook.entries[1].title.as_str());
    let band_mass = notebook.entries[0].metrics["band_mass"]
        .as_f64()
        .expect("band mass");
    let written: f64 = rows[0][col("band_mass")].parse().expect("number");
    assert_eq!(written, band_mass);
    // A metric named like a configuration column is prefixed, not duplicated.
    assert_eq!(headers.iter().filter(|h| *h == "bandwidth").count(), 1);
    assert_eq!(&rows[0][col("metrics.bandwidth")], "4");
    // The methods entry has no band mass: empty cell, not a shifted row.
    assert_eq!(&rows[1][col("band_mass")], "");
    assert_eq!(
        &rows[1][col("mean_row_kl")],
        "not-applicable: rows do not sum to 1"
    );
}

#[test]
fn notebook_cli_export_writes_report_md_and_metrics_csv() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = tempfile::tempdir().expect("out dir");
    export_fixture(dir.path());
    let target = out.path().join("report");
    let status = Command::new(env!("CARGO_BIN_EXE_attnscope"))
        .args(["notebook", "export"])
        .arg(dir.path())
        .arg("--out")
        .arg(&target)
        .output()
        .expect("run attnscope");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(target.join("report.md").is_file());
    assert!(target.join("metrics.csv").is_file());
    assert!(target.join("thumbnails/entry-1.png").is_file());

    // A corrupt notebook: exit status 2 and a message naming the file.
    std::fs::write(dir.path().join(NOTEBOOK_FILE), "not json").expect("write");
    let failed = Command::new(env!("CARGO_BIN_EXE_attnscope"))
        .args(["notebook", "export"])
        .arg(dir.path())
        .arg("--out")
        .arg(&target)
        .output()
        .expect("run attnscope");
    assert_eq!(failed.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("notebook.json"), "{stderr}");
}
