//! The DNA pipeline end to end on lavapipe with the tiny config (C = 4, N = 1 teacher,
//! 2 student blocks of 2 layers): ratings files, a chosen architecture within the budget
//! (checked against an independently built `MbNet`), its retraining, resuming a stopped run
//! to the same ratings, deterministic re-rating, re-picking under a tighter budget through
//! the binary, and the errors of a bad resume or budget.

mod common;
use common::gpu;

use std::path::{Path, PathBuf};
use std::time::Instant;

use wgnas::dna::{run_dna, DnaConfig, DnaEvent, DnaFolder, DnaOptions, DnaResult, Rating};
use wgnas::run::events::StopSignal;
use wgnas::space::mbconv::{MbArch, MbBlockSupernet, MbNet, MbSpace};
use wgnas::train::FixedNet;

fn tiny(out: &Path) -> DnaConfig {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/dna-tiny.toml");
    let mut cfg = DnaConfig::load(&path).unwrap();
    cfg.run.out_dir = out.to_path_buf();
    cfg
}

/// The student space of the tiny config on the bundled 1×28×28, 10-class images.
fn space(arch_layers: Vec<usize>) -> MbSpace {
    MbSpace::aligned_to_nb201(4, 1, 28, 10, arch_layers)
}

fn net_of(arch: &str) -> MbNet {
    let a = MbArch::parse(arch).unwrap();
    MbNet::new(gpu(), space(a.layers()), &a, 0).unwrap()
}

fn quiet(_: &DnaEvent) {}

fn ratings(dir: &Path) -> Vec<Vec<Rating>> {
    let f = DnaFolder::open(dir).unwrap();
    (1..=2).map(|k| f.read_ratings(k).unwrap()).collect()
}

