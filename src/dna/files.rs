//! The files of a DNA run folder.
//!
//! ```text
//! runs/<timestamp>-dna/
//!   dna.toml                 the resolved config (every key)
//!   log.jsonl                progress, one DnaRecord per line (append + flush)
//!   teacher/                 the teacher's `wgnas train` run (when trained here)
//!   student/block{k}.safetensors   the distilled student blocks (k = 1, 2, 3)
//!   ratings_block{k}.csv     every path of block k: path,score,params,flops
//!   result.json              the chosen architecture, alternatives, per-block fronts
//!   result_<label>.json      the same result, named by its budget (e.g. result_params-120000.json)
//!   retrain/                 the retraining run of the chosen architecture (optional)
//!   random/                  the training run of a random architecture within the budget (optional)
//! ```
//!
//! Block numbers `k` are 1-based everywhere (file names and records); epochs are 0-based,
//! as in `metrics.jsonl`. Whole files are written atomically (`run::folder::atomic_write`);
//! the log is appended one flushed line at a time and a torn last line is ignored.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Deserializer, Serialize};

use super::config::DnaConfig;
use super::knapsack::{Budget, Candidate, Combination};
use crate::run::folder::{atomic_write, clean_stale_temps, utc_stamp};
use crate::{Error, Result};

/// File name of the resolved DNA config.
pub const CONFIG_FILE: &str = "dna.toml";
/// File name of the progress log.
pub const LOG_FILE: &str = "log.jsonl";
/// File name of the final result.
pub const RESULT_FILE: &str = "result.json";
/// Folder of the teacher's training run.
pub const TEACHER_DIR: &str = "teacher";
/// Folder of the distilled student blocks.
pub const STUDENT_DIR: &str = "student";
/// Folder of the retraining run.
pub const RETRAIN_DIR: &str = "retrain";
/// Folder of the random baseline's training run.
pub const RANDOM_DIR: &str = "random";
/// Header line of a ratings file.
pub const RATINGS_HEADER: &str = "path,score,params,flops";

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

fn format_err(path: &Path, message: impl Into<String>) -> Error {
    Error::Format { path: path.to_path_buf(), message: message.into() }
}

// ---- the folder ----------------------------------------------------------------------

/// One DNA run's folder and the paths of its files.
#[derive(Debug, Clone)]
pub struct DnaFolder {
    dir: PathBuf,
}

impl DnaFolder {
    /// Creates the folder of a new run for `cfg` (`run.out_dir`, or a new
    /// `<runs_root>/<timestamp>-dna[-n]`) and writes `dna.toml`.
    pub fn create(cfg: &DnaConfig) -> Result<Self> {
        let folder = if cfg.run.out_dir.as_os_str().is_empty() {
            Self::create_in(&cfg.run.runs_root, SystemTime::now())?
        } else {
            Self::create_at(&cfg.run.out_dir)?
        };
        folder.write_config(cfg)?;
        Ok(folder)
    }

