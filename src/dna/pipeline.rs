//! `run_dna`: the whole DNA pipeline (DESIGN.md §5, docs/dna.md) — teacher, block-wise
//! distillation, rating, the constrained search and the optional retraining — with every
//! stage's outputs in the run folder, so that a resumed run skips what is done.
//!
//! Resume units: the teacher run (itself resumable), each block's `student/block{k}.safetensors`,
//! each block's `ratings_block{k}.csv`. A block stopped mid-distillation or mid-rating starts
//! that stage again; blocks are seeded by their index, so the result is the same as without
//! the stop. Search and retraining always run again with the current `[search]` and
//! `[retrain]` settings, the only ones a resumed run may change.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::config::DnaConfig;
use super::distill::{distill_block, load_block, save_block};
use super::events::{DnaEvent, DnaOptions, DnaOutcome, DnaStage};
use super::files::{DnaFolder, DnaLog, DnaRecord, DnaResult, RandomInfo, Rating, RetrainInfo};
use super::images::{data_section, DnaData};
use super::rate::{rate_block, RatingSet};
use super::search::{budget_label, fixed_cost, random_within, search};
use super::teacher::{ensure_teacher, student_space, Teacher};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::run::events::StopSignal;
use crate::run::folder::atomic_write;
use crate::train::folder::TrainFolder;
use crate::train::{run_train, TrainConfig, TrainEvent, TrainOptions, TrainResult};

const WHAT: &str = "dna";
/// Sections a resumed run may change (with `run.out_dir` and `run.runs_root`).
const FREE_SECTIONS: &[&str] = &["search", "retrain", "device"];

/// Runs DNA as `cfg` says (or continues `opts.resume`, whose `dna.toml` must agree with `cfg`
/// except in `[search]`, `[retrain]`, `[device]` and the output folder), sending progress to
/// `sink`. See the module docs and docs/dna.md.
pub fn run_dna(cfg: DnaConfig, opts: &DnaOptions, sink: &mut dyn FnMut(&DnaEvent)) -> Result<DnaOutcome> {
    let t_run = Instant::now();
    cfg.validate()?;
    cfg.check_paths()?;
    let (folder, cfg) = match &opts.resume {
        Some(dir) => {
            let folder = DnaFolder::open(dir)?;
            check_resume(&folder.read_config()?, &cfg, dir)?;
            let mut cfg = cfg;
            cfg.run.out_dir = dir.clone();
            (Some(folder), cfg)
        }
        None => (None, cfg),
    };
    // The data is checked before a new run folder exists, so a setup error leaves nothing behind.
    let mut data = DnaData::load(&cfg)?;
    let resumed = folder.is_some();
    // A resumed run keeps its dna.toml: the overridden [search]/[retrain] of this session are
    // recorded in result_<label>.json and the retraining's own train.toml.
    let folder = match folder {
        Some(f) => f,
        None => DnaFolder::create(&cfg)?,
    };
    let mut log = if resumed { DnaLog::open(&folder.log_path())? } else { DnaLog::create(&folder.log_path())? };
    let gpu = Gpu::new(&cfg.adapter_choice())?;
    let blocks = cfg.student.layers.len();
    let paths = cfg.student.layers.iter().map(|&l| 6 * 7usize.pow(l as u32 - 1)).collect();
    sink(&DnaEvent::Started { run_dir: folder.dir().to_path_buf(), device: gpu.describe(), resumed, blocks, paths });
    let mut run = Run { cfg: &cfg, gpu: &gpu, folder: &folder, stop: &opts.stop, seconds: Vec::new() };
    let result = run.stages(&mut data, &mut log, sink)?;
    let outcome = DnaOutcome { run_dir: folder.dir().to_path_buf(), result, stage_seconds: run.seconds };
    match &outcome.result {
        Some(r) => {
            log.append(&DnaRecord::Finished { seconds: t_run.elapsed().as_secs_f64() })?;
            sink(&DnaEvent::Finished(r.clone()));
        }
        None => {
            let stage = outcome.stage_seconds.last().map_or(DnaStage::Teacher, |s| s.0);
            sink(&DnaEvent::Stopped { stage });
        }
    }
    Ok(outcome)
}

