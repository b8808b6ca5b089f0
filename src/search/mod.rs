//! Search strategies and the model contract they work through.
//!
//! Every strategy implements [`Strategy`] and is listed in the registry
//! ([`strategy_names`], [`build`], [`STRATEGIES`]); all share [`StrategyConfig`].
//! Strategies never dispatch kernels themselves: they record forward passes through
//! [`SearchModel`], take gradients from the tape and update through the optimizers.

pub mod beta;
pub mod common;
pub mod config;
pub mod darts;
pub mod gdas;
pub mod milenas;
pub mod model;
pub mod scalar;
pub mod schedule;
pub mod strategy;
pub mod toy;

pub use config::{BetaSchedule, StrategyConfig};
pub use model::{ArchMode, SearchModel};
pub use strategy::{
    build, strategy_names, Batch, Counters, StepOutput, Strategy, StrategyInfo, StrategyState, STRATEGIES,
};
