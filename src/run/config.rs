//! The search configuration: one TOML file with the sections `[space]`, `[data]`,
//! `[strategy]`, `[run]` and `[device]`. Defaults are the NAS-Bench-201 reference
//! settings of DESIGN.md §3, so an empty file is a valid DARTS-1st search.
//!
//! Every key is always present in the serialized form (TOML has no null: "unset"
//! strings and paths are `""`), so every key can be shown, saved in the run folder and
//! overridden with `--set key.path=value` ([`SearchConfig::apply_override`]).
//!
//! The `[strategy]` section is open: besides `name` and the `[strategy.beta]` table it
//! holds a flat map of hyper-parameters ([`StrategyConfig::params`]) that the strategy
//! builder reads with [`StrategyConfig::f64`], [`StrategyConfig::u64`] and
//! [`StrategyConfig::bool`]. The keys each strategy accepts, with their defaults, are
//! listed in one table ([`PARAMS`]); unknown keys are errors, so a typo is caught.
//!
//! Relative paths (dataset, split file, NB201 table, run folders) are relative to the
//! working directory, not to the config file.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::space::nb201::Nb201Op;
use crate::{Error, Result};

/// Search spaces a config may name.
pub const SPACES: &[&str] = &["nb201"];
/// Strategies a config may name.
pub const STRATEGIES: &[&str] = &["darts-1st", "darts-2nd", "milenas", "gdas"];
/// The dataset name that means the small sample set shipped with wgnas.
pub const BUNDLED: &str = "bundled";

/// Component name of config errors.
const WHAT: &str = "config";

/// A whole search run's settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchConfig {
    /// The supernet.
    pub space: SpaceConfig,
    /// The images and how they are split and batched.
    pub data: DataConfig,
    /// The search strategy and its hyper-parameters.
    pub strategy: StrategyConfig,
    /// Length, seed, output folder, checkpoints and logging.
    pub run: RunConfig,
    /// Which GPU to use.
    pub device: DeviceConfig,
}

/// `[space]`: the supernet's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpaceConfig {
    /// Search space name (one of [`SPACES`]).
    pub name: String,
    /// Channels C of the first stage (the later stages have 2C and 4C).
    pub channels: usize,
    /// Cells N per stage.
    pub cells: usize,
    /// Candidate ops of every edge, by name, in α's column order.
    pub ops: Vec<String>,
    /// Side of the square network input; a smaller side than the dataset's images crops them.
    pub input_size: usize,
    /// Input image channels.
    pub in_channels: usize,
    /// Number of classes.
    pub classes: usize,
}

/// `[data]`: the training images, the weights/α split and batching.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// `"bundled"` or a path to a dataset (e.g. a folder of CIFAR-10 binary batches).
    pub dataset: String,
    /// Fraction of the training images that train the weights; the rest train α.
    pub train_fraction: f64,
    /// Seed of the random split (used when `split_file` is empty).
    pub split_seed: u64,
    /// A JSON file `{"train": [...], "valid": [...]}` of image indices; overrides the fraction.
    pub split_file: PathBuf,
    /// Images per batch (both halves).
    pub batch_size: usize,
    /// Random crop (padding 4) and horizontal flip on the training images.
    pub augment: bool,
    /// Loader threads (0 = load on the search thread).
    pub workers: usize,
    /// Batches prepared ahead of the search.
    pub prefetch: usize,
    /// Use only the first `limit` training images (0 = all), for quick runs.
    pub limit: usize,
}

/// `[strategy]`: the strategy's name, its hyper-parameters and the β-DARTS regularizer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StrategyConfig {
    /// Strategy name (one of [`STRATEGIES`]).
    pub name: String,
    /// Hyper-parameters, flat under `[strategy]` (see [`PARAMS`]); resolved configs hold every
    /// key the strategy accepts.
    #[serde(flatten)]
    pub params: toml::Table,
    /// The β-DARTS regularizer, usable with any strategy.
    pub beta: BetaConfig,
}

/// `[strategy.beta]`: β-DARTS's Beta-Decay regularizer on α,
/// `L_α += λ(epoch) · mean_edges logsumexp(α_edge)`, with
/// `λ(e) = weight_start + (weight_end − weight_start) · min(e / ramp_epochs, 1)`
/// (the reference code uses `λ = 50 · e / 100`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BetaConfig {
    /// Whether the regularizer is added.
    pub enabled: bool,
    /// λ at epoch 0.
    pub weight_start: f64,
    /// λ at epoch `ramp_epochs` and later.
    pub weight_end: f64,
    /// Epochs of the linear ramp.
    pub ramp_epochs: u64,
}

