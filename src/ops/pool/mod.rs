//! 2-D pooling on NCHW tensors, matching PyTorch: window pooling (average or max,
//! [`Pool2d`]) and global average pooling, forward and backward, plus their tape ops.
//! Shader: `shaders/pool.wgsl`; CPU references: [`cpu`].
//!
//! # Formulas
//! For output `(n, c, oy, ox)` the window `W(oy, ox)` is rows `oy·s − p .. oy·s − p + k − 1`
//! and columns `ox·s − p .. ox·s − p + k − 1`, of which only in-image pixels count:
//! - output size: `OH = ⌊(H + 2p − k) / s⌋ + 1` (no ceil mode), likewise `OW`;
//! - average: `y = Σ_{W ∩ image} x / d`, `d = k²` if `count_include_pad`, else `|W ∩ image|`;
//!   backward `∂L/∂x_i = Σ_{o : i ∈ W(o)} dy_o / d_o`;
//! - max: `y = max_{W ∩ image} x` (padding never wins); backward `∂L/∂x_i = Σ_{o : a(o) = i} dy_o`,
//!   where `a(o)` is the **first** maximal pixel of `W(o)` in row-major window order (a
//!   later equal value never replaces it), as PyTorch does in practice;
//! - global average: `y_{nc} = Σ_{hw} x_{nchw} / (H·W)`; backward `∂L/∂x_{nchw} = dy_{nc} / (H·W)`.
//!
//! Backward kernels gather over the output gradient (each input pixel sums over the windows
//! that contain it), so there are no atomics. The max backward does not keep indices from
//! the forward: it recomputes `a(o)` from the saved input in a first pass, then gathers.

pub mod cpu;

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::tensor::tape::{Backward, Tape, Var};
use crate::tensor::{numel, Tensor};

const SHADER: &str = "pool";
/// Invocations per workgroup of the one-thread-per-element kernels.
const WG: u64 = 256;
/// Largest plane (H·W) that global average pooling sums with one thread per plane; larger
/// planes get a workgroup each and a shared-memory reduction.
const GAP_SERIAL_MAX: usize = 64;

/// How a window is reduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    /// Mean of the window; `count_include_pad` divides by k² instead of the in-image count.
    Avg {
        /// PyTorch's `count_include_pad`: padded positions count in the divisor.
        count_include_pad: bool,
    },
    /// Maximum of the in-image part of the window.
    Max,
}

/// A k×k window pool with stride and symmetric zero padding (PyTorch `AvgPool2d` / `MaxPool2d`,
/// `ceil_mode = False`, no dilation).
///
/// # Shapes
/// `[N, C, H, W] → [N, C, ⌊(H + 2p − k)/s⌋ + 1, ⌊(W + 2p − k)/s⌋ + 1]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool2d {
    /// Average or max.
    pub kind: PoolKind,
    /// Window size k (square).
    pub kernel: usize,
    /// Stride s.
    pub stride: usize,
    /// Zero padding p on every side; at most k/2.
    pub padding: usize,
}

impl Pool2d {
    /// Average pool that divides by the in-image count (`count_include_pad = False`).
    pub fn avg(kernel: usize, stride: usize, padding: usize) -> Pool2d {
        Pool2d { kind: PoolKind::Avg { count_include_pad: false }, kernel, stride, padding }
    }

    /// Max pool.
    pub fn max(kernel: usize, stride: usize, padding: usize) -> Pool2d {
        Pool2d { kind: PoolKind::Max, kernel, stride, padding }
    }

    /// Fails on a zero kernel or stride, or padding over k/2 (PyTorch's rule).
    pub fn validate(&self) -> Result<()> {
        let op = "pool2d";
        if self.kernel == 0 || self.stride == 0 {
            return Err(Error::invalid(
                op,
                format!("kernel ({}) and stride ({}) must be at least 1", self.kernel, self.stride),
            ));
        }
        if self.padding > self.kernel / 2 {
            return Err(Error::invalid(
                op,
                format!("padding {} is more than half the kernel size {}", self.padding, self.kernel),
            ));
        }
        Ok(())
    }

