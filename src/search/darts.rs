//! DARTS (Liu et al., 2019), first and second order, after pt.darts' `architect.py`.
//!
//! Each step updates α on the val batch, then the weights w on the train batch (with
//! the new α): clip 5, SGD with Nesterov momentum, cosine lr (see [`super::common`]).
//!
//! **First order**: `dα = ∇α L_val(w, α)`.
//!
//! **Second order** (unrolled): with ξ the current weight lr, μ the momentum, λ_w the
//! weight decay and `buf` SGD's momentum buffer (0 before the first step),
//!
//! - virtual step: `w′ = w − ξ·(μ·buf + ∇w L_train(w, α) + λ_w·w)`;
//! - `v = ∇w′ L_val(w′, α)`, `ε = unrolled_eps / ‖v‖` (0.01 / ‖v‖ by default);
//! - `w± = w ± ε·v`;
//! - `dα = ∇α L_val(w′, α) − ξ · (∇α L_train(w⁺, α) − ∇α L_train(w⁻, α)) / (2ε)`.
//!
//! The last term is the central finite difference of the Hessian-vector product
//! `∇²_{α,w} L_train · v`. pt.darts computed it as `(p − n) / 2.*eps`, which multiplies
//! by ε instead of dividing; the test `darts2_hypergradient_matches_finite_differences`
//! pins the correct scaling against a direct finite difference of
//! `L_val(w − ξ∇w L_train(w, α), α)`.
//!
//! Everything stays on the GPU: ‖v‖ is a `[1]` tensor, and ε and 1/(2ε) = ‖v‖/(2·0.01)
//! scale tensors through [`super::scalar`]. A second-order step costs five
//! forward/backward passes (train at w, val at w′, train at w⁺ and w⁻ for α only, and
//! the weight step). As in PyTorch, every pass runs BatchNorm in training mode, so
//! running statistics see all five.

use super::common::{pass, softmax_mode, Core, Want};
use super::config::StrategyConfig;
use super::model::SearchModel;
use super::scalar;
use super::strategy::{Batch, StepOutput, Strategy, StrategyState};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::ops::optim::Optimizer;
use crate::ops::{eltwise, reduce};
use crate::tensor::Tensor;

/// First- or second-order DARTS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// α from the val gradient at the current weights.
    First,
    /// α through one unrolled weight step (finite-difference Hessian-vector product).
    Second,
}

/// The α gradient of one DARTS step and the val-batch loss it came from.
#[derive(Debug)]
pub struct AlphaGrad {
    /// `dα`, one tensor per α tensor of the model.
    pub alpha_grads: Vec<Tensor>,
    /// Val loss (second order: at the unrolled w′), `[1]`.
    pub val_loss: Tensor,
    /// Correct predictions on the val batch, `[1]`.
    pub val_correct: Tensor,
}

/// DARTS, first or second order.
pub struct Darts {
    core: Core,
    order: Order,
}

impl Darts {
    /// A DARTS strategy of the given order (the config is assumed validated).
    pub fn new(cfg: StrategyConfig, order: Order) -> Darts {
        Darts { core: Core::new(cfg), order }
    }

    /// The order.
    pub fn order(&self) -> Order {
        self.order
    }

    /// The weight learning rate of the current epoch (ξ of the unrolled step).
    pub fn w_lr(&self) -> f32 {
        self.core.w_opt.lr()
    }

    /// `dα` of this strategy's order at the model's current parameters, without
    /// updating anything (see the module docs for the formulas).
    pub fn alpha_grad(&self, gpu: &Gpu, model: &dyn SearchModel, train: &Batch, val: &Batch) -> Result<AlphaGrad> {
        match self.order {
            Order::First => {
                let p = pass(gpu, model, val, model.weights(), Want { w: false, a: true }, &mut softmax_mode)?;
                Ok(AlphaGrad { alpha_grads: p.ga, val_loss: p.loss, val_correct: p.correct })
            }
            Order::Second => self.unrolled_alpha_grad(gpu, model, train, val),
        }
    }

