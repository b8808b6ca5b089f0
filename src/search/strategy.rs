//! The [`Strategy`] trait every search strategy implements, the values it exchanges
//! with the run loop, and the registry a GUI lists strategies from.

use serde::{Deserialize, Serialize};

use super::config::StrategyConfig;
use super::darts::{Darts, Order};
use super::gdas::Gdas;
use super::milenas::MiLeNas;
use super::model::SearchModel;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::tensor::Tensor;

/// One mini-batch: images `x` (NCHW) and labels `y` (`[N]`, class indices as f32).
#[derive(Debug, Clone)]
pub struct Batch {
    /// Images, `[N, C, H, W]`.
    pub x: Tensor,
    /// Class indices, `[N]`.
    pub y: Tensor,
}

impl Batch {
    /// A batch, after checking that `y` has one label per image.
    pub fn new(x: Tensor, y: Tensor) -> Result<Batch> {
        let n = x.shape().first().copied().unwrap_or(0);
        y.expect_shape("batch", &[n])?;
        Ok(Batch { x, y })
    }

    /// Number of samples N.
    pub fn len(&self) -> usize {
        self.y.numel()
    }

    /// Whether the batch holds no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What one step reports. The tensors are `[1]` GPU values (no readback happened): the
/// run loop reads them one step late. `*_count` turns a correct count into an accuracy.
#[derive(Debug, Clone)]
pub struct StepOutput {
    /// Mean cross-entropy of the train batch in the weight step (before the update).
    pub train_loss: Tensor,
    /// Correct predictions on the train batch in the weight step.
    pub train_correct: Tensor,
    /// Samples in the train batch.
    pub train_count: usize,
    /// Mean cross-entropy of the val batch in the α step (DARTS-2nd: at the unrolled w′).
    pub val_loss: Tensor,
    /// Correct predictions on the val batch in the α step.
    pub val_correct: Tensor,
    /// Samples in the val batch.
    pub val_count: usize,
    /// CPU-side hyper-parameters this step used, for logs: `w_lr`, `beta_lambda`, and
    /// `tau` for GDAS.
    pub scalars: Vec<(&'static str, f32)>,
}

impl StepOutput {
    /// The report of a step whose weight pass on `train` gave `(loss, correct)` = `tr` and
    /// whose α pass on `val` gave `va`.
    pub fn new(
        train: &Batch,
        tr: (Tensor, Tensor),
        val: &Batch,
        va: (Tensor, Tensor),
        scalars: Vec<(&'static str, f32)>,
    ) -> StepOutput {
        StepOutput {
            train_loss: tr.0,
            train_correct: tr.1,
            train_count: train.len(),
            val_loss: va.0,
            val_correct: va.1,
            val_count: val.len(),
            scalars,
        }
    }
}

/// Counters and random state of a strategy (the JSON part of a checkpoint).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Current epoch (0-based).
    pub epoch: usize,
    /// Steps taken in the current epoch.
    pub step_in_epoch: usize,
    /// Steps taken in total.
    pub steps: u64,
    /// Steps of the weight optimizer.
    pub w_steps: u64,
    /// Steps of the α optimizer.
    pub a_steps: u64,
    /// State of the strategy's random generator, if it has one.
    pub rng: Option<u64>,
}

/// Everything a strategy needs to resume: named GPU tensors (optimizer state under
/// `w_optim.<PyTorch name>` / `a_optim.<PyTorch name>`, plus strategy extras) and counters.
/// The tensors are handles to live buffers: save (read) them before the next step.
#[derive(Debug, Clone)]
pub struct StrategyState {
    /// Registry name of the strategy that wrote the state.
    pub strategy: String,
    /// Counters and RNG state.
    pub counters: Counters,
    /// Named tensors.
    pub tensors: Vec<(String, Tensor)>,
}

/// A search strategy: it trains the weights and α of a [`SearchModel`] one step at a
/// time, working only through the model, the tape, the losses and the optimizers.
pub trait Strategy: Send {
    /// Registry name, e.g. `darts-1st`.
    fn name(&self) -> &'static str;

    /// The configuration the strategy was built with.
    fn config(&self) -> &StrategyConfig;

    /// Epoch hook: sets the schedules (weight lr, τ, λ_β) for `epoch` (0-based) and
    /// restarts the in-epoch step count. Call it before the epoch's first step.
    fn begin_epoch(&mut self, epoch: usize);

    /// The current epoch.
    fn epoch(&self) -> usize;

    /// One search step: updates α and the weights of `model` in place on the GPU from a
    /// train and a val batch. Records work only; nothing is read back.
    fn step(&mut self, gpu: &Gpu, model: &dyn SearchModel, train: &Batch, val: &Batch) -> Result<StepOutput>;

    /// The state to checkpoint.
    fn state(&self) -> StrategyState;

    /// Restores a state taken with [`Strategy::state`] (tensors are copied).
    fn load_state(&mut self, gpu: &Gpu, state: &StrategyState) -> Result<()>;
}

/// A registry entry: a strategy's name and a one-line description for a GUI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StrategyInfo {
    /// Name accepted by [`build`].
    pub name: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
}

/// Every strategy [`build`] knows, in display order.
pub const STRATEGIES: &[StrategyInfo] = &[
    StrategyInfo { name: "darts-1st", summary: "DARTS, first order: α on the val batch, then w on the train batch" },
    StrategyInfo { name: "darts-2nd", summary: "DARTS, second order: α through one unrolled weight step" },
    StrategyInfo {
        name: "milenas", summary: "MiLeNAS: α from ∇α L_train + λ ∇α L_val, w from the train batch"
    },
    StrategyInfo { name: "gdas", summary: "GDAS: one Gumbel-sampled op per edge, straight-through, τ annealed" },
];

/// Names of every strategy, in display order.
pub fn strategy_names() -> Vec<&'static str> {
    STRATEGIES.iter().map(|s| s.name).collect()
}

/// Builds the strategy called `name` with `cfg` (validated first). The β-DARTS
/// regularizer is an option of every strategy (`cfg.beta_lambda > 0`).
pub fn build(name: &str, cfg: &StrategyConfig) -> Result<Box<dyn Strategy>> {
    cfg.validate()?;
    let cfg = cfg.clone();
    Ok(match name {
        "darts-1st" => Box::new(Darts::new(cfg, Order::First)),
        "darts-2nd" => Box::new(Darts::new(cfg, Order::Second)),
        "milenas" => Box::new(MiLeNas::new(cfg)),
        "gdas" => Box::new(Gdas::new(cfg)),
        _ => {
            return Err(Error::invalid(
                "strategy",
                format!("unknown strategy '{name}': use one of {}", strategy_names().join(", ")),
            ))
        }
    })
}
