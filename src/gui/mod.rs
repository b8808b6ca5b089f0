//! The desktop app (egui).

pub mod export;
pub mod runs;