/// Fails unless `new` agrees with the run's saved config in every key that shapes the
/// teacher, the distillation and the ratings; the message lists the keys that differ.
pub fn check_resume(saved: &DnaConfig, new: &DnaConfig, dir: &Path) -> Result<()> {
    let table = |c: &DnaConfig| toml::Table::try_from(c).map_err(|e| Error::invalid(WHAT, e.to_string()));
    let (a, b) = (table(saved)?, table(new)?);
    let mut diffs = Vec::new();
    for (section, av) in &a {
        if FREE_SECTIONS.contains(&section.as_str()) {
            continue;
        }
        let (Some(at), Some(bt)) = (av.as_table(), b.get(section).and_then(|v| v.as_table())) else { continue };
        for (key, x) in at {
            let free = section == "run" && (key == "out_dir" || key == "runs_root");
            match bt.get(key) {
                Some(y) if y == x || free => {}
                y => diffs.push(format!(
                    "{section}.{key}: {x} in the run, {} now",
                    y.map_or("none".into(), |y| y.to_string())
                )),
            }
        }
    }
    if diffs.is_empty() {
        return Ok(());
    }
    Err(Error::invalid(
        WHAT,
        format!(
            "cannot resume {}: these settings differ from its dna.toml and would change its teacher, distillation \
             or ratings:\n  {}\nOnly [search] and [retrain] may change on resume (start a new run otherwise).",
            dir.display(),
            diffs.join("\n  ")
        ),
    ))
}

/// What the stages share.
struct Run<'a> {
    cfg: &'a DnaConfig,
    gpu: &'a Gpu,
    folder: &'a DnaFolder,
    stop: &'a StopSignal,
    seconds: Vec<(DnaStage, f64)>,
}

