//! The desktop app (issue 5).

/// The live views of a run: plots, α heatmap, cell topology, benchmark.
pub mod views;
