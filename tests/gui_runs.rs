//! The runs browser and the exports, on run folders written by the real search worker
//! (tiny searches: C = 4, N = 1, 64 bundled images, one epoch): the browser lists them
//! through egui_kittest, opens one into a `RunHistory`, shows an error for a bad folder and
//! follows a run that is still being written; the exports write files that parse back.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use wgnas::gui::export;
use wgnas::gui::runs::{may_grow, scan_runs, RunsAction, RunsBrowser, FOLLOW_SECS};
use wgnas::run::config::SearchConfig;
use wgnas::run::events::RunEvent;
use wgnas::run::history::RunHistory;
use wgnas::run::worker::{self, SearchOptions};

/// The two strategies of the fixture runs.
const STRATEGIES: [&str; 2] = ["darts-1st", "gdas"];

/// A fresh temporary folder for this test process.
fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wgnas-guiruns-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// The tiny search of the brief, writing into `out`.
fn tiny(strategy: &str, out: &Path) -> SearchConfig {
    let mut cfg = SearchConfig::default();
    cfg.set_strategy(strategy).unwrap();
    cfg.space.channels = 4;
    cfg.space.cells = 1;
    cfg.data.dataset = "bundled".into();
    cfg.data.batch_size = 16;
    cfg.data.limit = 64;
    cfg.data.augment = false;
    cfg.run.epochs = 1;
    cfg.run.seed = 7;
    cfg.run.log_every = 1;
    cfg.run.checkpoint_every = 0;
    cfg.set_out_dir(out);
    cfg
}

/// A runs root holding one finished tiny run per strategy (made once per test binary).
fn runs_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = tmp("runs");
        for s in STRATEGIES {
            let mut events: Vec<RunEvent> = Vec::new();
            worker::run_search(tiny(s, &root.join(format!("run-{s}"))), &SearchOptions::default(), &mut events)
                .unwrap_or_else(|e| panic!("{s}: search failed: {e}"));
        }
        root
    })
}

/// The browser and the last action it returned, as the harness state.
type State = (RunsBrowser, Option<RunsAction>);

fn harness(root: &Path) -> Harness<'static, State> {
    let state = (RunsBrowser::new(root), None);
    Harness::builder().with_size([1000.0, 400.0]).build_ui_state(
        |ui, (browser, last): &mut State| {
            if let Some(a) = browser.ui(ui) {
                *last = Some(a);
            }
        },
        state,
    )
}

#[test]
fn the_browser_lists_runs_and_opens_one_by_clicking_it() {
    let root = runs_root();
    let mut h = harness(root);
    h.run();
    assert_eq!(h.state().0.runs().len(), 2);
    for s in STRATEGIES {
        h.get_by_label(&format!("run-{s}"));
        h.get_by_label(s);
    }
    let arch = h.state().0.runs()[0].arch.clone().expect("an architecture after one epoch");
    assert!(h.query_all_by_label(&arch).count() >= 1, "the architecture is shown");
    assert_eq!(h.query_all_by_label("1/1").count(), 2, "epochs done / planned");

    h.get_by_label("run-gdas").click();
    h.run();
    let Some(RunsAction::Opened(history)) = h.state_mut().1.take() else { panic!("no Opened action") };
    assert_eq!(history.epochs.len(), 1);
    assert!(!history.steps.is_empty());
    assert_eq!(history.config.as_ref().unwrap().strategy.name, "gdas");
    assert!(!may_grow(&history), "a finished run is not followed");
    h.get_by_label_contains("Opened run-gdas: 1 of 1 epochs");
}

#[test]
fn a_bad_folder_shows_an_error_and_opens_nothing() {
    let mut h = harness(runs_root());
    h.run();
    let bad = runs_root().join("no-such-run");
    h.get_by_role_and_label(egui::Role::TextInput, "Run folder").focus();
    h.run();
    h.get_by_role_and_label(egui::Role::TextInput, "Run folder").type_text(&bad.display().to_string());
    h.run();
    h.get_by_label("Open").click();
    h.run();
    assert!(h.state().1.is_none());
    h.get_by_label_contains("could not open");
    assert!(h.state().0.open_error().unwrap().contains("no-such-run"));
    assert!(h.state().0.opened().is_none());

    // A missing runs root is an empty list, not an error.
    let mut h = harness(&tmp("missing-root"));
    h.run();
    h.get_by_label_contains("No run folders");
}

