//! DNA (DESIGN.md §5): block-wise distillation from a teacher, rating of every path of
//! each student block, and the exact search for the best combination under a budget.
//!
//! This module holds the parts that do not need a network: the exact multiple-choice
//! knapsack ([`knapsack`]), the `dna.toml` config ([`config`]) and the files of a DNA run
//! folder ([`files`]). The GPU reductions that rate a path are in
//! [`crate::ops::reduce`] (`abs_diff_sum`, `std`, `accumulate_score`).

mod bound;
pub mod config;
mod dominance;
pub mod files;
pub mod knapsack;

pub use config::DnaConfig;
pub use files::{Choice, DnaFolder, DnaLog, DnaRecord, DnaResult, Rating, RetrainInfo, TeacherInfo};
pub use knapsack::{best_combinations, pareto_front, Budget, Candidate, Combination};