    /// Output length `⌊(len + 2p − k)/s⌋ + 1` along one axis, or an error when it is below 1.
    pub fn out_len(&self, len: usize) -> Result<usize> {
        self.validate()?;
        let padded = len.saturating_add(2 * self.padding);
        if len == 0 || padded < self.kernel {
            return Err(Error::shape(
                "pool2d",
                format!("input length {len} with padding {} is smaller than the kernel {}", self.padding, self.kernel),
            ));
        }
        Ok((padded - self.kernel) / self.stride + 1)
    }

    /// Output shape for an NCHW input shape.
    pub fn output_shape(&self, x_shape: &[usize]) -> Result<[usize; 4]> {
        let [n, c, h, w] = dims4("pool2d", x_shape)?;
        Ok([n, c, self.out_len(h)?, self.out_len(w)?])
    }
}

/// Parameter block of `shaders/pool.wgsl`.
///
/// | field | meaning |
/// |---|---|
/// | n | threads with work: output elements (forward, argmax), input elements (backward), planes (GAP forward) |
/// | h, w | input height and width |
/// | oh, ow | output height and width |
/// | k | window size |
/// | s | stride |
/// | pad | zero padding on each side |
/// | include_pad | 1 when the average divides by k² (count_include_pad) |
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    k: u32,
    s: u32,
    pad: u32,
    include_pad: u32,
    _pad: [u32; 3],
}

/// Sizes of one launch, checked to fit the shader's u32 index arithmetic.
struct Geometry {
    x: [usize; 4],
    out: [usize; 4],
}

impl Geometry {
    fn params(&self, p: &Pool2d, threads: usize) -> Params {
        let [_, _, h, w] = self.x;
        let [_, _, oh, ow] = self.out;
        Params {
            n: threads as u32,
            h: h as u32,
            w: w as u32,
            oh: oh as u32,
            ow: ow as u32,
            k: p.kernel as u32,
            s: p.stride as u32,
            pad: p.padding as u32,
            include_pad: u32::from(matches!(p.kind, PoolKind::Avg { count_include_pad: true })),
            _pad: [0; 3],
        }
    }
}

fn dims4(op: &'static str, shape: &[usize]) -> Result<[usize; 4]> {
    match shape {
        &[n, c, h, w] => Ok([n, c, h, w]),
        _ => Err(Error::shape(op, format!("input must be NCHW, got shape {shape:?}"))),
    }
}

/// Kernels index with u32: every element count (and the padded extent) must fit.
fn fits_u32(op: &'static str, shape: &[usize], extra: usize) -> Result<()> {
    let n = numel(shape);
    if n.checked_add(extra).is_none_or(|v| v > u32::MAX as usize) {
        return Err(Error::invalid(op, format!("shape {shape:?} has too many elements for 32-bit indexing")));
    }
    Ok(())
}

/// Largest window side: window positions travel as f32 in the max backward, exact below 2²⁴ = k².
const MAX_KERNEL: usize = 4096;

fn geometry(op: &'static str, x_shape: &[usize], p: &Pool2d) -> Result<Geometry> {
    let x = dims4(op, x_shape)?;
    let out = p.output_shape(x_shape)?;
    if p.kernel > MAX_KERNEL {
        return Err(Error::invalid(op, format!("kernel {} is over the supported {MAX_KERNEL}", p.kernel)));
    }
    // The shader forms coordinates up to H + 2p + k + s.
    let extra = (2 * p.padding + p.kernel).saturating_add(p.stride);
    fits_u32(op, &x, extra)?;
    fits_u32(op, &out, 0)?;
    Ok(Geometry { x, out })
}

/// Records one launch of `threads` invocations. Binding order is (x, dy, idx, out); each
/// entry point binds only the slots it uses, so unused slots may repeat any tensor.
fn launch(gpu: &Gpu, entry: &str, params: &Params, tensors: [&Tensor; 4], groups: [u32; 3]) -> Result<()> {
    gpu.dispatch(SHADER, entry, params, &tensors, groups)
}

fn per_thread(gpu: &Gpu, threads: usize) -> [u32; 3] {
    gpu.grid((threads as u64).div_ceil(WG))
}

