//! Small helpers with no GPU dependency.

/// Deterministic random numbers.
pub mod rng;