impl Run<'_> {
    /// Adds `t` seconds to `stage` (stages of several blocks add up).
    fn time(&mut self, stage: DnaStage, t: Instant) {
        let s = t.elapsed().as_secs_f64();
        match self.seconds.iter_mut().find(|(st, _)| *st == stage) {
            Some(e) => e.1 += s,
            None => self.seconds.push((stage, s)),
        }
    }

    /// Every stage in order; `None` when stopped.
    fn stages(
        &mut self,
        data: &mut DnaData,
        log: &mut DnaLog,
        sink: &mut dyn FnMut(&DnaEvent),
    ) -> Result<Option<DnaResult>> {
        let (cfg, gpu) = (self.cfg, self.gpu);
        let t = Instant::now();
        let Some(tdir) = ensure_teacher(cfg, self.folder, log, self.stop, sink)? else {
            self.time(DnaStage::Teacher, t);
            return Ok(None);
        };
        let teacher = Teacher::load(gpu, &tdir, cfg, data)?;
        data.norm = teacher.normalization(cfg, data)?;
        sink(&DnaEvent::TeacherReady(teacher.info.clone()));
        self.time(DnaStage::Teacher, t);
        let space = student_space(cfg, &teacher, data)?;

        let mut ratings: Vec<Vec<Rating>> = Vec::new();
        for k in 0..space.blocks() {
            let (block_file, ratings_file) = (self.folder.student_block_path(k + 1), self.folder.ratings_path(k + 1));
            if ratings_file.is_file() {
                sink(&DnaEvent::Skipped { stage: DnaStage::Rate, block: Some(k + 1), found: ratings_file.clone() });
                ratings.push(self.folder.read_ratings(k + 1)?);
                continue;
            }
            let t = Instant::now();
            let sup = if block_file.is_file() {
                sink(&DnaEvent::Skipped { stage: DnaStage::Distill, block: Some(k + 1), found: block_file.clone() });
                load_block(gpu, &space, k, &block_file)?
            } else {
                let mut log_err = None;
                let mut logged = |e: &DnaEvent| {
                    if let DnaEvent::DistillEpoch { block, epoch, loss, seconds, .. } = e {
                        let rec =
                            DnaRecord::DistillEpoch { block: *block, epoch: *epoch, loss: *loss, seconds: *seconds };
                        if let Err(err) = log.append(&rec) {
                            log_err.get_or_insert(err);
                        }
                    }
                    sink(e);
                };
                let out = distill_block(gpu, cfg, &space, k, &teacher, data, self.stop, &mut logged)?;
                if let Some(e) = log_err {
                    return Err(e);
                }
                let Some(sup) = out else {
                    self.time(DnaStage::Distill, t);
                    return Ok(None);
                };
                save_block(gpu, &sup, &block_file)?;
                // Rated from the file, as a resumed run rates it.
                load_block(gpu, &space, k, &block_file)?
            };
            self.time(DnaStage::Distill, t);
            let t = Instant::now();
            let set = RatingSet::new(gpu, cfg, &space, k, &teacher, data)?;
            let Some(rated) = rate_block(gpu, cfg, &sup, space.blocks(), &set, self.stop, sink)? else {
                self.time(DnaStage::Rate, t);
                return Ok(None);
            };
            self.folder.write_ratings(k + 1, &rated)?;
            let seconds = t.elapsed().as_secs_f64();
            log.append(&DnaRecord::Rated { block: k + 1, paths: rated.len(), seconds })?;
            if let Some(best) = rated.iter().min_by(|a, b| a.score.total_cmp(&b.score)) {
                sink(&DnaEvent::Rated { block: k + 1, best: best.clone(), paths: rated.len(), seconds });
            }
            self.time(DnaStage::Rate, t);
            ratings.push(rated);
            if self.stop.is_requested() {
                return Ok(None);
            }
        }

        let t = Instant::now();
        let fixed = fixed_cost(gpu, &space, &ratings)?;
        let budget = cfg.budget();
        let found = search(&ratings, fixed, &budget, cfg.search.top_k)?;
        let label = budget_label(&budget);
        let mut choices = found.choices.into_iter();
        let best = choices.next().ok_or_else(|| Error::invalid(WHAT, "the search returned no architecture"))?;
        let mut result = DnaResult {
            budget,
            best,
            alternatives: choices.collect(),
            fronts: found.fronts,
            teacher: teacher.info.clone(),
            retrain: None,
            random: None,
        };
        self.write_result(&result, &label)?;
        log.append(&DnaRecord::Searched { seconds: t.elapsed().as_secs_f64() })?;
        let mut all = vec![result.best.clone()];
        all.extend(result.alternatives.iter().cloned());
        let path = self.folder.labeled_result_path(&label);
        sink(&DnaEvent::Searched { choices: all, fixed, label: label.clone(), path });
        self.time(DnaStage::Search, t);

        if cfg.retrain.epochs == 0 {
            return Ok(Some(result));
        }
        let t = Instant::now();
        let base = self.folder.retrain_dir();
        let arch = result.best.arch.clone();
        let Some((dir, r)) = self.train_arch(&arch, &base, &label, teacher.channels(), DnaStage::Retrain, log, sink)?
        else {
            self.time(DnaStage::Retrain, t);
            return Ok(None);
        };
        result.retrain = Some(RetrainInfo { run_dir: dir, test_acc: r.test_acc });
        self.write_result(&result, &label)?;
        self.time(DnaStage::Retrain, t);
        if cfg.retrain.random_baseline {
            let t = Instant::now();
            let choice = random_within(&ratings, fixed, &budget, cfg.run.seed)?;
            let base = self.folder.random_dir();
            let trained =
                self.train_arch(&choice.arch, &base, &label, teacher.channels(), DnaStage::Random, log, sink)?;
            self.time(DnaStage::Random, t);
            let Some((dir, r)) = trained else { return Ok(None) };
            result.random = Some(RandomInfo { choice, run_dir: dir, test_acc: r.test_acc });
            self.write_result(&result, &label)?;
        }
        Ok(Some(result))
    }

    /// Writes `result.json` and `result_<label>.json`.
    fn write_result(&self, result: &DnaResult, label: &str) -> Result<()> {
        self.folder.write_result(result)?;
        let text = std::fs::read(self.folder.result_path())
            .map_err(|source| Error::Io { path: self.folder.result_path(), source })?;
        atomic_write(&self.folder.labeled_result_path(label), &text)
    }

    /// Trains `arch` from scratch (`wgnas train --space mbconv`) into `base`, or — when `base`
    /// holds another architecture's or setting's run — into `base_<label>` (then `-2`, ...).
    /// A finished run there is reused, an unfinished one resumed. `None` when stopped.
    #[allow(clippy::too_many_arguments)]
    fn train_arch(
        &self,
        arch: &str,
        base: &Path,
        label: &str,
        channels: usize,
        stage: DnaStage,
        log: &mut DnaLog,
        sink: &mut dyn FnMut(&DnaEvent),
    ) -> Result<Option<(PathBuf, TrainResult)>> {
        let (dir, tcfg, state) = pick_train_dir(self.cfg, arch, base, label, channels)?;
        if let Some(r) = state {
            sink(&DnaEvent::Skipped { stage, block: None, found: dir.clone() });
            return Ok(Some((dir, r)));
        }
        let resume = dir.join(crate::train::folder::CONFIG_FILE).is_file().then(|| dir.clone());
        let opts = TrainOptions { resume, stop: self.stop.clone(), max_steps: 0 };
        let mut log_err = None;
        let out = run_train(tcfg, &opts, &mut |e: &TrainEvent| {
            if let (DnaStage::Retrain, TrainEvent::Epoch(r)) = (stage, e) {
                if let Err(err) = log.append(&DnaRecord::RetrainEpoch { epoch: r.epoch, test_acc: r.test_acc }) {
                    log_err.get_or_insert(err);
                }
            }
            sink(&DnaEvent::Train { stage, event: e.clone() });
        })?;
        if let Some(e) = log_err {
            return Err(e);
        }
        Ok(out.result.map(|r| (dir, r)))
    }
}