#[test]
fn exports_write_files_that_parse() {
    let run = runs_root().join("run-darts-1st");
    let history = RunHistory::open(&run).unwrap();
    let out = tmp("exports");
    std::fs::create_dir_all(&out).unwrap();

    let json = out.join("genotype.json");
    export::write_genotype_json(&history, &json).unwrap();
    let g: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(g["arch"].as_str(), history.latest_arch());
    assert_eq!(g["edges"].as_array().map(Vec::len), Some(6));

    let txt = out.join("arch.txt");
    let arch = export::write_arch_txt(&history, &txt).unwrap();
    assert_eq!(std::fs::read_to_string(&txt).unwrap().trim(), arch);
    assert!(wgnas::space::nb201::Nb201Arch::parse(&arch).is_ok());

    let dot = out.join("cell.dot");
    export::write_cell_dot(&history, &dot).unwrap();
    assert!(std::fs::read_to_string(&dot).unwrap().starts_with("digraph"));

    let ops = history.op_names().len();
    let csv = out.join("alpha.csv");
    let rows = export::write_alpha_csv(&history, &csv, false).unwrap();
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(rows, history.epochs.len() * 6 * ops);
    assert_eq!(text.lines().count(), rows + 1);
    assert_eq!(text.lines().next(), Some("epoch,edge,op,weight"));
    let with_steps = export::write_alpha_csv(&history, &csv, true).unwrap();
    assert_eq!(with_steps, (history.epochs.len() + history.steps.len()) * 6 * ops);

    // A screenshot of the browser, rendered through wgpu (lavapipe), saved and decoded again.
    let mut h = harness(runs_root());
    h.run();
    let shot = h.render().expect("render");
    let (w, hgt) = shot.dimensions();
    let img = egui::ColorImage::from_rgba_unmultiplied([w as usize, hgt as usize], shot.as_raw());
    let png = out.join("runs.png");
    export::save_png(&img, &png).unwrap();
    let back = image::open(&png).unwrap();
    assert_eq!((back.width(), back.height()), (w, hgt));

    // Errors name the file.
    let err = export::write_cell_dot(&history, &out.join("missing/cell.dot")).unwrap_err().to_string();
    assert!(err.contains("missing/cell.dot"), "{err}");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_run_being_written_is_followed() {
    // A copy of a finished run with only its first two metric lines: a run in progress.
    let src = runs_root().join("run-darts-1st");
    let dir = tmp("follow").join("live");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.toml", "genotype.json"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let full = std::fs::read_to_string(src.join("metrics.jsonl")).unwrap();
    let lines: Vec<&str> = full.lines().collect();
    assert!(lines.len() >= 3, "steps and an epoch record");
    let metrics = dir.join("metrics.jsonl");
    std::fs::write(&metrics, format!("{}\n{}\n", lines[0], lines[1])).unwrap();

    let mut b = RunsBrowser::new(dir.parent().unwrap());
    let Some(RunsAction::Opened(h)) = b.open(&dir, 0.0) else { panic!("open failed: {:?}", b.open_error()) };
    assert_eq!((h.steps.len(), h.epochs.len()), (2, 0));
    assert!(b.is_following());
    assert!(b.tick_at(FOLLOW_SECS * 2.0).is_none(), "nothing new");

    // The writer appends the rest: the next check after FOLLOW_SECS picks it up.
    std::fs::write(&metrics, &full).unwrap();
    assert!(b.tick_at(FOLLOW_SECS * 2.5).is_none(), "checked less than FOLLOW_SECS ago");
    let Some(RunsAction::Updated(h)) = b.tick_at(FOLLOW_SECS * 3.5) else { panic!("no update") };
    assert_eq!(h.steps.len() + h.epochs.len(), lines.len());
    assert_eq!(h.epochs.len(), 1);
    assert!(!b.is_following(), "all planned epochs are in: nothing more to follow");

    // The list shows the copy too.
    let runs = scan_runs(dir.parent().unwrap()).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].strategy, "darts-1st");
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}