/// `[run]`: length, seed, where the run is written, checkpoints and logging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// Search epochs.
    pub epochs: u64,
    /// Seed of weights, α, data order and sampling.
    pub seed: u64,
    /// The run folder; empty = `<runs_root>/<timestamp>-<space>-<strategy>`.
    pub out_dir: PathBuf,
    /// Where new run folders are made when `out_dir` is empty.
    pub runs_root: PathBuf,
    /// Save a checkpoint every this many steps (0 = only at epoch ends, if enabled).
    pub checkpoint_every: u64,
    /// Save a checkpoint at the end of each epoch.
    pub checkpoint_each_epoch: bool,
    /// Checkpoints kept (the oldest are deleted).
    pub keep_checkpoints: usize,
    /// NAS-Bench-201 table for per-epoch ground truth; empty = `$WGNAS_NB201` or none.
    pub nb201_table: PathBuf,
    /// Log a step record every this many steps.
    pub log_every: u64,
}

/// `[device]`: which adapter the run uses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceConfig {
    /// Case-insensitive substring of the adapter name; empty = the best adapter.
    pub adapter: String,
    /// Backend (vulkan, metal, dx12, gl); empty = any.
    pub backend: String,
}

impl Default for SpaceConfig {
    fn default() -> Self {
        SpaceConfig {
            name: "nb201".into(),
            channels: 16,
            cells: 5,
            ops: Nb201Op::ALL.iter().map(|op| op.name().to_string()).collect(),
            input_size: 32,
            in_channels: 3,
            classes: 10,
        }
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            dataset: BUNDLED.into(),
            train_fraction: 0.5,
            split_seed: 0,
            split_file: PathBuf::new(),
            batch_size: 64,
            augment: true,
            workers: 2,
            prefetch: 4,
            limit: 0,
        }
    }
}

impl Default for StrategyConfig {
    fn default() -> Self {
        StrategyConfig::named("darts-1st")
    }
}

impl Default for BetaConfig {
    fn default() -> Self {
        BetaConfig { enabled: false, weight_start: 0.0, weight_end: 50.0, ramp_epochs: 100 }
    }
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            epochs: 50,
            seed: 0,
            out_dir: PathBuf::new(),
            runs_root: PathBuf::from("runs"),
            checkpoint_every: 200,
            checkpoint_each_epoch: true,
            keep_checkpoints: 3,
            nb201_table: PathBuf::new(),
            log_every: 20,
        }
    }
}

// ---- strategy hyper-parameters ----------------------------------------------------

/// The type and default of a hyper-parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamDefault {
    /// A real number (integers in the file are accepted and stored as floats).
    Float(f64),
    /// A non-negative integer.
    Int(u64),
    /// A flag.
    Bool(bool),
}

/// The values a real-valued hyper-parameter may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamRange {
    /// `x > 0`.
    Positive,
    /// `x ≥ 0`.
    NonNegative,
    /// `0 ≤ x < 1` (momentum, Adam betas).
    Unit,
}

/// One strategy hyper-parameter: its key under `[strategy]`, default, range and users.
#[derive(Debug, Clone, Copy)]
pub struct ParamSpec {
    /// Key under `[strategy]`.
    pub key: &'static str,
    /// Type and default value.
    pub default: ParamDefault,
    /// Allowed values (reals only).
    pub range: ParamRange,
    /// Strategies that accept it (empty = all).
    pub strategies: &'static [&'static str],
    /// What it does.
    pub doc: &'static str,
}

const fn p(
    key: &'static str,
    default: ParamDefault,
    range: ParamRange,
    strategies: &'static [&'static str],
    doc: &'static str,
) -> ParamSpec {
    ParamSpec { key, default, range, strategies, doc }
}

use ParamDefault::{Bool, Float, Int};
use ParamRange::{NonNegative, Positive, Unit};

