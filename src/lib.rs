//! wgnas: gradient-based neural architecture search on any GPU through wgpu.
//!
//! Data flows one way: data → supernet → engine (tape + kernels on the GPU) →
//! search strategy → run → CLI / UI. This crate holds the engine layers so far.

pub mod data;
pub mod error;
pub mod gpu;
pub mod nn;
pub mod ops;
pub mod tensor;
pub mod util;

pub use error::{Error, Result};
pub use gpu::Gpu;
pub use tensor::Tensor;
