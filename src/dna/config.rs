//! The DNA config, `dna.toml`: sections `[teacher]`, `[student]`, `[distill]`, `[rating]`,
//! `[search]`, `[retrain]`, `[data]`, `[run]` and `[device]`.
//!
//! Like the search config (`run::config`), every key is always present in the serialized
//! form ("unset" is `""` or `0`), unknown keys are errors, the resolved config is saved in
//! the run folder, and every key can be overridden with `--set section.key=value`
//! ([`DnaConfig::apply_override`], the same machinery as `SearchConfig::apply_override`).
//! Relative paths are relative to the working directory.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::knapsack::Budget;
use crate::run::config::{
    config_toml, parse_config, read_config_text, split_override, with_override, DeviceConfig, BUNDLED,
};
use crate::space::nb201::Nb201Arch;
use crate::{Error, Result};

/// Component name of DNA config errors.
const WHAT: &str = "dna config";
/// The best NAS-Bench-201 cell (94.37 % on CIFAR-10), the default teacher.
pub const DEFAULT_TEACHER_ARCH: &str =
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|";
/// Most student blocks: one per teacher stage (widths C, 2C, 4C). `student.layers` has 1 to
/// this many entries; B entries distil the teacher's first B stages.
pub const STUDENT_BLOCKS: usize = 3;
/// Allowed layers per student block.
pub const LAYERS_RANGE: std::ops::RangeInclusive<usize> = 2..=4;
/// Optimizers the distillation may use.
pub const OPTIMIZERS: &[&str] = &["adam", "sgd"];

/// A whole DNA run's settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnaConfig {
    /// The NB201 teacher network.
    pub teacher: TeacherConfig,
    /// The mbconv student supernet.
    pub student: StudentConfig,
    /// Block-wise distillation of the student.
    pub distill: DistillConfig,
    /// Rating every path of each block.
    pub rating: RatingConfig,
    /// The constrained search over the ratings.
    pub search: BudgetConfig,
    /// Retraining the chosen architecture.
    pub retrain: RetrainConfig,
    /// The images.
    pub data: DnaDataConfig,
    /// Seed and output folder.
    pub run: DnaRunConfig,
    /// Which GPU to use.
    pub device: DeviceConfig,
}

/// `[teacher]`: the NB201 network whose block outputs supervise the student.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TeacherConfig {
    /// NB201 architecture string of the teacher's cell.
    pub arch: String,
    /// Channels C of the first stage (then 2C, 4C).
    pub channels: usize,
    /// Cells N per stage.
    pub cells: usize,
    /// Training epochs when the teacher is trained here.
    pub epochs: u64,
    /// An existing `wgnas train` run folder to load the teacher from; empty = train one.
    pub run: PathBuf,
    /// Images per batch when the teacher is trained here.
    pub batch_size: usize,
    /// Initial learning rate (SGD, cosine to 0) when the teacher is trained here.
    pub lr: f64,
}

/// `[student]`: the mbconv supernet, one block per teacher stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StudentConfig {
    /// Layers of each block: 1 to 3 entries (block k distils teacher stage k), each 2..=4.
    pub layers: Vec<usize>,
    /// Squeeze-excitation ratio of the mbconv layers, in (0, 1]: an SE of a layer with input
    /// width c has max(1, round(c·ratio)) units.
    pub se_ratio: f64,
}

/// `[distill]`: training each student block on the teacher's block output (MSE).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DistillConfig {
    /// Epochs per block.
    pub epochs: u64,
    /// Images per batch.
    pub batch_size: usize,
    /// Learning rate.
    pub lr: f64,
    /// `"adam"` or `"sgd"`.
    pub optimizer: String,
    /// Weight decay.
    pub weight_decay: f64,
    /// Random crop and flip of the training images.
    pub augment: bool,
}