/// Every strategy hyper-parameter, with the DESIGN.md §3 reference values as defaults.
pub const PARAMS: &[ParamSpec] = &[
    p("lr_w", Float(0.025), Positive, &[], "weights: SGD learning rate at epoch 0 (cosine-annealed)"),
    p("lr_w_min", Float(0.001), NonNegative, &[], "weights: learning rate at the end of the cosine schedule"),
    p("momentum", Float(0.9), Unit, &[], "weights: SGD momentum"),
    p("nesterov", Bool(true), NonNegative, &[], "weights: Nesterov momentum"),
    p("weight_decay", Float(5e-4), NonNegative, &[], "weights: L2 weight decay"),
    p("grad_clip", Float(5.0), NonNegative, &[], "weights: clip the gradient's global L2 norm to this (0 = off)"),
    p("lr_alpha", Float(3e-4), Positive, &[], "α: Adam learning rate"),
    p("alpha_beta1", Float(0.5), Unit, &[], "α: Adam β1"),
    p("alpha_beta2", Float(0.999), Unit, &[], "α: Adam β2"),
    p("alpha_weight_decay", Float(1e-3), NonNegative, &[], "α: Adam L2 weight decay"),
    p("alpha_init_std", Float(1e-3), NonNegative, &[], "α: initialised as alpha_init_std · N(0, 1)"),
    p(
        "unroll_eps",
        Float(0.01),
        Positive,
        &["darts-2nd"],
        "finite-difference Hessian-vector product step: ε = unroll_eps / ‖∇w' L_val‖",
    ),
    p("lambda", Float(1.0), NonNegative, &["milenas"], "α ← α − η_α (∇α L_train + λ ∇α L_val)"),
    p(
        "early_stop_patience",
        Int(0),
        NonNegative,
        &["milenas"],
        "stop after this many epochs without a larger model size (conv count); 0 = never",
    ),
    p("tau_max", Float(10.0), Positive, &["gdas"], "Gumbel-softmax temperature at epoch 0"),
    p("tau_min", Float(0.1), Positive, &["gdas"], "temperature at the last epoch (linear anneal)"),
];

impl ParamSpec {
    /// Whether strategy `name` accepts this key.
    pub fn applies_to(&self, name: &str) -> bool {
        self.strategies.is_empty() || self.strategies.contains(&name)
    }

    /// The default as a TOML value.
    pub fn default_value(&self) -> toml::Value {
        match self.default {
            Float(v) => toml::Value::Float(v),
            Int(v) => toml::Value::Integer(v as i64),
            Bool(v) => toml::Value::Boolean(v),
        }
    }
}

/// The hyper-parameters strategy `name` accepts.
pub fn params_of(name: &str) -> impl Iterator<Item = &'static ParamSpec> + '_ {
    PARAMS.iter().filter(move |s| s.applies_to(name))
}

impl StrategyConfig {
    /// Strategy `name` with all its default hyper-parameters (no check that the name is known).
    pub fn named(name: &str) -> Self {
        let params = params_of(name).map(|s| (s.key.to_string(), s.default_value())).collect();
        StrategyConfig { name: name.into(), params, beta: BetaConfig::default() }
    }

    /// Checks the name and every given key (known for this strategy, right type, in range),
    /// converts integer values of real keys to floats, and fills in missing defaults.
    pub fn resolve(&mut self) -> Result<()> {
        if !STRATEGIES.contains(&self.name.as_str()) {
            return Err(unknown_name("strategy.name", &self.name, STRATEGIES));
        }
        let mut problems = Vec::new();
        let name = self.name.as_str();
        for (key, value) in self.params.iter_mut() {
            match params_of(name).find(|s| s.key == key) {
                Some(spec) => {
                    if let Err(msg) = coerce(spec, value) {
                        problems.push(format!("strategy.{key} = {value}: {msg}"));
                    }
                }
                None => problems.push(unknown_key(name, key)),
            }
        }
        if !problems.is_empty() {
            return Err(Error::invalid(WHAT, problems.join("\n  ")));
        }
        for spec in params_of(&self.name) {
            self.params.entry(spec.key).or_insert_with(|| spec.default_value());
        }
        Ok(())
    }

    /// Switches to strategy `name`: keys the new strategy also takes keep their values, the
    /// others are dropped, and its own keys get their defaults.
    pub fn set_name(&mut self, name: &str) -> Result<()> {
        if !STRATEGIES.contains(&name) {
            return Err(unknown_name("strategy.name", name, STRATEGIES));
        }
        self.params.retain(|k, _| params_of(name).any(|s| s.key == k));
        self.name = name.into();
        self.resolve()
    }

    /// Real hyper-parameter `key` (the default if the table lacks it).
    pub fn f64(&self, key: &str) -> Result<f64> {
        match self.lookup(key)? {
            toml::Value::Float(v) => Ok(v),
            toml::Value::Integer(v) => Ok(v as f64),
            other => Err(self.wrong_type(key, "a number", &other)),
        }
    }