    /// Creates `<root>/<timestamp>-dna`, adding `-2`, `-3`, ... if taken.
    pub fn create_in(root: &Path, now: SystemTime) -> Result<Self> {
        fs::create_dir_all(root).map_err(io_err(root))?;
        let base = format!("{}-dna", utc_stamp(now));
        for n in 1u32.. {
            let dir = root.join(if n == 1 { base.clone() } else { format!("{base}-{n}") });
            // `create_dir` fails on an existing folder, so two runs never share one.
            match fs::create_dir(&dir) {
                Ok(()) => return Self::with_subdirs(dir),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_err(&dir)(e)),
            }
        }
        Err(Error::invalid("dna folder", format!("no free folder name under {}", root.display())))
    }

    /// Uses `dir` (created if missing) for a new run; it must not hold a DNA run already.
    pub fn create_at(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        if dir.join(CONFIG_FILE).exists() {
            let msg = format!("{} already holds a DNA run ({CONFIG_FILE}); choose another folder", dir.display());
            return Err(Error::invalid("dna folder", msg));
        }
        Self::with_subdirs(dir.to_path_buf())
    }

    /// Opens an existing run's folder (it must have `dna.toml`) and removes stale temporary files.
    pub fn open(dir: &Path) -> Result<Self> {
        if !dir.join(CONFIG_FILE).is_file() {
            let msg = format!("{} is not a DNA run folder: it has no {CONFIG_FILE}", dir.display());
            return Err(Error::invalid("dna folder", msg));
        }
        clean_stale_temps(dir)?;
        Self::with_subdirs(dir.to_path_buf())
    }

    /// The folder's file names at `dir`, without touching it (for readers such as the app,
    /// which may look at a run another process is writing).
    pub fn at(dir: &Path) -> Self {
        DnaFolder { dir: dir.to_path_buf() }
    }

    fn with_subdirs(dir: PathBuf) -> Result<Self> {
        // teacher/ and retrain/ are run folders their trainers create; student/ is ours.
        let student = dir.join(STUDENT_DIR);
        fs::create_dir_all(&student).map_err(io_err(&student))?;
        Ok(DnaFolder { dir })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `dna.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join(CONFIG_FILE)
    }

    /// `log.jsonl`.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join(LOG_FILE)
    }

    /// `result.json`.
    pub fn result_path(&self) -> PathBuf {
        self.dir.join(RESULT_FILE)
    }

    /// `result_<label>.json`: the result under a budget's label (see `pipeline::budget_label`).
    pub fn labeled_result_path(&self, label: &str) -> PathBuf {
        self.dir.join(format!("result_{label}.json"))
    }

    /// `ratings_block{block}.csv` (`block` is 1-based).
    pub fn ratings_path(&self, block: usize) -> PathBuf {
        self.dir.join(format!("ratings_block{block}.csv"))
    }

    /// `teacher/`: the teacher's training run.
    pub fn teacher_dir(&self) -> PathBuf {
        self.dir.join(TEACHER_DIR)
    }

    /// `student/`.
    pub fn student_dir(&self) -> PathBuf {
        self.dir.join(STUDENT_DIR)
    }

    /// `student/block{block}.safetensors` (`block` is 1-based).
    pub fn student_block_path(&self, block: usize) -> PathBuf {
        self.student_dir().join(format!("block{block}.safetensors"))
    }

    /// `retrain/`: the retraining run.
    pub fn retrain_dir(&self) -> PathBuf {
        self.dir.join(RETRAIN_DIR)
    }

    /// `random/`: the random baseline's training run.
    pub fn random_dir(&self) -> PathBuf {
        self.dir.join(RANDOM_DIR)
    }

    /// Writes `dna.toml`.
    pub fn write_config(&self, cfg: &DnaConfig) -> Result<()> {
        cfg.save(&self.config_path())
    }

    /// Reads and validates `dna.toml`.
    pub fn read_config(&self) -> Result<DnaConfig> {
        DnaConfig::load(&self.config_path())
    }

    /// Writes `ratings_block{block}.csv`.
    pub fn write_ratings(&self, block: usize, ratings: &[Rating]) -> Result<()> {
        write_ratings(&self.ratings_path(block), ratings)
    }

    /// Reads `ratings_block{block}.csv`.
    pub fn read_ratings(&self, block: usize) -> Result<Vec<Rating>> {
        read_ratings(&self.ratings_path(block))
    }

    /// Writes `result.json`.
    pub fn write_result(&self, result: &DnaResult) -> Result<()> {
        result.save(&self.result_path())
    }

    /// Reads `result.json`.
    pub fn read_result(&self) -> Result<DnaResult> {
        DnaResult::load(&self.result_path())
    }
}

// ---- ratings_block{k}.csv ------------------------------------------------------------

/// One rated path of a block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rating {
    /// The path: the block's mbconv layer list (e.g. `mb6_k3,mb3_k5,skip`), opaque here.
    pub path: String,
    /// mean|S − T| / std(T) over the held-out batches; lower is better.
    pub score: f64,
    /// Parameters of the path.
    pub params: u64,
    /// Multiply-accumulates of the path.
    pub flops: u64,
}

impl Rating {
    /// The knapsack candidate of this rating, with the given id (its row index, say).
    pub fn candidate(&self, id: usize) -> Candidate {
        Candidate { id, score: self.score, params: self.params, flops: self.flops }
    }
}

/// The knapsack candidates of a block's ratings, with the row index as id.
pub fn candidates(ratings: &[Rating]) -> Vec<Candidate> {
    ratings.iter().enumerate().map(|(i, r)| r.candidate(i)).collect()
}

/// Writes ratings as CSV (header [`RATINGS_HEADER`]), atomically. Paths containing a comma
/// or a quote are quoted (RFC 4180); scores keep full precision (shortest exact decimal).
pub fn write_ratings(path: &Path, ratings: &[Rating]) -> Result<()> {
    let mut text = format!("{RATINGS_HEADER}\n");
    for r in ratings {
        if r.path.contains(['\n', '\r']) {
            return Err(Error::invalid("ratings", format!("path {:?} contains a line break", r.path)));
        }
        let name =
            if r.path.contains([',', '"']) { format!("\"{}\"", r.path.replace('"', "\"\"")) } else { r.path.clone() };
        text.push_str(&format!("{name},{},{},{}\n", r.score, r.params, r.flops));
    }
    atomic_write(path, text.as_bytes())
}

/// Reads a ratings CSV written by [`write_ratings`]; errors name the file and line.
pub fn read_ratings(path: &Path) -> Result<Vec<Rating>> {
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, h)) if h.trim() == RATINGS_HEADER => {}
        Some((_, h)) => {
            return Err(format_err(path, format!("line 1: expected header '{RATINGS_HEADER}', found '{h}'")))
        }
        None => return Err(format_err(path, format!("empty file: expected header '{RATINGS_HEADER}'"))),
    }
    let mut out = Vec::new();
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        out.push(parse_rating(line).map_err(|m| format_err(path, format!("line {}: {m}", i + 1)))?);
    }
    Ok(out)
}

/// One data row: the last three fields never contain commas, so split from the right.
fn parse_rating(line: &str) -> std::result::Result<Rating, String> {
    let mut parts = line.trim_end_matches('\r').rsplitn(4, ',');
    let (Some(flops), Some(params), Some(score), Some(name)) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("expected 4 fields (path,score,params,flops), found '{line}'"));
    };
    let score: f64 = score.trim().parse().map_err(|_| format!("score '{score}' is not a number"))?;
    let int = |what: &str, v: &str| v.trim().parse::<u64>().map_err(|_| format!("{what} '{v}' is not a whole number"));
    let (params, flops) = (int("params", params)?, int("flops", flops)?);
    let path = match name.strip_prefix('"') {
        Some(rest) => {
            let inner = rest.strip_suffix('"').ok_or_else(|| format!("unterminated quote in path {name}"))?;
            inner.replace("\"\"", "\"")
        }
        None => name.to_string(),
    };
    if path.is_empty() {
        return Err("empty path".into());
    }
    Ok(Rating { path, score, params, flops })
}

// ---- result.json -----------------------------------------------------------------------

/// One architecture found by the search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// mbconv architecture string: the blocks' paths joined by `|`.
    pub arch: String,
    /// Σ of the blocks' scores.
    pub score: f64,
    /// Σ params of the chosen paths.
    pub params: u64,
    /// Σ multiply-accumulates of the chosen paths.
    pub flops: u64,
}

impl Choice {
    /// The choice of a knapsack combination whose ids are row indices into `ratings`
    /// (one list per block, as in [`candidates`]).
    pub fn from_combination(c: &Combination, ratings: &[Vec<Rating>]) -> Result<Choice> {
        if c.ids.len() != ratings.len() {
            let msg = format!("combination has {} blocks but {} rating lists were given", c.ids.len(), ratings.len());
            return Err(Error::invalid("dna result", msg));
        }
        let paths = c
            .ids
            .iter()
            .zip(ratings)
            .enumerate()
            .map(|(b, (&id, rs))| {
                rs.get(id).map(|r| r.path.as_str()).ok_or_else(|| {
                    Error::invalid("dna result", format!("block {}: no rating row {id} (of {})", b + 1, rs.len()))
                })
            })
            .collect::<Result<Vec<&str>>>()?;
        Ok(Choice { arch: paths.join("|"), score: c.score, params: c.params, flops: c.flops })
    }
}

/// The teacher the student was distilled from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeacherInfo {
    /// NB201 architecture string.
    pub arch: String,
    /// Test accuracy in %.
    pub test_acc: f64,
    /// Parameters.
    pub params: u64,
    /// Multiply-accumulates.
    pub flops: u64,
    /// Its `wgnas train` run folder.
    pub run_dir: PathBuf,
}

/// The retraining of the chosen architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrainInfo {
    /// Its run folder.
    pub run_dir: PathBuf,
    /// Test accuracy in %.
    pub test_acc: f64,
}

/// `result.json`: what a DNA run found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DnaResult {
    /// The budget searched under.
    pub budget: Budget,
    /// The best architecture.
    pub best: Choice,
    /// The next best ones, best first.
    pub alternatives: Vec<Choice>,
    /// Per block, its Pareto front of rated paths (see `knapsack::pareto_front`).
    pub fronts: Vec<Vec<Rating>>,
    /// The teacher.
    pub teacher: TeacherInfo,
    /// The retraining, if one was run.
    pub retrain: Option<RetrainInfo>,
    /// The random baseline within the same budget, if one was trained.
    #[serde(default)]
    pub random: Option<RandomInfo>,
}

/// A random architecture within the budget, trained like the chosen one (a baseline).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RandomInfo {
    /// The architecture, its rating (Σ of its paths' scores), params and MACs.
    pub choice: Choice,
    /// Its run folder.
    pub run_dir: PathBuf,
    /// Test accuracy in %.
    pub test_acc: f64,
}

impl DnaResult {
    /// Writes pretty JSON to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::invalid("dna result", format!("cannot write as JSON: {e}")))?;
        atomic_write(path, format!("{text}\n").as_bytes())
    }

    /// Reads `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = fs::read_to_string(path).map_err(io_err(path))?;
        serde_json::from_str(&text).map_err(|e| format_err(path, e.to_string()))
    }
}

