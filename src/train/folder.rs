//! A training run's folder:
//!
//! | file | content |
//! |---|---|
//! | `train.toml` | the resolved config (image shape and classes filled in) |
//! | `metrics.jsonl` | [`TrainRecord`]s, one JSON object per line |
//! | `checkpoints/ckpt-<global step>/` | weights, BN buffers, optimizer state, counters |
//! | `weights.safetensors` | the final weights and BN buffers (written at the end) |
//! | `result.json` | [`TrainResult`] (written at the end) |
//!
//! Every file is replaced atomically (the metrics log is appended line by line).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::config::TrainConfig;
use super::events::{TrainRecord, TrainResult};
use crate::error::{Error, Result};
use crate::run::checkpoint::CheckpointStore;
use crate::run::folder::{atomic_write, RunFolder};

/// The resolved config.
pub const CONFIG_FILE: &str = "train.toml";
/// The metrics log.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// The final weights.
pub const WEIGHTS_FILE: &str = "weights.safetensors";
/// The final summary.
pub const RESULT_FILE: &str = "result.json";
/// The checkpoint folder.
pub const CHECKPOINT_DIR: &str = "checkpoints";

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

/// One training run's folder.
#[derive(Debug, Clone)]
pub struct TrainFolder {
    dir: PathBuf,
}

impl TrainFolder {
    /// Creates the folder of a new run for `cfg` (`run.out_dir`, or a new
    /// `<runs_root>/<timestamp>-<space>-train`) and writes `train.toml`.
    pub fn create(cfg: &TrainConfig) -> Result<Self> {
        let dir = if cfg.run.out_dir.as_os_str().is_empty() {
            RunFolder::create_in(&cfg.run.runs_root, &cfg.net.space, "train", SystemTime::now())?.dir().to_path_buf()
        } else {
            let dir = cfg.run.out_dir.clone();
            if dir.join(CONFIG_FILE).exists() {
                return Err(Error::invalid(
                    "train",
                    format!(
                        "{} already holds a training run; resume it with --resume or choose another folder",
                        dir.display()
                    ),
                ));
            }
            // Refuses a search run's folder too.
            RunFolder::create_at(&dir)?.dir().to_path_buf()
        };
        let folder = TrainFolder { dir };
        cfg.save(&folder.config_path())?;
        Ok(folder)
    }

    /// Opens the folder of an existing training run.
    pub fn open(dir: &Path) -> Result<Self> {
        if !dir.join(CONFIG_FILE).is_file() {
            return Err(Error::invalid(
                "train",
                format!("{} is not a training run folder: it has no {CONFIG_FILE}", dir.display()),
            ));
        }
        crate::run::folder::clean_stale_temps(dir)?;
        Ok(TrainFolder { dir: dir.to_path_buf() })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `train.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join(CONFIG_FILE)
    }

    /// `metrics.jsonl`.
    pub fn metrics_path(&self) -> PathBuf {
        self.dir.join(METRICS_FILE)
    }

    /// `weights.safetensors`.
    pub fn weights_path(&self) -> PathBuf {
        self.dir.join(WEIGHTS_FILE)
    }

    /// `result.json`.
    pub fn result_path(&self) -> PathBuf {
        self.dir.join(RESULT_FILE)
    }

    /// Reads and validates `train.toml`.
    pub fn read_config(&self) -> Result<TrainConfig> {
        TrainConfig::load(&self.config_path())
    }

    /// The checkpoint store, keeping the newest `keep`.
    pub fn checkpoints(&self, keep: usize) -> Result<CheckpointStore> {
        CheckpointStore::open(&self.dir.join(CHECKPOINT_DIR), keep)
    }

    /// Writes `result.json`.
    pub fn write_result(&self, r: &TrainResult) -> Result<()> {
        let json = serde_json::to_string_pretty(r).map_err(|e| Error::invalid("train", e.to_string()))?;
        atomic_write(&self.result_path(), format!("{json}\n").as_bytes())
    }

    /// Reads `result.json`.
    pub fn read_result(&self) -> Result<TrainResult> {
        let path = self.result_path();
        let text = fs::read_to_string(&path).map_err(io_err(&path))?;
        serde_json::from_str(&text).map_err(|e| Error::Format { path, message: e.to_string() })
    }
}

/// Appends [`TrainRecord`]s to `metrics.jsonl`, one flushed line each.
#[derive(Debug)]
pub struct TrainMetrics {
    path: PathBuf,
    file: File,
}

impl TrainMetrics {
    /// Opens the log at `path` for a run at `global_step` (0 for a new run): records after
    /// that step (work a resumed run will redo) and a torn last line are dropped first.
    pub fn open(path: &Path, global_step: u64) -> Result<Self> {
        if path.exists() {
            let kept: String = read_train_metrics(path)?
                .iter()
                .filter(|r| r.global_step() <= global_step)
                .map(to_line)
                .collect::<Result<_>>()?;
            atomic_write(path, kept.as_bytes())?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path).map_err(io_err(path))?;
        Ok(TrainMetrics { path: path.to_path_buf(), file })
    }

    /// Appends one record as one line and flushes it.
    pub fn write(&mut self, r: &TrainRecord) -> Result<()> {
        let line = to_line(r)?;
        self.file.write_all(line.as_bytes()).and_then(|_| self.file.flush()).map_err(io_err(&self.path))
    }

    /// Forces the written lines to disk (before a checkpoint).
    pub fn sync(&mut self) -> Result<()> {
        self.file.sync_data().map_err(io_err(&self.path))
    }
}

fn to_line(r: &TrainRecord) -> Result<String> {
    let json = serde_json::to_string(r).map_err(|e| Error::invalid("metrics", e.to_string()))?;
    Ok(json + "\n")
}

/// Every complete record of a training run's `metrics.jsonl` (a torn last line is skipped;
/// a bad line elsewhere is an error naming it).
pub fn read_train_metrics(path: &Path) -> Result<Vec<TrainRecord>> {
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    let complete = text.rfind('\n').map_or("", |i| &text[..i]);
    complete
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| Error::Format { path: path.to_path_buf(), message: format!("line {}: {e}", i + 1) })
        })
        .collect()
}
