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