    /// Integer hyper-parameter `key` (the default if the table lacks it).
    pub fn u64(&self, key: &str) -> Result<u64> {
        match self.lookup(key)? {
            toml::Value::Integer(v) if v >= 0 => Ok(v as u64),
            other => Err(self.wrong_type(key, "a non-negative integer", &other)),
        }
    }

    /// Flag hyper-parameter `key` (the default if the table lacks it).
    pub fn bool(&self, key: &str) -> Result<bool> {
        match self.lookup(key)? {
            toml::Value::Boolean(v) => Ok(v),
            other => Err(self.wrong_type(key, "true or false", &other)),
        }
    }

    fn lookup(&self, key: &str) -> Result<toml::Value> {
        if let Some(v) = self.params.get(key) {
            return Ok(v.clone());
        }
        match params_of(&self.name).find(|s| s.key == key) {
            Some(spec) => Ok(spec.default_value()),
            None => Err(Error::invalid(WHAT, unknown_key(&self.name, key))),
        }
    }

    fn wrong_type(&self, key: &str, want: &str, got: &toml::Value) -> Error {
        Error::invalid(WHAT, format!("strategy.{key} = {got}: expected {want}"))
    }
}

/// The message for a key that strategy `name` does not take.
fn unknown_key(name: &str, key: &str) -> String {
    let valid: Vec<&str> = params_of(name).map(|s| s.key).collect();
    let users: Vec<&str> = PARAMS.iter().filter(|s| s.key == key).flat_map(|s| s.strategies.iter().copied()).collect();
    let hint = if users.is_empty() { String::new() } else { format!(" (it is for {})", users.join(", ")) };
    format!("strategy.{key}: {name} does not take this key{hint}; its keys are {}", valid.join(", "))
}

/// Checks `value` against `spec`, turning an integer into a float where a real is expected.
fn coerce(spec: &ParamSpec, value: &mut toml::Value) -> std::result::Result<(), String> {
    match (spec.default, &*value) {
        (Float(_), toml::Value::Integer(i)) => {
            *value = toml::Value::Float(*i as f64);
            coerce(spec, value)
        }
        (Float(_), toml::Value::Float(x)) => check_range(*x, spec.range),
        (Float(_), _) => Err("expected a number".into()),
        (Int(_), toml::Value::Integer(i)) if *i >= 0 => Ok(()),
        (Int(_), _) => Err("expected a non-negative integer".into()),
        (Bool(_), toml::Value::Boolean(_)) => Ok(()),
        (Bool(_), _) => Err("expected true or false".into()),
    }
}

fn check_range(x: f64, range: ParamRange) -> std::result::Result<(), String> {
    let ok = x.is_finite()
        && match range {
            Positive => x > 0.0,
            NonNegative => x >= 0.0,
            Unit => (0.0..1.0).contains(&x),
        };
    match (ok, range) {
        (true, _) => Ok(()),
        (false, Positive) => Err("must be a finite number > 0".into()),
        (false, NonNegative) => Err("must be a finite number ≥ 0".into()),
        (false, Unit) => Err("must be in [0, 1)".into()),
    }
}

fn unknown_name(key: &str, got: &str, valid: &[&str]) -> Error {
    Error::invalid(WHAT, format!("{key} = '{got}' is not known; valid names are {}", valid.join(", ")))
}

impl BetaConfig {
    /// The regularizer weight λ at `epoch` (0 when disabled).
    pub fn weight_at(&self, epoch: u64) -> f64 {
        if !self.enabled {
            return 0.0;
        }
        let t = (epoch as f64 / self.ramp_epochs.max(1) as f64).min(1.0);
        self.weight_start + (self.weight_end - self.weight_start) * t
    }
}

// ---- loading, saving, validation -----------------------------------------------

impl SearchConfig {
    /// Reads, resolves and validates the TOML file at `path` (paths it names are not checked:
    /// see [`SearchConfig::check_paths`]).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        let cfg = Self::from_toml_str(&text, path)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Parses TOML `text` and resolves the strategy's hyper-parameters; `source` names the
    /// text in errors. Does not validate values.
    pub fn from_toml_str(text: &str, source: &Path) -> Result<Self> {
        let mut cfg: SearchConfig =
            toml::from_str(text).map_err(|e| Error::Format { path: source.to_path_buf(), message: e.to_string() })?;
        cfg.strategy.resolve().map_err(|e| Error::Format { path: source.to_path_buf(), message: e.to_string() })?;
        Ok(cfg)
    }

