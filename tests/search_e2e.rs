//! Whole searches through the run worker on tiny shapes (C = 4, N = 1, the bundled
//! 28×28 data, a few dozen steps): every strategy runs and learns, a killed run resumes
//! to exactly the uninterrupted result, and the run folder is well-formed.

mod common;
use std::path::{Path, PathBuf};

use wgnas::run::checkpoint::{load_checkpoint, read_safetensors, NamedTensor};
use wgnas::run::config::SearchConfig;
use wgnas::run::events::{FinishReason, RunEvent};
use wgnas::run::folder::RunFolder;
use wgnas::run::metrics::read_metrics;
use wgnas::run::worker::{self, SearchOptions};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wgnas-e2e-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn tiny(strategy: &str, out: &Path) -> SearchConfig {
    // The shared GPU of the other tests is not used here: the worker opens its own device.
    let _ = common::gpu();
    let mut cfg = SearchConfig::default();
    cfg.set_strategy(strategy).unwrap();
    cfg.space.channels = 4;
    cfg.space.cells = 1;
    cfg.data.dataset = "bundled".into();
    cfg.data.batch_size = 16;
    cfg.data.limit = 320;
    cfg.data.augment = false;
    cfg.run.epochs = 3;
    cfg.run.seed = 7;
    cfg.run.log_every = 2;
    cfg.run.checkpoint_every = 0;
    cfg.run.checkpoint_each_epoch = true;
    cfg.set_out_dir(out);
    if strategy == "gdas" {
        // GDAS's default lrs move too little in a few dozen steps to show learning.
        cfg.apply_override("strategy.w_lr=0.1").unwrap();
    }
    cfg
}

fn search(cfg: SearchConfig, opts: &SearchOptions) -> (worker::SearchOutcome, Vec<RunEvent>) {
    let mut events = Vec::new();
    let out = worker::run_search(cfg, opts, &mut events).unwrap_or_else(|e| panic!("search failed: {e}"));
    (out, events)
}

fn final_tensors(run: &Path) -> Vec<NamedTensor> {
    let folder = RunFolder::open(run).unwrap();
    let latest = folder.checkpoints(100).unwrap().latest_valid().unwrap();
    latest.checkpoint.expect("a checkpoint").tensors
}

#[test]
fn every_strategy_runs_a_tiny_search_and_its_loss_falls() {
    for strategy in wgnas::search::strategy_names() {
        let dir = tmp(strategy);
        let (out, events) = search(tiny(strategy, &dir), &SearchOptions::default());
        assert_eq!(out.reason, FinishReason::Completed, "{strategy}");
        assert!(matches!(events.first(), Some(RunEvent::Started(_))), "{strategy}");
        assert!(matches!(events.last(), Some(RunEvent::Finished(_))), "{strategy}");

        let log = read_metrics(&dir.join("metrics.jsonl")).unwrap();
        let epochs: Vec<_> = log.epochs().collect();
        assert_eq!(epochs.len(), 3, "{strategy}: one record per epoch");
        let (first, last) = (epochs[0].train_loss, epochs[2].train_loss);
        assert!(first.is_finite() && last.is_finite(), "{strategy}");
        assert!(last < first, "{strategy}: train loss {first} -> {last}");
        for e in &epochs {
            assert_eq!(e.alpha_softmax.len(), 6, "{strategy}: softmax(α) per edge");
            assert!(e.alpha_softmax.iter().all(|r| (r.iter().sum::<f32>() - 1.0).abs() < 1e-4));
            assert!(wgnas::space::nb201::Nb201Arch::parse(&e.arch).is_ok(), "{strategy}: {}", e.arch);
        }
        assert!(log.steps().count() >= 10, "{strategy}: step records");
        assert!(log.steps().all(|s| s.peak_gpu_bytes > 0 && s.train_loss.is_finite()));

        let genotype = std::fs::read_to_string(dir.join("genotype.json")).unwrap();
        assert!(genotype.contains(&out.arch.to_string()), "{strategy}: {genotype}");
        let dot = std::fs::read_to_string(dir.join("cell.dot")).unwrap();
        assert!(dot.starts_with("digraph"), "{strategy}: {dot}");
        assert!(SearchConfig::load(&dir.join("config.toml")).is_ok(), "{strategy}: resolved config reloads");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_killed_search_resumes_to_the_uninterrupted_result() {
    for strategy in ["darts-1st", "gdas"] {
        let whole = tmp(&format!("whole-{strategy}"));
        search(tiny(strategy, &whole), &SearchOptions::default());

        // Same run, killed mid-epoch after a checkpoint (step 13 of 30), then resumed.
        let split = tmp(&format!("split-{strategy}"));
        let mut cfg = tiny(strategy, &split);
        cfg.run.checkpoint_every = 13;
        let killed = SearchOptions { max_steps: 13, ..Default::default() };
        let (out, _) = search(cfg.clone(), &killed);
        assert_eq!(out.reason, FinishReason::Stopped);
        assert_eq!(out.global_step, 13);
        let resume = SearchOptions { resume: Some(split.clone()), ..Default::default() };
        let (out, _) = search(cfg, &resume);
        assert_eq!(out.reason, FinishReason::Completed);

        let a = final_tensors(&whole);
        let b = final_tensors(&split);
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.name, y.name);
            assert!(x.bits_eq(y), "{strategy}: tensor {} differs after resume", x.name);
        }
        // The logged losses agree too (the resumed log keeps the steps before the kill).
        let la: Vec<f64> = read_metrics(&whole.join("metrics.jsonl")).unwrap().steps().map(|s| s.train_loss).collect();
        let lb: Vec<f64> = read_metrics(&split.join("metrics.jsonl")).unwrap().steps().map(|s| s.train_loss).collect();
        assert_eq!(la, lb, "{strategy}: identical metrics");
        // Epoch means too: the epoch interrupted mid-way carries its sums through the checkpoint.
        let ea: Vec<(f64, f64, String)> = read_metrics(&whole.join("metrics.jsonl"))
            .unwrap()
            .epochs()
            .map(|e| (e.train_loss, e.val_acc, e.arch.clone()))
            .collect();
        let eb: Vec<(f64, f64, String)> = read_metrics(&split.join("metrics.jsonl"))
            .unwrap()
            .epochs()
            .map(|e| (e.train_loss, e.val_acc, e.arch.clone()))
            .collect();
        assert_eq!(ea, eb, "{strategy}: identical epoch records");
        let _ = std::fs::remove_dir_all(&whole);
        let _ = std::fs::remove_dir_all(&split);
    }
}

