//! What the app knows about one DNA run: its config, its progress log, the ratings of each
//! block and the result, read from a DNA run folder (see `dna::files`) and refreshed while
//! `wgnas dna` is still writing it.
//!
//! Reading is strictly read-only (unlike `DnaFolder::open`, nothing is cleaned or created),
//! and a missing file is not an error: it means its stage has not been reached yet. A file
//! that exists but does not parse is kept as a problem to show, and read again once it changes.
//! The fields are public so that a live run can fill the same struct from its events later.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::dna::config::DnaConfig;
use crate::dna::files::{
    candidates, DnaFolder, DnaLog, DnaRecord, DnaResult, Rating, CONFIG_FILE, LOG_FILE, RESULT_FILE,
};
use crate::dna::knapsack::{pareto_front, Budget};
use crate::space::mbconv::candidates as layer_candidates;
use crate::{Error, Result};

/// `ratings_block{k}.csv` in `dir` (`k` 1-based).
fn ratings_path(dir: &Path, block: usize) -> PathBuf {
    DnaFolder::at(dir).ratings_path(block)
}

/// `student/block{k}.safetensors` in `dir`.
fn student_path(dir: &Path, block: usize) -> PathBuf {
    DnaFolder::at(dir).student_block_path(block)
}

/// (length, modification time) of a file, `None` when it does not exist (yet).
type Stamp = Option<(u64, SystemTime)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.modified().ok()?))
}

/// Number of paths of a student block with `layers` layers: `6·7^(L−1)`.
pub fn path_total(layers: usize) -> usize {
    (0..layers).map(|l| layer_candidates(l == 0).len()).product()
}

/// Where a DNA run is: the first stage whose output is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnaStage {
    /// The teacher is being trained.
    Teacher,
    /// Student block `k` (1-based) is being distilled.
    Distill(usize),
    /// Every path of block `k` (1-based) is being rated.
    Rate(usize),
    /// The budgeted search over the ratings.
    Search,
    /// The chosen architecture is being retrained.
    Retrain,
    /// The run finished.
    Finished,
}

impl DnaStage {
    /// What the run is doing, for a status line ("rating block 2").
    pub fn describe(self) -> String {
        match self {
            DnaStage::Teacher => "training the teacher".into(),
            DnaStage::Distill(k) => format!("distilling block {k}"),
            DnaStage::Rate(k) => format!("rating block {k}"),
            DnaStage::Search => "searching".into(),
            DnaStage::Retrain => "retraining".into(),
            DnaStage::Finished => "finished".into(),
        }
    }
}

/// Everything known about one DNA run so far (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct DnaHistory {
    /// The run folder (`None` for a history filled live without one).
    pub dir: Option<PathBuf>,
    /// The resolved config (`dna.toml`).
    pub config: DnaConfig,
    /// The progress records so far.
    pub records: Vec<DnaRecord>,
    /// Per block (0-based index, block k at k − 1): its ratings, once rated.
    pub ratings: Vec<Option<Vec<Rating>>>,
    /// Per block: whether its distilled weights are saved (`student/block{k}.safetensors`).
    pub distilled: Vec<bool>,
    /// The result, once searched.
    pub result: Option<DnaResult>,
    /// Files that exist but could not be read: (file name, error).
    pub problems: Vec<(String, String)>,
    /// Bumped on every change, so views can cache what they derive from the history.
    pub generation: u64,
    /// Bytes of the log already read.
    log_offset: u64,
    log_stamp: Stamp,
    ratings_stamps: Vec<Stamp>,
    result_stamp: Stamp,
}

impl DnaHistory {
    /// A history of a run with `config` and nothing done yet (to be filled live).
    pub fn new(config: DnaConfig) -> Self {
        let blocks = config.student.layers.len();
        DnaHistory {
            config,
            ratings: vec![None; blocks],
            distilled: vec![false; blocks],
            ratings_stamps: vec![None; blocks],
            ..Default::default()
        }
    }

    /// Reads the DNA run folder `dir` (it must have a `dna.toml` that parses); read-only.
    pub fn open(dir: &Path) -> Result<Self> {
        // Parsed, not validated: the viewer shows what the run used, even if a later version
        // of the rules (say, on the number of student blocks) would reject it.
        let path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
        let config = DnaConfig::from_toml_str(&text, &path)?;
        let mut h = DnaHistory::new(config);
        h.dir = Some(dir.to_path_buf());
        h.refresh()?;
        Ok(h)
    }

