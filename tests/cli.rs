//! The `wgnas` binary as a user runs it: the main search command on a tiny config, and
//! the inspection commands.

use std::process::Command;

const TABLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/nb201/nb201_test_acc_200ep.csv");

fn wgnas(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wgnas"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run wgnas");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn search_with_a_tiny_config_prints_the_architecture_and_its_benchmark_score() {
    assert!(std::path::Path::new(TABLE).exists(), "the NAS-Bench-201 table is missing at {TABLE}");
    let dir = std::env::temp_dir().join(format!("wgnas-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (ok, text) =
        wgnas(&["search", "-c", "configs/tiny.toml", "--out", dir.to_str().unwrap_or_default(), "--nb201", TABLE]);
    assert!(ok, "{text}");
    assert!(text.contains("found architecture: |"), "{text}");
    assert!(text.contains("NAS-Bench-201: CIFAR-10"), "{text}");
    for f in ["config.toml", "metrics.jsonl", "genotype.json", "cell.dot", "checkpoints"] {
        assert!(dir.join(f).exists(), "{f} missing in the run folder");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn invalid_settings_fail_with_a_message() {
    let (ok, text) = wgnas(&["search", "--batch-size", "0"]);
    assert!(!ok);
    assert!(text.contains("batch_size") && text.contains("at least 1"), "{text}");
}

#[test]
fn query_and_topo_print_what_they_are_asked() {
    let arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|";
    let (ok, text) = wgnas(&["query", arch, "--nb201", TABLE]);
    assert!(ok && text.contains("94.36"), "{text}");
    let (ok, text) = wgnas(&["topo", "--space", "nb201"]);
    assert!(ok && text.contains("ReLU on n0: read by 6 candidates"), "{text}");
}

#[test]
fn topo_with_passes_prints_the_plan_and_the_comparison() {
    let (ok, text) = wgnas(&["topo", "--space", "nb201", "--passes", "exact"]);
    assert!(ok, "{text}");
    assert!(text.contains("execution plan of one cell, simplify exact"), "{text}");
    assert!(text.contains("v6 = BN(Conv1x1(v4; e0:conv1x1[col 2], e1:conv1x1[col 2], e3:conv1x1[col 2]))"), "{text}");
    assert!(text.contains("cost, off vs exact"), "{text}");
    let (ok, text) = wgnas(&["topo", "--passes", "share-relu,warp-drive"]);
    assert!(!ok && text.contains("warp-drive") && text.contains("merge-convs"), "{text}");
}

#[test]
fn bad_simplify_values_fail_with_the_valid_ones() {
    let (ok, text) = wgnas(&["search", "--simplify", "fastest"]);
    assert!(!ok && text.contains("fastest") && text.contains("exact") && text.contains("inplace-mix"), "{text}");
    let (ok, text) = wgnas(&["search", "--set", "space.simplify=fastest"]);
    assert!(!ok && text.contains("fastest") && text.contains("exact"), "{text}");
    let (ok, text) = wgnas(&["bench", "simplify", "--levels", "off,fastest"]);
    assert!(!ok && text.contains("fastest") && text.contains("full"), "{text}");
}