#[test]
fn export_writes_torch_names_and_init_from_reads_them_back() {
    let dir = tmp("export");
    let mut cfg = tiny("darts-1st", &dir);
    cfg.run.epochs = 1;
    search(cfg.clone(), &SearchOptions::default());
    let file = dir.join("supernet-torch.safetensors");
    let n = worker::export_torch(&dir, &file).unwrap();
    let tensors = read_safetensors(&file).unwrap();
    assert_eq!(n, tensors.len());
    let names: Vec<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
    for must in ["arch_parameters", "stem.0.weight", "stem.1.running_mean", "classifier.weight", "lastact.0.weight"] {
        assert!(names.contains(&must), "{must} missing from {names:?}");
    }
    assert!(!names.iter().any(|n| n.starts_with("strategy/")), "optimizer state is not exported");

    // A new run initialised from the export starts from exactly those values.
    let dir2 = tmp("init-from");
    let mut cfg2 = cfg.clone();
    cfg2.set_out_dir(&dir2);
    cfg2.run.epochs = 1;
    let opts = SearchOptions { init_from: Some(file.clone()), max_steps: 1, ..Default::default() };
    cfg2.run.checkpoint_every = 1;
    search(cfg2, &opts);
    // After one step α has moved a little from the imported value, but not far.
    let ck = load_checkpoint(&RunFolder::open(&dir2).unwrap().checkpoints(10).unwrap().list().unwrap()[0].dir).unwrap();
    let a0 = &tensors.iter().find(|t| t.name == "arch_parameters").unwrap().data;
    let a1 = &ck.tensor("arch_parameters").unwrap().data;
    let moved: f32 = a0.iter().zip(a1).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
    assert!(moved < 0.01, "α moved {moved} in one step from the imported value");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&dir2);
}

#[test]
fn bad_configurations_fail_with_errors_not_panics() {
    let dir = tmp("bad");
    let mut cfg = tiny("darts-1st", &dir);
    cfg.space.input_size = 32; // the bundled images are 28×28
    let mut events = Vec::new();
    let e = worker::run_search(cfg, &SearchOptions::default(), &mut events).unwrap_err().to_string();
    assert!(e.contains("28") && e.contains("input_size"), "{e}");
    assert!(matches!(events.last(), Some(RunEvent::Failed(_))));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_supernet_runs_with_the_configured_simplification() {
    let mut cfg = tiny("darts-1st", &tmp("simplify"));
    cfg.apply_override("space.simplify=exact").unwrap();
    let data = wgnas::run::setup::load_data(&cfg).unwrap();
    let model = wgnas::run::setup::build_model(common::gpu(), &cfg, &data.data).unwrap();
    assert_eq!(model.passes(), wgnas::topo::Passes::EXACT);
    // The run folder records it, and a resume reads it from there.
    let folder = RunFolder::create(&cfg).unwrap();
    assert_eq!(folder.read_config().unwrap().space.simplify, wgnas::topo::Passes::EXACT);
    let _ = std::fs::remove_dir_all(folder.dir());
}

#[test]
fn tiny_searches_with_full_simplification_run_end_to_end() {
    // TopoNAS `full` (merged kernel-normalized convs, skip+pool as one depthwise op, shared and
    // batched modules, in-place mixing) under DARTS, MiLeNAS and GDAS (sampled paths only).
    for strategy in ["darts-1st", "milenas", "gdas"] {
        let dir = tmp(&format!("full-{strategy}"));
        let mut cfg = tiny(strategy, &dir);
        cfg.apply_override("space.simplify=full").unwrap();
        if strategy == "milenas" {
            // Learned kernel-normalization gains: extra weights that checkpoint like the others.
            cfg.apply_override("space.knorm_gain=true").unwrap();
        }
        let (out, events) = search(cfg, &SearchOptions::default());
        assert_eq!(out.reason, FinishReason::Completed, "{strategy}");
        assert!(matches!(events.last(), Some(RunEvent::Finished(_))), "{strategy}");
        let log = read_metrics(&dir.join("metrics.jsonl")).unwrap();
        let epochs: Vec<_> = log.epochs().collect();
        let (first, last) = (epochs[0].train_loss, epochs[2].train_loss);
        assert!(last < first, "{strategy} full: train loss {first} -> {last}");
        // The derived architecture names the original ops.
        assert!(wgnas::space::nb201::Nb201Arch::parse(&out.arch.to_string()).is_ok(), "{strategy}: {}", out.arch);
        let saved = SearchConfig::load(&dir.join("config.toml")).unwrap();
        assert_eq!(saved.space.simplify, wgnas::topo::Passes::FULL, "{strategy}: the run records its passes");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
