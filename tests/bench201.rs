//! NAS-Bench-201 table and architecture strings against the real table: every
//! string round-trips, the published values come out, ranks handle ties, and
//! malformed strings or corrupted files give errors that say where and what.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use wgnas::bench201::{Bench201, Dataset, NB201_SIZE};
use wgnas::cli::query;
use wgnas::space::nb201::{Nb201Arch, Nb201Op, ALPHA_LEN, NUM_OPS};

/// The third-party table, read in place (it must never be copied into the repository).
const TABLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/nb201/nb201_test_acc_200ep.csv");

const BEST: &str = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|";
const SECOND: &str = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|";
const ALL_SKIP: &str =
    "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|";
const ALL_NONE: &str = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|";

/// The table text; a missing file fails the test (never skips it).
fn table_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        std::fs::read_to_string(TABLE)
            .unwrap_or_else(|e| panic!("the NAS-Bench-201 table is needed at {TABLE} (see shared/data/README.md): {e}"))
    })
}

/// The loaded table, shared by the tests of this file.
fn bench() -> &'static Bench201 {
    static BENCH: OnceLock<Bench201> = OnceLock::new();
    BENCH.get_or_init(|| {
        let t = Instant::now();
        let b = Bench201::from_csv(table_text(), Path::new(TABLE), Some(NB201_SIZE))
            .unwrap_or_else(|e| panic!("loading {TABLE}: {e}"));
        eprintln!("parsed the NB201 table in {:.0} ms", t.elapsed().as_secs_f64() * 1e3);
        b
    })
}

