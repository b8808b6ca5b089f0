//! [`StrategyConfig`]: the hyper-parameters of every strategy, with the reference
//! settings of DARTS on NAS-Bench-201 (DESIGN §3) as defaults.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How the β-DARTS coefficient λ_β moves over the epochs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BetaSchedule {
    /// `λ_β = beta_lambda` in every epoch.
    #[default]
    Constant,
    /// `λ_β = beta_lambda · e/(E − 1)`: 0 in the first epoch, `beta_lambda` in the last.
    Linear,
}

/// Hyper-parameters of the search strategies. Every field has a default, so a TOML
/// file (or a GUI form) needs to name only what it changes.
///
/// | field | default | used by |
/// |---|---|---|
/// | `epochs` | 50 | schedules (lr cosine, τ, λ_β) |
/// | `steps_per_epoch` | 0 | when > 0, `step` starts the next epoch by itself after this many steps |
/// | `w_lr`, `w_lr_min` | 0.025, 0.001 | weights: cosine from `w_lr` to `w_lr_min` over `epochs` |
/// | `w_momentum`, `w_nesterov` | 0.9, true | weights: SGD momentum |
/// | `w_weight_decay` | 5e-4 | weights: L2 |
/// | `w_grad_clip` | 5 | weights: global gradient-norm clip (0 disables) |
/// | `a_lr` | 3e-4 | α: Adam learning rate |
/// | `a_beta1`, `a_beta2`, `a_eps` | 0.5, 0.999, 1e-8 | α: Adam coefficients |
/// | `a_weight_decay` | 1e-3 | α: L2 |
/// | `unrolled_eps` | 0.01 | DARTS-2nd: ε = unrolled_eps / ‖∇w′ L_val‖ |
/// | `milenas_lambda` | 1 | MiLeNAS: λ in ∇α L_tr + λ ∇α L_val |
/// | `tau_max`, `tau_min` | 10, 0.1 | GDAS: τ linear from max to min over `epochs` |
/// | `beta_lambda` | 0 (off) | β-DARTS regularizer weight λ_max (any strategy) |
/// | `beta_schedule` | constant | β-DARTS: `constant` or `linear` (0 → λ_max) |
/// | `seed` | 0 | GDAS: Gumbel noise |
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StrategyConfig {
    /// Number of epochs the schedules span.
    pub epochs: usize,
    /// Steps per epoch; when > 0 `step` advances the epoch by itself (0: only `begin_epoch` does).
    pub steps_per_epoch: usize,
    /// Initial weight learning rate (cosine start).
    pub w_lr: f32,
    /// Final weight learning rate (cosine floor).
    pub w_lr_min: f32,
    /// SGD momentum of the weights.
    pub w_momentum: f32,
    /// Nesterov momentum for the weights.
    pub w_nesterov: bool,
    /// L2 weight decay of the weights.
    pub w_weight_decay: f32,
    /// Global gradient-norm clip of the weights (0 disables).
    pub w_grad_clip: f32,
    /// Adam learning rate of α.
    pub a_lr: f32,
    /// Adam β1 of α.
    pub a_beta1: f32,
    /// Adam β2 of α.
    pub a_beta2: f32,
    /// Adam eps of α.
    pub a_eps: f32,
    /// L2 weight decay of α.
    pub a_weight_decay: f32,
    /// DARTS-2nd: the finite-difference step is `unrolled_eps / ‖∇w′ L_val‖`.
    pub unrolled_eps: f32,
    /// MiLeNAS: weight λ of the validation α gradient.
    pub milenas_lambda: f32,
    /// GDAS: Gumbel-softmax temperature in the first epoch.
    pub tau_max: f32,
    /// GDAS: temperature in the last epoch.
    pub tau_min: f32,
    /// β-DARTS regularizer weight (its maximum under the linear schedule); 0 turns it off.
    pub beta_lambda: f32,
    /// β-DARTS schedule of the weight.
    pub beta_schedule: BetaSchedule,
    /// Seed of the strategy's own random stream (GDAS Gumbel noise).
    pub seed: u64,
}