    /// The config as TOML, every key present.
    pub fn to_toml_string(&self) -> Result<String> {
        let body = toml::to_string(self).map_err(|e| Error::invalid(WHAT, format!("cannot write as TOML: {e}")))?;
        Ok(format!("# wgnas search config (resolved: every key, defaults filled in)\n\n{body}"))
    }

    /// Writes the TOML form to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        super::folder::atomic_write(path, self.to_toml_string()?.as_bytes())
    }

    /// Checks every value, reporting all problems at once.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        self.space.check(&mut problems);
        self.data.check(&mut problems);
        self.strategy_check(&mut problems);
        self.run.check(&mut problems);
        self.device.check(&mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::invalid(WHAT, format!("invalid settings:\n  {}", problems.join("\n  "))))
        }
    }

    fn strategy_check(&self, problems: &mut Vec<String>) {
        let mut s = self.strategy.clone();
        if let Err(e) = s.resolve() {
            problems.push(strip_what(&e));
            return;
        }
        let pair = |lo: &str, hi: &str, problems: &mut Vec<String>| {
            if let (Ok(a), Ok(b)) = (s.f64(lo), s.f64(hi)) {
                if a > b {
                    problems.push(format!("strategy.{lo} = {a} is above strategy.{hi} = {b}"));
                }
            }
        };
        if s.params.contains_key("lr_w_min") {
            pair("lr_w_min", "lr_w", problems);
        }
        if s.params.contains_key("tau_min") {
            pair("tau_min", "tau_max", problems);
        }
        let b = &self.strategy.beta;
        for (key, v) in [("weight_start", b.weight_start), ("weight_end", b.weight_end)] {
            if !(v.is_finite() && v >= 0.0) {
                problems.push(format!("strategy.beta.{key} = {v}: must be a finite number ≥ 0"));
            }
        }
        if b.ramp_epochs == 0 {
            problems.push("strategy.beta.ramp_epochs = 0: must be at least 1".into());
        }
    }

    /// Checks that the files the config names exist: the dataset (unless bundled), the split
    /// file and the NB201 table (when given).
    pub fn check_paths(&self) -> Result<()> {
        let mut problems = Vec::new();
        if self.data.dataset != BUNDLED && !Path::new(&self.data.dataset).exists() {
            problems.push(format!(
                "data.dataset = '{}': no such file or folder (give a dataset path, or '{BUNDLED}')",
                self.data.dataset
            ));
        }
        for (key, path) in [("data.split_file", &self.data.split_file), ("run.nb201_table", &self.run.nb201_table)] {
            if !path.as_os_str().is_empty() && !path.exists() {
                problems.push(format!("{key} = '{}': no such file", path.display()));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::invalid(WHAT, format!("missing files:\n  {}", problems.join("\n  "))))
        }
    }

    /// A 16-hex-digit FNV-1a hash of the settings that change the search's result: space,
    /// data (but not loader threads), strategy, epochs and seed. Output, logging,
    /// checkpoint and device settings are left out, so a run may resume elsewhere.
    pub fn config_hash(&self) -> String {
        let mut c = self.clone();
        c.data.workers = 0;
        c.data.prefetch = 0;
        c.run = RunConfig { epochs: self.run.epochs, seed: self.run.seed, ..RunConfig::default() };
        c.device = DeviceConfig::default();
        let text = toml::to_string(&c).unwrap_or_default();
        format!("{:016x}", fnv1a64(text.as_bytes()))
    }

    /// The candidate ops as NB201 ops (valid after [`SearchConfig::validate`]).
    pub fn nb201_ops(&self) -> Result<Vec<Nb201Op>> {
        self.space.ops.iter().map(|s| s.parse::<Nb201Op>()).collect()
    }

    /// The device section as the engine's adapter choice.
    pub fn adapter_choice(&self) -> crate::gpu::AdapterChoice {
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        crate::gpu::AdapterChoice { name: opt(&self.device.adapter), backend: opt(&self.device.backend) }
    }
}

/// The message of `e` without the leading `config: `.
fn strip_what(e: &Error) -> String {
    let s = e.to_string();
    s.strip_prefix("config: ").unwrap_or(&s).to_string()
}

/// FNV-1a, 64 bits: a stable hash (std's hasher may change between Rust versions).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

/// Pushes `"{key} = {v}: must be at least {min}"` when `v < min`.
fn at_least(problems: &mut Vec<String>, key: &str, v: u64, min: u64) {
    if v < min {
        problems.push(format!("{key} = {v}: must be at least {min}"));
    }
}

