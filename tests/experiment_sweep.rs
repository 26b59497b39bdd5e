//! The sweep runner on tiny grids: CSV rows and columns, cancellation, file lengths.

use attnscope::attention::{MethodId, MethodParams};
use attnscope::experiment::{
    CancelToken, CsvStream, ExperimentError, InputSpec, MachineInfo, NullSink, ProgressSink,
    SweepConfig, SweepRow, read_csv, run_sweep, write_plots,
};

fn tiny(methods: &[MethodId], seq_lens: &[usize]) -> SweepConfig {
    SweepConfig {
        input: InputSpec::new("synth:local,d=16"),
        methods: methods.to_vec(),
        params: MethodParams {
            bandwidth: 3,
            ..MethodParams::default()
        },
        seq_lens: seq_lens.to_vec(),
        repeats: 1,
        warmup: 1,
        threads: 1,
        ..SweepConfig::default()
    }
}

fn zen_path() -> String {
    format!("{}/sample_data/minilm/zen.npz", env!("CARGO_MANIFEST_DIR"))
}

#[derive(Default)]
struct Recorder {
    total: Option<usize>,
    indices: Vec<usize>,
    finished: Option<usize>,
    cancelled: Option<usize>,
    cancel_after: Option<(usize, CancelToken)>,
}

impl ProgressSink for Recorder {
    fn started(&mut self, total_points: usize) {
        self.total = Some(total_points);
    }
    fn point_done(&mut self, index: usize, _row: &SweepRow) -> Result<(), ExperimentError> {
        self.indices.push(index);
        if let Some((n, token)) = &self.cancel_after
            && self.indices.len() >= *n
        {
            token.cancel();
        }
        Ok(())
    }
    fn finished(&mut self, points_done: usize) {
        self.finished = Some(points_done);
    }
    fn cancelled(&mut self, points_done: usize) {
        self.cancelled = Some(points_done);
    }
}

#[test]
fn synth_local_two_methods_two_lengths_writes_expected_csv() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("results.csv");
    let config = tiny(&[MethodId::Full, MethodId::Band], &[32, 64]);
    let mut csv = CsvStream::create(&path, &MachineInfo::detect()).expect("create csv");
    let outcome = run_sweep(&config, &mut csv, &CancelToken::new()).expect("sweep runs");
    drop(csv);
    assert!(!outcome.cancelled);
    assert_eq!(outcome.total_points, 4);
    assert_eq!(outcome.threads, 1);

    let text = std::fs::read_to_string(&path).expect("read csv");
    let first = text.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("# machine: cpu="),
        "machine line: {first}"
    );
    assert!(first.contains("cores="));
    let header = text.lines().nth(1).unwrap_or_default();
    for col in [
        "method",
        "seq_len",
        "bandwidth",
        "rank",
        "feature_map",
        "normalization",
        "w1",
        "w2",
        "num_features",
        "num_landmarks",
        "proj_dim",
        "projection",
        "block",
        "pooling",
        "key_row",
        "seed",
        "threads",
        "runtime_median_s",
        "runtime_min_s",
        "output_rel",
        "matrix_rel_fro",
        "mean_row_kl",
        "rank_bound",
        "peak_bytes_estimate",
        "skipped",
    ] {
        assert!(
            header.split(',').any(|h| h == col),
            "missing column {col} in {header}"
        );
    }

    let rows = read_csv(&path).expect("parse csv");
    assert_eq!(rows.len(), 4);
    let order: Vec<(&str, usize)> = rows
        .iter()
        .map(|r| (r.method.as_str(), r.seq_len))
        .collect();
    assert_eq!(
        order,
        vec![("full", 32), ("band", 32), ("full", 64), ("band", 64)]
    );
    for r in &rows {
        assert!(r.skipped.is_none(), "{r:?}");
        assert_eq!(r.threads, 1);
        assert_eq!(r.repeats, 1);
        assert_eq!(r.head_dim, 16);
        let t = r.runtime_median_s.expect("runtime");
        assert!(t.is_finite() && t >= 0.0);
        assert_eq!(
            r.runtime_min_s, r.runtime_median_s,
            "one repeat: min = median"
        );
        assert!(r.data.starts_with("synth:local"), "{}", r.data);
        assert!(r.data.contains(&format!("L={}", r.seq_len)));
        assert!(r.peak_bytes_estimate.unwrap_or(0) > 0);
    }
    // full against the exact reference is the same computation: error exactly 0.
    for r in rows.iter().filter(|r| r.method == "full") {
        assert_eq!(r.output_rel, Some(0.0));
        assert_eq!(r.matrix_rel_fro, Some(0.0));
        assert_eq!(r.output_rel_kind.as_deref(), Some("relative"));
    }
    // band with bandwidth 3 drops mass: positive, finite, below 1 errors with KL defined.
    for r in rows.iter().filter(|r| r.method == "band") {
        assert_eq!(r.bandwidth, 3);
        let e = r.output_rel.expect("band error");
        assert!(e > 0.0 && e < 1.0, "{e}");
        let m = r.matrix_rel_fro.expect("matrix error within budget");
        assert!(m > 0.0 && m < 1.5, "{m}");
    }
}

