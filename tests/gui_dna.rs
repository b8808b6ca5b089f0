//! The DNA view and the Runs tab on synthetic DNA run folders written with `dna::files`
//! (2 blocks of 2 layers: 42 paths each; a result from the real knapsack): the view shows
//! the chosen architecture and the ratings, sorts them, switches blocks; the Runs tab lists
//! a DNA folder and opening it shows the DNA tab; a partial folder says what is pending and
//! is followed as it grows.

use std::path::{Path, PathBuf};

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use wgnas::dna::files::{
    candidates, Choice, DnaFolder, DnaLog, DnaRecord, DnaResult, Rating, RetrainInfo, TeacherInfo,
};
use wgnas::dna::knapsack::{best_combinations, pareto_front, Budget};
use wgnas::dna::DnaConfig;
use wgnas::gui::dna_history::{DnaHistory, DnaStage};
use wgnas::gui::runs::{RunsAction, RunsBrowser, FOLLOW_SECS};
use wgnas::gui::views::{install_fonts, DnaView};
use wgnas::gui::{AppOptions, Tab, WgnasApp};
use wgnas::space::mbconv::candidates as layer_ops;

/// A fresh temporary folder for this test process.
fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wgnas-guidna-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Two student blocks of two layers, a params budget, one retraining epoch.
fn config(dir: &Path) -> DnaConfig {
    let mut cfg = DnaConfig::default();
    cfg.student.layers = vec![2, 2];
    cfg.teacher.epochs = 2;
    cfg.distill.epochs = 2;
    cfg.retrain.epochs = 1;
    cfg.search.max_params = 9_000;
    cfg.search.top_k = 3;
    cfg.run.out_dir = dir.to_path_buf();
    cfg
}

/// The 42 paths of a 2-layer block with made-up costs (growing with expansion and kernel)
/// and scores scrambled differently per block.
fn ratings(block: usize) -> Vec<Rating> {
    let mut out = Vec::new();
    for a in layer_ops(true) {
        for b in layer_ops(false) {
            let cost = |n: &str| -> u64 {
                let digits: Vec<u64> = n.chars().filter_map(|c| c.to_digit(10)).map(u64::from).collect();
                digits.iter().product::<u64>() * 100
            };
            let (an, bn) = (a.name(), b.name());
            let i = out.len() as u64;
            let scramble = (i * (17 + 6 * block as u64) + 5) % 42;
            out.push(Rating {
                path: format!("{an},{bn}"),
                score: 0.2 + scramble as f64 / 50.0 + block as f64 * 0.1,
                params: cost(&an) + cost(&bn) + block as u64 * 500,
                flops: (cost(&an) + cost(&bn)) * 640 + i,
            });
        }
    }
    out
}

/// The best path of a block by score.
fn best_path(rs: &[Rating]) -> &str {
    &rs.iter().min_by(|a, b| a.score.total_cmp(&b.score)).unwrap().path
}

/// Log records of a run up to `stage` (0: teacher only, 1: block 1 rated, 2: finished).
fn records(stage: usize) -> Vec<DnaRecord> {
    let mut r = vec![
        DnaRecord::TeacherEpoch { epoch: 0, train_loss: 2.1, test_acc: 35.0 },
        DnaRecord::TeacherEpoch { epoch: 1, train_loss: 1.7, test_acc: 48.5 },
    ];
    for block in 1..=stage.min(2) {
        r.push(DnaRecord::DistillEpoch { block, epoch: 0, loss: 0.9 / block as f64, seconds: 1.0 });
        r.push(DnaRecord::DistillEpoch { block, epoch: 1, loss: 0.6 / block as f64, seconds: 1.0 });
        r.push(DnaRecord::Rated { block, paths: 42, seconds: 2.0 });
    }
    if stage >= 2 {
        r.push(DnaRecord::Searched { seconds: 0.01 });
        r.push(DnaRecord::RetrainEpoch { epoch: 0, test_acc: 51.25 });
        r.push(DnaRecord::Finished { seconds: 30.0 });
    }
    r
}

/// A DNA folder at `dir`: teacher only (`stage` 0), block 1 rated (1), or finished (2).
fn write_folder(dir: &Path, stage: usize) -> DnaFolder {
    let cfg = config(dir);
    let folder = DnaFolder::create(&cfg).unwrap();
    let mut log = DnaLog::create(&folder.log_path()).unwrap();
    for r in records(stage) {
        log.append(&r).unwrap();
    }
    for b in 1..=stage.min(2) {
        folder.write_ratings(b, &ratings(b)).unwrap();
        std::fs::write(folder.student_block_path(b), b"weights").unwrap();
    }
    if stage >= 2 {
        let lists = vec![ratings(1), ratings(2)];
        let budget = Budget { max_params: Some(cfg.search.max_params), max_flops: None };
        let cands: Vec<_> = lists.iter().map(|r| candidates(r)).collect();
        let combos = best_combinations(&cands, &budget, cfg.search.top_k).unwrap();
        let choices: Vec<Choice> = combos.iter().map(|c| Choice::from_combination(c, &lists).unwrap()).collect();
        let fronts = cands
            .iter()
            .zip(&lists)
            .map(|(c, r)| pareto_front(c, &budget).iter().map(|f| r[f.id].clone()).collect())
            .collect();
        let result = DnaResult {
            budget,
            best: choices[0].clone(),
            alternatives: choices[1..].to_vec(),
            fronts,
            teacher: TeacherInfo {
                arch: cfg.teacher.arch.clone(),
                test_acc: 48.5,
                params: 1_234_567,
                flops: 98_765_432,
                run_dir: folder.teacher_dir(),
            },
            retrain: Some(RetrainInfo { run_dir: folder.retrain_dir(), test_acc: 51.25 }),
            random: None,
        };
        folder.write_result(&result).unwrap();
    }
    folder
}

