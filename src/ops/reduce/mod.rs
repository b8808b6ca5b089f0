//! On-GPU reductions to a scalar, with no readback: sum, dot product, sum of squares,
//! the global L2 norm of a list of tensors, PyTorch's `clip_grad_norm_`, and for DNA's
//! path rating Σ|a − b|, the standard deviation, and `accumulate_score`.
//! Shader: `shaders/reduce.wgsl`.
//!
//! Every reduction is two passes: `partial_sums` / `partial_dot` write one partial sum
//! per workgroup of [`CHUNK`] elements, and `finish` (one workgroup) adds the partials.
//! A partial pass binds up to [`SLOTS`] tensors at once, so the norm of `T` tensors costs
//! `⌈T / 6⌉ + 1` dispatches.

pub mod cpu;

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::tensor::Tensor;

const SHADER: &str = "reduce";
/// Elements reduced by one workgroup of the partial pass (256 invocations × 16).
pub const CHUNK: usize = 4096;
/// Tensors bound to one partial (or clip) dispatch.
pub const SLOTS: usize = 6;

/// Parameter block of `shaders/reduce.wgsl`.
///
/// | field | meaning |
/// |---|---|
/// | mode | partial pass: 0 sum, 1 sum of squares; finish: 0 plain, 1 square root |
/// | chunk | elements per workgroup |
/// | offset | partial pass: first partial written; finish: index written in `out`; clip: index of the norm |
/// | count | partial/clip: tensors bound; finish: number of partials |
/// | max_norm | clip threshold (clip_scale only) |
/// | scale | factor of `finish_scaled` |
/// | len\[s\] | element count of slot `s` |
/// | start\[s\] | first workgroup of slot `s`; `start[count]` is the grid size |
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    mode: u32,
    chunk: u32,
    offset: u32,
    count: u32,
    max_norm: f32,
    scale: f32,
    _pad: [u32; 2],
    len: [u32; 8],
    start: [u32; 8],
}

/// Binding positions (tensor index = binding − 1) of `shaders/reduce.wgsl`.
const B_X0: usize = 0;
const B_Y: usize = 6;
const B_PARTIALS: usize = 7;
const B_OUT: usize = 8;
const B_G0: usize = 9;
const N_BINDINGS: usize = 15;

const MODE_SUM: u32 = 0;
const MODE_SQUARES: u32 = 1;
const FINISH_PLAIN: u32 = 0;
const FINISH_SQRT: u32 = 1;
/// `partial_pair` modes: Σ|x − y| and Σ(x − y[0])².
const PAIR_ABS_DIFF: u32 = 0;
const PAIR_CENTERED_SQUARES: u32 = 1;
/// `finish_scaled` modes: `t·scale`, `sqrt(t·scale)`, `out += t·scale`.
const SCALED: u32 = 0;
const SQRT_SCALED: u32 = 1;
const ACCUMULATE: u32 = 2;

/// Workgroups needed to cover `n` elements in chunks of [`CHUNK`].
fn groups_for(n: usize) -> usize {
    n.div_ceil(CHUNK)
}

fn u32_of(op: &'static str, what: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::invalid(op, format!("{what} {v} exceeds u32")))
}

/// Params for a batch of at most [`SLOTS`] tensors; `start` partitions the grid.
fn batch_params(op: &'static str, batch: &[&Tensor], mode: u32, offset: usize) -> Result<Params> {
    let mut p = Params {
        mode,
        chunk: CHUNK as u32,
        offset: u32_of(op, "partial offset", offset)?,
        count: batch.len() as u32,
        max_norm: 0.0,
        scale: 0.0,
        _pad: [0; 2],
        len: [0; 8],
        start: [0; 8],
    };
    let mut wg = 0usize;
    for (s, t) in batch.iter().enumerate() {
        p.len[s] = u32_of(op, "tensor length", t.numel())?;
        p.start[s] = u32_of(op, "workgroup count", wg)?;
        wg += groups_for(t.numel());
    }
    p.start[batch.len()] = u32_of(op, "workgroup count", wg)?;
    Ok(p)
}