    /// Re-reads what changed in the folder since the last read (by file length and
    /// modification time): new log records, ratings and the result. Returns how many files
    /// changed (0: nothing new). Only an unreadable folder is an error; a bad file is recorded
    /// in [`DnaHistory::problems`].
    pub fn refresh(&mut self) -> Result<usize> {
        let Some(dir) = self.dir.clone() else { return Ok(0) };
        if !dir.is_dir() {
            return Err(Error::invalid("dna run", format!("{} is no longer a folder", dir.display())));
        }
        let mut changed = 0;
        changed += usize::from(self.refresh_log(&dir));
        for b in 0..self.blocks() {
            changed += usize::from(self.refresh_ratings(&dir, b));
            let saved = student_path(&dir, b + 1).is_file();
            changed += usize::from(saved != self.distilled[b]);
            self.distilled[b] = saved;
        }
        changed += usize::from(self.refresh_result(&dir));
        if changed > 0 {
            self.generation += 1;
        }
        Ok(changed)
    }

    fn set_problem(&mut self, file: &str, error: Option<String>) {
        self.problems.retain(|(f, _)| f != file);
        if let Some(e) = error {
            self.problems.push((file.to_string(), e));
        }
    }

    /// New complete log lines; the log started over (a fresh run in the folder) resets the records.
    fn refresh_log(&mut self, dir: &Path) -> bool {
        let path = dir.join(LOG_FILE);
        let now = stamp(&path);
        if now == self.log_stamp {
            return false;
        }
        self.log_stamp = now;
        let Some((len, _)) = now else { return false };
        if len < self.log_offset {
            self.records.clear();
            self.log_offset = 0;
        }
        match DnaLog::read_from(&path, self.log_offset) {
            Ok((records, offset)) => {
                self.log_offset = offset;
                self.records.extend(records);
                self.set_problem(LOG_FILE, None);
            }
            Err(e) => self.set_problem(LOG_FILE, Some(e.to_string())),
        }
        true
    }

    fn refresh_ratings(&mut self, dir: &Path, b: usize) -> bool {
        let path = ratings_path(dir, b + 1);
        let now = stamp(&path);
        if now == self.ratings_stamps[b] {
            return false;
        }
        self.ratings_stamps[b] = now;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if now.is_none() {
            self.ratings[b] = None;
            self.set_problem(&name, None);
            return true;
        }
        match crate::dna::files::read_ratings(&path) {
            Ok(r) => {
                self.ratings[b] = Some(r);
                self.set_problem(&name, None);
            }
            Err(e) => {
                self.ratings[b] = None;
                self.set_problem(&name, Some(e.to_string()));
            }
        }
        true
    }

    fn refresh_result(&mut self, dir: &Path) -> bool {
        let path = dir.join(RESULT_FILE);
        let now = stamp(&path);
        if now == self.result_stamp {
            return false;
        }
        self.result_stamp = now;
        if now.is_none() {
            self.result = None;
            self.set_problem(RESULT_FILE, None);
            return true;
        }
        match DnaResult::load(&path) {
            Ok(r) => {
                self.result = Some(r);
                self.set_problem(RESULT_FILE, None);
            }
            Err(e) => {
                self.result = None;
                self.set_problem(RESULT_FILE, Some(e.to_string()));
            }
        }
        true
    }

    /// Number of student blocks B (from `student.layers`).
    pub fn blocks(&self) -> usize {
        self.config.student.layers.len()
    }

    /// The folder's name, or `"live run"` without one.
    pub fn name(&self) -> String {
        match &self.dir {
            Some(d) => d.file_name().map_or_else(|| d.display().to_string(), |n| n.to_string_lossy().into_owned()),
            None => "live run".into(),
        }
    }

    /// Paths of block `b` (0-based): `6·7^(L−1)`.
    pub fn paths_total(&self, b: usize) -> usize {
        self.config.student.layers.get(b).map_or(0, |&l| path_total(l))
    }

    /// Ratings of block `b` (0-based), once rated.
    pub fn block_ratings(&self, b: usize) -> Option<&[Rating]> {
        self.ratings.get(b).and_then(|r| r.as_deref())
    }

    /// Paths of block `b` (0-based) rated so far: the ratings file's rows, else the log's count.
    pub fn rated(&self, b: usize) -> usize {
        if let Some(r) = self.block_ratings(b) {
            return r.len();
        }
        self.records
            .iter()
            .rev()
            .filter_map(|r| match r {
                DnaRecord::Rated { block, paths, .. } if *block == b + 1 => Some(*paths),
                _ => None,
            })
            .next()
            .unwrap_or(0)
    }

    /// Distillation loss of block `b` (0-based) per epoch: `[epoch + 1, loss]` (a resumed run's
    /// repeated epoch keeps its last value).
    pub fn distill_losses(&self, b: usize) -> Vec<[f64; 2]> {
        let mut pts: Vec<[f64; 2]> = Vec::new();
        for r in &self.records {
            if let DnaRecord::DistillEpoch { block, epoch, loss, .. } = r {
                if *block == b + 1 {
                    let x = *epoch as f64 + 1.0;
                    pts.retain(|p| p[0] != x);
                    pts.push([x, *loss]);
                }
            }
        }
        pts.sort_by(|a, b| a[0].total_cmp(&b[0]));
        pts
    }