    /// The virtual step `w′ = w − ξ·(μ·buf + g + λ_w·w)` as new tensors.
    fn virtual_weights(&self, gpu: &Gpu, model: &dyn SearchModel, g_train: &[Tensor]) -> Result<Vec<Tensor>> {
        let xi = self.w_lr();
        let cfg = &self.core.cfg;
        let mut out = Vec::with_capacity(g_train.len());
        for (i, (w, g)) in model.weights().iter().zip(g_train).enumerate() {
            let t = eltwise::scale(gpu, w, 1.0 - xi * cfg.w_weight_decay)?;
            eltwise::axpy(gpu, &t, -xi, g)?;
            if let (true, Some(buf)) = (cfg.w_momentum > 0.0, self.core.momentum_buffer(i)) {
                eltwise::axpy(gpu, &t, -xi * cfg.w_momentum, &buf)?;
            }
            out.push(t);
        }
        Ok(out)
    }

    /// `w + sign·ε·v` with `ε = eps0·inv_norm`, as new tensors.
    fn perturbed(gpu: &Gpu, w: &[Tensor], v: &[Tensor], inv_norm: &Tensor, sign_eps0: f32) -> Result<Vec<Tensor>> {
        w.iter()
            .zip(v)
            .map(|(wi, vi)| {
                let t = scalar::copy(gpu, wi)?;
                scalar::add_scaled_into(gpu, &t, inv_norm, &eltwise::scale(gpu, vi, sign_eps0)?)?;
                Ok(t)
            })
            .collect()
    }

    /// The second-order `dα` (module docs), all on the GPU.
    fn unrolled_alpha_grad(&self, gpu: &Gpu, model: &dyn SearchModel, train: &Batch, val: &Batch) -> Result<AlphaGrad> {
        let xi = self.w_lr();
        let eps0 = self.core.cfg.unrolled_eps;
        let w = model.weights();
        let only_w = Want { w: true, a: false };
        let g_train = pass(gpu, model, train, w, only_w, &mut softmax_mode)?.gw;
        let w_virtual = self.virtual_weights(gpu, model, &g_train)?;
        drop(g_train);
        let at_virtual = pass(gpu, model, val, &w_virtual, Want { w: true, a: true }, &mut softmax_mode)?;
        drop(w_virtual);
        let v = at_virtual.gw;
        // ε = eps0/‖v‖ and 1/(2ε) = ‖v‖/(2·eps0), with ‖v‖ and 1/‖v‖ as GPU scalars.
        let sq = reduce::sum_squares(gpu, &v.iter().collect::<Vec<_>>())?;
        let inv_norm = scalar::rsqrt(gpu, &sq)?;
        let norm = scalar::mul(gpu, &inv_norm, &sq)?;
        let only_a = Want { w: false, a: true };
        let mut hess = Vec::with_capacity(2);
        for sign in [1.0, -1.0] {
            let ws = Self::perturbed(gpu, w, &v, &inv_norm, sign * eps0)?;
            hess.push(pass(gpu, model, train, &ws, only_a, &mut softmax_mode)?.ga);
        }
        let (g_pos, g_neg) = (&hess[0], &hess[1]);
        let dalpha = at_virtual.ga;
        for ((d, p), n) in dalpha.iter().zip(g_pos).zip(g_neg) {
            // dα −= ξ (g⁺ − g⁻)/(2ε) = ‖v‖ · (−ξ/(2·eps0)) · (g⁺ − g⁻)
            eltwise::axpy(gpu, p, -1.0, n)?;
            let scaled = eltwise::scale(gpu, p, -xi / (2.0 * eps0))?;
            scalar::add_scaled_into(gpu, d, &norm, &scaled)?;
        }
        Ok(AlphaGrad { alpha_grads: dalpha, val_loss: at_virtual.loss, val_correct: at_virtual.correct })
    }
}

impl Strategy for Darts {
    fn name(&self) -> &'static str {
        match self.order {
            Order::First => "darts-1st",
            Order::Second => "darts-2nd",
        }
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
        let a = self.alpha_grad(gpu, model, train, val)?;
        self.core.a_step(gpu, model, &a.alpha_grads)?;
        let tr = pass(gpu, model, train, model.weights(), Want { w: true, a: false }, &mut softmax_mode)?;
        self.core.w_step(gpu, model, &tr.gw)?;
        self.core.after_step();
        Ok(StepOutput::new(train, (tr.loss, tr.correct), val, (a.val_loss, a.val_correct), scalars))
    }

    fn state(&self) -> StrategyState {
        self.core.state(self.name(), None, Vec::new())
    }

    fn load_state(&mut self, gpu: &Gpu, state: &StrategyState) -> Result<()> {
        // DARTS keeps no tensors besides the optimizers' ("darts.*" never occurs).
        self.core.load(gpu, self.name(), state, "darts").map(|_| ())
    }
}