/// `[rating]`: scoring every path of a block by mean|S − T| / std(T) on held-out images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RatingConfig {
    /// Images of the fixed batch that recalibrates BN statistics before a path is rated.
    pub recal_batch: usize,
    /// Held-out batches each path is rated on.
    pub eval_batches: usize,
    /// Paths whose scores are recorded before one submit and readback.
    pub paths_per_submit: usize,
}

/// `[search]`: the budget and how many architectures to report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetConfig {
    /// At most this many parameters (0 = no limit).
    pub max_params: u64,
    /// At most this many multiply-accumulates (0 = no limit).
    pub max_flops: u64,
    /// Architectures reported (the best, then alternatives).
    pub top_k: usize,
}

/// `[retrain]`: training the chosen architecture from scratch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrainConfig {
    /// Epochs (0 = do not retrain).
    pub epochs: u64,
    /// Images per batch.
    pub batch_size: usize,
    /// Learning rate.
    pub lr: f64,
    /// Also train a random architecture within the same budget (into `random/`), as a baseline.
    pub random_baseline: bool,
}

/// `[data]`: the images and the held-out part used for rating.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnaDataConfig {
    /// `"bundled"` or a path to a dataset.
    pub dataset: String,
    /// Use only the first `limit` training images (0 = all).
    pub limit: usize,
    /// Training images kept out of distillation, for rating.
    pub held_out: usize,
}

/// `[run]`: seed and where the run folder goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnaRunConfig {
    /// Seed of weights, data order and augmentation.
    pub seed: u64,
    /// The run folder; empty = `<runs_root>/<timestamp>-dna`.
    pub out_dir: PathBuf,
    /// Where new run folders are made when `out_dir` is empty.
    pub runs_root: PathBuf,
}

impl Default for TeacherConfig {
    fn default() -> Self {
        TeacherConfig {
            arch: DEFAULT_TEACHER_ARCH.into(),
            channels: 16,
            cells: 5,
            epochs: 10,
            run: PathBuf::new(),
            batch_size: 64,
            lr: 0.1,
        }
    }
}

impl Default for StudentConfig {
    fn default() -> Self {
        StudentConfig { layers: vec![3; STUDENT_BLOCKS], se_ratio: 0.25 }
    }
}

impl Default for DistillConfig {
    fn default() -> Self {
        DistillConfig {
            epochs: 5,
            batch_size: 64,
            lr: 0.002,
            optimizer: "adam".into(),
            weight_decay: 0.0,
            augment: true,
        }
    }
}

impl Default for RatingConfig {
    fn default() -> Self {
        RatingConfig { recal_batch: 64, eval_batches: 4, paths_per_submit: 32 }
    }
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig { max_params: 0, max_flops: 0, top_k: 5 }
    }
}

impl Default for RetrainConfig {
    fn default() -> Self {
        RetrainConfig { epochs: 0, batch_size: 64, lr: 0.025, random_baseline: false }
    }
}

impl Default for DnaDataConfig {
    fn default() -> Self {
        DnaDataConfig { dataset: BUNDLED.into(), limit: 0, held_out: 500 }
    }
}

impl Default for DnaRunConfig {
    fn default() -> Self {
        DnaRunConfig { seed: 0, out_dir: PathBuf::new(), runs_root: PathBuf::from("runs") }
    }
}

impl BudgetConfig {
    /// The knapsack budget (0 = no limit).
    pub fn budget(&self) -> Budget {
        let limit = |v: u64| (v > 0).then_some(v);
        Budget { max_params: limit(self.max_params), max_flops: limit(self.max_flops) }
    }
}

// ---- loading, saving -------------------------------------------------------------

impl DnaConfig {
    /// Reads and validates the TOML file at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let cfg = Self::from_toml_str(&read_config_text(path)?, path)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Parses TOML `text` (missing keys take their defaults); `source` names it in errors.
    /// Does not validate the values.
    pub fn from_toml_str(text: &str, source: &Path) -> Result<Self> {
        parse_config(text, source)
    }

