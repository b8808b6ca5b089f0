//! The flags of `wgnas dna` that build a config: a file (or a resumed run's `dna.toml`), the
//! common settings, and `--set section.key=value` for everything else. Apply order: file,
//! typed flags, `--set`.

use std::path::{Path, PathBuf};

use super::config::DnaConfig;
use super::files::DnaFolder;
use crate::run::config::read_config_text;
use crate::{Error, Result};

/// Flags of `wgnas dna`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DnaFlags {
    /// Config file (TOML, see configs/dna.toml); without it the defaults are used.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Any config key, e.g. --set distill.epochs=3 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// At most this many parameters in the whole searched network (search.max_params).
    #[arg(long, value_name = "N")]
    pub max_params: Option<u64>,
    /// At most this many multiply-accumulates per image (search.max_flops).
    #[arg(long, value_name = "N")]
    pub max_flops: Option<u64>,
    /// Architectures to report: the best and the next ones (search.top_k).
    #[arg(long, value_name = "K")]
    pub top_k: Option<usize>,
    /// Retrain the chosen architecture for this many epochs (retrain.epochs; 0 = not at all).
    #[arg(long, value_name = "E")]
    pub retrain_epochs: Option<u64>,
    /// Dataset path, or 'bundled' (data.dataset).
    #[arg(long)]
    pub dataset: Option<String>,
    /// Random seed (run.seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run folder (run.out_dir; default runs/TIMESTAMP-dna).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

impl DnaFlags {
    /// The config: the file (or, with `resume`, the run's own `dna.toml`), then the flags.
    /// Validated.
    pub fn resolve(&self, resume: Option<&Path>) -> Result<DnaConfig> {
        let mut cfg = match (resume, &self.config) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    "wgnas dna",
                    "--resume uses the run's own dna.toml: change settings with --set or the flags, not -c",
                ))
            }
            (Some(dir), None) => DnaFolder::open(dir)?.read_config()?,
            (None, Some(path)) => DnaConfig::from_toml_str(&read_config_text(path)?, path)?,
            (None, None) => DnaConfig::default(),
        };
        self.apply(&mut cfg)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Applies the typed flags, then the `--set` overrides, to `cfg`.
    pub fn apply(&self, cfg: &mut DnaConfig) -> Result<()> {
        if let Some(v) = self.max_params {
            cfg.search.max_params = v;
        }
        if let Some(v) = self.max_flops {
            cfg.search.max_flops = v;
        }
        if let Some(v) = self.top_k {
            cfg.search.top_k = v;
        }
        if let Some(v) = self.retrain_epochs {
            cfg.retrain.epochs = v;
        }
        if let Some(v) = &self.dataset {
            cfg.data.dataset = v.clone();
        }
        if let Some(v) = self.seed {
            cfg.run.seed = v;
        }
        if let Some(v) = &self.out {
            cfg.run.out_dir = v.clone();
        }
        cfg.apply_overrides(&self.set)
    }
}