/// A finished run's folder (made fresh per test).
fn finished(name: &str) -> (PathBuf, DnaHistory) {
    let dir = tmp(name).join("20250101-000000-dna");
    write_folder(&dir, 2);
    let h = DnaHistory::open(&dir).unwrap();
    (dir, h)
}

fn view_harness(run: DnaHistory, size: [f32; 2]) -> Harness<'static, (DnaView, DnaHistory)> {
    Harness::builder()
        .with_size(size)
        .with_context_setup(install_fonts)
        .build_ui_state(|ui, (view, run): &mut (DnaView, DnaHistory)| view.ui(ui, run), (DnaView::default(), run))
}

/// The table row drawn highest among the labels equal to one of `rs`'s paths.
fn first_row(h: &Harness<'_, (DnaView, DnaHistory)>, rs: &[Rating]) -> String {
    let mut rows: Vec<(f32, String)> = Vec::new();
    for r in rs {
        for node in h.query_all_by_label(&r.path) {
            rows.push((node.rect().min.y, r.path.clone()));
        }
    }
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    rows.first().expect("no table rows are drawn").1.clone()
}

#[test]
fn the_view_shows_the_choice_and_sorts_and_switches_blocks() {
    let (dir, run) = finished("view");
    let arch = run.result.as_ref().unwrap().best.arch.clone();
    assert_eq!(run.stage(), DnaStage::Finished);
    assert_eq!(run.chosen_path(0).map(str::to_owned), arch.split('|').next().map(str::to_owned));
    let mut h = view_harness(run, [1200.0, 1100.0]);
    h.run();
    assert!(h.query_all_by_label(&arch).count() >= 1, "the chosen architecture {arch} is shown");
    h.get_by_label("Chosen architecture");
    h.get_by_label("Copy");
    h.get_by_label("retrained: 51.25 % test acc");
    h.get_by_label("Top 3 architectures");
    h.get_by_label("Ratings of block 1 (42 paths)");
    assert_eq!(h.query_all_by_label("rated 42 / 42 paths").count(), 2, "both blocks rated");
    h.get_by_label("◀ chosen");
    // File order first: the first row is the block's first path.
    let r1 = ratings(1);
    assert_eq!(first_row(&h, &r1), r1[0].path);

    // Sorting by score puts the best path first; clicking again reverses.
    h.get_by_label("score").click();
    h.run();
    assert_eq!(first_row(&h, &r1), best_path(&r1));
    let order = h.state_mut().0.display_order(&r1_history(&dir)).to_vec();
    assert_eq!(r1[order[0]].path, best_path(&r1));
    h.snapshot("dna_view");
    h.get_by_label("score ▲").click();
    h.run();
    let worst = &r1.iter().max_by(|a, b| a.score.total_cmp(&b.score)).unwrap().path;
    assert_eq!(&first_row(&h, &r1), worst);

    // Block 2: another table, still sorted by score (descending).
    h.get_by_label("Block 2").click();
    h.run();
    assert_eq!(h.state().0.block, 1);
    h.get_by_label("Ratings of block 2 (42 paths)");
    let r2 = ratings(2);
    let worst2 = &r2.iter().max_by(|a, b| a.score.total_cmp(&b.score)).unwrap().path;
    assert_eq!(&first_row(&h, &r2), worst2);
    assert_ne!(worst, worst2, "the blocks' tables differ");
    h.get_by_label("x = MFLOPs").click();
    h.run();
    assert_eq!(h.state().0.cost, wgnas::gui::views::dna::CostAxis::Flops);
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}

/// The history of `dir` (to ask the view for its order outside the harness).
fn r1_history(dir: &Path) -> DnaHistory {
    DnaHistory::open(dir).unwrap()
}

#[test]
fn the_runs_tab_lists_a_dna_folder_and_opens_it_in_the_dna_tab() {
    let (dir, run) = finished("runs");
    let arch = run.result.as_ref().unwrap().best.arch.clone();
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let mut app = WgnasApp::new(AppOptions::default());
    app.runs.set_root(dir.parent().unwrap());
    let mut h = Harness::builder().with_size([1400.0, 1100.0]).build_ui_state(|ui, app: &mut WgnasApp| app.ui(ui), app);
    h.run();
    h.get_by_label("DNA").click();
    h.run();
    h.get_by_label_contains("No DNA run open");
    h.get_by_label("Runs").click();
    h.run();
    assert_eq!(h.state().runs.runs().len(), 1);
    h.get_by_label(&name);
    h.get_by_label("dna");
    h.get_by_label("finished");
    h.get_by_label("51.25 % retrained");
    assert!(h.query_all_by_label(&arch).count() >= 1, "the best architecture is listed");
    h.get_by_label(&name).click();
    h.run();
    assert_eq!(h.state().tab, Tab::Dna);
    assert!(h.state().dna_run.is_some());
    assert!(h.state().replay.is_none(), "a DNA run does not replace the search views' run");
    h.get_by_label("Chosen architecture");
    h.get_by_label("Ratings of block 1 (42 paths)");
    h.get_by_label("Follow");
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}