    /// The config as TOML, every key present.
    pub fn to_toml_string(&self) -> Result<String> {
        config_toml(self, "dna", WHAT)
    }

    /// Writes the TOML form to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::run::folder::atomic_write(path, self.to_toml_string()?.as_bytes())
    }

    /// The knapsack budget of `[search]`.
    pub fn budget(&self) -> Budget {
        self.search.budget()
    }

    /// The device section as the engine's adapter choice.
    pub fn adapter_choice(&self) -> crate::gpu::AdapterChoice {
        self.device.adapter_choice()
    }

    /// Applies one `section.key=value` override, e.g. `search.max_params=500000`,
    /// `student.layers=2,4,3` (or `[2, 4, 3]`) or `teacher.run=runs/t`. The value is read
    /// as TOML where that fits the key's type; strings may be bare. Unknown keys and wrong
    /// types are errors that list what is valid. Values are checked by [`DnaConfig::validate`].
    pub fn apply_override(&mut self, spec: &str) -> Result<()> {
        let (key, raw) = split_override(spec, "search.max_params=500000", WHAT)?;
        *self = with_override(self, key, raw, WHAT)?;
        Ok(())
    }

    /// Applies overrides in order.
    pub fn apply_overrides<S: AsRef<str>>(&mut self, specs: &[S]) -> Result<()> {
        specs.iter().try_for_each(|s| self.apply_override(s.as_ref()))
    }

    /// Checks that the files the config names exist: the dataset (unless bundled) and the
    /// teacher run folder (when given). Separate from [`DnaConfig::validate`], so that a
    /// finished run's `dna.toml` still loads after those files have moved.
    pub fn check_paths(&self) -> Result<()> {
        let mut problems = Vec::new();
        if self.data.dataset != BUNDLED && !Path::new(&self.data.dataset).exists() {
            problems.push(format!(
                "data.dataset = '{}': no such file or folder (give a dataset path, or '{BUNDLED}')",
                self.data.dataset
            ));
        }
        let run = &self.teacher.run;
        if !run.as_os_str().is_empty() && !run.is_dir() {
            problems.push(format!(
                "teacher.run = '{}': no such folder (give a `wgnas train` run folder, or leave it empty to train \
                 a teacher)",
                run.display()
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::invalid(WHAT, format!("missing files:\n  {}", problems.join("\n  "))))
        }
    }

    /// Checks every value, reporting all problems at once (not whether named files exist:
    /// see [`DnaConfig::check_paths`]).
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        self.check_teacher(&mut problems);
        self.check_student(&mut problems);
        self.check_training(&mut problems);
        self.check_data_and_run(&mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::invalid(WHAT, format!("invalid settings:\n  {}", problems.join("\n  "))))
        }
    }

    fn check_teacher(&self, problems: &mut Vec<String>) {
        let t = &self.teacher;
        if let Err(e) = Nb201Arch::parse(&t.arch) {
            problems.push(format!("teacher.arch: {e}"));
        }
        at_least(problems, "teacher.channels", t.channels as u64, 1);
        at_least(problems, "teacher.cells", t.cells as u64, 1);
        if t.run.as_os_str().is_empty() {
            at_least(problems, "teacher.epochs (or give teacher.run)", t.epochs, 1);
            at_least(problems, "teacher.batch_size", t.batch_size as u64, 1);
            positive(problems, "teacher.lr", t.lr);
        }
    }

    fn check_student(&self, problems: &mut Vec<String>) {
        let s = &self.student;
        if s.layers.is_empty() || s.layers.len() > STUDENT_BLOCKS {
            problems.push(format!(
                "student.layers = {:?}: give 1 to {STUDENT_BLOCKS} entries, one per distilled teacher stage (e.g. \
                 [3, 3, 3])",
                s.layers
            ));
        }
        for (i, &n) in s.layers.iter().enumerate() {
            if !LAYERS_RANGE.contains(&n) {
                problems.push(format!(
                    "student.layers[{i}] = {n}: each block has {} to {} layers",
                    LAYERS_RANGE.start(),
                    LAYERS_RANGE.end()
                ));
            }
        }
        // The mbconv layers always have an SE (MbSpace::validate): 0 would be no bottleneck at all.
        if !(s.se_ratio > 0.0 && s.se_ratio <= 1.0) {
            problems.push(format!("student.se_ratio = {}: must be in (0, 1]", s.se_ratio));
        }
    }

    fn check_training(&self, problems: &mut Vec<String>) {
        let d = &self.distill;
        at_least(problems, "distill.epochs", d.epochs, 1);
        at_least(problems, "distill.batch_size", d.batch_size as u64, 1);
        positive(problems, "distill.lr", d.lr);
        if !OPTIMIZERS.contains(&d.optimizer.as_str()) {
            problems.push(format!("distill.optimizer = '{}': use one of {}", d.optimizer, OPTIMIZERS.join(", ")));
        }
        if !(d.weight_decay.is_finite() && d.weight_decay >= 0.0) {
            problems.push(format!("distill.weight_decay = {}: must be 0 or more", d.weight_decay));
        }
        let r = &self.rating;
        at_least(problems, "rating.recal_batch", r.recal_batch as u64, 1);
        at_least(problems, "rating.eval_batches", r.eval_batches as u64, 1);
        at_least(problems, "rating.paths_per_submit", r.paths_per_submit as u64, 1);
        at_least(problems, "search.top_k", self.search.top_k as u64, 1);
        if self.retrain.epochs > 0 {
            at_least(problems, "retrain.batch_size", self.retrain.batch_size as u64, 1);
            positive(problems, "retrain.lr", self.retrain.lr);
        }
    }

    fn check_data_and_run(&self, problems: &mut Vec<String>) {
        let d = &self.data;
        if d.dataset.trim().is_empty() {
            problems.push(format!("data.dataset is empty: give a dataset path or '{BUNDLED}'"));
        }
        at_least(problems, "data.held_out", d.held_out as u64, 1);
        if d.limit > 0 && d.held_out >= d.limit {
            problems.push(format!(
                "data.held_out = {} leaves no training images of data.limit = {}: lower held_out or raise limit",
                d.held_out, d.limit
            ));
        }
        if self.run.out_dir.as_os_str().is_empty() && self.run.runs_root.as_os_str().is_empty() {
            problems.push("run.runs_root and run.out_dir are both empty: no place for the run folder".into());
        }
        if !self.device.backend.is_empty() {
            if let Err(e) = crate::gpu::adapter::parse_backend(&self.device.backend) {
                problems.push(format!("device.backend: {e}"));
            }
        }
    }
}

