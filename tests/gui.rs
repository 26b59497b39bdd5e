//! GUI tests with egui_kittest (no GPU): the real app state, the real worker thread.
#![cfg(feature = "gui")]

use std::time::Duration;

use attnscope::app::jobs::{
    ComputeSettings, DecompPanel, HeadSelection, InputSource, JobOutput, JobRequest, Worker,
};
use attnscope::app::view_jobs::BIDIRECTIONAL_ONLY;
use attnscope::app::{AttnScopeApp, Command, View};
use attnscope::attention::MethodId;
use attnscope::data::{SynthKind, SynthSpec};
use eframe::egui;
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

/// Upper bound on frames to wait for the worker (each frame sleeps 10 ms).
const MAX_WAIT_FRAMES: usize = 3000;

/// The real app in a kittest harness. The app is created in the first frame (it needs the
/// harness's `egui::Context` for repaint requests); each frame runs exactly what
/// `eframe::App::logic` + `ui` run: [`AttnScopeApp::poll_jobs`] then [`AttnScopeApp::show`].
fn harness(source: InputSource) -> Harness<'static, Option<AttnScopeApp>> {
    Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .build_ui_state(
            move |ui, app: &mut Option<AttnScopeApp>| {
                let app = app.get_or_insert_with(|| {
                    AttnScopeApp::new(ui.ctx(), source.clone()).expect("worker thread")
                });
                app.poll_jobs();
                app.show(ui);
            },
            None,
        )
}

trait AppHarness {
    fn app(&self) -> &AttnScopeApp;
    fn app_mut(&mut self) -> &mut AttnScopeApp;
}

impl AppHarness for Harness<'_, Option<AttnScopeApp>> {
    fn app(&self) -> &AttnScopeApp {
        self.state()
            .as_ref()
            .expect("the first frame creates the app")
    }
    fn app_mut(&mut self) -> &mut AttnScopeApp {
        self.state_mut()
            .as_mut()
            .expect("the first frame creates the app")
    }
}