impl SpaceConfig {
    fn check(&self, problems: &mut Vec<String>) {
        if !SPACES.contains(&self.name.as_str()) {
            problems.push(strip_what(&unknown_name("space.name", &self.name, SPACES)));
        }
        at_least(problems, "space.channels", self.channels as u64, 1);
        at_least(problems, "space.cells", self.cells as u64, 1);
        at_least(problems, "space.input_size", self.input_size as u64, 1);
        at_least(problems, "space.in_channels", self.in_channels as u64, 1);
        at_least(problems, "space.classes", self.classes as u64, 2);
        if self.ops.is_empty() {
            problems.push(format!("space.ops is empty; choose from {}", Nb201Op::valid_names()));
        }
        for (i, op) in self.ops.iter().enumerate() {
            if Nb201Op::from_name(op).is_none() {
                problems.push(format!("space.ops: unknown op '{op}'; valid ops are {}", Nb201Op::valid_names()));
            } else if self.ops[..i].contains(op) {
                problems.push(format!("space.ops: '{op}' is listed twice"));
            }
        }
    }
}

impl DataConfig {
    fn check(&self, problems: &mut Vec<String>) {
        if self.dataset.trim().is_empty() {
            problems.push(format!("data.dataset is empty: give a dataset path or '{BUNDLED}'"));
        }
        if !(self.train_fraction > 0.0 && self.train_fraction < 1.0) {
            problems.push(format!(
                "data.train_fraction = {}: must be between 0 and 1 (both halves need images)",
                self.train_fraction
            ));
        }
        at_least(problems, "data.batch_size", self.batch_size as u64, 1);
        at_least(problems, "data.prefetch", self.prefetch as u64, 1);
    }
}

impl RunConfig {
    fn check(&self, problems: &mut Vec<String>) {
        at_least(problems, "run.epochs", self.epochs, 1);
        at_least(problems, "run.log_every", self.log_every, 1);
        at_least(problems, "run.keep_checkpoints", self.keep_checkpoints as u64, 1);
        if self.out_dir.as_os_str().is_empty() && self.runs_root.as_os_str().is_empty() {
            problems.push("run.runs_root and run.out_dir are both empty: no place for the run folder".into());
        }
    }
}

impl DeviceConfig {
    fn check(&self, problems: &mut Vec<String>) {
        if !self.backend.is_empty() {
            if let Err(e) = crate::gpu::adapter::parse_backend(&self.backend) {
                problems.push(format!("device.backend: {e}"));
            }
        }
    }
}

// ---- overrides ---------------------------------------------------------------------

impl SearchConfig {
    /// Applies one `key.path=value` override, e.g. `strategy.lr_alpha=0.001`,
    /// `data.augment=false`, `space.ops=none,skip_connect` or `run.out_dir=runs/a`.
    /// The value is read as TOML where that fits the key's type; strings may be bare.
    /// Unknown keys and wrong types are errors that list what is valid.
    pub fn apply_override(&mut self, spec: &str) -> Result<()> {
        let Some((key, raw)) = spec.split_once('=') else {
            return Err(Error::invalid(WHAT, format!("override '{spec}': expected KEY=VALUE, e.g. run.epochs=10")));
        };
        let (key, raw) = (key.trim(), raw.trim());
        if key == "strategy.name" {
            return self.strategy.set_name(unquote(raw));
        }
        if let Some(param) = key.strip_prefix("strategy.").filter(|k| !k.contains('.') && *k != "beta") {
            if !self.strategy.params.contains_key(param) {
                return Err(Error::invalid(WHAT, unknown_key(&self.strategy.name, param)));
            }
        }
        let mut root = toml::Table::try_from(&*self).map_err(|e| Error::invalid(WHAT, e.to_string()))?;
        let slot = find_slot(&mut root, key)?;
        *slot = parse_like(slot, raw).map_err(|msg| Error::invalid(WHAT, format!("override {key}={raw}: {msg}")))?;
        let mut cfg: SearchConfig = root
            .try_into()
            .map_err(|e: toml::de::Error| Error::invalid(WHAT, format!("override {key}={raw}: {}", e.message())))?;
        cfg.strategy.resolve()?;
        *self = cfg;
        Ok(())
    }

    /// Applies overrides in order.
    pub fn apply_overrides<S: AsRef<str>>(&mut self, specs: &[S]) -> Result<()> {
        specs.iter().try_for_each(|s| self.apply_override(s.as_ref()))
    }