/// Pushes `"{key} = {v}: must be at least {min}"` when `v < min`.
fn at_least(problems: &mut Vec<String>, key: &str, v: u64, min: u64) {
    if v < min {
        problems.push(format!("{key} = {v}: must be at least {min}"));
    }
}

/// Pushes a problem unless `v` is positive and finite.
fn positive(problems: &mut Vec<String>, key: &str, v: f64) {
    if !(v.is_finite() && v > 0.0) {
        problems.push(format!("{key} = {v}: must be a positive number"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_as_documented() {
        let c = DnaConfig::default();
        c.validate().unwrap();
        assert_eq!((c.teacher.channels, c.teacher.cells, c.teacher.epochs), (16, 5, 10));
        assert_eq!(c.student.layers, [3, 3, 3]);
        assert_eq!((c.distill.epochs, c.distill.batch_size, c.distill.optimizer.as_str()), (5, 64, "adam"));
        assert_eq!((c.rating.recal_batch, c.rating.eval_batches, c.rating.paths_per_submit), (64, 4, 32));
        assert_eq!(c.budget(), Budget::NONE);
        assert_eq!((c.search.top_k, c.retrain.epochs, c.data.held_out), (5, 0, 500));
    }

    #[test]
    fn toml_round_trip_keeps_every_key() {
        let mut c = DnaConfig::default();
        c.apply_overrides(&["search.max_params=123456", "student.layers=2,4,3", "distill.optimizer=sgd"]).unwrap();
        let text = c.to_toml_string().unwrap();
        for key in ["[teacher]", "run = \"\"", "se_ratio", "paths_per_submit", "held_out", "[device]"] {
            assert!(text.contains(key), "{key} missing from\n{text}");
        }
        let back = DnaConfig::from_toml_str(&text, Path::new("dna.toml")).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.budget(), Budget { max_params: Some(123_456), max_flops: None });
        assert_eq!(back.student.layers, [2, 4, 3]);
    }

    #[test]
    fn overrides_take_toml_lists_integers_for_reals_and_bare_strings() {
        let mut c = DnaConfig::default();
        c.apply_override("student.layers=[4, 4, 2]").unwrap();
        c.apply_override("distill.lr=1").unwrap();
        c.apply_override("data.dataset=/data/cifar").unwrap();
        assert_eq!(
            (c.student.layers.clone(), c.distill.lr, c.data.dataset.as_str()),
            (vec![4, 4, 2], 1.0, "/data/cifar")
        );
        let e = c.apply_override("search.max_parms=3").unwrap_err().to_string();
        assert!(e.contains("max_parms") && e.contains("max_params"), "{e}");
        let e = c.apply_override("search.top_k=many").unwrap_err().to_string();
        assert!(e.contains("search.top_k") && e.contains("integer"), "{e}");
        assert!(c.apply_override("no_equals_sign").is_err());
    }

    #[test]
    fn unknown_keys_fail_to_load() {
        let e = DnaConfig::from_toml_str("[distill]\nepoch = 3\n", Path::new("x.toml")).unwrap_err().to_string();
        assert!(e.contains("x.toml") && e.contains("epoch"), "{e}");
    }

    #[test]
    fn validate_reports_every_problem_with_the_key() {
        let mut c = DnaConfig::default();
        c.teacher.arch = "|conv~0|".into();
        c.student.layers = vec![3, 5, 2, 2];
        c.distill.optimizer = "rmsprop".into();
        c.distill.lr = 0.0;
        c.data.limit = 100;
        c.data.held_out = 100;
        let e = c.validate().unwrap_err().to_string();
        for key in ["teacher.arch", "student.layers =", "student.layers[1] = 5", "rmsprop", "distill.lr", "held_out"] {
            assert!(e.contains(key), "{key} not in {e}");
        }
    }

    #[test]
    fn one_to_three_student_blocks_are_valid() {
        let mut c = DnaConfig::default();
        for layers in [vec![2], vec![2, 4], vec![3, 3, 3]] {
            c.student.layers = layers;
            c.validate().unwrap();
        }
        c.student.layers = vec![];
        assert!(c.validate().unwrap_err().to_string().contains("1 to 3 entries"));
        c.student.layers = vec![2];
        c.student.se_ratio = 0.0;
        assert!(c.validate().unwrap_err().to_string().contains("student.se_ratio"));
    }

    #[test]
    fn missing_files_are_reported_apart_from_values() {
        let mut c = DnaConfig::default();
        c.check_paths().unwrap();
        c.teacher.run = PathBuf::from("/no/such/teacher/run");
        c.data.dataset = "/no/such/dataset".into();
        c.validate().unwrap();
        let e = c.check_paths().unwrap_err().to_string();
        assert!(e.contains("teacher.run") && e.contains("data.dataset"), "{e}");
    }

    #[test]
    fn the_shipped_configs_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
        assert_eq!(DnaConfig::load(&dir.join("dna.toml")).unwrap(), DnaConfig::default());
        let tiny = DnaConfig::load(&dir.join("dna-tiny.toml")).unwrap();
        assert_eq!((tiny.teacher.channels, tiny.student.layers.clone()), (4, vec![2, 2]));
    }
}
