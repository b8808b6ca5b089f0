//! The desktop app driven headless through egui_kittest: invalid setups are flagged next to
//! their field and block Start; Start runs a tiny search to the end and shows the found
//! architecture; a paused search waits between steps and resumes.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use egui_kittest::kittest::{NodeT, Queryable};
use egui_kittest::Harness;
use wgnas::gui::{AppOptions, Session, SessionState, WgnasApp};
use wgnas::run::events::{FinishReason, PauseSignal};
use wgnas::run::worker::SearchOptions;
use wgnas::run::SearchConfig;

/// The longest a tiny search may take on lavapipe.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// Searches share the two CPU cores of lavapipe: one at a time keeps their time bounds honest.
static GPU: Mutex<()> = Mutex::new(());

fn harness(app: WgnasApp) -> Harness<'static, WgnasApp> {
    Harness::builder().with_size([1400.0, 1100.0]).build_ui_state(|ui, app: &mut WgnasApp| app.ui(ui), app)
}

/// An empty folder for one run.
fn run_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wgnas-gui-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// C = 4, N = 1 on 64 bundled images, batch 16: two steps per epoch, one epoch.
fn tiny(name: &str) -> SearchConfig {
    let mut cfg = SearchConfig::default();
    cfg.space.channels = 4;
    cfg.data.limit = 64;
    cfg.data.batch_size = 16;
    cfg.data.workers = 0;
    cfg.run.epochs = 1;
    cfg.run.log_every = 1;
    cfg.set_out_dir(&run_dir(name));
    cfg
}

fn start_enabled(h: &Harness<'_, WgnasApp>) -> bool {
    !h.get_by_label("Start").accesskit_node().is_disabled()
}

#[test]
fn batch_size_zero_is_flagged_and_blocks_start() {
    let mut h = harness(WgnasApp::new(AppOptions::default()));
    h.run();
    assert!(start_enabled(&h), "the defaults are valid");
    h.get_by_label("Batch size").set_value_accesskit(0.0);
    h.run();
    assert_eq!(h.state().setup.config.data.batch_size, 0);
    h.get_by_label_contains("data.batch_size = 0: must be at least 1");
    assert!(!start_enabled(&h), "Start is disabled while the batch size is 0");
    h.get_by_label("Start").click();
    h.run();
    assert!(h.state().session.is_none(), "no run started");
}

#[test]
fn missing_dataset_path_is_flagged_and_blocks_start() {
    let mut h = harness(WgnasApp::new(AppOptions::default()));
    h.run();
    h.get_by_label("Dataset path").click();
    h.run();
    h.get_by_label("Path").set_text_value_accesskit("/no/such/dataset");
    h.run();
    assert_eq!(h.state().setup.config.data.dataset, "/no/such/dataset");
    h.get_by_label_contains("no such file or folder");
    assert!(!start_enabled(&h), "Start is disabled while the dataset is missing");
    h.get_by_label("Bundled data").click();
    h.run();
    assert!(start_enabled(&h), "the bundled data is back");
}