/// The `wgnas train` config that retrains `arch` into `dir`: the searched network exactly
/// (`net.channels` = the teacher's C, `net.se_ratio` = `student.se_ratio`).
pub fn retrain_config(cfg: &DnaConfig, arch: &str, channels: usize, dir: &Path) -> TrainConfig {
    let mut t = TrainConfig::default();
    t.net.space = "mbconv".into();
    t.net.arch = arch.to_string();
    t.net.channels = channels;
    t.net.se_ratio = cfg.student.se_ratio as f32;
    t.data = data_section(cfg);
    t.data.batch_size = cfg.retrain.batch_size;
    (t.optim.epochs, t.optim.lr) = (cfg.retrain.epochs, cfg.retrain.lr);
    t.run.seed = cfg.run.seed;
    t.run.out_dir = dir.to_path_buf();
    t.device = cfg.device.clone();
    t
}

/// The folder to train `arch` in, its config, and its result if it is already done there.
fn pick_train_dir(
    cfg: &DnaConfig,
    arch: &str,
    base: &Path,
    label: &str,
    channels: usize,
) -> Result<(PathBuf, TrainConfig, Option<TrainResult>)> {
    let name = base.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    for n in 0..1000 {
        let dir = match n {
            0 => base.to_path_buf(),
            1 => base.with_file_name(format!("{name}_{label}")),
            _ => base.with_file_name(format!("{name}_{label}-{n}")),
        };
        let want = retrain_config(cfg, arch, channels, &dir);
        if !dir.join(crate::train::folder::CONFIG_FILE).is_file() {
            return Ok((dir, want, None));
        }
        let folder = TrainFolder::open(&dir)?;
        let mut saved = folder.read_config()?;
        // The trainer fills these in from the data; the device may differ between sessions.
        (saved.net.in_channels, saved.net.input_size, saved.net.classes) = (0, 0, 0);
        saved.device = want.device.clone();
        if saved == want {
            let done = folder.result_path().is_file().then(|| folder.read_result()).transpose()?;
            return Ok((dir, want, done));
        }
    }
    Err(Error::invalid(WHAT, format!("no free folder for a training run next to {}", base.display())))
}