    /// Every key path with its current value, in file order (e.g. `("run.epochs", "50")`).
    pub fn key_values(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Ok(root) = toml::Table::try_from(self) {
            flatten_into("", &root, &mut out);
        }
        out
    }

    // Typed setters for the common command-line flags.

    /// Sets `run.epochs`.
    pub fn set_epochs(&mut self, epochs: u64) {
        self.run.epochs = epochs;
    }

    /// Sets `data.batch_size`.
    pub fn set_batch_size(&mut self, batch_size: usize) {
        self.data.batch_size = batch_size;
    }

    /// Sets `run.seed`.
    pub fn set_seed(&mut self, seed: u64) {
        self.run.seed = seed;
    }

    /// Sets `strategy.name` (see [`StrategyConfig::set_name`]).
    pub fn set_strategy(&mut self, name: &str) -> Result<()> {
        self.strategy.set_name(name)
    }

    /// Sets `data.dataset` (a path or `"bundled"`).
    pub fn set_dataset(&mut self, dataset: &str) {
        self.data.dataset = dataset.into();
    }

    /// Sets `run.out_dir`.
    pub fn set_out_dir(&mut self, dir: &Path) {
        self.run.out_dir = dir.to_path_buf();
    }

    /// Sets `run.nb201_table`.
    pub fn set_nb201_table(&mut self, path: &Path) {
        self.run.nb201_table = path.to_path_buf();
    }

    /// Sets the `[device]` keys that are given.
    pub fn set_device(&mut self, adapter: Option<&str>, backend: Option<&str>) {
        if let Some(a) = adapter {
            self.device.adapter = a.into();
        }
        if let Some(b) = backend {
            self.device.backend = b.into();
        }
    }
}

/// The value at dotted `key` in `root`; unknown keys list the valid ones at their level.
fn find_slot<'a>(root: &'a mut toml::Table, key: &str) -> Result<&'a mut toml::Value> {
    let parts: Vec<&str> = key.split('.').collect();
    let mut table = root;
    for (i, part) in parts.iter().enumerate() {
        let here = parts[..i].join(".");
        let keys: Vec<String> = table.keys().cloned().collect();
        let Some(value) = table.get_mut(*part) else {
            let level = if here.is_empty() { "top level".into() } else { format!("[{here}]") };
            let msg = format!("unknown key '{key}': the {level} has {}", keys.join(", "));
            return Err(Error::invalid(WHAT, msg));
        };
        if i + 1 == parts.len() {
            if let toml::Value::Table(t) = value {
                let sub: Vec<&String> = t.keys().collect();
                let msg = format!("'{key}' is a section; set one of its keys: {sub:?}");
                return Err(Error::invalid(WHAT, msg));
            }
            return Ok(value);
        }
        match value {
            toml::Value::Table(t) => table = t,
            _ => return Err(Error::invalid(WHAT, format!("'{}' is a value, not a section", parts[..=i].join(".")))),
        }
    }
    Err(Error::invalid(WHAT, format!("empty key in override '{key}'")))
}

/// `raw` read as a value of the same type as `old`.
fn parse_like(old: &toml::Value, raw: &str) -> std::result::Result<toml::Value, String> {
    use toml::Value as V;
    let parsed = parse_toml_value(raw);
    match (old, parsed) {
        (V::String(_), Some(V::String(s))) => Ok(V::String(s)),
        (V::String(_), _) => Ok(V::String(raw.to_string())),
        (V::Float(_), Some(V::Float(x))) => Ok(V::Float(x)),
        (V::Float(_), Some(V::Integer(i))) => Ok(V::Float(i as f64)),
        (V::Integer(_), Some(V::Integer(i))) => Ok(V::Integer(i)),
        (V::Boolean(_), Some(V::Boolean(b))) => Ok(V::Boolean(b)),
        (V::Array(_), Some(V::Array(a))) => Ok(V::Array(a)),
        (V::Array(_), _) => Ok(V::Array(raw.split(',').map(|s| V::String(unquote(s.trim()).into())).collect())),
        (old, _) => Err(format!("expected {}", type_name(old))),
    }
}

/// `raw` parsed as one TOML value, if it is one.
fn parse_toml_value(raw: &str) -> Option<toml::Value> {
    let doc: toml::Table = toml::from_str(&format!("v = {raw}")).ok()?;
    doc.get("v").cloned()
}

fn type_name(v: &toml::Value) -> &'static str {
    match v {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a number",
        toml::Value::Boolean(_) => "true or false",
        toml::Value::Datetime(_) => "a date",
        toml::Value::Array(_) => "a list",
        toml::Value::Table(_) => "a section",
    }
}

