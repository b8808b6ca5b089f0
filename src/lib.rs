//! wgnas: gradient-based neural architecture search on any GPU through wgpu.
//!
//! Data flows one way: data → supernet (space) → engine (tape + kernels on the GPU) →
//! search strategy → run → CLI / UI.

pub mod bench;
pub mod bench201;
pub mod cli;
pub mod data;
pub mod demo;
pub mod dna;
pub mod error;
pub mod gpu;
pub mod gui;
pub mod nn;
pub mod ops;
pub mod run;
pub mod search;
pub mod space;
pub mod tensor;
pub mod topo;
pub mod train;
pub mod util;

pub use error::{Error, Result};
pub use gpu::Gpu;
pub use tensor::Tensor;