#[test]
fn bandwidth_grid_only_multiplies_band_methods_and_seeds_change_the_input() {
    let mut config = tiny(&[MethodId::Full, MethodId::Fmm], &[33]);
    config.bandwidths = vec![1, 4];
    config.seeds = vec![3, 4];
    let outcome = run_sweep(&config, &mut NullSink, &CancelToken::new()).expect("sweep");
    // per seed: full ×1 + fmm ×2
    assert_eq!(outcome.rows.len(), 6);
    let fmm: Vec<&SweepRow> = outcome.rows.iter().filter(|r| r.method == "fmm").collect();
    assert_eq!(
        fmm.iter()
            .map(|r| (r.seed, r.bandwidth))
            .collect::<Vec<_>>(),
        vec![(3, 1), (3, 4), (4, 1), (4, 4)]
    );
    assert!(outcome.rows[0].data.contains("seed=3"));
    assert!(outcome.rows[3].data.contains("seed=4"));
    let e = |s: u64, b: usize| {
        fmm.iter()
            .find(|r| r.seed == s && r.bandwidth == b)
            .and_then(|r| r.output_rel)
            .unwrap_or(f64::NAN)
    };
    assert_ne!(e(3, 1), e(4, 1), "different seeds give different inputs");
}

#[test]
fn cancellation_between_points_stops_early() {
    let config = tiny(
        &[MethodId::Full, MethodId::Band, MethodId::Linear],
        &[32, 48, 64],
    );
    let token = CancelToken::new();
    let mut rec = Recorder {
        cancel_after: Some((2, token.clone())),
        ..Recorder::default()
    };
    let outcome = run_sweep(&config, &mut rec, &token).expect("sweep");
    assert!(outcome.cancelled);
    assert_eq!(outcome.total_points, 9);
    assert_eq!(outcome.rows.len(), 2);
    assert_eq!(rec.total, Some(9));
    assert_eq!(rec.indices, vec![0, 1]);
    assert_eq!(rec.cancelled, Some(2));
    assert_eq!(rec.finished, None);
}

#[test]
fn cancelled_before_start_runs_nothing() {
    let config = tiny(&[MethodId::Full], &[32]);
    let token = CancelToken::new();
    token.cancel();
    let mut rec = Recorder::default();
    let outcome = run_sweep(&config, &mut rec, &token).expect("sweep");
    assert!(outcome.cancelled);
    assert!(outcome.rows.is_empty());
    assert_eq!(rec.cancelled, Some(0));
}

