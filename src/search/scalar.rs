//! Arithmetic with GPU scalars (`[1]` tensors), composed from existing ops so that a
//! strategy can use a norm computed on the GPU without reading it back.
//!
//! | helper | value | built from |
//! |---|---|---|
//! | [`rsqrt`] | `1/√(s + 1e-30)` | `norm::eval_stats` (its `invstd = 1/√(running_var + eps)`) |
//! | [`mul`] | `s·x` | `mix::weighted_sum_forward` with `s` as a `[1, 1]` weight |
//! | [`add_scaled_into`] | `out ← out + s·x` | `mix::mix_into` (raw weights, accumulate) |
//! | [`copy`] | a copy of `t` | a buffer copy in the command stream |
//!
//! The `1e-30` keeps `rsqrt(0)` finite (1e15), so a zero gradient gives a zero step
//! instead of NaN; it changes results only for `s < 1e-24`.

use crate::error::Result;
use crate::gpu::Gpu;
use crate::ops::mix::{self, Weighting};
use crate::ops::norm::{self, BnConfig};
use crate::tensor::Tensor;

/// Added under the square root of [`rsqrt`].
pub const RSQRT_EPS: f32 = 1e-30;

/// Fails unless `s` holds exactly one value.
fn as_weight(s: &Tensor) -> Result<Tensor> {
    s.reshape(&[1, 1])
}

/// `1/√(s + 1e-30)` of a `[1]` tensor, as a `[1]` tensor.
pub fn rsqrt(gpu: &Gpu, s: &Tensor) -> Result<Tensor> {
    let s = s.reshape(&[1])?;
    // eval_stats copies the "running mean" too; it must be a distinct [1] tensor.
    let unused_mean = Tensor::zeros(gpu, &[1], "rsqrt mean")?;
    let stats = norm::eval_stats(gpu, &unused_mean, &s, BnConfig { eps: RSQRT_EPS, momentum: 0.0 })?;
    Ok(stats.invstd)
}

/// `s·x` for a `[1]` tensor `s`, as a new tensor shaped like `x`.
pub fn mul(gpu: &Gpu, s: &Tensor, x: &Tensor) -> Result<Tensor> {
    mix::weighted_sum_forward(gpu, &as_weight(s)?, 0, &[x])
}

/// `out ← out + s·x` in place, for a `[1]` tensor `s` (`out` must not alias `x` or `s`).
pub fn add_scaled_into(gpu: &Gpu, out: &Tensor, s: &Tensor, x: &Tensor) -> Result<()> {
    mix::mix_into(gpu, Weighting::Raw, &as_weight(s)?, 0, &[x], out, true)
}

/// A copy of `t` in a new buffer, ordered with the recorded work.
pub fn copy(gpu: &Gpu, t: &Tensor) -> Result<Tensor> {
    let c = Tensor::empty(gpu, t.shape(), t.name())?;
    if t.byte_len() > 0 {
        gpu.with_encoder(|enc| enc.copy_buffer_to_buffer(t.buffer(), 0, c.buffer(), 0, t.byte_len()));
    }
    Ok(c)
}
