//! End-to-end training: a small conv-BN-ReLU-pool-linear network trained by the engine
//! learns a synthetic task, and its first steps match a CPU-reference training of the
//! same network from the same initial weights on the same batches.

mod common;
use common::*;
use wgnas::demo::{self, DemoConfig, DemoWeights};

#[test]
fn gpu_training_matches_cpu_reference_for_the_first_steps() {
    let cfg = DemoConfig::default();
    let w = DemoWeights::init(&cfg, 11);
    let gpu_logs = demo::train_gpu(gpu(), cfg, &w, 5, 6, |_| {}).unwrap();
    let cpu_logs = demo::train_cpu(cfg, &w, 5, 6).unwrap();
    for (g, c) in gpu_logs.iter().zip(&cpu_logs) {
        // f32 GPU arithmetic against f64 references drifts a little with every SGD step,
        // so the loss is compared at 1e-3 relative and the accuracy exactly.
        let rel = ((g.loss - c.loss) / c.loss).abs();
        assert!(rel < 1e-3, "step {}: gpu loss {} vs cpu {} (rel {rel:.2e})", g.step, g.loss, c.loss);
        assert_eq!(g.accuracy, c.accuracy, "step {}", g.step);
    }
    assert_eq!(gpu_logs.len(), 6);
}

#[test]
fn small_cnn_reaches_95_percent_training_accuracy() {
    let cfg = DemoConfig::default();
    let w = DemoWeights::init(&cfg, 3);
    let logs = demo::train_gpu(gpu(), cfg, &w, 7, 300, |_| {}).unwrap();
    // Training accuracy: mean over the last 20 batches, each measured before its update.
    let tail = &logs[logs.len() - 20..];
    let acc = tail.iter().map(|l| l.accuracy).sum::<f32>() / tail.len() as f32;
    let first = logs[0].loss;
    let last = tail.iter().map(|l| l.loss).sum::<f32>() / tail.len() as f32;
    assert!(acc > 0.95, "training accuracy {acc} after 300 steps (loss {first} -> {last})");
    assert!(last < first * 0.3, "loss {first} -> {last}");
}