// ---- log.jsonl ---------------------------------------------------------------------------

/// One progress record of `log.jsonl`, tagged by `"kind"`. Non-finite numbers are
/// written as `null` (JSON has none) and read back as NaN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DnaRecord {
    /// The teacher finished an epoch.
    TeacherEpoch {
        /// Epoch (0-based).
        epoch: u64,
        /// Mean training loss.
        #[serde(deserialize_with = "nan_if_null")]
        train_loss: f64,
        /// Test accuracy in %.
        #[serde(deserialize_with = "nan_if_null")]
        test_acc: f64,
    },
    /// A student block finished a distillation epoch.
    DistillEpoch {
        /// Block (1-based).
        block: usize,
        /// Epoch (0-based).
        epoch: u64,
        /// Mean MSE to the teacher's block output.
        #[serde(deserialize_with = "nan_if_null")]
        loss: f64,
        /// Wall time of the epoch.
        #[serde(deserialize_with = "nan_if_null")]
        seconds: f64,
    },
    /// Every path of a block was rated.
    Rated {
        /// Block (1-based).
        block: usize,
        /// Paths rated.
        paths: usize,
        /// Wall time.
        #[serde(deserialize_with = "nan_if_null")]
        seconds: f64,
    },
    /// The constrained search finished.
    Searched {
        /// Wall time.
        #[serde(deserialize_with = "nan_if_null")]
        seconds: f64,
    },
    /// The chosen architecture finished a retraining epoch.
    RetrainEpoch {
        /// Epoch (0-based).
        epoch: u64,
        /// Test accuracy in %.
        #[serde(deserialize_with = "nan_if_null")]
        test_acc: f64,
    },
    /// The whole run finished.
    Finished {
        /// Wall time of the run.
        #[serde(deserialize_with = "nan_if_null")]
        seconds: f64,
    },
}