#[test]
fn a_partial_folder_says_what_is_pending_and_is_followed() {
    let dir = tmp("partial").join("live-dna");
    let folder = write_folder(&dir, 0);
    let run = DnaHistory::open(&dir).unwrap();
    assert_eq!(run.stage(), DnaStage::Distill(1));
    let mut h = view_harness(run, [1000.0, 560.0]);
    h.run();
    h.get_by_label_contains("pending: distilling block 1");
    h.get_by_label_contains("No architecture chosen yet");
    h.get_by_label_contains("Block 1 has no ratings yet (pending");
    assert_eq!(h.query_all_by_label("rated 0 / 42 paths").count(), 2, "no block rated");
    h.get_by_label_contains("test acc 48.50 % (epoch 2)");
    h.snapshot("dna_partial");

    // The browser follows it: block 1 gets distilled and rated.
    let mut b = RunsBrowser::new(dir.parent().unwrap());
    let Some(RunsAction::OpenedDna(_)) = b.open(&dir, 0.0) else { panic!("open failed: {:?}", b.open_error()) };
    assert!(b.is_following());
    assert!(b.tick_at(FOLLOW_SECS * 2.0).is_none(), "nothing new");
    let mut log = DnaLog::open(&folder.log_path()).unwrap();
    for r in &records(1)[2..] {
        log.append(r).unwrap();
    }
    folder.write_ratings(1, &ratings(1)).unwrap();
    std::fs::write(folder.student_block_path(1), b"weights").unwrap();
    let Some(RunsAction::UpdatedDna(run)) = b.tick_at(FOLLOW_SECS * 3.5) else { panic!("no update") };
    assert_eq!(run.stage(), DnaStage::Distill(2));
    assert_eq!((run.rated(0), run.distill_losses(0).len()), (42, 2));
    assert!(run.result.is_none());

    let mut h = view_harness(*run, [1000.0, 900.0]);
    h.run();
    h.get_by_label("Ratings of block 1 (42 paths)");
    h.get_by_label_contains("The chosen path is marked once the search has run (pending)");
    h.get_by_label("Block 2").click();
    h.run();
    h.get_by_label_contains("Block 2 has no ratings yet (pending: the run is distilling block 2)");
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}

/// Start DNA from the DNA tab with a config file (the tiny config, written to a temp
/// folder), through the real widgets: the run's folder is shown and followed while it is
/// written, and the chosen architecture appears when it finishes.
#[test]
fn the_dna_tab_starts_a_run_from_a_config_file_and_shows_it() {
    let dir = tmp("live");
    std::fs::create_dir_all(&dir).unwrap();
    let mut cfg = DnaConfig::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/dna-tiny.toml")).unwrap();
    cfg.run.out_dir = dir.join("run");
    let file = dir.join("my-dna.toml");
    cfg.save(&file).unwrap();

    let mut h = Harness::builder()
        .with_size([1400.0, 1100.0])
        .build_ui_state(|ui, app: &mut WgnasApp| app.ui(ui), WgnasApp::new(AppOptions::default()));
    h.run();
    h.get_by_label("DNA").click();
    h.run();
    h.get_by_label("No DNA run open: start one above, or open a DNA run folder (one with dna.toml) in the Runs tab.");
    h.state_mut().dna_config_path = file.display().to_string();
    h.get_by_label("Start DNA").click();
    let t0 = std::time::Instant::now();
    let mut seen_live = false;
    loop {
        h.step();
        let s = h.state().dna_session.as_ref().expect("Start DNA started a run");
        if !s.is_active() {
            break;
        }
        seen_live |= h.state().dna_run.is_some();
        assert!(t0.elapsed().as_secs() < 300, "the tiny DNA run did not finish in 5 minutes");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    h.run();
    let s = h.state().dna_session.as_ref().unwrap();
    assert_eq!(s.ended, Some(Ok(())), "status: {}", s.status);
    assert!(seen_live, "the run folder was shown while the run was active");
    let run = h.state().dna_run.as_ref().expect("the run is shown");
    assert_eq!(run.dir.as_deref(), Some(dir.join("run").as_path()));
    let best = run.result.as_ref().expect("the result is read").best.arch.clone();
    assert_eq!(best.split('|').count(), 2, "two blocks: {best}");
    assert!(h.query_all_by_label(&best).count() >= 1, "the chosen architecture {best} is shown");
    h.get_by_label("DNA: finished");
    let _ = std::fs::remove_dir_all(&dir);
}
