//! Per-epoch schedules, as pure functions of the epoch `e` (0-based) and the number of
//! epochs `E`. Epochs past the end keep the final value.
//!
//! | schedule | formula |
//! |---|---|
//! | weight lr (PyTorch `CosineAnnealingLR`, T_max = E, stepped per epoch) | `η_e = η_min + (η_max − η_min)·(1 + cos(π·e/E))/2` |
//! | GDAS temperature | `τ_e = τ_max − (τ_max − τ_min)·e/(E − 1)` |
//! | β-DARTS weight, linear | `λ_e = λ_max·e/(E − 1)` |
//!
//! With `E = 1` the linear schedules stay at their start value (`e/(E − 1)` is taken as 0).

use super::config::{BetaSchedule, StrategyConfig};

/// `e/(E − 1)` clamped into [0, 1]; 0 for a one-epoch run.
fn progress(epoch: usize, epochs: usize) -> f64 {
    if epochs <= 1 {
        return 0.0;
    }
    (epoch.min(epochs - 1) as f64) / (epochs - 1) as f64
}

/// Cosine-annealed learning rate of epoch `epoch`: `η_min + (η_max − η_min)(1 + cos(π e/E))/2`.
pub fn cosine_lr(max: f32, min: f32, epoch: usize, epochs: usize) -> f32 {
    let e = epoch.min(epochs) as f64;
    let c = (1.0 + (std::f64::consts::PI * e / epochs.max(1) as f64).cos()) / 2.0;
    (min as f64 + (max as f64 - min as f64) * c) as f32
}

/// GDAS temperature of epoch `epoch`: `τ_max − (τ_max − τ_min)·e/(E − 1)`.
pub fn gdas_tau(max: f32, min: f32, epoch: usize, epochs: usize) -> f32 {
    (max as f64 - (max as f64 - min as f64) * progress(epoch, epochs)) as f32
}

/// β-DARTS regularizer weight of epoch `epoch` (0 when the regularizer is off).
pub fn beta_lambda(cfg: &StrategyConfig, epoch: usize) -> f32 {
    match cfg.beta_schedule {
        BetaSchedule::Constant => cfg.beta_lambda,
        BetaSchedule::Linear => (cfg.beta_lambda as f64 * progress(epoch, cfg.epochs)) as f32,
    }
}

/// Weight lr of epoch `epoch` under `cfg`.
pub fn w_lr(cfg: &StrategyConfig, epoch: usize) -> f32 {
    cosine_lr(cfg.w_lr, cfg.w_lr_min, epoch, cfg.epochs)
}

/// GDAS τ of epoch `epoch` under `cfg`.
pub fn tau(cfg: &StrategyConfig, epoch: usize) -> f32 {
    gdas_tau(cfg.tau_max, cfg.tau_min, epoch, cfg.epochs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_starts_at_max_and_reaches_min_after_the_last_epoch() {
        assert_eq!(cosine_lr(0.025, 0.001, 0, 50), 0.025);
        assert!((cosine_lr(0.025, 0.001, 25, 50) - 0.013).abs() < 1e-7);
        assert!((cosine_lr(0.025, 0.001, 50, 50) - 0.001).abs() < 1e-9);
        assert!((cosine_lr(0.025, 0.001, 99, 50) - 0.001).abs() < 1e-9);
    }

    #[test]
    fn tau_is_linear_from_max_to_min() {
        assert_eq!(gdas_tau(10.0, 0.1, 0, 50), 10.0);
        assert!((gdas_tau(10.0, 0.1, 49, 50) - 0.1).abs() < 1e-6);
        assert!((gdas_tau(10.0, 0.1, 1, 3) - 5.05).abs() < 1e-6);
        assert_eq!(gdas_tau(10.0, 0.1, 0, 1), 10.0);
    }

    #[test]
    fn beta_schedules() {
        let c = StrategyConfig { beta_lambda: 2.0, epochs: 5, ..Default::default() };
        assert_eq!(beta_lambda(&c, 3), 2.0);
        let l = StrategyConfig { beta_schedule: BetaSchedule::Linear, ..c };
        assert_eq!(beta_lambda(&l, 0), 0.0);
        assert_eq!(beta_lambda(&l, 2), 1.0);
        assert_eq!(beta_lambda(&l, 4), 2.0);
    }
}
