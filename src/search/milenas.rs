//! MiLeNAS (He et al., 2020): mixed-level optimization, first order.
//!
//! One forward/backward of the train batch gives `∇w L_tr` and `∇α L_tr`; one of the
//! val batch gives `∇α L_val` (both at the current w and α). Then
//!
//! - `α ← Adam(α, ∇α L_tr + λ·∇α L_val)` (λ = `milenas_lambda`, 1 by default);
//! - `w ← SGD(w, clip(∇w L_tr))`: the weights train on the train split only.

use super::common::{pass, softmax_mode, Core, Want};
use super::config::StrategyConfig;
use super::model::SearchModel;
use super::strategy::{Batch, StepOutput, Strategy, StrategyState};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::ops::eltwise;

/// The MiLeNAS strategy.
pub struct MiLeNas {
    core: Core,
}

impl MiLeNas {
    /// MiLeNAS with `cfg` (assumed validated).
    pub fn new(cfg: StrategyConfig) -> MiLeNas {
        MiLeNas { core: Core::new(cfg) }
    }
}

impl Strategy for MiLeNas {
    fn name(&self) -> &'static str {
        "milenas"
    }

    fn config(&self) -> &StrategyConfig {
        &self.core.cfg
    }

    fn begin_epoch(&mut self, epoch: usize) {
        self.core.begin_epoch(epoch);
    }

    fn epoch(&self) -> usize {
        self.core.epoch
    }

    fn step(&mut self, gpu: &Gpu, model: &dyn SearchModel, train: &Batch, val: &Batch) -> Result<StepOutput> {
        self.core.before_step();
        let scalars = self.core.scalars();
        let w = model.weights();
        let tr = pass(gpu, model, train, w, Want { w: true, a: true }, &mut softmax_mode)?;
        let va = pass(gpu, model, val, w, Want { w: false, a: true }, &mut softmax_mode)?;
        // ∇α L_tr + λ ∇α L_val, accumulated into the train gradient (owned by this step).
        for (g, gv) in tr.ga.iter().zip(&va.ga) {
            eltwise::axpy(gpu, g, self.core.cfg.milenas_lambda, gv)?;
        }
        self.core.a_step(gpu, model, &tr.ga)?;
        self.core.w_step(gpu, model, &tr.gw)?;
        self.core.after_step();
        Ok(StepOutput::new(train, (tr.loss, tr.correct), val, (va.loss, va.correct), scalars))
    }

    fn state(&self) -> StrategyState {
        self.core.state(self.name(), None, Vec::new())
    }

    fn load_state(&mut self, gpu: &Gpu, state: &StrategyState) -> Result<()> {
        self.core.load(gpu, self.name(), state, "milenas").map(|_| ())
    }
}