/// `s` without one pair of surrounding quotes.
fn unquote(s: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = s.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    s
}

fn flatten_into(prefix: &str, table: &toml::Table, out: &mut Vec<(String, String)>) {
    for (k, v) in table {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            toml::Value::Table(t) => flatten_into(&key, t, out),
            other => out.push((key, other.to_string())),
        }
    }
}

// ---- command-line flags --------------------------------------------------------------

/// The flags of `wgnas search` that build a config: a file, the common settings, and
/// `--set key=value` for everything else. Apply order: file, typed flags, `--set`.
/// (`--adapter` and `--backend` are the CLI's global flags: pass them to
/// [`SearchConfig::set_device`].)
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigFlags {
    /// Config file (TOML); without it the defaults are used.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Search strategy: darts-1st, darts-2nd, milenas or gdas.
    #[arg(long)]
    pub strategy: Option<String>,
    /// Search epochs.
    #[arg(long)]
    pub epochs: Option<u64>,
    /// Images per batch.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Random seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Dataset path, or 'bundled'.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Run folder (default: runs/TIMESTAMP-SPACE-STRATEGY).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// NAS-Bench-201 table for per-epoch ground truth.
    #[arg(long, value_name = "PATH")]
    pub nb201: Option<PathBuf>,
    /// Any config key, e.g. --set strategy.lr_alpha=0.001 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

impl ConfigFlags {
    /// Loads the file (or the defaults), applies the flags, and validates.
    pub fn resolve(&self) -> Result<SearchConfig> {
        let mut cfg = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.clone(), source })?;
                SearchConfig::from_toml_str(&text, path)?
            }
            None => SearchConfig::default(),
        };
        self.apply(&mut cfg)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Applies the typed flags, then the `--set` overrides, to `cfg`.
    pub fn apply(&self, cfg: &mut SearchConfig) -> Result<()> {
        if let Some(s) = &self.strategy {
            cfg.set_strategy(s)?;
        }
        if let Some(e) = self.epochs {
            cfg.set_epochs(e);
        }
        if let Some(b) = self.batch_size {
            cfg.set_batch_size(b);
        }
        if let Some(s) = self.seed {
            cfg.set_seed(s);
        }
        if let Some(d) = &self.dataset {
            cfg.set_dataset(d);
        }
        if let Some(o) = &self.out {
            cfg.set_out_dir(o);
        }
        if let Some(t) = &self.nb201 {
            cfg.set_nb201_table(t);
        }
        cfg.apply_overrides(&self.set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_reference_settings_and_valid() {
        let c = SearchConfig::default();
        c.validate().unwrap();
        assert_eq!((c.space.channels, c.space.cells, c.data.batch_size, c.run.epochs), (16, 5, 64, 50));
        assert_eq!(c.space.ops, ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]);
        let s = &c.strategy;
        assert_eq!((s.f64("lr_w").unwrap(), s.f64("lr_w_min").unwrap()), (0.025, 0.001));
        assert_eq!((s.f64("momentum").unwrap(), s.bool("nesterov").unwrap()), (0.9, true));
        assert_eq!((s.f64("weight_decay").unwrap(), s.f64("grad_clip").unwrap()), (5e-4, 5.0));
        assert_eq!((s.f64("lr_alpha").unwrap(), s.f64("alpha_weight_decay").unwrap()), (3e-4, 1e-3));
        assert_eq!((s.f64("alpha_beta1").unwrap(), s.f64("alpha_beta2").unwrap()), (0.5, 0.999));
        assert!(s.f64("tau_max").is_err(), "darts-1st has no temperature");
    }

    #[test]
    fn integers_are_accepted_for_reals() {
        let c = SearchConfig::from_toml_str("[strategy]\ngrad_clip = 3\n", Path::new("t.toml")).unwrap();
        assert_eq!(c.strategy.params["grad_clip"], toml::Value::Float(3.0));
    }

    #[test]
    fn beta_weight_ramps_linearly_then_holds() {
        let mut b = BetaConfig { enabled: true, ..BetaConfig::default() };
        // λ = 50 · e / 100, as in the reference code.
        assert_eq!(b.weight_at(0), 0.0);
        assert_eq!(b.weight_at(10), 5.0);
        assert_eq!(b.weight_at(200), 50.0);
        b.enabled = false;
        assert_eq!(b.weight_at(10), 0.0);
    }

    #[test]
    fn fnv_matches_the_published_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