#[test]
fn file_lengths_beyond_the_file_are_skipped_with_a_reason() {
    let config = SweepConfig {
        input: InputSpec {
            source: zen_path(),
            layer: 1,
            head: 2,
        },
        ..tiny(&[MethodId::Band], &[64, 191, 256])
    };
    let outcome = run_sweep(&config, &mut NullSink, &CancelToken::new()).expect("sweep");
    assert_eq!(outcome.rows.len(), 3);
    let (a, b, c) = (&outcome.rows[0], &outcome.rows[1], &outcome.rows[2]);
    assert!(a.skipped.is_none() && b.skipped.is_none());
    assert_eq!((a.layer, a.head), (Some(1), Some(2)));
    assert_eq!(a.head_dim, 32);
    assert!(a.output_rel.is_some_and(|e| e > 0.0));
    let reason = c.skipped.as_deref().unwrap_or_default();
    assert!(
        reason.contains("256") && reason.contains("191"),
        "reason names both lengths: {reason}"
    );
    assert!(c.runtime_median_s.is_none() && c.output_rel.is_none());
}

#[test]
fn above_max_exact_len_errors_are_skipped_with_a_note() {
    let mut config = tiny(&[MethodId::Linear], &[40, 80]);
    config.max_exact_len = 50;
    config.matrix_budget_bytes = 0;
    let outcome = run_sweep(&config, &mut NullSink, &CancelToken::new()).expect("sweep");
    let (short, long) = (&outcome.rows[0], &outcome.rows[1]);
    assert!(short.output_rel.is_some());
    assert!(short.matrix_rel_fro.is_none(), "matrix over a zero budget");
    assert!(short.notes.contains("budget"), "{}", short.notes);
    assert!(long.output_rel.is_none());
    assert!(long.runtime_median_s.is_some());
    assert!(long.notes.contains("max-exact-len"), "{}", long.notes);
    assert_eq!(long.rank_bound, Some(16), "linear: rank ≤ head_dim");
}

#[test]
fn bad_configurations_are_typed_errors() {
    let mut config = tiny(&[MethodId::Full], &[32]);
    config.repeats = 0;
    assert!(matches!(
        run_sweep(&config, &mut NullSink, &CancelToken::new()),
        Err(ExperimentError::InvalidConfig(_))
    ));
    let mut config = tiny(&[MethodId::Full], &[32]);
    config.input = InputSpec::new("synth:nonsense");
    assert!(matches!(
        run_sweep(&config, &mut NullSink, &CancelToken::new()),
        Err(ExperimentError::Data { .. })
    ));
    let mut config = tiny(&[MethodId::Full], &[32]);
    config.input = InputSpec::new("/no/such/file.npz");
    assert!(matches!(
        run_sweep(&config, &mut NullSink, &CancelToken::new()),
        Err(ExperimentError::Data { .. })
    ));
    let mut config = tiny(&[MethodId::Full], &[32]);
    config.input.layer = 99;
    config.input.source = zen_path();
    assert!(matches!(
        run_sweep(&config, &mut NullSink, &CancelToken::new()),
        Err(ExperimentError::Data { .. })
    ));
}

#[test]
fn plots_are_written_as_png_files() {
    let mut config = tiny(&[MethodId::Full, MethodId::Band, MethodId::Fmm], &[32, 64]);
    config.bandwidths = vec![1, 2, 5];
    let outcome = run_sweep(&config, &mut NullSink, &CancelToken::new()).expect("sweep");
    let dir = tempfile::tempdir().expect("tempdir");
    let written = write_plots(&outcome.rows, dir.path()).expect("plots");
    let names: Vec<String> = written
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    assert_eq!(
        names,
        vec![
            "runtime_vs_len.png",
            "error_vs_len.png",
            "error_vs_bandwidth.png"
        ]
    );
    for p in &written {
        let bytes = std::fs::read(p).expect("read png");
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let img = image::load_from_memory(&bytes).expect("decodes");
        assert!(img.width() >= 600 && img.height() >= 400);
    }
}