/// Rounds to 2 decimals, the precision of published NB201 numbers.
fn r2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("wgnas-bench201-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// Writes `text` to `name` in the directory and returns its path.
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn every_table_string_round_trips() {
    let b = bench();
    assert_eq!(b.len(), NB201_SIZE);
    for (i, line) in table_text().lines().skip(1).enumerate() {
        let s = line.split(',').nth(3).unwrap();
        let a = Nb201Arch::parse(s).unwrap_or_else(|e| panic!("row {i}: {e}"));
        assert_eq!(a.to_string(), s, "row {i}");
        assert_eq!(b.archs()[i], a, "row {i}");
        assert_eq!(b.index_of(&a), Some(i));
    }
}

#[test]
fn the_table_holds_every_cell_of_the_space() {
    let b = bench();
    for code in 0..NB201_SIZE {
        let mut ops = [Nb201Op::None; 6];
        let mut c = code;
        for op in &mut ops {
            *op = Nb201Op::from_index(c % NUM_OPS).unwrap();
            c /= NUM_OPS;
        }
        let a = Nb201Arch { ops };
        assert!(b.index_of(&a).is_some(), "{a} is missing");
    }
}

#[test]
fn published_values_come_out() {
    let b = bench();
    let best = b.query_str(BEST).unwrap();
    assert_eq!(best.index, 6111);
    assert_eq!(r2(best.cifar10.accuracy), 94.37);
    assert_eq!(best.cifar10.rank, 1);
    assert_eq!(b.best(Dataset::Cifar10).unwrap().index, 6111);

    let second = b.query_str(SECOND).unwrap();
    assert_eq!(second.index, 9930);
    let accs = Dataset::ALL.map(|d| r2(second.score(d).accuracy));
    assert_eq!(accs, [94.36, 73.51, 46.34]);
    // Index 13714 ties 6111 at 94.3733, so 9930 comes third.
    assert_eq!(second.cifar10.rank, 3);

    let skip = b.query_str(ALL_SKIP).unwrap();
    assert_eq!(Dataset::ALL.map(|d| r2(skip.score(d).accuracy)), [54.30, 15.61, 16.32]);
    let none = b.query_str(ALL_NONE).unwrap();
    assert_eq!(Dataset::ALL.map(|d| r2(none.score(d).accuracy)), [10.00, 1.00, 0.83]);
    assert_eq!(none.cifar10.percentile, 0.0, "nothing is worse than chance");
    assert_eq!(none.arch.conv_count(), 0);
}

#[test]
fn ties_share_the_better_rank_in_the_real_table() {
    let b = bench();
    let twin = b.record(13714).unwrap();
    assert_eq!(twin.cifar10.accuracy, b.accuracy(6111, Dataset::Cifar10).unwrap());
    assert_eq!(twin.cifar10.rank, 1);
    assert_eq!(r2(twin.cifar10.percentile), r2(100.0 * (NB201_SIZE - 2) as f64 / NB201_SIZE as f64));
    // 341 cells sit at exactly 10.0 % (chance): they share the rank after all the others.
    let none = b.query_str(ALL_NONE).unwrap();
    assert_eq!(none.cifar10.rank, NB201_SIZE - 341 + 1);
}

#[test]
fn ranks_on_a_tiny_table_with_ties() {
    // Columns in another order than the real file's: the reader goes by header names.
    let csv = "\
ArchitectureString,UniqueString,CIFAR10TestAccuracy200Epochs,CIFAR100TestAccuracy200Epochs,ImageNetTestAccuracy200Epochs
|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,u0,50.0,10.0,5.0
|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|,u1,90.0,30.0,5.0
|nor_conv_1x1~0|+|none~0|none~1|+|none~0|none~1|none~2|,u2,50.0,20.0,5.0
|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|,u3,90.0,40.0,5.0
|avg_pool_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|,u4,70.0,50.0,6.0
";
    let dir = TempDir::new("tiny");
    let path = dir.write("tiny.csv", csv);
    let b = Bench201::load_rows(&path, None).unwrap();
    assert_eq!(b.len(), 5);
    let ranks: Vec<[usize; 3]> = (0..5).map(|i| Dataset::ALL.map(|d| b.record(i).unwrap().score(d).rank)).collect();
    assert_eq!(ranks, [[4, 5, 2], [1, 3, 2], [4, 4, 2], [1, 2, 2], [3, 1, 1]]);
    let r0 = b.record(0).unwrap();
    assert_eq!(r0.cifar10.percentile, 0.0);
    assert_eq!(r0.unique, "u0");
    assert_eq!(b.record(4).unwrap().cifar10.percentile, 100.0 * 2.0 / 5.0);
    assert_eq!(b.best(Dataset::Cifar10).unwrap().index, 1, "lowest index among tied bests");
    // The full-size loader insists on 15,625 rows.
    let e = Bench201::load(&path).unwrap_err().to_string();
    assert!(e.contains("tiny.csv") && e.contains("line 6") && e.contains("5 data rows, expected 15625"), "{e}");
    // A valid cell that the table lacks.
    let e = b.query_str(ALL_SKIP).unwrap_err().to_string();
    assert!(e.contains("is not in") && e.contains("5 architectures"), "{e}");
}

#[test]
fn malformed_strings_give_precise_errors() {
    let cases: &[(&str, &[&str])] = &[
        ("", &["empty string", "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|"]),
        ("|none~0|+|none~0|none~1|", &["expected 3 node groups", "found 2"]),
        ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|+|none~0|", &["expected 3 node groups", "found 4"]),
        (
            "|none~0|+|none~0|nor_conv_3x3~2|+|none~0|none~1|none~2|",
            &["node 2, input 2 of 2 ('nor_conv_3x3~2')", "wrong source index ~2 where ~1 was expected"],
        ),
        (
            "|none~0|+|none~0|none~1|+|none~0|conv_3x3~1|none~2|",
            &[
                "node 3, input 2 of 3",
                "unknown op 'conv_3x3'",
                "valid ops are none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3",
            ],
        ),
        ("|none~0|+|none~0|none~1|+|none~0|none~1|", &["node 3 group", "has 2 inputs, expected 3", "|op~0|op~1|op~2|"]),
        ("|none~0|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", &["node 1 group", "has 2 inputs, expected 1"]),
        ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", &["node 1 group 'none~0|'", "missing the opening '|'"]),
        ("|none~0|+|none~0|none~1+|none~0|none~1|none~2|", &["node 2 group", "missing the closing '|'"]),
        ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2", &["node 3 group", "missing the closing '|'"]),
        (
            "|none~0|+|none~0|none|+|none~0|none~1|none~2|",
            &["node 2, input 2 of 2", "missing the source index", "'none~1'"],
        ),
        ("|none~0|+|none~0|none~x|+|none~0|none~1|none~2|", &["node 2, input 2 of 2", "'~x' is not a node number"]),
        ("|~0|+|none~0|none~1|+|none~0|none~1|none~2|", &["node 1, input 1 of 1", "missing the op name"]),
        ("|none~0|+|none~0||+|none~0|none~1|none~2|", &["node 2, input 2 of 2", "empty input"]),
        ("+|none~0|none~1|+|none~0|none~1|none~2|", &["node 1 group is empty", "expected |op~0|"]),
        ("|None~0|+|none~0|none~1|+|none~0|none~1|none~2|", &["unknown op 'None'"]),
    ];
    for (s, wanted) in cases {
        let e = match Nb201Arch::parse(s) {
            Ok(a) => panic!("'{s}' parsed as {a}"),
            Err(e) => e.to_string(),
        };
        for w in *wanted {
            assert!(e.contains(w), "error for '{s}' should contain \"{w}\", got: {e}");
        }
    }
}

#[test]
fn from_alpha_derives_the_argmax_cell() {
    // A DARTS-collapse α: skip_connect leads everywhere, by a little.
    let mut alpha = vec![0.0f32; ALPHA_LEN];
    for e in 0..6 {
        alpha[e * NUM_OPS..(e + 1) * NUM_OPS].copy_from_slice(&[0.1, 0.3, 0.2, 0.25, 0.29]);
    }
    let a = Nb201Arch::from_alpha(&alpha, &Nb201Op::ALL).unwrap();
    assert_eq!(a.to_string(), ALL_SKIP);
    assert_eq!(r2(bench().query(&a).unwrap().cifar10.accuracy), 54.30);

    // Hand-built α of the best cell; edge 5 has a tie between 1x1 and 3x3 → 1x1 (lower index).
    let rows: [[f32; 5]; 6] = [
        [0.0, 0.1, 0.2, 0.9, 0.3],
        [0.0, 0.1, 0.2, 0.9, 0.3],
        [0.0, 0.1, 0.2, 0.9, 0.3],
        [0.0, 0.8, 0.2, 0.7, 0.3],
        [0.5, 0.1, 0.2, 0.6, 0.3],
        [-1.0, -0.5, 0.4, 0.4, 0.3],
    ];
    let alpha: Vec<f32> = rows.concat();
    let a = Nb201Arch::from_alpha(&alpha, &Nb201Op::ALL).unwrap();
    assert_eq!(a.to_string(), BEST);
    assert_eq!(a.conv_count(), 5);
    // `none` wins edge 4 only when 3x3 is not allowed.
    let a = Nb201Arch::from_alpha(&alpha, &[Nb201Op::None, Nb201Op::SkipConnect, Nb201Op::AvgPool3x3]).unwrap();
    assert_eq!(
        a.to_string(),
        "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
    );
}

/// Writes a copy of the table with `edit` applied to its lines, and returns the load error.
fn corrupted(dir: &TempDir, name: &str, edit: impl FnOnce(&mut Vec<String>)) -> String {
    let mut lines: Vec<String> = table_text().lines().map(str::to_string).collect();
    edit(&mut lines);
    let path = dir.write(name, &(lines.join("\n") + "\n"));
    match Bench201::load(&path) {
        Ok(_) => panic!("{name} loaded"),
        Err(e) => {
            let e = e.to_string();
            assert!(e.contains(name), "the error should name the file: {e}");
            e
        }
    }
}

#[test]
fn corrupted_copies_fail_with_file_and_line() {
    let dir = TempDir::new("corrupt");
    let e = corrupted(&dir, "short.csv", |l| l.truncate(10_001));
    assert!(e.contains("line 10001") && e.contains("10000 data rows, expected 15625"), "{e}");

    let e = corrupted(&dir, "cut.csv", |l| {
        let last = l.last_mut().unwrap();
        last.truncate(70);
    });
    assert!(e.contains("line 15626") && e.contains("expected 5 fields, found 4"), "{e}");

    let e = corrupted(&dir, "number.csv", |l| l[500] = l[500].replacen("9", "x9", 1));
    assert!(e.contains("line 501") && e.contains("is not a number"), "{e}");

    let e = corrupted(&dir, "range.csv", |l| l[7] = format!("193.5{}", &l[7][l[7].find(',').unwrap()..]));
    assert!(e.contains("line 8") && e.contains("CIFAR10TestAccuracy200Epochs = 193.5"), "{e}");

    let e = corrupted(&dir, "arch.csv", |l| l[1234] = l[1234].replacen("~1|", "~2|", 1));
    assert!(e.contains("line 1235") && e.contains("ArchitectureString") && e.contains("where ~1 was expected"), "{e}");

    let e = corrupted(&dir, "header.csv", |l| l[0] = l[0].replace("ImageNetTestAccuracy200Epochs", "ImageNet"));
    assert!(e.contains("line 1") && e.contains("missing column(s) ImageNetTestAccuracy200Epochs"), "{e}");

    let e = corrupted(&dir, "dup.csv", |l| l[20] = l[10].clone());
    assert!(e.contains("line 21") && e.contains("repeats line 11"), "{e}");

    let e = corrupted(&dir, "extra.csv", |l| l.push(l[1].clone()));
    assert!(e.contains("line 15627") && e.contains("more data rows"), "{e}");

    let e = corrupted(&dir, "blank.csv", |l| l.insert(300, String::new()));
    assert!(e.contains("line 301") && e.contains("empty line"), "{e}");

    let e = corrupted(&dir, "empty.csv", |l| l.clear());
    assert!(e.contains("line 1"), "{e}");

    let missing = dir.0.join("absent.csv");
    let e = Bench201::load(&missing).unwrap_err().to_string();
    assert!(e.contains("absent.csv"), "{e}");
}

#[test]
fn crlf_and_a_byte_order_mark_are_accepted() {
    let dir = TempDir::new("crlf");
    let text = format!("\u{feff}{}", table_text().replace('\n', "\r\n"));
    let b = Bench201::load(&dir.write("crlf.csv", &text)).unwrap();
    assert_eq!(b.query_str(BEST).unwrap().index, 6111);
}

#[test]
fn loading_is_fast() {
    let t = Instant::now();
    let b = Bench201::load(Path::new(TABLE)).unwrap();
    let secs = t.elapsed().as_secs_f64();
    eprintln!("Bench201::load: {:.0} ms for {} rows", secs * 1e3, b.len());
    // Generous for debug builds on a loaded CI machine; release takes a small fraction of this.
    assert!(secs < 5.0, "loading took {secs:.2} s");
}

#[test]
fn query_command_reports_text_and_json() {
    let b = bench();
    let text = query::report(b, BEST, false).unwrap();
    for w in ["benchmark index  6111", "CIFAR-10", "94.37", "1 / 15625", "ImageNet16-120", "conv ops         5 of 6"] {
        assert!(text.contains(w), "missing \"{w}\" in:\n{text}");
    }
    let json: serde_json::Value = serde_json::from_str(&query::report(b, SECOND, true).unwrap()).unwrap();
    assert_eq!(json["index"], 9930);
    assert_eq!(json["arch"], SECOND);
    assert_eq!(json["cifar10"]["rank"], 3);
    assert_eq!(json["conv_count"], 5);
    assert_eq!(r2(json["imagenet16_120"]["accuracy"].as_f64().unwrap()), 46.34);

    // A malformed string fails on parsing, before any table is needed.
    let e = query::run("|nor_conv_3x3~0|+|bad~0|", None, false).unwrap_err().to_string();
    assert!(e.contains("expected 3 node groups"), "{e}");
    let e = query::run(BEST, Some(Path::new("/nonexistent/nb201.csv")), false).unwrap_err().to_string();
    assert!(e.contains("/nonexistent/nb201.csv"), "{e}");
    assert!(query::run(BEST, Some(Path::new(TABLE)), true).is_ok());
}