fn temp_root() -> PathBuf {
    let root = std::env::temp_dir().join(format!("wgnas-dna-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    root
}

#[test]
fn tiny_dna_end_to_end_resume_rerate_and_repick() {
    let root = temp_root();
    // A budget that binds: the params of a middle-sized architecture.
    let budget = net_of("mb3_k5,mb3_k5|mb3_k5,mb3_k5").param_count() as u64;

    // --- A: an uninterrupted run that retrains what it picks (and a random baseline).
    let a_dir = root.join("a");
    let mut cfg = tiny(&a_dir);
    cfg.search.max_params = budget;
    cfg.retrain.epochs = 1;
    cfg.retrain.random_baseline = true;
    let t = Instant::now();
    let out = run_dna(cfg.clone(), &DnaOptions::default(), &mut quiet).unwrap();
    println!("run A: {:.1} s; stages {:?}", t.elapsed().as_secs_f64(), out.stage_seconds);
    let result = out.result.expect("run A finished");
    for (k, rows) in ratings(&a_dir).iter().enumerate() {
        let sup = MbBlockSupernet::new(gpu(), &space(vec![2, 2]), k, 0).unwrap();
        assert_eq!(rows.len(), sup.path_count(), "block {}", k + 1);
        assert_eq!(rows.len(), 6 * 7);
        assert!(rows.iter().all(|r| r.score.is_finite() && r.score > 0.0), "{rows:?}");
    }
    let net = net_of(&result.best.arch);
    assert_eq!(net.param_count() as u64, result.best.params);
    assert_eq!(net.flops(), result.best.flops);
    assert!(result.best.params <= budget, "{} > {budget}", result.best.params);
    for alt in &result.alternatives {
        assert!(alt.score >= result.best.score && net_of(&alt.arch).param_count() as u64 <= budget);
    }
    let retrain = result.retrain.as_ref().expect("retrained");
    let trained = wgnas::train::TrainFolder::open(&retrain.run_dir).unwrap().read_result().unwrap();
    assert_eq!((trained.space.as_str(), trained.arch.as_str()), ("mbconv", result.best.arch.as_str()));
    assert_eq!(trained.params as u64, result.best.params);
    let random = result.random.as_ref().expect("random baseline");
    assert!(random.choice.params <= budget && random.run_dir.ends_with("random"));
    let label = format!("result_params-{budget}.json");
    assert_eq!(DnaResult::load(&a_dir.join(&label)).unwrap(), result);

    // --- B: the same run (same teacher) stopped once block 1 is rated, then resumed.
    let b_dir = root.join("b");
    let mut cfg_b = tiny(&b_dir);
    cfg_b.teacher.run = a_dir.join("teacher");
    let stop = StopSignal::new();
    let opts = DnaOptions { resume: None, stop: stop.clone() };
    let t = Instant::now();
    let out = run_dna(cfg_b.clone(), &opts, &mut |e: &DnaEvent| {
        if matches!(e, DnaEvent::Rated { block: 1, .. }) {
            stop.request();
        }
    })
    .unwrap();
    assert!(out.result.is_none());
    assert!(b_dir.join("ratings_block1.csv").is_file() && !b_dir.join("ratings_block2.csv").exists());
    assert!(!b_dir.join("student/block2.safetensors").exists());
    let resume = DnaOptions { resume: Some(b_dir.clone()), ..Default::default() };
    let mut skipped = Vec::new();
    run_dna(cfg_b.clone(), &resume, &mut |e: &DnaEvent| {
        if let DnaEvent::Skipped { stage, block, .. } = e {
            skipped.push((*stage, *block));
        }
    })
    .unwrap()
    .result
    .expect("resumed run finished");
    println!("run B (stopped + resumed): {:.1} s", t.elapsed().as_secs_f64());
    assert_eq!(skipped, [(wgnas::dna::DnaStage::Rate, Some(1))]);
    assert_eq!(ratings(&b_dir), ratings(&a_dir), "a stopped and resumed run rates as an uninterrupted one");

    // Rating the same distilled block again gives identical scores.
    std::fs::remove_file(b_dir.join("ratings_block2.csv")).unwrap();
    let t = Instant::now();
    run_dna(cfg_b.clone(), &resume, &mut quiet).unwrap();
    println!("re-rating block 2: {:.1} s", t.elapsed().as_secs_f64());
    assert_eq!(ratings(&b_dir)[1], ratings(&a_dir)[1]);

    // --- Re-pick A under a tighter budget through the binary: cheaper, in its own file.
    let tight = result.best.params - 1;
    let t = Instant::now();
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_wgnas"))
        .args(["dna", "--resume"])
        .arg(&a_dir)
        .args(["--max-params", &tight.to_string(), "--retrain-epochs", "0"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&cli.stdout);
    assert!(cli.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&cli.stderr));
    println!("re-pick through the binary: {:.1} s", t.elapsed().as_secs_f64());
    assert!(stdout.contains("rank") && stdout.contains(&format!("params-{tight}")), "{stdout}");
    let repicked = DnaResult::load(&a_dir.join(format!("result_params-{tight}.json"))).unwrap();
    assert!(repicked.best.params <= tight && repicked.best.params < result.best.params);
    assert_eq!(net_of(&repicked.best.arch).param_count() as u64, repicked.best.params);
    assert_eq!(DnaResult::load(&a_dir.join(&label)).unwrap(), result, "the first budget's result is kept");

    // --- Errors: a resume that would change the ratings, a budget below the fixed part, a
    // teacher of other widths than the config says.
    let mut bad = cfg.clone();
    bad.distill.lr = 0.01;
    let e = run_dna(bad, &DnaOptions { resume: Some(a_dir.clone()), ..Default::default() }, &mut quiet);
    let e = e.err().unwrap().to_string();
    assert!(e.contains("distill.lr") && e.contains("0.002"), "{e}");
    let mut low = cfg.clone();
    low.search.max_params = 10;
    low.retrain.epochs = 0;
    let e = run_dna(low, &DnaOptions { resume: Some(a_dir.clone()), ..Default::default() }, &mut quiet);
    let e = e.err().unwrap().to_string();
    assert!(e.contains("search.max_params = 10") && e.contains("fixed part"), "{e}");
    let mut wide = tiny(&root.join("c"));
    wide.teacher.run = a_dir.join("teacher");
    wide.teacher.channels = 8;
    let e = run_dna(wide, &DnaOptions::default(), &mut quiet).err().unwrap().to_string();
    assert!(e.contains("C = 4") && e.contains("teacher.channels = 8"), "{e}");
    std::fs::remove_dir_all(root).unwrap();
}
