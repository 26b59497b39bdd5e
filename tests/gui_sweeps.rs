//! The sweeps view under egui_kittest: a tiny sweep started from the form fills the table.
#![cfg(feature = "gui")]

use std::time::Duration;

use attnscope::app::views::sweeps::SweepsViewState;
use attnscope::attention::{MethodId, MethodParams};
use attnscope::experiment::plot::PlotKind;
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

const MAX_WAIT_FRAMES: usize = 3000;

fn tiny_state() -> SweepsViewState {
    let mut state = SweepsViewState::default();
    state.source = "synth:local,d=16".into();
    state.seq_lens = "32,64".into();
    state.repeats = 1;
    state.threads = 1;
    state.plot = PlotKind::ErrorVsLen;
    for (m, on) in &mut state.methods {
        *on = matches!(m, MethodId::Full | MethodId::Band);
    }
    state
}

fn harness(state: SweepsViewState) -> Harness<'static, SweepsViewState> {
    let params = MethodParams::default();
    Harness::builder()
        .with_size(egui::vec2(1200.0, 800.0))
        .build_ui_state(
            move |ui, state: &mut SweepsViewState| {
                attnscope::app::views::sweeps::ui(ui, state, &params);
                attnscope::app::views::sweeps::inspector_ui(ui, state);
            },
            state,
        )
}

fn wait_done(harness: &mut Harness<'_, SweepsViewState>) {
    for _ in 0..MAX_WAIT_FRAMES {
        harness.step();
        if !harness.state().is_running() {
            harness.step();
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the sweep did not finish within {MAX_WAIT_FRAMES} frames");
}

#[test]
fn gui_sweeps_tiny_sweep_rows_appear_and_plot_has_exact_floor() {
    let mut harness = harness(tiny_state());
    harness.run_steps(2);
    assert!(harness.state().rows.is_empty());
    harness.get_by_label("Run sweep").click();
    harness.run_steps(1);
    assert!(
        harness.state().is_running() || !harness.state().rows.is_empty(),
        "clicking Run starts the sweep"
    );
    wait_done(&mut harness);
    let state = harness.state();
    assert!(state.error.is_none(), "{:?}", state.error);
    assert_eq!(state.total, 4);
    assert_eq!(state.rows.len(), 4);
    let methods: Vec<&str> = state.rows.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(methods, vec!["full", "band", "full", "band"]);
    assert!(harness.query_all_by_label_contains("4 / 4 points").count() >= 1);
    assert!(harness.query_by_label_contains("finished: 4 / 4").is_some());
    // "band": the method checkbox, the plot legend entry and one table cell per band row.
    assert_eq!(harness.query_all_by_label("band").count(), 4);
    // full against its own reference has error exactly 0: the E11 floor note is shown.
    assert_eq!(state.rows[0].output_rel, Some(0.0));
    assert!(harness.query_by_label_contains("error exactly 0").is_some());
    assert!(
        harness
            .query_all_by_label_contains("Error")
            .next()
            .is_none()
    );
}

#[test]
fn gui_sweeps_cancel_stops_a_long_sweep() {
    let mut state = tiny_state();
    state.seq_lens = "32..8192".into();
    state.repeats = 3;
    let mut harness = harness(state);
    harness.run_steps(1);
    harness.get_by_label("Run sweep").click();
    harness.run_steps(2);
    harness.get_by_label("Cancel").click();
    wait_done(&mut harness);
    let state = harness.state();
    assert!(state.total > 0);
    assert!(
        state.rows.len() < state.total,
        "{} of {}",
        state.rows.len(),
        state.total
    );
    assert!(state.status.starts_with("cancelled"), "{}", state.status);
}

#[test]
fn gui_sweeps_bad_lengths_show_an_error_label() {
    let mut state = tiny_state();
    state.seq_lens = "abc".into();
    let mut harness = harness(state);
    harness.run_steps(1);
    harness.get_by_label("Run sweep").click();
    harness.run_steps(2);
    assert!(!harness.state().is_running());
    assert!(harness.query_by_label_contains("Error: lengths").is_some());
}
