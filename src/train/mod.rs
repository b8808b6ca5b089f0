//! Training networks of a fixed architecture from scratch (`wgnas train`).

pub mod model;

pub use model::{FixedNet, NetOutput};
