//! The desktop app (issue 5): egui views of a run, the runs browser and exports.

/// File exports of a run: genotype JSON, architecture string, `cell.dot`, α CSV, PNG.
pub mod export;
/// The runs browser: run folders under a root, opened and followed live.
pub mod runs;
/// The live views of a run: plots, α heatmap, cell topology, benchmark.
pub mod views;
