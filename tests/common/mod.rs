//! Shared helpers of the integration tests.
#![allow(dead_code)]

use std::sync::OnceLock;

use wgnas::util::rng::Rng;
use wgnas::{Gpu, Tensor};

/// The GPU every test in this binary shares. Fails (never skips) when there is no
/// adapter, with the message that says how to install one.
pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| match Gpu::from_env() {
        Ok(g) => g,
        Err(e) => panic!("GPU tests need an adapter and none could be opened: {e}"),
    })
}

/// Relative tolerance for GPU-vs-CPU-reference comparisons (see `wgnas::ops::testing::closeness`).
pub const RTOL: f64 = 1e-4;

/// `n` normal samples with a fixed seed.
pub fn randn(seed: u64, n: usize) -> Vec<f32> {
    Rng::new(seed).normal_vec(n, 1.0)
}

/// Uploads `data` with `shape`.
pub fn up(data: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(gpu(), data, shape, "test input").expect("upload")
}

/// Reads `t` back.
pub fn down(t: &Tensor) -> Vec<f32> {
    t.to_vec(gpu()).expect("readback")
}