/// The grid size encoded in `p` (workgroups of all bound slots).
fn batch_groups(p: &Params) -> u64 {
    p.start[p.count as usize] as u64
}

/// A binding list of `N_BINDINGS` entries, all `fill`, for the launcher to overwrite.
fn bindings(fill: &Tensor) -> Vec<&Tensor> {
    vec![fill; N_BINDINGS]
}

/// Records the partial passes of Σ x (or Σ x²) over all `tensors` into a new partials
/// tensor; returns it with the number of partials written.
fn partial_passes(gpu: &Gpu, op: &'static str, tensors: &[&Tensor], mode: u32) -> Result<(Tensor, usize)> {
    let total: usize = tensors.iter().map(|t| groups_for(t.numel())).sum();
    let partials = Tensor::empty(gpu, &[total.max(1)], "reduce partials")?;
    let mut offset = 0;
    for batch in tensors.chunks(SLOTS) {
        let p = batch_params(op, batch, mode, offset)?;
        let mut b = bindings(&partials);
        for s in 0..SLOTS {
            // Unused slots repeat slot 0: never read, but every binding must be filled.
            b[B_X0 + s] = batch.get(s).copied().unwrap_or(batch[0]);
        }
        let groups = batch_groups(&p);
        gpu.dispatch(SHADER, "partial_sums", &p, &b, gpu.grid(groups))?;
        offset += groups as usize;
    }
    Ok((partials, total))
}

/// Records `out[index] = Σ partials[0..count)` (or its square root).
fn finish(
    gpu: &Gpu,
    op: &'static str,
    partials: &Tensor,
    count: usize,
    out: &Tensor,
    index: usize,
    mode: u32,
) -> Result<()> {
    let p = Params {
        mode,
        chunk: 0,
        offset: u32_of(op, "output index", index)?,
        count: u32_of(op, "partial count", count)?,
        max_norm: 0.0,
        scale: 0.0,
        _pad: [0; 2],
        len: [0; 8],
        start: [0; 8],
    };
    let mut b = bindings(out);
    b[B_PARTIALS] = partials;
    b[B_OUT] = out;
    gpu.dispatch(SHADER, "finish", &p, &b, [1, 1, 1])
}

fn check_index(op: &'static str, out: &Tensor, index: usize) -> Result<()> {
    if index >= out.numel() {
        return Err(Error::shape(op, format!("index {index} is outside '{}' of shape {:?}", out.name(), out.shape())));
    }
    Ok(())
}

/// Σ t as a `[1]` tensor.
pub fn sum(gpu: &Gpu, t: &Tensor) -> Result<Tensor> {
    let out = Tensor::empty(gpu, &[1], "sum")?;
    let (partials, count) = partial_passes(gpu, "sum", &[t], MODE_SUM)?;
    finish(gpu, "sum", &partials, count, &out, 0, FINISH_PLAIN)?;
    Ok(out)
}

/// ⟨a, b⟩ = Σ aᵢ bᵢ as a `[1]` tensor (a and b must have the same element count).
pub fn dot(gpu: &Gpu, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if a.numel() != b.numel() {
        return Err(Error::shape(
            "dot",
            format!("'{}' {:?} and '{}' {:?} differ in size", a.name(), a.shape(), b.name(), b.shape()),
        ));
    }
    let out = Tensor::empty(gpu, &[1], "dot")?;
    let groups = groups_for(a.numel());
    let partials = Tensor::empty(gpu, &[groups.max(1)], "dot partials")?;
    let p = batch_params("dot", &[a], MODE_SUM, 0)?;
    let mut bind = bindings(&partials);
    bind[B_X0] = a;
    bind[B_Y] = b;
    gpu.dispatch(SHADER, "partial_dot", &p, &bind, gpu.grid(groups as u64))?;
    finish(gpu, "dot", &partials, groups, &out, 0, FINISH_PLAIN)?;
    Ok(out)
}

