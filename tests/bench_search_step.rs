//! `wgnas bench search-step` on a tiny supernet: every strategy is measured and the
//! report is well-formed (positive times, memory and kernel counts), and bad
//! configurations fail before any GPU work.

mod common;
use std::sync::{Mutex, MutexGuard};

use common::*;
use wgnas::bench::search_step::{self, Progress, SearchStepBenchConfig, ShapeSet, StepShape};
use wgnas::search::strategy_names;

/// A supernet lavapipe steps through in well under a second: C = 4, N = 1, batch 4 of 3×8×8.
fn tiny() -> StepShape {
    StepShape { name: "tiny".into(), channels: 4, cells: 1, batch: 4, in_channels: 3, input_size: 8, classes: 5 }
}

/// The bench reads the shared GPU's pool and work counters: runs must not overlap.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

fn cfg(shapes: Vec<StepShape>, strategies: Vec<String>) -> SearchStepBenchConfig {
    SearchStepBenchConfig { shapes: ShapeSet::Custom(shapes), warmup: 1, reps: 1, strategies, seed: 3 }
}

#[test]
fn every_strategy_is_measured_and_the_report_is_well_formed() {
    let _serial = serial();
    let (mut started, mut finished) = (0, 0);
    let report = search_step::run(gpu(), cfg(vec![tiny()], Vec::new()), &mut |p| match p {
        Progress::Start { .. } => started += 1,
        Progress::Row(_) => finished += 1,
    })
    .unwrap();

    let names = strategy_names();
    assert_eq!((started, finished), (names.len(), names.len()));
    let got: Vec<&str> = report.rows.iter().map(|r| r.strategy.as_str()).collect();
    assert_eq!(got, names, "one row per strategy, in registry order");
    assert_eq!(report.shapes, vec![tiny()]);
    for r in &report.rows {
        assert_eq!(r.shape, "tiny");
        assert!(r.ms > 0.0 && r.ms.is_finite(), "{r:?}");
        assert!(r.record_ms > 0.0 && r.wall_ms >= r.record_ms && r.wall_ms.is_finite(), "{r:?}");
        assert!(r.peak_bytes > 0 && r.peak_bytes >= r.live_bytes, "{r:?}");
        assert_eq!(r.step_bytes, r.peak_bytes - r.live_bytes);
        // A step allocates activations and gradients on top of the resident state.
        assert!(r.step_bytes > 0, "{r:?}");
        assert!(r.dispatches > 0.0, "{r:?}");
        // Each step is flushed on its own: at least one submission, more only if the arena filled.
        assert!(r.submissions >= 1.0, "{r:?}");
        assert!(r.params > 0 && (r.warmup, r.reps) == (1, 1), "{r:?}");
    }
    // The second-order step does strictly more work than the first-order one.
    let kernels = |s: &str| report.rows.iter().find(|r| r.strategy == s).map(|r| r.dispatches).unwrap();
    assert!(kernels("darts-2nd") > kernels("darts-1st"));

    let table = search_step::format_table(&report);
    for name in &names {
        assert!(table.contains(name), "{table}");
    }
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["rows"].as_array().map(Vec::len), Some(names.len()));
    assert!(json["rows"][0]["peak_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn a_chosen_subset_runs_in_the_given_order() {
    let _serial = serial();
    let chosen = vec!["gdas".to_string(), "darts-1st".to_string()];
    let report = search_step::run(gpu(), cfg(vec![tiny()], chosen.clone()), &mut |_| {}).unwrap();
    let got: Vec<String> = report.rows.iter().map(|r| r.strategy.clone()).collect();
    assert_eq!(got, chosen);
}

#[test]
fn bad_configurations_fail_before_any_work() {
    let mut calls = 0;
    let unknown = search_step::run(gpu(), cfg(vec![tiny()], vec!["darts-3rd".into()]), &mut |_| calls += 1);
    assert!(unknown.is_err());
    let odd = StepShape { input_size: 10, ..tiny() };
    assert!(search_step::run(gpu(), cfg(vec![odd], Vec::new()), &mut |_| calls += 1).is_err());
    let empty_batch = StepShape { batch: 0, ..tiny() };
    assert!(search_step::run(gpu(), cfg(vec![empty_batch], Vec::new()), &mut |_| calls += 1).is_err());
    assert!(search_step::run(gpu(), cfg(Vec::new(), Vec::new()), &mut |_| calls += 1).is_err());
    assert_eq!(calls, 0, "nothing was started");
}

#[test]
fn shape_sets_parse_and_default_to_small_on_a_cpu_adapter() {
    assert_eq!("full".parse::<ShapeSet>(), Ok(ShapeSet::Full));
    assert_eq!("Small".parse::<ShapeSet>(), Ok(ShapeSet::Small));
    assert_eq!("both".parse::<ShapeSet>().map(|s| s.shapes()), Ok(vec![StepShape::small(), StepShape::full()]));
    assert!("huge".parse::<ShapeSet>().is_err());
    assert_eq!(StepShape::full().nb201(), wgnas::space::nb201::Nb201Config::default());

    let cpu = gpu().info().device_type == wgpu::DeviceType::Cpu;
    let auto = SearchStepBenchConfig::for_device(gpu(), false);
    assert_eq!(auto.shapes, if cpu { ShapeSet::Small } else { ShapeSet::Both });
    assert_eq!(SearchStepBenchConfig::for_device(gpu(), true).shapes, ShapeSet::Both);
    assert!(auto.strategies.is_empty() && auto.reps >= 1);
}
