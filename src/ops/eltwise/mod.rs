//! Elementwise ops: ReLU (with backward), add, scale, axpy and fill.
//! Shader: `shaders/eltwise.wgsl`.

/// Stacking along the first dimension (the wide conv of batched siblings).
pub mod concat;
pub mod cpu;
pub use concat::{concat0, concat0_forward};

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::tensor::tape::{Backward, Tape, Var};
use crate::tensor::Tensor;

const SHADER: &str = "eltwise";
const WG: u64 = 256;

/// Parameter block of `shaders/eltwise.wgsl`.
///
/// | field | meaning |
/// |---|---|
/// | n | element count |
/// | alpha | scale, axpy factor or fill value |
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    alpha: f32,
    _pad: [u32; 2],
}

fn params(n: usize, alpha: f32) -> Params {
    Params { n: n as u32, alpha, _pad: [0; 2] }
}

fn same_len(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.numel() != b.numel() {
        return Err(Error::shape(
            op,
            format!("'{}' {:?} and '{}' {:?} differ in size", a.name(), a.shape(), b.name(), b.shape()),
        ));
    }
    Ok(())
}

fn launch(gpu: &Gpu, entry: &str, n: usize, alpha: f32, tensors: &[&Tensor]) -> Result<()> {
    gpu.dispatch(SHADER, entry, &params(n, alpha), tensors, gpu.grid((n as u64).div_ceil(WG)))
}

/// max(x, 0) as a new tensor.
pub fn relu_forward(gpu: &Gpu, x: &Tensor) -> Result<Tensor> {
    let y = Tensor::empty(gpu, x.shape(), "relu out")?;
    launch(gpu, "relu_fwd", x.numel(), 0.0, &[x, x, &y])?;
    Ok(y)
}

/// ∂L/∂x of ReLU from its input (or output) `x` and upstream `dy`.
pub fn relu_backward(gpu: &Gpu, x: &Tensor, dy: &Tensor) -> Result<Tensor> {
    same_len("relu_backward", x, dy)?;
    let dx = Tensor::empty(gpu, x.shape(), "relu grad")?;
    launch(gpu, "relu_bwd", x.numel(), 0.0, &[x, dy, &dx])?;
    Ok(dx)
}

/// a + b as a new tensor (same element count; the result takes a's shape).
pub fn add(gpu: &Gpu, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    same_len("add", a, b)?;
    let y = Tensor::empty(gpu, a.shape(), "add out")?;
    launch(gpu, "add", a.numel(), 0.0, &[a, b, &y])?;
    Ok(y)
}

/// alpha · a as a new tensor.
pub fn scale(gpu: &Gpu, a: &Tensor, alpha: f32) -> Result<Tensor> {
    let y = Tensor::empty(gpu, a.shape(), "scale out")?;
    launch(gpu, "scale", a.numel(), alpha, &[a, a, &y])?;
    Ok(y)
}

/// y ← y + alpha · x, in place.
pub fn axpy(gpu: &Gpu, y: &Tensor, alpha: f32, x: &Tensor) -> Result<()> {
    same_len("axpy", y, x)?;
    launch(gpu, "axpy", y.numel(), alpha, &[x, x, y])
}

/// Sets every element of `t` to `value`, in place.
pub fn fill(gpu: &Gpu, t: &Tensor, value: f32) -> Result<()> {
    launch(gpu, "fill", t.numel(), value, &[t, t, t])
}

/// Sets every element of `t` to zero, in place.
pub fn zero(gpu: &Gpu, t: &Tensor) -> Result<()> {
    fill(gpu, t, 0.0)
}

struct ReluBackward {
    y: Tensor,
}

impl Backward for ReluBackward {
    fn name(&self) -> &'static str {
        "relu"
    }
    fn backward(&mut self, gpu: &Gpu, grad: &Tensor, _needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        // y > 0 exactly where x > 0, so the output serves as the mask and the input need not be kept.
        Ok(vec![Some(relu_backward(gpu, &self.y, grad)?)])
    }
}

/// Tape op: ReLU.
pub fn relu(tape: &Tape, x: &Var) -> Result<Var> {
    let y = relu_forward(tape.gpu(), &x.tensor)?;
    let saved = y.clone();
    Ok(tape.record(&[x], y, || Box::new(ReluBackward { y: saved })))
}

struct AddBackward;

impl Backward for AddBackward {
    fn name(&self) -> &'static str {
        "add"
    }
    fn backward(&mut self, _gpu: &Gpu, grad: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        // d(a+b)/da = d(a+b)/db = 1: both inputs receive the upstream gradient unchanged.
        Ok(needs.iter().map(|&n| n.then(|| grad.clone())).collect())
    }
}

/// Tape op: a + b.
pub fn add_var(tape: &Tape, a: &Var, b: &Var) -> Result<Var> {
    let y = add(tape.gpu(), &a.tensor, &b.tensor)?;
    Ok(tape.record(&[a, b], y, || Box::new(AddBackward)))
}

struct ScaleBackward {
    alpha: f32,
}

impl Backward for ScaleBackward {
    fn name(&self) -> &'static str {
        "scale"
    }
    fn backward(&mut self, gpu: &Gpu, grad: &Tensor, _needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        // d(alpha·x)/dx = alpha.
        Ok(vec![Some(scale(gpu, grad, self.alpha)?)])
    }
}

/// Tape op: alpha · x.
pub fn scale_var(tape: &Tape, x: &Var, alpha: f32) -> Result<Var> {
    let y = scale(tape.gpu(), &x.tensor, alpha)?;
    Ok(tape.record(&[x], y, || Box::new(ScaleBackward { alpha })))
}