    /// Teacher epochs logged here: `(epochs, last test accuracy)`.
    pub fn teacher_progress(&self) -> (usize, Option<f64>) {
        let mut n = 0;
        let mut acc = None;
        for r in &self.records {
            if let DnaRecord::TeacherEpoch { epoch, test_acc, .. } = r {
                n = n.max(*epoch as usize + 1);
                acc = Some(*test_acc);
            }
        }
        (n, acc)
    }

    /// Retraining epochs logged: `(epochs, last test accuracy)`.
    pub fn retrain_progress(&self) -> (usize, Option<f64>) {
        let mut n = 0;
        let mut acc = None;
        for r in &self.records {
            if let DnaRecord::RetrainEpoch { epoch, test_acc } = r {
                n = n.max(*epoch as usize + 1);
                acc = Some(*test_acc);
            }
        }
        (n, acc)
    }

    /// Whether the log says the run finished.
    pub fn finished(&self) -> bool {
        self.records.iter().any(|r| matches!(r, DnaRecord::Finished { .. }))
    }

    /// Whether the run may still be written to (it has not finished).
    pub fn may_grow(&self) -> bool {
        !self.finished()
    }

    /// The first stage whose output is missing (see [`DnaStage`]).
    pub fn stage(&self) -> DnaStage {
        if self.finished() {
            return DnaStage::Finished;
        }
        if self.result.is_some() {
            return if self.config.retrain.epochs > 0 { DnaStage::Retrain } else { DnaStage::Finished };
        }
        let Some(b) = (0..self.blocks()).find(|&b| self.block_ratings(b).is_none()) else {
            return DnaStage::Search;
        };
        let distill_epochs = self.distill_losses(b).len() as u64;
        if self.distilled.get(b).copied().unwrap_or(false) || distill_epochs >= self.config.distill.epochs {
            return DnaStage::Rate(b + 1);
        }
        let anything_distilled = distill_epochs > 0 || self.distilled.iter().any(|&d| d);
        let teacher_pending = self.config.teacher.run.as_os_str().is_empty()
            && (self.teacher_progress().0 as u64) < self.config.teacher.epochs;
        if b == 0 && !anything_distilled && teacher_pending {
            DnaStage::Teacher
        } else {
            DnaStage::Distill(b + 1)
        }
    }

    /// The budget searched under: the result's, else the config's (0 = no limit).
    pub fn budget(&self) -> Budget {
        match &self.result {
            Some(r) => r.budget,
            None => {
                let lim = |v: u64| (v > 0).then_some(v);
                Budget { max_params: lim(self.config.search.max_params), max_flops: lim(self.config.search.max_flops) }
            }
        }
    }

    /// The chosen path of block `b` (0-based): the best architecture's `b`-th `|`-part.
    pub fn chosen_path(&self, b: usize) -> Option<&str> {
        self.result.as_ref().and_then(|r| r.best.arch.split('|').nth(b))
    }

    /// The Pareto front of block `b` (0-based) as row indices into its ratings: the result's
    /// front when searched (matched by path), else computed under the config's budget.
    pub fn front_rows(&self, b: usize) -> Vec<usize> {
        let Some(ratings) = self.block_ratings(b) else { return Vec::new() };
        if let Some(front) = self.result.as_ref().and_then(|r| r.fronts.get(b)) {
            return ratings
                .iter()
                .enumerate()
                .filter(|(_, r)| front.iter().any(|f| f.path == r.path))
                .map(|(i, _)| i)
                .collect();
        }
        pareto_front(&candidates(ratings), &self.budget()).into_iter().map(|c| c.id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_totals_follow_the_space() {
        assert_eq!(path_total(2), 42);
        assert_eq!(path_total(3), 294);
        assert_eq!(path_total(4), 2058);
    }

    #[test]
    fn a_missing_folder_and_a_bare_config() {
        let dir = std::env::temp_dir().join(format!("wgnas-dnahist-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(DnaHistory::open(&dir).is_err());
        std::fs::create_dir_all(&dir).unwrap();
        let mut cfg = DnaConfig::default();
        cfg.student.layers = vec![2, 2];
        cfg.save(&dir.join(CONFIG_FILE)).unwrap();
        let mut h = DnaHistory::open(&dir).unwrap();
        assert_eq!(h.stage(), DnaStage::Teacher);
        assert_eq!((h.blocks(), h.paths_total(1), h.rated(0)), (2, 42, 0));
        assert!(h.problems.is_empty());
        assert_eq!(h.refresh().unwrap(), 0, "nothing changed");
        std::fs::write(dir.join(RESULT_FILE), "{").unwrap();
        assert_eq!(h.refresh().unwrap(), 1);
        assert_eq!(h.problems.len(), 1, "{:?}", h.problems);
        std::fs::remove_file(dir.join(RESULT_FILE)).unwrap();
        h.refresh().unwrap();
        assert!(h.problems.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