/// Records `out[index] = Σ_t Σ_i t_i²` over all `tensors` (no readback; `out` is
/// written in the command stream, so several results can share one buffer).
pub fn sum_squares_into(gpu: &Gpu, tensors: &[&Tensor], out: &Tensor, index: usize) -> Result<()> {
    check_index("sum_squares", out, index)?;
    let (partials, count) = partial_passes(gpu, "sum_squares", tensors, MODE_SQUARES)?;
    finish(gpu, "sum_squares", &partials, count, out, index, FINISH_PLAIN)
}

/// Σ_t Σ_i t_i² over all `tensors`, as a `[1]` tensor.
pub fn sum_squares(gpu: &Gpu, tensors: &[&Tensor]) -> Result<Tensor> {
    let out = Tensor::empty(gpu, &[1], "sum of squares")?;
    sum_squares_into(gpu, tensors, &out, 0)?;
    Ok(out)
}

/// ‖(t₁, …, t_T)‖₂ = sqrt(Σ_t Σ_i t_i²) over ALL given tensors, as a `[1]` tensor
/// (0 for an empty list). Costs `⌈T / 6⌉ + 1` dispatches.
pub fn global_norm(gpu: &Gpu, tensors: &[&Tensor]) -> Result<Tensor> {
    let out = Tensor::empty(gpu, &[1], "global norm")?;
    let (partials, count) = partial_passes(gpu, "global_norm", tensors, MODE_SQUARES)?;
    finish(gpu, "global_norm", &partials, count, &out, 0, FINISH_SQRT)?;
    Ok(out)
}

/// PyTorch's `clip_grad_norm_`: returns the pre-clip global norm `n` (a `[1]` tensor)
/// and scales every gradient in place by `min(1, max_norm / (n + 1e-6))`. The factor is
/// computed and applied on the GPU. Each tensor must appear once in `grads`.
pub fn clip_grad_norm(gpu: &Gpu, grads: &[&Tensor], max_norm: f32) -> Result<Tensor> {
    if !(max_norm.is_finite() && max_norm > 0.0) {
        return Err(Error::invalid("clip_grad_norm", format!("max_norm must be positive and finite, got {max_norm}")));
    }
    let norm = global_norm(gpu, grads)?;
    for batch in grads.chunks(SLOTS) {
        let mut p = batch_params("clip_grad_norm", batch, MODE_SUM, 0)?;
        p.max_norm = max_norm;
        let mut b = bindings(&norm);
        b[B_OUT] = &norm;
        for s in 0..SLOTS {
            // Unused slots repeat slot 0 (read_write twice is allowed; never touched).
            b[B_G0 + s] = batch.get(s).copied().unwrap_or(batch[0]);
        }
        gpu.dispatch(SHADER, "clip_scale", &p, &b, gpu.grid(batch_groups(&p)))?;
    }
    Ok(norm)
}

// ---- DNA path rating ------------------------------------------------------------------

fn check_same_size(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.numel() != b.numel() {
        return Err(Error::shape(
            op,
            format!("'{}' {:?} and '{}' {:?} differ in size", a.name(), a.shape(), b.name(), b.shape()),
        ));
    }
    Ok(())
}

/// Records the partial pass of `partial_pair` over `x` (with `y` as the second operand or
/// the centre); returns the partials and their count.
fn pair_partials(gpu: &Gpu, op: &'static str, x: &Tensor, y: &Tensor, mode: u32) -> Result<(Tensor, usize)> {
    let groups = groups_for(x.numel());
    let partials = Tensor::empty(gpu, &[groups.max(1)], "reduce partials")?;
    let p = batch_params(op, &[x], mode, 0)?;
    let mut b = bindings(&partials);
    b[B_X0] = x;
    b[B_Y] = y;
    gpu.dispatch(SHADER, "partial_pair", &p, &b, gpu.grid(groups as u64))?;
    Ok((partials, groups))
}