#[test]
fn start_runs_a_tiny_search_and_shows_the_found_architecture() {
    let _gpu = GPU.lock().unwrap_or_else(|e| e.into_inner());
    let cfg = tiny("start");
    let out = cfg.run.out_dir.clone();
    let mut h = harness(WgnasApp::new(AppOptions { config: cfg, config_path: None }));
    h.run();
    h.get_by_label("Start").click();
    let t0 = Instant::now();
    loop {
        h.step();
        let s = h.state().session.as_ref().expect("Start started a run");
        if !s.is_active() {
            break;
        }
        assert!(t0.elapsed() < RUN_LIMIT, "the run did not finish in {RUN_LIMIT:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    h.run();
    let hist = &h.state().session.as_ref().expect("a run").history;
    assert_eq!(hist.failure, None);
    let arch = hist.end.as_ref().expect("the run finished").arch.clone();
    assert!(arch.starts_with('|') && arch.matches('~').count() == 6, "{arch}");
    h.get_by_label("Found architecture:");
    assert!(h.query_all_by_label(&arch).count() >= 1, "the found architecture is shown");
    assert_eq!(hist.progress(), Some((2, 2)));
    assert!(h.get_by_label("Stop").accesskit_node().is_disabled(), "nothing left to stop");
    let derived = wgnas::space::nb201::Nb201Arch::parse(&arch).unwrap();

    // The heatmap: one labelled cell per edge and op.
    h.get_by_label("Architecture weights").click();
    h.run();
    h.get_by_label("1←0 nor_conv_3x3");
    h.get_by_label("3←2 avg_pool_3x3");
    // The topology: the cell canvas, with the derived op of edge 1←0 labelled.
    h.get_by_label("Topology").click();
    h.run();
    h.get_by_label("cell topology");
    let first = derived.to_string().split('|').nth(1).unwrap().split('~').next().unwrap().to_string();
    h.get_by_label(&format!("1←0: {first}"));
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn opening_a_run_folder_replays_it_in_every_tab() {
    let _gpu = GPU.lock().unwrap_or_else(|e| e.into_inner());
    let cfg = tiny("replay");
    let out = cfg.run.out_dir.clone();
    let mut events = Vec::new();
    let found = wgnas::run::worker::run_search(cfg, &SearchOptions::default(), &mut events).unwrap();
    let arch = found.arch.to_string();

    let mut h = Harness::builder()
        .with_size([1400.0, 1100.0])
        .wgpu()
        .build_ui_state(|ui, app: &mut WgnasApp| app.ui(ui), WgnasApp::new(AppOptions::default()));
    h.run();
    h.get_by_label("Runs").click();
    h.run();
    h.get_by_label("Run folder").set_text_value_accesskit(&out.to_string_lossy());
    h.run();
    h.get_by_label("Open").click();
    h.run();
    let shown = h.state().replay.as_ref().expect("the folder is opened for replay");
    assert_eq!(shown.epochs.len(), 1);
    h.get_by_label("Summary").click();
    h.run();
    assert!(h.query_all_by_label(&arch).count() >= 1, "the replayed run's architecture is shown");
    // Exports from the Summary tab go to <run folder>/exports/.
    h.get_by_label("Genotype JSON").click();
    h.run();
    let genotype = std::fs::read_to_string(out.join("exports/genotype.json")).expect("genotype exported");
    assert!(genotype.contains(&arch), "{genotype}");
    h.get_by_label("α history CSV").click();
    h.run();
    assert!(std::fs::read_to_string(out.join("exports/alpha_history.csv")).unwrap().starts_with("epoch,"));

    h.get_by_label("Architecture weights").click();
    h.run();
    h.get_by_label("2←1 skip_connect");
    // "Save PNG" takes a screenshot (the harness renders through wgpu) and keeps the view.
    h.get_by_label("Save PNG").click();
    h.run();
    h.run();
    let png = out.join("exports/heatmap.png");
    let img = image::open(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
    assert!(img.width() > 200 && img.height() > 100, "{}x{}", img.width(), img.height());
    let _ = std::fs::remove_dir_all(out);
}

/// Renders the app while a search runs (bundled data, default setup) and writes the README
/// screenshot: `cargo test --test gui_app readme_screenshot -- --ignored`.
#[test]
#[ignore]
fn readme_screenshot() {
    let _gpu = GPU.lock().unwrap_or_else(|e| e.into_inner());
    let mut cfg = tiny("screenshot");
    cfg.space.channels = 8;
    cfg.data.limit = 512;
    cfg.run.epochs = 3;
    cfg.run.log_every = 2;
    // A larger α step than the reference, so that two epochs already show a pattern.
    cfg.apply_override("strategy.a_lr=0.02").unwrap();
    let out = cfg.run.out_dir.clone();
    let mut h = Harness::builder().with_size([1400.0, 900.0]).wgpu().build_ui_state(
        |ui, app: &mut WgnasApp| app.ui(ui),
        WgnasApp::new(AppOptions { config: cfg, config_path: None }),
    );
    h.run();
    h.get_by_label("Start").click();
    h.step();
    assert!(h.state().session.is_some(), "Start started a run");
    let t0 = Instant::now();
    while h.state().session.as_ref().is_some_and(|s| s.history.epochs.len() < 2 && s.is_active()) {
        assert!(t0.elapsed() < Duration::from_secs(600), "the run did not reach epoch 2");
        h.step();
        std::thread::sleep(Duration::from_millis(100));
    }
    h.get_by_label("Architecture weights").click();
    h.run();
    let image = h.render().expect("the harness renders through wgpu");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/app.png");
    image.save(&path).unwrap();
    if let Some(s) = &h.state().session {
        s.stop();
    }
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn a_paused_search_waits_between_steps_then_resumes() {
    let _gpu = GPU.lock().unwrap_or_else(|e| e.into_inner());
    let cfg = tiny("pause");
    let out = cfg.run.out_dir.clone();
    let pause = PauseSignal::new();
    pause.pause();
    let mut s = Session::start_with(cfg, SearchOptions { pause, ..Default::default() }, None).unwrap();
    let t0 = Instant::now();
    while s.history.device.is_none() && s.is_active() {
        assert!(t0.elapsed() < RUN_LIMIT, "the run did not start");
        std::thread::sleep(Duration::from_millis(20));
        s.poll();
    }
    // Started, then held before its first step.
    std::thread::sleep(Duration::from_millis(1500));
    s.poll();
    assert_eq!(s.state(), SessionState::Paused);
    assert!(s.history.steps.is_empty() && s.history.epochs.is_empty(), "no step while paused");
    s.resume();
    while s.is_active() {
        assert!(t0.elapsed() < RUN_LIMIT, "the run did not finish after resuming");
        std::thread::sleep(Duration::from_millis(20));
        s.poll();
    }
    assert_eq!(s.history.failure, None);
    assert_eq!(s.history.end.as_ref().map(|e| e.reason), Some(FinishReason::Completed));
    assert_eq!(s.history.steps.len(), 2);
    let _ = std::fs::remove_dir_all(out);
}
