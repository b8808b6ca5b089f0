//! DNA (DESIGN.md §5, docs/dna.md): block-wise distillation from a teacher, rating of every
//! path of each student block, and the exact search for the best combination under a budget.
//!
//! [`run_dna`] joins the stages: the teacher ([`teacher`]), distillation ([`distill`]),
//! rating ([`rate`]), the search ([`search`], over the exact multiple-choice [`knapsack`]) and
//! the retraining, with the run folder's files in [`files`] and the settings in [`config`].
//! The GPU reductions that rate a path are in [`crate::ops::reduce`] (`abs_diff_sum`, `std`,
//! `accumulate_score`).

mod bound;
pub mod config;
pub mod distill;
mod dominance;
pub mod events;
pub mod files;
pub mod flags;
pub mod images;
pub mod knapsack;
pub mod pipeline;
pub mod rate;
pub mod search;
pub mod teacher;

pub use config::DnaConfig;
pub use events::{DnaEvent, DnaOptions, DnaOutcome, DnaStage};
pub use files::{Choice, DnaFolder, DnaLog, DnaRecord, DnaResult, RandomInfo, Rating, RetrainInfo, TeacherInfo};
pub use flags::DnaFlags;
pub use knapsack::{best_combinations, pareto_front, Budget, Candidate, Combination};
pub use pipeline::run_dna;