/// Records `finish_scaled`: with `t = Σ partials[0..count)`, writes `t·scale`,
/// `sqrt(t·scale)` or adds `t·scale` to `out[index]` (by `mode`).
#[allow(clippy::too_many_arguments)]
fn finish_scaled(
    gpu: &Gpu,
    op: &'static str,
    partials: &Tensor,
    count: usize,
    out: &Tensor,
    index: usize,
    mode: u32,
    scale: f32,
) -> Result<()> {
    let p = Params {
        mode,
        chunk: 0,
        offset: u32_of(op, "output index", index)?,
        count: u32_of(op, "partial count", count)?,
        max_norm: 0.0,
        scale,
        _pad: [0; 2],
        len: [0; 8],
        start: [0; 8],
    };
    let mut b = bindings(out);
    b[B_PARTIALS] = partials;
    b[B_OUT] = out;
    gpu.dispatch(SHADER, "finish_scaled", &p, &b, [1, 1, 1])
}

/// Σᵢ |aᵢ − bᵢ| as a `[1]` tensor (a and b must have the same element count).
pub fn abs_diff_sum(gpu: &Gpu, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    check_same_size("abs_diff_sum", a, b)?;
    let out = Tensor::empty(gpu, &[1], "abs diff sum")?;
    let (partials, count) = pair_partials(gpu, "abs_diff_sum", a, b, PAIR_ABS_DIFF)?;
    finish_scaled(gpu, "abs_diff_sum", &partials, count, &out, 0, SCALED, 1.0)?;
    Ok(out)
}

/// The sample standard deviation of all elements, as a `[1]` tensor (like `torch.std`):
/// `sqrt(Σ(x − x̄)² / (n − 1))`, computed in two passes (mean first) so that a large mean
/// does not cancel the spread. Needs at least 2 elements. Four dispatches, no readback.
pub fn std(gpu: &Gpu, t: &Tensor) -> Result<Tensor> {
    let n = t.numel();
    if n < 2 {
        let msg = format!("'{}' {:?} has {n} element(s); a standard deviation needs at least 2", t.name(), t.shape());
        return Err(Error::shape("std", msg));
    }
    let mean = Tensor::empty(gpu, &[1], "std mean")?;
    let (partials, count) = partial_passes(gpu, "std", &[t], MODE_SUM)?;
    finish_scaled(gpu, "std", &partials, count, &mean, 0, SCALED, (1.0 / n as f64) as f32)?;
    let out = Tensor::empty(gpu, &[1], "std")?;
    let (partials, count) = pair_partials(gpu, "std", t, &mean, PAIR_CENTERED_SQUARES)?;
    finish_scaled(gpu, "std", &partials, count, &out, 0, SQRT_SCALED, (1.0 / (n - 1) as f64) as f32)?;
    Ok(out)
}

/// Records `out[index] += mean|s − t| · inv_std_t` (DNA's rating of one path on one batch:
/// the student's block output `s` against the teacher's `t`, over `1 / std(t)`). Nothing
/// is read back, so the scores of many paths accumulate in one buffer read once.
/// `out[index]` must hold a value already (zero it first: `Tensor::zeros`).
pub fn accumulate_score(gpu: &Gpu, s: &Tensor, t: &Tensor, inv_std_t: f32, out: &Tensor, index: usize) -> Result<()> {
    const OP: &str = "accumulate_score";
    check_same_size(OP, s, t)?;
    check_index(OP, out, index)?;
    if s.numel() == 0 {
        return Err(Error::shape(OP, format!("'{}' is empty: the mean of no elements is undefined", s.name())));
    }
    if !inv_std_t.is_finite() {
        let msg = format!("inv_std_t = {inv_std_t}: the teacher feature's std is 0 or not finite (a dead feature?)");
        return Err(Error::invalid(OP, msg));
    }
    let (partials, count) = pair_partials(gpu, OP, s, t, PAIR_ABS_DIFF)?;
    let scale = (inv_std_t as f64 / s.numel() as f64) as f32;
    finish_scaled(gpu, OP, &partials, count, out, index, ACCUMULATE, scale)
}
