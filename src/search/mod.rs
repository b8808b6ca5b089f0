//! Search strategies and the model contract they work through.

pub mod model;

pub use model::{ArchMode, SearchModel};
