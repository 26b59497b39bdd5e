//! GUI tests of the notebook (issue 7) with egui_kittest: pin from two views, find the entries
//! in the Notebook tab, autosave, delete/undo, reopen reproduces the pinned metrics, and the
//! persisted UI state restores.
#![cfg(feature = "gui")]

use std::time::Duration;

use attnscope::app::jobs::InputSource;
use attnscope::app::notebook::NotebookAction;
use attnscope::app::{AttnScopeApp, Command, View};
use attnscope::attention::MethodId;
use attnscope::notebook::{Notebook, recompute_metrics, views};
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

const MAX_WAIT_FRAMES: usize = 3000;

fn harness(source: InputSource) -> Harness<'static, AttnScopeApp> {
    Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .build_eframe(move |cc| AttnScopeApp::new(&cc.egui_ctx, source).expect("worker thread"))
}

fn wait_idle(harness: &mut Harness<'_, AttnScopeApp>) {
    for _ in 0..MAX_WAIT_FRAMES {
        harness.step();
        if !harness.state().is_busy() {
            harness.step();
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the worker did not finish within {MAX_WAIT_FRAMES} frames");
}

/// Steps until the autosaved notebook on disk has `count` entries (bounded).
fn wait_saved(
    harness: &mut Harness<'_, AttnScopeApp>,
    dir: &std::path::Path,
    count: usize,
) -> Notebook {
    for _ in 0..MAX_WAIT_FRAMES {
        harness.step();
        if let Ok(nb) = Notebook::load(dir)
            && nb.entries.len() == count
        {
            return nb;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the notebook was not autosaved with {count} entries");
}

#[test]
fn gui_notebook_pin_finds_entry_in_panel_autosaves_and_reopens() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut harness = harness(InputSource::Sample("zen".into()));
    harness
        .state_mut()
        .open_notebook_dir(dir.path().to_path_buf());
    wait_idle(&mut harness);
    let pinned = harness
        .state()
        .results
        .decomposition
        .clone()
        .expect("a decomposition");

    // Pin from the decomposition view with the real button.
    harness.get_by_label("Pin to notebook").click();
    harness.step();
    // Then from the methods view.
    harness.state_mut().apply(Command::ShowView(View::Methods));
    harness
        .state_mut()
        .apply(Command::SetMethod(MethodId::Linear));
    wait_idle(&mut harness);
    harness.get_by_label("Pin to notebook").click();
    harness.step();

    // The Notebook tab lists both entries.
    harness.get_by_label("Notebook").click();
    wait_idle(&mut harness);
    assert_eq!(harness.state().view, View::Notebook);
    let entries = harness.state().notebook.notebook.entries.clone();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].view, views::DECOMPOSITION);
    assert_eq!(entries[1].view, views::METHODS);
    for entry in &entries {
        assert!(
            harness.query_all_by_value(&entry.title).count() >= 1,
            "entry {} is listed in the notebook panel",
            entry.title
        );
    }
    harness.get_by_label(&format!("thumbnail of {}", entries[0].title));
    assert_eq!(
        entries[0].metrics,
        serde_json::to_value(&pinned.decomposition.metrics).expect("json")
    );

    // Autosaved, thumbnails included.
    let saved = wait_saved(&mut harness, dir.path(), 2);
    assert_eq!(saved.entries, entries);
    assert!(dir.path().join("thumbnails/entry-1.png").is_file());
    assert!(dir.path().join("thumbnails/entry-2.png").is_file());

    // The pinned metrics are reproduced headlessly…
    for entry in &entries {
        let again = recompute_metrics(entry).expect("recompute");
        assert_eq!(again.metrics, entry.metrics, "{}", entry.title);
        assert!(!again.checksum_changed);
    }

    // …and by "Reopen" after the configuration moved away.
    harness
        .state_mut()
        .apply(Command::ShowView(View::Decomposition));
    harness.state_mut().apply(Command::SetBandwidth(11));
    harness.state_mut().apply(Command::SetCausal(true));
    wait_idle(&mut harness);
    harness.state_mut().apply(Command::ShowView(View::Notebook));
    harness.step();
    harness
        .get_all_by_label("Reopen")
        .next()
        .expect("a Reopen button")
        .click();
    wait_idle(&mut harness);
    let state = harness.state();
    assert_eq!(state.view, View::Decomposition);
    assert_eq!(
        state.selection.params.bandwidth,
        entries[0].params.bandwidth
    );
    assert!(!state.selection.causal);
    let reopened = state.results.decomposition.clone().expect("recomputed");
    assert_eq!(
        serde_json::to_value(&reopened.decomposition.metrics).expect("json"),
        entries[0].metrics
    );
    assert!(state.notebook.checksum_flags.is_empty());

    // Delete, then undo, restores the entry at its place.
    harness.state_mut().apply(Command::ShowView(View::Notebook));
    harness.step();
    harness
        .get_all_by_label("Delete")
        .next()
        .expect("a Delete button")
        .click();
    harness.step();
    assert_eq!(harness.state().notebook.notebook.entries.len(), 1);
    wait_saved(&mut harness, dir.path(), 1);
    harness.get_by_label_contains("Undo delete").click();
    harness.step();
    assert_eq!(harness.state().notebook.notebook.entries, entries);
    wait_saved(&mut harness, dir.path(), 2);
}

#[test]
fn gui_notebook_reopen_flags_a_changed_input() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut harness = harness(InputSource::Sample("zen".into()));
    harness
        .state_mut()
        .open_notebook_dir(dir.path().to_path_buf());
    wait_idle(&mut harness);
    harness
        .state_mut()
        .apply(Command::Notebook(NotebookAction::Pin));
    let id = harness.state().notebook.notebook.entries[0].id;
    // Pretend the input was different when pinned.
    harness.state_mut().notebook.notebook.entries[0].source_checksum = "f".repeat(64);
    harness
        .state_mut()
        .apply(Command::Notebook(NotebookAction::Reopen(id)));
    wait_idle(&mut harness);
    assert!(harness.state().notebook.checksum_flags.contains_key(&id));
    harness.state_mut().apply(Command::ShowView(View::Notebook));
    harness.step();
    harness.get_by_label_contains("Warning: input changed");
}