/// Window pooling forward: `[N, C, H, W] → [N, C, OH, OW]` (see the module formulas).
pub fn pool2d_forward(gpu: &Gpu, x: &Tensor, p: &Pool2d) -> Result<Tensor> {
    let g = geometry("pool2d_forward", x.shape(), p)?;
    let y = Tensor::empty(gpu, &g.out, "pool2d out")?;
    let entry = match p.kind {
        PoolKind::Avg { .. } => "avg_fwd",
        PoolKind::Max => "max_fwd",
    };
    let n = y.numel();
    launch(gpu, entry, &g.params(p, n), [x, x, &y, &y], per_thread(gpu, n))?;
    Ok(y)
}

/// Window pooling backward: ∂L/∂x from the input `x` and `dy` = ∂L/∂y (`[N, C, OH, OW]`).
/// For average pooling only `x`'s shape is used.
pub fn pool2d_backward(gpu: &Gpu, x: &Tensor, dy: &Tensor, p: &Pool2d) -> Result<Tensor> {
    match p.kind {
        PoolKind::Avg { .. } => avg_backward(gpu, x.shape(), dy, p),
        PoolKind::Max => max_backward(gpu, x, dy, p),
    }
}

/// ∂L/∂x of average pooling: `Σ_{o ∋ i} dy_o / d_o`, needing only the input shape.
fn avg_backward(gpu: &Gpu, x_shape: &[usize], dy: &Tensor, p: &Pool2d) -> Result<Tensor> {
    let op = "pool2d_backward";
    let g = geometry(op, x_shape, p)?;
    dy.expect_shape(op, &g.out)?;
    let dx = Tensor::empty(gpu, x_shape, "avg pool grad")?;
    let n = dx.numel();
    launch(gpu, "avg_bwd", &g.params(p, n), [dy, dy, &dx, &dx], per_thread(gpu, n))?;
    Ok(dx)
}

/// ∂L/∂x of max pooling: first pass finds each window's first maximum from `x`, second
/// gathers `dy` into the pixels that won.
fn max_backward(gpu: &Gpu, x: &Tensor, dy: &Tensor, p: &Pool2d) -> Result<Tensor> {
    let op = "pool2d_backward";
    let g = geometry(op, x.shape(), p)?;
    dy.expect_shape(op, &g.out)?;
    let idx = Tensor::empty(gpu, &g.out, "max pool argmax")?;
    let dx = Tensor::empty(gpu, x.shape(), "max pool grad")?;
    let n_out = idx.numel();
    launch(gpu, "max_argmax", &g.params(p, n_out), [x, x, &idx, &dx], per_thread(gpu, n_out))?;
    let n = dx.numel();
    launch(gpu, "max_bwd", &g.params(p, n), [x, dy, &idx, &dx], per_thread(gpu, n))?;
    Ok(dx)
}

/// Parameters of a GAP launch: only n, h, w are read.
fn gap_params(threads: usize, h: usize, w: usize) -> Params {
    Params {
        n: threads as u32,
        h: h as u32,
        w: w as u32,
        oh: 1,
        ow: 1,
        k: 1,
        s: 1,
        pad: 0,
        include_pad: 0,
        _pad: [0; 3],
    }
}

fn gap_dims(op: &'static str, x_shape: &[usize]) -> Result<[usize; 4]> {
    let d = dims4(op, x_shape)?;
    if d[2] == 0 || d[3] == 0 {
        return Err(Error::shape(op, format!("cannot average over an empty plane: input shape {x_shape:?}")));
    }
    fits_u32(op, x_shape, 0)?;
    Ok(d)
}

/// Global average pooling: `[N, C, H, W] → [N, C]`, `y_{nc} = mean_{hw} x_{nchw}`.
pub fn global_avg_pool_forward(gpu: &Gpu, x: &Tensor) -> Result<Tensor> {
    let [n, c, h, w] = gap_dims("global_avg_pool_forward", x.shape())?;
    let y = Tensor::empty(gpu, &[n, c], "gap out")?;
    let planes = n * c;
    let params = gap_params(planes, h, w);
    if h * w <= GAP_SERIAL_MAX {
        launch(gpu, "gap_fwd_thread", &params, [x, x, &y, &y], per_thread(gpu, planes))?;
    } else {
        let groups = gpu.grid(planes as u64);
        launch(gpu, "gap_fwd_wg", &params, [x, x, &y, &y], groups)?;
    }
    Ok(y)
}