/// serde_json writes NaN and ±inf as `null`: read that back as NaN.
fn nan_if_null<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Appends [`DnaRecord`]s to `log.jsonl`, one flushed line each.
#[derive(Debug)]
pub struct DnaLog {
    path: PathBuf,
    file: File,
}

impl DnaLog {
    /// Starts a new, empty log at `path` (replacing any file there).
    pub fn create(path: &Path) -> Result<Self> {
        atomic_write(path, b"")?;
        Self::open(path)
    }

    /// Appends to the log at `path` (created if missing), first cutting off a torn last
    /// line left by a crash.
    pub fn open(path: &Path) -> Result<Self> {
        if path.exists() {
            let bytes = fs::read(path).map_err(io_err(path))?;
            let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            if keep < bytes.len() {
                atomic_write(path, &bytes[..keep])?;
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(path).map_err(io_err(path))?;
        Ok(DnaLog { path: path.to_path_buf(), file })
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record as one line (one `write` call) and flushes it.
    pub fn append(&mut self, record: &DnaRecord) -> Result<()> {
        let mut line = serde_json::to_string(record)
            .map_err(|e| Error::invalid("dna log", format!("cannot write record as JSON: {e}")))?;
        line.push('\n');
        self.file.write_all(line.as_bytes()).and_then(|_| self.file.flush()).map_err(io_err(&self.path))
    }

    /// Reads every record of the log at `path`. An unterminated last line that does not
    /// parse is a torn write and is skipped; any other bad line is an error with its number.
    pub fn read(path: &Path) -> Result<Vec<DnaRecord>> {
        Ok(Self::read_from(path, 0)?.0)
    }

    /// The complete records from byte `offset` on, and the offset to continue from (for
    /// following a running log). An unterminated last line that does not parse is left for
    /// the next call.
    pub fn read_from(path: &Path, offset: u64) -> Result<(Vec<DnaRecord>, u64)> {
        let bytes = fs::read(path).map_err(io_err(path))?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let Some(rest) = bytes.get(start..) else {
            let msg = format!("the log shrank to {} bytes, below the followed offset {offset}", bytes.len());
            return Err(format_err(path, msg));
        };
        let text = String::from_utf8_lossy(rest);
        let mut records = Vec::new();
        let mut consumed = 0usize;
        for line in text.split_inclusive('\n') {
            let terminated = line.ends_with('\n');
            match serde_json::from_str::<DnaRecord>(line.trim()) {
                Ok(r) => records.push(r),
                Err(_) if line.trim().is_empty() => {}
                Err(_) if !terminated => break,
                Err(e) => {
                    let n = text[..consumed].matches('\n').count() + 1;
                    return Err(format_err(path, format!("line {n} (from byte {offset}): {e}")));
                }
            }
            consumed += line.len();
        }
        Ok((records, offset + consumed as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wgnas-dna-files-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn ratings() -> Vec<Rating> {
        vec![
            Rating { path: "mb6_k3,mb3_k5,skip".into(), score: 0.1 + 0.2, params: 1234, flops: 56_789 },
            Rating { path: "mb3_k3".into(), score: 1e-300, params: 0, flops: u64::MAX },
            Rating { path: "odd \"name\", quoted".into(), score: 7.0 / 3.0, params: 5, flops: 6 },
        ]
    }

    #[test]
    fn ratings_round_trip_bit_exact() {
        let dir = temp_dir("ratings");
        let f = dir.join("ratings_block1.csv");
        write_ratings(&f, &ratings()).unwrap();
        let text = fs::read_to_string(&f).unwrap();
        assert!(text.starts_with("path,score,params,flops\n\"mb6_k3,mb3_k5,skip\",0.30000000000000004,1234,56789\n"));
        let back = read_ratings(&f).unwrap();
        assert_eq!(back, ratings());
        assert_eq!(candidates(&back)[2], Candidate { id: 2, score: 7.0 / 3.0, params: 5, flops: 6 });
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn ratings_parse_errors_name_file_and_line() {
        let dir = temp_dir("bad-ratings");
        let f = dir.join("r.csv");
        for (text, want) in [
            ("", "empty file"),
            ("path,score\n", "line 1: expected header"),
            ("path,score,params,flops\na,0.5,1,2\nb,zero,1,2\n", "line 3: score 'zero'"),
            ("path,score,params,flops\na,0.5,-1,2\n", "line 2: params '-1'"),
            ("path,score,params,flops\n0.5,1,2\n", "line 2: expected 4 fields"),
            ("path,score,params,flops\n\"a,b,0.5,1,2\n", "unterminated quote"),
        ] {
            fs::write(&f, text).unwrap();
            let e = read_ratings(&f).unwrap_err().to_string();
            assert!(e.contains("r.csv") && e.contains(want), "{want}: {e}");
        }
        let bad = [Rating { path: "a\nb".into(), score: 0.0, params: 0, flops: 0 }];
        assert!(write_ratings(&f, &bad).unwrap_err().to_string().contains("line break"));
        fs::remove_dir_all(dir).unwrap();
    }

    fn result() -> DnaResult {
        let choice = |arch: &str, score| Choice { arch: arch.into(), score, params: 10, flops: 20 };
        DnaResult {
            budget: Budget { max_params: Some(1000), max_flops: None },
            best: choice("mb6_k3,skip|mb3_k5,mb3_k5|mb6_k7,skip", 0.75),
            alternatives: vec![choice("a|b|c", 0.8)],
            fronts: vec![ratings(), vec![], ratings()[..1].to_vec()],
            teacher: TeacherInfo {
                arch: super::super::config::DEFAULT_TEACHER_ARCH.into(),
                test_acc: 91.25,
                params: 1_000_000,
                flops: 2_000_000,
                run_dir: PathBuf::from("runs/x/teacher"),
            },
            retrain: Some(RetrainInfo { run_dir: PathBuf::from("runs/x/retrain"), test_acc: 90.5 }),
            random: Some(RandomInfo {
                choice: choice("a|b|d", 0.9),
                run_dir: PathBuf::from("runs/x/random"),
                test_acc: 80.0,
            }),
        }
    }

    #[test]
    fn result_round_trips_and_reports_bad_json() {
        let dir = temp_dir("result");
        let folder = DnaFolder::create_at(&dir).unwrap();
        folder.write_result(&result()).unwrap();
        assert_eq!(folder.read_result().unwrap(), result());
        let text = fs::read_to_string(folder.result_path()).unwrap();
        assert!(text.contains("\"max_flops\": null") && text.contains("\"retrain\""), "{text}");
        fs::write(folder.result_path(), "{\"budget\": 3}").unwrap();
        let e = folder.read_result().unwrap_err().to_string();
        assert!(e.contains("result.json"), "{e}");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn choice_joins_the_block_paths() {
        let lists = vec![ratings(), ratings()];
        let c = Combination { ids: vec![1, 0], score: 2.5, params: 3, flops: 4 };
        let choice = Choice::from_combination(&c, &lists).unwrap();
        assert_eq!(choice.arch, "mb3_k3|mb6_k3,mb3_k5,skip");
        let c = Combination { ids: vec![1, 9], ..c };
        assert!(Choice::from_combination(&c, &lists).unwrap_err().to_string().contains("block 2"));
    }

    #[test]
    fn log_appends_reads_and_skips_a_torn_tail() {
        let dir = temp_dir("log");
        let path = dir.join(LOG_FILE);
        let records = vec![
            DnaRecord::TeacherEpoch { epoch: 0, train_loss: 2.25, test_acc: 40.0 },
            DnaRecord::DistillEpoch { block: 1, epoch: 0, loss: 0.5, seconds: 1.5 },
            DnaRecord::Rated { block: 1, paths: 2058, seconds: 30.0 },
            DnaRecord::Searched { seconds: 0.1 },
            DnaRecord::RetrainEpoch { epoch: 3, test_acc: 88.0 },
            DnaRecord::Finished { seconds: 100.0 },
        ];
        let mut log = DnaLog::create(&path).unwrap();
        for r in &records[..3] {
            log.append(r).unwrap();
        }
        let (first, offset) = DnaLog::read_from(&path, 0).unwrap();
        assert_eq!(first, records[..3]);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("{\"kind\":\"teacher_epoch\",\"epoch\":0,"), "{text}");
        // A crash mid-line: readers skip it, reopening cuts it off.
        OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"kind\":\"sear").unwrap();
        assert_eq!(DnaLog::read(&path).unwrap(), records[..3]);
        assert_eq!(DnaLog::read_from(&path, offset).unwrap(), (vec![], offset));
        let mut log = DnaLog::open(&path).unwrap();
        for r in &records[3..] {
            log.append(r).unwrap();
        }
        assert_eq!(DnaLog::read(&path).unwrap(), records);
        assert_eq!(DnaLog::read_from(&path, offset).unwrap().0, records[3..]);
        // NaN goes out as null and comes back as NaN.
        log.append(&DnaRecord::DistillEpoch { block: 2, epoch: 1, loss: f64::NAN, seconds: 1.0 }).unwrap();
        match DnaLog::read(&path).unwrap().last() {
            Some(DnaRecord::DistillEpoch { loss, .. }) => assert!(loss.is_nan()),
            other => panic!("{other:?}"),
        }
        // A bad complete line is an error with its number.
        fs::write(&path, format!("{}\n{{\"kind\":\"nope\"}}\n", serde_json::to_string(&records[0]).unwrap())).unwrap();
        let e = DnaLog::read(&path).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("log.jsonl"), "{e}");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn folder_layout_and_config_round_trip() {
        let dir = temp_dir("folder");
        let mut cfg = DnaConfig::default();
        cfg.run.out_dir = dir.join("run");
        cfg.search.max_flops = 777;
        let folder = DnaFolder::create(&cfg).unwrap();
        assert_eq!(folder.read_config().unwrap(), cfg);
        assert!(folder.student_dir().is_dir());
        assert_eq!(folder.student_block_path(2), dir.join("run/student/block2.safetensors"));
        assert_eq!(folder.ratings_path(3), dir.join("run/ratings_block3.csv"));
        assert_eq!(folder.teacher_dir(), dir.join("run/teacher"));
        assert_eq!(folder.retrain_dir(), dir.join("run/retrain"));
        folder.write_ratings(1, &ratings()).unwrap();
        assert_eq!(folder.read_ratings(1).unwrap(), ratings());
        assert!(DnaFolder::create(&cfg).unwrap_err().to_string().contains("already holds"));
        assert!(DnaFolder::open(&dir).unwrap_err().to_string().contains("not a DNA run folder"));
        DnaFolder::open(&cfg.run.out_dir).unwrap();
        let a = DnaFolder::create_in(&dir.join("root"), SystemTime::UNIX_EPOCH).unwrap();
        let b = DnaFolder::create_in(&dir.join("root"), SystemTime::UNIX_EPOCH).unwrap();
        assert!(a.dir().ends_with("19700101-000000-dna") && b.dir().ends_with("19700101-000000-dna-2"));
        fs::remove_dir_all(dir).unwrap();
    }
}