#[test]
fn gui_notebook_ui_state_persists_across_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut first = harness(InputSource::Synthetic(attnscope::data::SynthSpec {
        kind: attnscope::data::SynthKind::Local,
        seq_len: 29,
        head_dim: 8,
        num_heads: 3,
        seed: 4,
    }));
    first
        .state_mut()
        .open_notebook_dir(dir.path().to_path_buf());
    wait_idle(&mut first);
    first.state_mut().apply(Command::SetHead(2));
    first.state_mut().apply(Command::SetCausal(true));
    first
        .state_mut()
        .apply(Command::SetMethod(MethodId::Nystrom));
    first.state_mut().apply(Command::SetBandwidth(6));
    first.state_mut().apply(Command::ShowView(View::Methods));
    wait_idle(&mut first);
    let persisted = first.state().persisted_ui();
    let json = serde_json::to_string(&persisted).expect("serialise");

    // A "restarted" app on the default sample restores everything.
    let mut second = harness(InputSource::Sample("zen".into()));
    second
        .state_mut()
        .restore_ui(serde_json::from_str(&json).expect("parse"), false);
    wait_idle(&mut second);
    let state = second.state();
    let input = state.selection.input.as_ref().expect("input");
    assert_eq!(Some(input.source.spec()), persisted.source);
    assert_eq!(state.selection.head, 2);
    assert!(state.selection.causal);
    assert_eq!(state.selection.method, MethodId::Nystrom);
    assert_eq!(state.selection.params.bandwidth, 6);
    assert_eq!(state.view, View::Methods);
    assert_eq!(state.notebook.dir.as_deref(), Some(dir.path()));
    assert_eq!(state.persisted_ui(), persisted);
}

#[test]
fn gui_notebook_note_is_edited_in_place_and_rendered() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut harness = harness(InputSource::Sample("zen".into()));
    harness
        .state_mut()
        .open_notebook_dir(dir.path().to_path_buf());
    wait_idle(&mut harness);
    harness
        .state_mut()
        .apply(Command::Notebook(NotebookAction::Pin));
    harness.state_mut().apply(Command::ShowView(View::Notebook));
    harness.step();
    harness.get_by_label("Edit note").click();
    harness.step();
    harness.step();
    fn editor<'h>(h: &'h Harness<'static, AttnScopeApp>) -> egui_kittest::Node<'h> {
        h.get_by_role(egui::accesskit::Role::MultilineTextInput)
    }
    editor(&harness).focus();
    harness.step();
    editor(&harness).type_text("## Finding\n- mass **inside** the band");
    harness.step();
    harness.get_by_label("Done").click();
    harness.step();
    harness.step();
    harness.step();
    let note = harness.state().notebook.notebook.entries[0]
        .note_markdown
        .clone();
    assert_eq!(note, "## Finding\n- mass **inside** the band");
    // Rendered: the heading text and the bold word appear as text, without the markers.
    harness.get_by_label("Finding");
    harness.get_by_label_contains("mass inside the band");
    let saved = wait_saved(&mut harness, dir.path(), 1);
    for _ in 0..MAX_WAIT_FRAMES {
        if Notebook::load(dir.path()).is_ok_and(|nb| nb.entries[0].note_markdown == note) {
            return;
        }
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!(
        "the note was not autosaved: {:?}",
        saved.entries[0].note_markdown
    );
}

#[test]
fn gui_notebook_pins_routing_and_spectrum_views() {
    let mut harness = harness(InputSource::Sample("zen".into()));
    harness.state_mut().apply(Command::ShowView(View::Routing));
    wait_idle(&mut harness);
    harness
        .state_mut()
        .apply(Command::Notebook(NotebookAction::Pin));
    harness.state_mut().apply(Command::ShowView(View::Spectrum));
    wait_idle(&mut harness);
    harness
        .state_mut()
        .apply(Command::Notebook(NotebookAction::Pin));
    let entries = harness.state().notebook.notebook.entries.clone();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0].view, views::ROUTING);
    assert!(entries[0].method.as_str().starts_with("combiner-"));
    assert!(entries[0].thumbnail.is_some());
    // The routing entry's metrics are reproduced from its recorded configuration.
    let again = recompute_metrics(&entries[0]).expect("recompute routing");
    assert_eq!(again.metrics, entries[0].metrics);
    assert_eq!(entries[1].view, views::SPECTRUM);
    assert!(
        entries[1].metrics["captured_energy_at_rank"]
            .as_f64()
            .is_some()
    );
}