/// Global average pooling backward: `dy` `[N, C]` → ∂L/∂x of shape `x_shape`, `dy_{nc} / (H·W)`.
pub fn global_avg_pool_backward(gpu: &Gpu, dy: &Tensor, x_shape: &[usize]) -> Result<Tensor> {
    let op = "global_avg_pool_backward";
    let [n, c, h, w] = gap_dims(op, x_shape)?;
    dy.expect_shape(op, &[n, c])?;
    let dx = Tensor::empty(gpu, x_shape, "gap grad")?;
    let total = dx.numel();
    launch(gpu, "gap_bwd", &gap_params(total, h, w), [dy, dy, &dx, &dx], per_thread(gpu, total))?;
    Ok(dx)
}

/// What the window-pool backward keeps: the input for max, only its shape for average.
enum Saved {
    Input(Tensor),
    Shape(Vec<usize>),
}

struct Pool2dBackward {
    p: Pool2d,
    saved: Saved,
}

impl Backward for Pool2dBackward {
    fn name(&self) -> &'static str {
        "pool2d"
    }
    fn backward(&mut self, gpu: &Gpu, grad: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        if !needs.first().copied().unwrap_or(false) {
            return Ok(vec![None]);
        }
        let dx = match &self.saved {
            Saved::Input(x) => max_backward(gpu, x, grad, &self.p)?,
            Saved::Shape(shape) => avg_backward(gpu, shape, grad, &self.p)?,
        };
        Ok(vec![Some(dx)])
    }
}

/// Tape op: window pooling (average or max) of `x`.
pub fn pool2d(tape: &Tape, x: &Var, p: &Pool2d) -> Result<Var> {
    let y = pool2d_forward(tape.gpu(), &x.tensor, p)?;
    let p = *p;
    Ok(tape.record(&[x], y, || {
        let saved = match p.kind {
            PoolKind::Max => Saved::Input(x.tensor.clone()),
            PoolKind::Avg { .. } => Saved::Shape(x.shape().to_vec()),
        };
        Box::new(Pool2dBackward { p, saved })
    }))
}

struct GapBackward {
    x_shape: Vec<usize>,
}

impl Backward for GapBackward {
    fn name(&self) -> &'static str {
        "global_avg_pool"
    }
    fn backward(&mut self, gpu: &Gpu, grad: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        if !needs.first().copied().unwrap_or(false) {
            return Ok(vec![None]);
        }
        Ok(vec![Some(global_avg_pool_backward(gpu, grad, &self.x_shape)?)])
    }
}

/// Tape op: global average pooling `[N, C, H, W] → [N, C]`.
pub fn global_avg_pool(tape: &Tape, x: &Var) -> Result<Var> {
    let y = global_avg_pool_forward(tape.gpu(), &x.tensor)?;
    let x_shape = x.shape().to_vec();
    Ok(tape.record(&[x], y, || Box::new(GapBackward { x_shape })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_output_sizes_follow_the_floor_formula() {
        // ⌊(H + 2p − k)/s⌋ + 1
        assert_eq!(Pool2d::avg(3, 1, 1).output_shape(&[2, 3, 7, 9]).ok(), Some([2, 3, 7, 9]));
        assert_eq!(Pool2d::max(3, 2, 1).output_shape(&[1, 5, 7, 9]).ok(), Some([1, 5, 4, 5]));
        assert_eq!(Pool2d::avg(2, 2, 0).output_shape(&[1, 3, 5, 3]).ok(), Some([1, 3, 2, 1]));
        assert_eq!(Pool2d::max(3, 2, 1).output_shape(&[1, 1, 1, 1]).ok(), Some([1, 1, 1, 1]));
    }

    #[test]
    fn pool_rejects_invalid_configs() {
        assert!(Pool2d::avg(0, 1, 0).validate().is_err());
        assert!(Pool2d::max(3, 0, 1).validate().is_err());
        assert!(Pool2d::max(3, 1, 2).validate().is_err());
        assert!(Pool2d::avg(2, 2, 1).validate().is_ok());
        assert!(Pool2d::avg(3, 1, 0).out_len(2).is_err());
        assert!(Pool2d::avg(1, 1, 0).out_len(0).is_err());
        assert!(Pool2d::avg(3, 1, 1).output_shape(&[3, 7, 9]).is_err());
    }
}
