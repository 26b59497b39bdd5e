//! GUI tests with egui_kittest (no GPU): the real app state, the real worker thread.
#![cfg(feature = "gui")]

use std::time::Duration;

use attnscope::app::jobs::{
    DecompPanel, HeadSelection, InputSource, JobOutput, JobRequest, Worker,
};
use attnscope::app::{AttnScopeApp, Command, View};
use attnscope::attention::MethodId;
use attnscope::data::{SynthKind, SynthSpec};
use eframe::egui;
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

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