impl Default for StrategyConfig {
    fn default() -> Self {
        StrategyConfig {
            epochs: 50,
            steps_per_epoch: 0,
            w_lr: 0.025,
            w_lr_min: 0.001,
            w_momentum: 0.9,
            w_nesterov: true,
            w_weight_decay: 5e-4,
            w_grad_clip: 5.0,
            a_lr: 3e-4,
            a_beta1: 0.5,
            a_beta2: 0.999,
            a_eps: 1e-8,
            a_weight_decay: 1e-3,
            unrolled_eps: 0.01,
            milenas_lambda: 1.0,
            tau_max: 10.0,
            tau_min: 0.1,
            beta_lambda: 0.0,
            beta_schedule: BetaSchedule::Constant,
            seed: 0,
        }
    }
}

impl StrategyConfig {
    /// Fails with the first field that no strategy can run with. Optimizer coefficients
    /// (betas, Nesterov without momentum) are checked again by the optimizers themselves.
    pub fn validate(&self) -> Result<()> {
        const OP: &str = "strategy config";
        if self.epochs == 0 {
            return Err(Error::invalid(OP, "epochs must be at least 1"));
        }
        let nonneg = [
            ("w_lr", self.w_lr),
            ("w_lr_min", self.w_lr_min),
            ("w_momentum", self.w_momentum),
            ("w_weight_decay", self.w_weight_decay),
            ("w_grad_clip", self.w_grad_clip),
            ("a_lr", self.a_lr),
            ("a_eps", self.a_eps),
            ("a_weight_decay", self.a_weight_decay),
            ("milenas_lambda", self.milenas_lambda),
            ("beta_lambda", self.beta_lambda),
        ];
        for (name, v) in nonneg {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::invalid(OP, format!("{name} must be finite and ≥ 0, got {v}")));
            }
        }
        for (name, v) in [("a_beta1", self.a_beta1), ("a_beta2", self.a_beta2)] {
            if !(0.0..1.0).contains(&v) {
                return Err(Error::invalid(OP, format!("{name} must lie in [0, 1), got {v}")));
            }
        }
        if !(self.unrolled_eps.is_finite() && self.unrolled_eps > 0.0) {
            return Err(Error::invalid(OP, format!("unrolled_eps must be > 0, got {}", self.unrolled_eps)));
        }
        if !(self.tau_min.is_finite() && self.tau_min > 0.0 && self.tau_max.is_finite() && self.tau_max > 0.0) {
            return Err(Error::invalid(
                OP,
                format!("tau_min and tau_max must be > 0, got {} and {}", self.tau_min, self.tau_max),
            ));
        }
        if self.w_nesterov && self.w_momentum == 0.0 {
            return Err(Error::invalid(OP, "w_nesterov needs w_momentum > 0"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_reference_settings_and_valid() {
        let c = StrategyConfig::default();
        assert_eq!((c.w_lr, c.w_lr_min, c.w_momentum, c.w_weight_decay, c.w_grad_clip), (0.025, 0.001, 0.9, 5e-4, 5.0));
        assert_eq!((c.a_lr, c.a_beta1, c.a_beta2, c.a_weight_decay), (3e-4, 0.5, 0.999, 1e-3));
        assert_eq!((c.tau_max, c.tau_min, c.milenas_lambda, c.beta_lambda), (10.0, 0.1, 1.0, 0.0));
        assert!(c.w_nesterov);
        c.validate().unwrap();
    }

    #[test]
    fn partial_json_fills_defaults_and_unknown_keys_fail() {
        let c: StrategyConfig = serde_json::from_str(r#"{"epochs": 3, "beta_schedule": "linear"}"#).unwrap();
        assert_eq!(c.epochs, 3);
        assert_eq!(c.beta_schedule, BetaSchedule::Linear);
        assert_eq!(c.w_lr, 0.025);
        assert!(serde_json::from_str::<StrategyConfig>(r#"{"w_lrr": 1}"#).is_err());
    }

    #[test]
    fn bad_values_are_rejected() {
        let bad = [
            StrategyConfig { epochs: 0, ..Default::default() },
            StrategyConfig { w_lr: f32::NAN, ..Default::default() },
            StrategyConfig { tau_min: 0.0, ..Default::default() },
            StrategyConfig { a_beta2: 1.0, ..Default::default() },
            StrategyConfig { w_momentum: 0.0, ..Default::default() },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }
}
