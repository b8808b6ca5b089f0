//! `wgnas bench simplify` on a tiny supernet: one row per level, ratios against `off`, the
//! exact level's loss equal to `off`'s, JSON output, and bad configurations failing before
//! any GPU work.

mod common;
use std::sync::{Mutex, MutexGuard};

use common::*;
use wgnas::bench::search_step::{ShapeSet, StepShape};
use wgnas::bench::simplify::{self, default_levels, parse_levels, Progress, SimplifyBenchConfig};
use wgnas::topo::Passes;

/// C = 4, N = 1, batch 4 of 3×8×8: a step lavapipe runs in well under a second.
fn tiny() -> StepShape {
    StepShape { name: "tiny".into(), channels: 4, cells: 1, batch: 4, in_channels: 3, input_size: 8, classes: 5 }
}

/// The bench reads the shared GPU's pool and work counters: runs must not overlap.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

fn cfg(levels: Vec<Passes>) -> SimplifyBenchConfig {
    SimplifyBenchConfig {
        shapes: ShapeSet::Custom(vec![tiny()]),
        levels,
        strategy: "darts-1st".into(),
        warmup: 1,
        reps: 1,
        seed: 5,
    }
}

#[test]
fn every_level_is_one_row_compared_with_off() {
    let _serial = serial();
    let mut events = Vec::new();
    let report = simplify::run(gpu(), cfg(default_levels()), &mut |p| {
        events.push(match p {
            Progress::Start { level, .. } => format!("start {level}"),
            Progress::Row { level, .. } => format!("row {level}"),
        })
    })
    .unwrap();
    assert_eq!(events, ["start off", "row off", "start exact", "row exact", "start full", "row full"]);

    let levels: Vec<&str> = report.rows.iter().map(|r| r.level.as_str()).collect();
    assert_eq!(levels, ["off", "exact", "full"]);
    assert_eq!(report.strategy, "darts-1st");
    for r in &report.rows {
        assert_eq!((r.step.shape.as_str(), r.step.strategy.as_str()), ("tiny", "darts-1st"));
        assert!(r.step.ms > 0.0 && r.step.peak_bytes > 0 && r.step.dispatches > 0.0, "{r:?}");
        assert!(r.step.loss.is_finite() && r.step.loss > 0.0, "{r:?}");
        assert!(r.ms_ratio.is_some() && r.peak_ratio.is_some() && r.kernels_ratio.is_some(), "{r:?}");
    }
    let off = &report.rows[0];
    assert_eq!((off.ms_ratio, off.peak_ratio, off.kernels_ratio), (Some(1.0), Some(1.0), Some(1.0)));
    assert_eq!(off.loss_matches_off, None, "off is the reference");
    // The exact passes keep the function: same seed, batches and steps give off's loss.
    assert_eq!(report.rows[1].loss_matches_off, Some(true), "{:?} vs {:?}", report.rows[1].step.loss, off.step.loss);
    assert!(report.rows[1].exact && !report.rows[2].exact);
    assert_eq!(report.rows[2].loss_matches_off, None, "full re-parameterizes: no equality check");

    let table = simplify::format_table(&report);
    let body: Vec<&str> = table.lines().filter(|l| l.contains(" tiny ") && !l.starts_with("shape")).collect();
    assert_eq!(body.len(), 3, "{table}");
    assert!(body[0].starts_with("off ") && body[0].contains("1.000"), "{table}");
    assert!(table.contains("kernels ratio") && body[1].trim_end().ends_with("yes"), "{table}");

    let json: serde_json::Value = serde_json::from_str(&serde_json::to_string(&report).unwrap()).unwrap();
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["level"], "off");
    assert_eq!(rows[0]["ms_ratio"], 1.0);
    assert!(rows[1]["peak_bytes"].as_u64().unwrap() > 0, "step figures are flattened into the row");
}

#[test]
fn without_off_there_are_no_ratios() {
    let _serial = serial();
    let report = simplify::run(gpu(), cfg(vec![Passes::EXACT]), &mut |_| {}).unwrap();
    assert_eq!(report.rows.len(), 1);
    let r = &report.rows[0];
    assert_eq!((r.ms_ratio, r.peak_ratio, r.kernels_ratio, r.loss_matches_off), (None, None, None, None));
    assert!(simplify::format_table(&report).lines().any(|l| l.starts_with("exact ") && l.contains(" - ")));
}

#[test]
fn unknown_levels_and_bad_configurations_fail_before_any_work() {
    let e = parse_levels("off,exact,turbo").unwrap_err().to_string();
    assert!(e.contains("turbo") && e.contains("full"), "{e}");
    assert!(parse_levels("").is_err());
    assert_eq!(parse_levels("off,share-relu+batch-convs").unwrap()[1].to_string(), "share-relu,batch-convs");

    let mut calls = 0;
    assert!(simplify::run(gpu(), cfg(Vec::new()), &mut |_| calls += 1).is_err());
    let unknown = SimplifyBenchConfig { strategy: "darts-3rd".into(), ..cfg(default_levels()) };
    assert!(simplify::run(gpu(), unknown, &mut |_| calls += 1).is_err());
    let odd = SimplifyBenchConfig {
        shapes: ShapeSet::Custom(vec![StepShape { input_size: 10, ..tiny() }]),
        ..cfg(default_levels())
    };
    assert!(simplify::run(gpu(), odd, &mut |_| calls += 1).is_err());
    assert_eq!(calls, 0, "nothing was started");
}

#[test]
fn defaults_are_the_small_shape_and_three_levels() {
    let d = SimplifyBenchConfig::default();
    assert_eq!((d.shapes, d.levels, d.strategy.as_str()), (ShapeSet::Small, default_levels(), "darts-1st"));
    assert_eq!((d.warmup, d.reps), (2, 5));
}