/// Steps frames until no job is queued or running (bounded).
fn wait_idle(harness: &mut Harness<'_, Option<AttnScopeApp>>) {
    for _ in 0..MAX_WAIT_FRAMES {
        harness.step();
        if !harness.app().is_busy() {
            // One more frame so the view draws the landed result.
            harness.step();
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the worker did not finish within {MAX_WAIT_FRAMES} frames");
}

fn assert_no_error_label(harness: &Harness<'_, Option<AttnScopeApp>>) {
    let errors: Vec<String> = harness
        .query_all_by_label_contains("Error")
        .map(|n| format!("{n:?}"))
        .collect();
    assert!(errors.is_empty(), "error labels on screen: {errors:?}");
    assert!(harness.app().results.decomposition_error.is_none());
    assert!(harness.app().results.load_error.is_none());
}

#[test]
fn gui_zen_sample_shows_six_heatmaps_and_bandwidth_slider_recomputes() {
    let mut harness = harness(InputSource::Sample("zen".into()));
    wait_idle(&mut harness);
    let first = harness
        .app()
        .results
        .decomposition
        .clone()
        .expect("a decomposition after the first load");
    let seq_len = first.head.input.set.seq_len_q();
    assert_eq!(first.decomposition.full.dim(), (seq_len, seq_len));
    for panel in DecompPanel::ALL {
        harness.get_by_label(panel.title());
    }
    assert_no_error_label(&harness);
    assert_eq!(first.decomposition.metrics.bandwidth, 4);

    // Move the bandwidth slider through accesskit, as a screen reader would.
    harness
        .get_by_role_and_label(Role::Slider, "bandwidth")
        .set_value_accesskit(9.0);
    wait_idle(&mut harness);
    let second = harness
        .app()
        .results
        .decomposition
        .clone()
        .expect("a decomposition after the slider moved");
    assert_eq!(harness.app().selection.params.bandwidth, 9);
    assert_eq!(second.decomposition.metrics.bandwidth, 9);
    assert_ne!(second.id, first.id, "a new result replaced the old one");
    // A wider band keeps more mass inside it.
    assert!(
        second.decomposition.metrics.band_mass > first.decomposition.metrics.band_mass,
        "band mass {} at b = 9 vs {} at b = 4",
        second.decomposition.metrics.band_mass,
        first.decomposition.metrics.band_mass
    );
    for panel in DecompPanel::ALL {
        harness.get_by_label(panel.title());
    }
    assert_no_error_label(&harness);
    // Six textures of the current result only: the old result's textures were evicted.
    assert_eq!(harness.app().cached_textures(), DecompPanel::ALL.len());
}

#[test]
fn gui_methods_view_runs_every_method_on_a_causal_synthetic_input() {
    let mut harness = harness(InputSource::Synthetic(SynthSpec {
        kind: SynthKind::LocalGlobal,
        seq_len: 37,
        head_dim: 16,
        num_heads: 2,
        seed: 7,
    }));
    wait_idle(&mut harness);
    harness.app_mut().apply(Command::SetCausal(true));
    harness.app_mut().apply(Command::ShowView(View::Methods));
    for &method in MethodId::ALL {
        harness.app_mut().apply(Command::SetMethod(method));
        wait_idle(&mut harness);
        let state = harness.app();
        if let Some(e) = &state.results.method_error {
            // Methods that reject causality report a typed error inline; nothing panics.
            assert!(e.contains("causal"), "{method}: unexpected error {e}");
            continue;
        }
        let run = state.results.method.clone().expect("a method result");
        assert_eq!(run.method, method);
        assert!(run.head.causal);
        harness.get_by_label("exact A");
        harness.get_by_label("error Â − A");
        let kl = run.metrics.matrix_rel_fro.expect("matrices within budget");
        assert!(kl.value().is_finite(), "{method}: {kl:?}");
        if method == MethodId::Full {
            assert!(kl.value() < 1e-5, "full attention against itself: {kl:?}");
        }
    }
}

#[test]
fn gui_worker_coalesces_a_slider_drag_and_returns_only_the_latest_result() {
    let mut worker = Worker::spawn(|| {}).expect("worker thread");
    worker.submit(JobRequest::Load(InputSource::Synthetic(SynthSpec {
        kind: SynthKind::Gaussian,
        seq_len: 61,
        head_dim: 8,
        num_heads: 1,
        seed: 3,
    })));
    let mut input = None;
    for _ in 0..MAX_WAIT_FRAMES {
        for result in worker.poll() {
            if let Ok(JobOutput::Loaded(i)) = result.outcome {
                input = Some(i);
            }
        }
        if input.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let input = input.expect("the synthetic input loads");
    let head = HeadSelection {
        input,
        layer: 0,
        head: 0,
        causal: false,
    };
    let mut last_id = 0;
    for bandwidth in 0..25 {
        last_id = worker.submit(JobRequest::Decompose {
            head: head.clone(),
            bandwidth,
            rank: 3,
            settings: ComputeSettings::default(),
        });
    }
    let mut received = Vec::new();
    for _ in 0..MAX_WAIT_FRAMES {
        received.extend(worker.poll());
        if !worker.any_busy() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(received.len(), 1, "stale results must be dropped");
    assert_eq!(received[0].id, last_id);
    match &received[0].outcome {
        Ok(JobOutput::Decomposed(d)) => assert_eq!(d.decomposition.metrics.bandwidth, 24),
        other => panic!("expected a decomposition, got {other:?}"),
    }
}

fn assert_no_view_errors(harness: &Harness<'_, Option<AttnScopeApp>>) {
    assert_no_error_label(harness);
    let r = &harness.app().results;
    assert!(r.routing.error.is_none(), "{:?}", r.routing.error);
    assert!(r.spectrum.error.is_none(), "{:?}", r.spectrum.error);
    assert!(r.compare_all_error.is_none(), "{:?}", r.compare_all_error);
}

#[test]
fn gui_routing_view_zen_query_100_regions_sum_to_one_and_block_slider_updates() {
    let mut harness = harness(InputSource::Sample("zen".into()));
    wait_idle(&mut harness);
    harness.app_mut().apply(Command::ShowView(View::Routing));
    wait_idle(&mut harness);
    let mut routing = harness.app().selection.routing;
    routing.query = Some(100);
    harness.app_mut().apply(Command::SetRouting(routing));
    wait_idle(&mut harness);

    let state = harness.app();
    assert!(!state.selection.causal, "zen (MiniLM) is bidirectional");
    let matrix = state
        .results
        .routing
        .matrix
        .clone()
        .expect("a routing result");
    let seq_len = matrix.exact.nrows();
    assert_eq!(seq_len, 191);
    let route = state
        .results
        .routing
        .shown_route()
        .cloned()
        .expect("a route");
    assert_eq!(route.row.query, 100);
    // Default block ⌈√191⌉ = 14; Fixed bidirectional (eq. 10): own block [98, 112) direct,
    // each of the other ⌈191/14⌉ − 1 = 13 blocks one region.
    assert_eq!(route.block, 14);
    assert_eq!(
        route.row.direct.iter().map(|d| d.key).collect::<Vec<_>>(),
        (98..112).collect::<Vec<_>>()
    );
    assert_eq!(route.row.regions.len(), 13);
    // One joint softmax: direct weights and region weights sum to 1 (f32, ~27 terms).
    let tol = 64.0 * f64::from(f32::EPSILON);
    assert!(
        (route.total_weight() - 1.0).abs() < tol,
        "Σ weights = {}",
        route.total_weight()
    );
    let effective_sum: f64 = route.row.effective.iter().map(|&q| f64::from(q)).sum();
    assert!((effective_sum - 1.0).abs() < seq_len as f64 * f64::from(f32::EPSILON));
    harness.get_by_label("Regions of query 100");
    harness.get_by_label(&format!("Σ weights = {:.6}", route.total_weight()));
    for r in &route.row.regions {
        harness.get_by_label(&r.region.kind.to_string());
    }
    harness.get_by_label("effective q(j|i) (combiner-fixed)");
    harness.get_by_label("exact A");
    harness.get_by_label("error q − A");
    assert!(
        matrix
            .metrics
            .matrix_rel_fro
            .is_some_and(|e| e.value() > 0.0),
        "Combiner is not exact on zen: {:?}",
        matrix.metrics.matrix_rel_fro
    );
    assert_no_view_errors(&harness);

    // Move the block slider as a screen reader would: the matrix and the route follow.
    harness
        .get_by_role_and_label(Role::Slider, "block")
        .set_value_accesskit(5.0);
    wait_idle(&mut harness);
    let state = harness.app();
    let second = state
        .results
        .routing
        .matrix
        .clone()
        .expect("a new routing result");
    assert_ne!(second.id, matrix.id);
    assert_eq!(second.block, 5);
    let route = state
        .results
        .routing
        .shown_route()
        .cloned()
        .expect("a route");
    assert_eq!(route.row.query, 100);
    assert_eq!(route.block, 5);
    assert_eq!(
        route.row.direct.iter().map(|d| d.key).collect::<Vec<_>>(),
        (100..105).collect::<Vec<_>>()
    );
    assert_eq!(route.row.regions.len(), 191_usize.div_ceil(5) - 1);
    assert!((route.total_weight() - 1.0).abs() < tol);
    harness.get_by_label(&format!("Σ weights = {:.6}", route.total_weight()));
    harness.get_by_label("block 38");
    assert_no_view_errors(&harness);
}

#[test]
fn gui_spectrum_view_plots_points_optimal_split_and_compare_all_table() {
    let mut harness = harness(InputSource::Sample("zen".into()));
    wait_idle(&mut harness);
    harness.app_mut().apply(Command::ShowView(View::Spectrum));
    wait_idle(&mut harness);
    let state = harness.app();
    let spectrum = state.results.spectrum.spectrum.clone().expect("spectra");
    let points = state
        .results
        .spectrum
        .points
        .clone()
        .expect("matched-rank points");
    let rank = state.selection.params.rank;
    assert_eq!(points.rank, rank);
    assert_eq!(spectrum.spectrum.singular_values.len(), 191);
    harness.get_by_label("singular values (log scale)");
    harness.get_by_label("captured energy Σ_{t<r} σ_t² / Σ σ_t²");
    harness.get_by_label(&format!("Methods at matched rank {rank}"));
    // SVD attains the Eckart–Young bound; no method beats it.
    let curve = &spectrum.spectrum.eckart_young;
    for (method, outcome) in &points.points {
        let point = outcome
            .as_ref()
            .unwrap_or_else(|e| panic!("{method}: {e}"))
            .as_ref()
            .unwrap_or_else(|| panic!("{method}: no point"));
        let bound = curve[point.rank];
        assert!(
            point.error.value() >= bound * (1.0 - 1e-4),
            "{method}: {} below the bound {bound}",
            point.error
        );
        if *method == MethodId::Svd {
            assert_eq!(point.rank, rank);
            assert!((point.error.value() - bound).abs() < 1e-4 * bound.max(1e-3));
        }
    }
    assert_no_view_errors(&harness);

    harness.get_by_label("Optimal split").click();
    wait_idle(&mut harness);
    let optimal = harness
        .app()
        .results
        .spectrum
        .optimal
        .clone()
        .expect("an optimal split");
    let curve = &optimal.split.error_curve;
    assert!(curve.windows(2).all(|w| w[1] <= w[0] * (1.0 + 1e-12)));
    assert!(optimal.split.error <= optimal.split.fixed_split_error);
    assert_no_view_errors(&harness);

    // The methods view's "Compare all" table: one row per method.
    harness.app_mut().apply(Command::ShowView(View::Methods));
    wait_idle(&mut harness);
    harness.get_by_label("Compare all").click();
    wait_idle(&mut harness);
    let table = harness
        .app()
        .results
        .compare_all
        .clone()
        .expect("a compare-all table");
    let ids: Vec<MethodId> = table.rows.iter().map(|r| r.method).collect();
    assert_eq!(ids, MethodId::ALL.to_vec());
    for row in &table.rows {
        let run = row
            .outcome
            .as_ref()
            .unwrap_or_else(|e| panic!("{}: {e}", row.method));
        let e = run.metrics.matrix_rel_fro.expect("matrices within budget");
        assert!(e.value().is_finite(), "{}: {e:?}", row.method);
        assert!(
            harness.query_all_by_label(row.method.as_str()).count() >= 1,
            "{} has no row",
            row.method
        );
    }
    harness.get_by_label(&format!(
        "Compare all methods ({}, rank {rank})",
        MethodId::ALL.len()
    ));
    assert_no_view_errors(&harness);

    // Causal: the bidirectional-only methods say so instead of failing.
    harness.app_mut().apply(Command::SetCausal(true));
    wait_idle(&mut harness);
    harness.get_by_label("Compare all").click();
    wait_idle(&mut harness);
    let table = harness.app().results.compare_all.clone().expect("a table");
    assert!(table.head.causal);
    let skipped: Vec<MethodId> = table
        .rows
        .iter()
        .filter(|r| matches!(&r.outcome, Err(e) if e == BIDIRECTIONAL_ONLY))
        .map(|r| r.method)
        .collect();
    assert_eq!(skipped, vec![MethodId::Nystrom, MethodId::Linformer]);
    assert_eq!(harness.query_all_by_label(BIDIRECTIONAL_ONLY).count(), 2);

    // The method picker disables the bidirectional-only methods while causal is on.
    harness
        .get_by_role_and_label(Role::ComboBox, "method")
        .click();
    harness.step();
    harness.step();
    for &method in MethodId::ALL {
        // ("linear" is also the value-scale button; it is enabled either way.)
        let disabled = harness
            .query_all_by_role_and_label(Role::Button, method.as_str())
            .any(|n| n.accesskit_node().is_disabled());
        let expected = matches!(method, MethodId::Nystrom | MethodId::Linformer);
        assert_eq!(disabled, expected, "{method}");
    }
}

#[test]
fn gui_routing_view_every_variant_causal_and_bidirectional_on_prime_length_37() {
    use attnscope::attention::combiner::Variant;
    let mut harness = harness(InputSource::Synthetic(SynthSpec {
        kind: SynthKind::LocalGlobal,
        seq_len: 37,
        head_dim: 8,
        num_heads: 1,
        seed: 5,
    }));
    wait_idle(&mut harness);
    harness.app_mut().apply(Command::ShowView(View::Routing));
    for causal in [false, true] {
        harness.app_mut().apply(Command::SetCausal(causal));
        for &variant in Variant::ALL {
            for query in [0, 17, 36] {
                let mut routing = harness.app().selection.routing;
                routing.variant = variant;
                routing.block = Some(5);
                routing.query = Some(query);
                harness.app_mut().apply(Command::SetRouting(routing));
                wait_idle(&mut harness);
                let state = harness.app();
                let label = format!("{variant} causal={causal} query {query}");
                assert!(
                    state.results.routing.error.is_none(),
                    "{label}: {:?}",
                    state.results.routing.error
                );
                let matrix = state.results.routing.matrix.clone().expect("a result");
                assert_eq!(matrix.settings.variant, variant, "{label}");
                assert_eq!(matrix.head.causal, causal, "{label}");
                let route = state
                    .results
                    .routing
                    .shown_route()
                    .cloned()
                    .expect("a route");
                assert_eq!(route.row.query, query, "{label}");
                assert!((route.total_weight() - 1.0).abs() < 1e-5, "{label}");
                // The routed row is the matrix's row (same plan, same softmax).
                let row = matrix.effective.row(query);
                for (j, (&a, &b)) in row.iter().zip(&route.row.effective).enumerate() {
                    assert!((a - b).abs() < 1e-6, "{label}: key {j}: {a} vs {b}");
                }
                if causal {
                    assert!(
                        route.row.effective[query + 1..].iter().all(|&q| q == 0.0),
                        "{label}: a causal row attends to the future"
                    );
                }
                harness.get_by_label(&format!("Regions of query {query}"));
            }
        }
    }
    assert_no_view_errors(&harness);
}

#[test]
fn gui_e15_matrices_over_2048_are_pooled_and_labelled() {
    let mut harness = harness(InputSource::Synthetic(SynthSpec {
        kind: SynthKind::Local,
        seq_len: 2049,
        head_dim: 4,
        num_heads: 1,
        seed: 11,
    }));
    // Switch before the load lands so only the (cheap) methods job runs, not the SVD.
    harness.app_mut().apply(Command::ShowView(View::Methods));
    harness.app_mut().apply(Command::SetMethod(MethodId::Band));
    wait_idle(&mut harness);
    let run = harness.app().results.method.clone().expect("a band run");
    let pooled = run.pooled[0].as_ref().expect("exact A pooled");
    assert_eq!(pooled.factor, 2);
    assert_eq!(pooled.data.dim(), (1025, 1025));
    assert_eq!(
        harness.query_all_by_label_contains("pooled 2×2").count(),
        3,
        "A, Â and the error each carry the pooled label"
    );
}

#[test]
fn gui_c3_rows_that_see_no_key_are_reported_for_causal_lq_greater_than_lk() {
    use ndarray::Array2;
    use ndarray_npy::NpzWriter;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("lq5_lk3.npz");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let mut normal = |rows: usize| {
        Array2::from_shape_simple_fn((rows, 4), || StandardNormal.sample(&mut rng)) as Array2<f32>
    };
    let (q, k, v) = (normal(5), normal(3), normal(3));
    let mut npz = NpzWriter::new(std::fs::File::create(&path).expect("create npz"));
    npz.add_array("q", &q).expect("write q");
    npz.add_array("k", &k).expect("write k");
    npz.add_array("v", &v).expect("write v");
    npz.finish().expect("finish npz");

    let mut harness = harness(InputSource::File(path));
    wait_idle(&mut harness);
    harness.app_mut().apply(Command::SetCausal(true));
    wait_idle(&mut harness);
    let result = harness
        .app()
        .results
        .decomposition
        .clone()
        .expect("a decomposition");
    assert!(result.head.causal);
    // C1: query i sees key j iff j ≤ i + (3 − 5); queries 0 and 1 see nothing.
    assert_eq!(result.decomposition.metrics.empty_rows, vec![0, 1]);
    harness.get_by_label_contains("2 queries see no key");
    assert_no_error_label(&harness);
}

fn synth_local(seq_len: usize) -> InputSource {
    InputSource::Synthetic(SynthSpec {
        kind: SynthKind::Local,
        seq_len,
        head_dim: 64,
        num_heads: 1,
        seed: 0,
    })
}

#[test]
fn gui_token_count_mismatch_shows_in_the_data_panel() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short_tokens.npz");
    let q = ndarray::Array2::<f32>::from_shape_fn((3, 2), |(i, j)| (i + j) as f32 * 0.1);
    let mut npz = ndarray_npy::NpzWriter::new(std::fs::File::create(&path).unwrap());
    for name in ["q", "k", "v"] {
        npz.add_array(name, &q).unwrap();
    }
    npz.finish().unwrap();
    std::fs::write(
        dir.path().join("short_tokens.json"),
        br#"{"tokens": ["a"]}"#,
    )
    .unwrap();
    let mut harness = harness(InputSource::File(path.clone()));
    wait_idle(&mut harness);
    assert!(harness.app().results.load_error.is_none());
    let warnings = harness
        .app()
        .selection
        .input
        .as_ref()
        .unwrap()
        .set
        .warnings
        .clone();
    let warning = warnings
        .iter()
        .find(|w| w.contains("sidecar has 1 tokens but q has 3"))
        .expect("the loader warns about the token count");
    // The data panel shows the warning itself (the notification prefixes the source).
    assert!(
        harness.query_by_label(warning).is_some(),
        "the mismatch warning is not shown in the data panel"
    );
    // A successfully opened file enters the recent list.
    let recent = &harness.app().recent_files;
    assert_eq!(recent.len(), 1);
    assert!(recent[0].ends_with("short_tokens.npz"), "{recent:?}");
}

#[test]
fn gui_load_error_is_inline_and_keeps_the_last_good_input() {
    let mut harness = harness(InputSource::Sample("zen".into()));
    wait_idle(&mut harness);
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.npz");
    std::fs::write(&bad, b"not a zip").unwrap();
    harness
        .app_mut()
        .apply(Command::Open(InputSource::File(bad)));
    wait_idle(&mut harness);
    let app = harness.app();
    assert!(app.results.load_error.is_some());
    assert!(
        app.notifications
            .iter()
            .any(|n| n.text.contains("broken.npz"))
    );
    assert!(matches!(
        app.selection.input.as_ref().map(|i| &i.source),
        Some(InputSource::Sample(name)) if name == "zen"
    ));
    assert!(app.results.decomposition.is_some());
    assert!(harness.query_by_label_contains("Error: ").is_some());
}

#[test]
fn gui_e15_long_synthetic_input_shows_pooled_heatmaps() {
    let mut harness = harness(synth_local(4097));
    wait_idle(&mut harness);
    let app = harness.app();
    assert!(
        app.results.decomposition_error.is_none(),
        "{:?}",
        app.results.decomposition_error
    );
    let pooled = app
        .results
        .pooled_decomposition
        .clone()
        .expect("above the budget the decomposition is pooled");
    // ⌈4097 / 2048⌉ = 3.
    assert_eq!(pooled.decomposition.full.factor, 3);
    assert_eq!(pooled.decomposition.full.data.dim(), (1366, 1366));
    assert!(
        harness
            .query_all_by_label_contains("pooled 3×3 (block max)")
            .count()
            >= 3
    );
    assert_eq!(
        harness
            .query_all_by_label_contains("needs the far field's SVD")
            .count(),
        3
    );
    // Block mean is a display setting: the view recomputes with it.
    let mut display = harness.app().selection.display;
    display.pool_mode = attnscope::render::PoolMode::Mean;
    harness.app_mut().apply(Command::SetDisplay(display));
    wait_idle(&mut harness);
    let again = harness.app().results.pooled_decomposition.clone().unwrap();
    assert_eq!(
        again.decomposition.full.mode,
        attnscope::render::PoolMode::Mean
    );
    assert!(
        harness
            .query_all_by_label_contains("pooled 3×3 (block mean)")
            .count()
            >= 3
    );
}

#[test]
fn gui_cancel_stops_a_long_decomposition_and_keeps_the_view_alive() {
    let mut harness = harness(synth_local(16385));
    // Wait for the load, then for the tiled job to report progress, then cancel.
    let mut cancelled = false;
    for _ in 0..MAX_WAIT_FRAMES {
        harness.step();
        if harness.app().progress().is_some() {
            harness.app_mut().apply(Command::Cancel);
            cancelled = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(cancelled, "no progress was reported");
    wait_idle(&mut harness);
    let error = harness.app().results.decomposition_error.clone();
    assert_eq!(error.as_deref(), Some("cancelled by the user"));
    assert!(harness.app().results.pooled_decomposition.is_none());
}

/// A file dropped onto the window (what winit delivers on native platforms).
#[derive(Debug)]
struct DroppedPath(std::path::PathBuf);

impl egui::DroppedFile for DroppedPath {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

fn write_small_npz(path: &std::path::Path, seq_len: usize) {
    let q = ndarray::Array2::<f32>::from_shape_fn((seq_len, 4), |(i, j)| ((i * 7 + j) % 5) as f32);
    let mut npz = ndarray_npy::NpzWriter::new(std::fs::File::create(path).unwrap());
    for name in ["q", "k", "v"] {
        npz.add_array(name, &q).unwrap();
    }
    npz.finish().unwrap();
}

#[test]
fn gui_dropping_a_file_opens_it_and_remembers_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dropped.npz");
    write_small_npz(&path, 11);
    let mut h = harness(InputSource::Sample("zen".into()));
    wait_idle(&mut h);
    h.input_mut()
        .dropped_files
        .push(std::sync::Arc::new(DroppedPath(path.clone())));
    wait_idle(&mut h);
    let app = h.app();
    let input = app.selection.input.as_ref().expect("an input");
    assert!(matches!(&input.source, InputSource::File(p) if p == &path));
    assert_eq!(input.set.seq_len_q(), 11);
    assert!(app.recent_files[0].ends_with("dropped.npz"));
    // The recent list survives a restart through eframe's storage (serialised settings).
    let saved = serde_json::to_string(&app.persisted()).unwrap();
    let mut fresh = harness(InputSource::Sample("zen".into()));
    fresh.step();
    fresh
        .app_mut()
        .restore(serde_json::from_str(&saved).unwrap());
    assert_eq!(fresh.app().recent_files, h.app().recent_files);
}

#[test]
fn gui_exports_write_png_npz_json_and_csv_of_the_current_view() {
    use attnscope::app::export::ExportWhat;
    let mut harness = harness(InputSource::Sample("zen".into()));
    wait_idle(&mut harness);
    let dir = tempfile::tempdir().unwrap();
    let app = harness.app();
    let l = app
        .results
        .decomposition
        .as_ref()
        .unwrap()
        .head
        .input
        .set
        .seq_len_q();
    let png = dir.path().join("near.png");
    app.export_job(ExportWhat::Png {
        view: View::Decomposition,
        panel: "near field",
    })
    .expect("a decomposition to export")
    .write(&png)
    .unwrap();
    let img = image::open(&png).unwrap();
    // One pixel per cell plus two title lines and the colorbar.
    assert!(img.width() as usize > l && img.height() as usize >= l + 20);
    let npz = dir.path().join("m.npz");
    app.export_job(ExportWhat::Matrices(View::Decomposition))
        .unwrap()
        .write(&npz)
        .unwrap();
    let mut reader = ndarray_npy::NpzReader::new(std::fs::File::open(&npz).unwrap()).unwrap();
    assert_eq!(reader.len(), 6);
    let near: ndarray::Array2<f32> = reader.by_name("near").unwrap();
    assert_eq!(near.dim(), (l, l));
    let csv = dir.path().join("m.csv");
    app.export_job(ExportWhat::MetricsCsv(View::Decomposition))
        .unwrap()
        .write(&csv)
        .unwrap();
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("metrics.band_mass"), "{text}");
    let json = dir.path().join("m.json");
    app.export_job(ExportWhat::MetricsJson(View::Decomposition))
        .unwrap()
        .write(&json)
        .unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["metrics"]["bandwidth"], 4);
    // Nothing computed yet in the methods view: no job.
    assert!(
        app.export_job(ExportWhat::Matrices(View::Methods))
            .is_none()
    );
    // A panel the view does not have is an error message, not a panic.
    let err = app
        .export_job(ExportWhat::Png {
            view: View::Decomposition,
            panel: "no such panel",
        })
        .unwrap()
        .write(&dir.path().join("x.png"))
        .unwrap_err();
    assert!(err.contains("no such panel"), "{err}");
}

#[test]
fn gui_e15_methods_view_shows_pooled_exact_a_above_the_budget() {
    use attnscope::app::export::ExportWhat;
    let mut harness = harness(synth_local(3001));
    harness.app_mut().apply(Command::ShowView(View::Methods));
    harness.app_mut().apply(Command::SetMethod(MethodId::Band));
    // 3001² · 4 bytes = 34 MiB > 16 MiB: exact A goes through the tiled path.
    harness.app_mut().apply(Command::SetBudgetMib(16));
    wait_idle(&mut harness);
    let run = harness.app().results.method.clone().expect("a band run");
    assert!(run.exact.is_none() && run.approx.is_none());
    let pooled = run.pooled[0].as_ref().expect("pooled exact A");
    assert_eq!(pooled.factor, 2);
    assert!(harness.query_all_by_label_contains("pooled 2×2").count() >= 1);
    assert!(
        run.notes.iter().any(|n| n.contains("row tiles")),
        "{:?}",
        run.notes
    );
    assert!(run.metrics.output_rel.value().is_finite());
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("a.png");
    harness
        .app()
        .export_job(ExportWhat::Png {
            view: View::Methods,
            panel: "A",
        })
        .unwrap()
        .write(&png)
        .unwrap();
    assert!(image::open(&png).unwrap().width() >= 1501);
}
