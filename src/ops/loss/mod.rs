//! Losses: softmax cross-entropy (mean over the batch, with a correct-prediction count)
//! and mean squared error. Every result is a `[1]` tensor computed on the GPU, so a
//! training step never waits for the CPU; read the values back one step late.
//!
//! | loss | forward | backward |
//! |---|---|---|
//! | cross-entropy | `L = (1/N) Σ_n (lse_n − z[n, y_n])`, `lse_n = log Σ_k exp z[n, k]` | `∂L/∂z = (softmax(z) − onehot(y)) / N · dL` |
//! | MSE | `L = (1/n) Σ_i (a_i − b_i)²` | `∂L/∂a = 2(a − b)/n · dL`, `∂L/∂b = −∂L/∂a` |
//!
//! `dL` is the upstream gradient, read from its `[1]` tensor on the GPU.
//! Labels are f32 class indices; the kernels round them and clamp them into `[0, K−1]`,
//! so a bad label gives a wrong loss but never an out-of-bounds read.
//!
//! Shader: `shaders/loss.wgsl`.

pub mod cpu;

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::tensor::tape::{Backward, Tape, Var};
use crate::tensor::Tensor;

const SHADER: &str = "loss";
/// Invocations per workgroup of every loss kernel (WGSL const `WG`).
const WG: u64 = 256;
/// Elements one `mse_partial` workgroup sums: `WG · PER` (WGSL const `PER` = 16).
const MSE_CHUNK: u64 = WG * 16;

/// Parameter block of `shaders/loss.wgsl`.
///
/// | field | meaning |
/// |---|---|
/// | n | rows (cross-entropy), elements (MSE) or partial sums (final reduction) |
/// | k | classes (cross-entropy) |
/// | scale | `1/N` for means, `±2/n` for the MSE gradient |
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    k: u32,
    scale: f32,
    _pad: u32,
}

fn params(n: usize, k: usize, scale: f32) -> Params {
    Params { n: n as u32, k: k as u32, scale, _pad: 0 }
}

/// Fails unless `n` fits the kernels' u32 indexing.
fn fits_u32(op: &'static str, n: usize) -> Result<()> {
    if n > u32::MAX as usize {
        return Err(Error::invalid(op, format!("{n} elements exceed u32 indexing")));
    }
    Ok(())
}

/// Fails unless `g` is the `[1]`-element upstream gradient of a scalar loss.
fn scalar_grad(op: &'static str, g: &Tensor) -> Result<()> {
    if g.numel() != 1 {
        return Err(Error::shape(
            op,
            format!("upstream gradient '{}' must hold one value, got shape {:?}", g.name(), g.shape()),
        ));
    }
    Ok(())
}

/// Results of [`cross_entropy_forward`].
#[derive(Debug, Clone)]
pub struct CrossEntropy {
    /// Mean loss over the batch, `[1]`.
    pub loss: Tensor,
    /// Number of rows whose argmax (lowest index on ties) equals the label, `[1]`.
    pub correct: Tensor,
    /// Per-row `log Σ_k exp z[n, k]`, `[N]`, which the backward pass reuses.
    pub lse: Tensor,
}

/// Batch size and class count of `logits` `[N, K]`, after checking `labels` is `[N]`.
fn ce_dims(op: &'static str, logits: &Tensor, labels: &Tensor) -> Result<(usize, usize)> {
    let (n, k) = match logits.shape() {
        [n, k] if *n > 0 && *k > 0 => (*n, *k),
        s => {
            return Err(Error::shape(op, format!("logits '{}' must be [N, K] with N, K > 0, got {s:?}", logits.name())))
        }
    };
    if labels.numel() != n {
        return Err(Error::shape(
            op,
            format!("labels '{}' hold {} values for a batch of {n} rows", labels.name(), labels.numel()),
        ));
    }
    fits_u32(op, n * k)?;
    Ok((n, k))
}

/// Softmax cross-entropy of `logits` `[N, K]` against class indices `labels` `[N]`
/// (f32, rounded and clamped into `[0, K−1]`): mean loss, correct count and per-row lse.
pub fn cross_entropy_forward(gpu: &Gpu, logits: &Tensor, labels: &Tensor) -> Result<CrossEntropy> {
    let (n, k) = ce_dims("cross_entropy", logits, labels)?;
    let row_loss = Tensor::empty(gpu, &[n], "ce row loss")?;
    let row_hit = Tensor::empty(gpu, &[n], "ce row correct")?;
    let lse = Tensor::empty(gpu, &[n], "ce lse")?;
    gpu.dispatch(
        SHADER,
        "ce_rows",
        &params(n, k, 0.0),
        &[logits, labels, logits, logits, &row_loss, &row_hit, &lse],
        gpu.grid((n as u64).div_ceil(WG)),
    )?;
    let loss = Tensor::empty(gpu, &[1], "ce loss")?;
    let correct = Tensor::empty(gpu, &[1], "ce correct")?;
    gpu.dispatch(
        SHADER,
        "ce_finish",
        &params(n, k, 1.0 / n as f32),
        &[&row_loss, &row_hit, &row_loss, &row_loss, &loss, &correct],
        [1, 1, 1],
    )?;
    Ok(CrossEntropy { loss, correct, lse })
}

/// `∂L/∂logits = (softmax(logits) − onehot(labels)) / N · dloss[0]`, with `lse` from
/// [`cross_entropy_forward`] and `dloss` the `[1]` upstream gradient.
pub fn cross_entropy_backward(
    gpu: &Gpu,
    logits: &Tensor,
    labels: &Tensor,
    lse: &Tensor,
    dloss: &Tensor,
) -> Result<Tensor> {
    let (n, k) = ce_dims("cross_entropy_backward", logits, labels)?;
    lse.expect_shape("cross_entropy_backward", &[n])?;
    scalar_grad("cross_entropy_backward", dloss)?;
    let dz = Tensor::empty(gpu, logits.shape(), "ce grad")?;
    gpu.dispatch(
        SHADER,
        "ce_bwd",
        &params(n, k, 1.0 / n as f32),
        &[logits, labels, lse, dloss, &dz],
        gpu.grid(((n * k) as u64).div_ceil(WG)),
    )?;
    Ok(dz)
}

/// Element count of `a` and `b`, which must have the same non-empty shape.
fn mse_len(op: &'static str, a: &Tensor, b: &Tensor) -> Result<usize> {
    if a.shape() != b.shape() || a.numel() == 0 {
        return Err(Error::shape(
            op,
            format!(
                "'{}' {:?} and '{}' {:?} must have the same non-empty shape",
                a.name(),
                a.shape(),
                b.name(),
                b.shape()
            ),
        ));
    }
    fits_u32(op, a.numel())?;
    Ok(a.numel())
}

/// `mean((a − b)²)` over all elements, as a `[1]` tensor (`a` and `b` of one shape).
pub fn mse_forward(gpu: &Gpu, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let n = mse_len("mse", a, b)?;
    let groups = (n as u64).div_ceil(MSE_CHUNK);
    let partial = Tensor::empty(gpu, &[groups as usize], "mse partial sums")?;
    gpu.dispatch(SHADER, "mse_partial", &params(n, 0, 0.0), &[a, b, a, a, &partial], gpu.grid(groups))?;
    let loss = Tensor::empty(gpu, &[1], "mse loss")?;
    gpu.dispatch(
        SHADER,
        "sum_finish",
        &params(groups as usize, 0, 1.0 / n as f32),
        &[&partial, &partial, &partial, &partial, &loss],
        [1, 1, 1],
    )?;
    Ok(loss)
}

/// `∂L/∂a = 2(a − b)/n · dloss[0]` for `L = mean((a − b)²)`.
pub fn mse_backward_a(gpu: &Gpu, a: &Tensor, b: &Tensor, dloss: &Tensor) -> Result<Tensor> {
    mse_grad(gpu, a, b, dloss, 2.0)
}

/// `∂L/∂b = −2(a − b)/n · dloss[0]` for `L = mean((a − b)²)`.
pub fn mse_backward_b(gpu: &Gpu, a: &Tensor, b: &Tensor, dloss: &Tensor) -> Result<Tensor> {
    mse_grad(gpu, a, b, dloss, -2.0)
}

/// `factor/n · dloss[0] · (a − b)`, shaped like `a`.
fn mse_grad(gpu: &Gpu, a: &Tensor, b: &Tensor, dloss: &Tensor, factor: f32) -> Result<Tensor> {
    let n = mse_len("mse_backward", a, b)?;
    scalar_grad("mse_backward", dloss)?;
    let d = Tensor::empty(gpu, a.shape(), "mse grad")?;
    gpu.dispatch(
        SHADER,
        "mse_bwd",
        &params(n, 0, factor / n as f32),
        &[a, b, a, dloss, &d],
        gpu.grid((n as u64).div_ceil(WG)),
    )?;
    Ok(d)
}

/// Saved state of a cross-entropy: logits, labels and the per-row lse.
struct CrossEntropyBackward {
    logits: Tensor,
    labels: Tensor,
    lse: Tensor,
}

impl Backward for CrossEntropyBackward {
    fn name(&self) -> &'static str {
        "cross_entropy"
    }

    fn backward(&mut self, gpu: &Gpu, grad: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        if !needs.first().copied().unwrap_or(false) {
            return Ok(vec![None]);
        }
        let dz = cross_entropy_backward(gpu, &self.logits, &self.labels, &self.lse, grad)?;
        Ok(vec![Some(dz)])
    }
}

/// Tape op: mean softmax cross-entropy of `logits` `[N, K]` against `labels` `[N]`.
/// Returns the loss `[1]` and the number of correct predictions `[1]` (not differentiable).
pub fn cross_entropy(tape: &Tape, logits: &Var, labels: &Tensor) -> Result<(Var, Tensor)> {
    let CrossEntropy { loss, correct, lse } = cross_entropy_forward(tape.gpu(), &logits.tensor, labels)?;
    let (z, y) = (logits.tensor.clone(), labels.clone());
    let loss = tape.record(&[logits], loss, || Box::new(CrossEntropyBackward { logits: z, labels: y, lse }));
    Ok((loss, correct))
}

/// Saved state of an MSE: both operands.
struct MseBackward {
    a: Tensor,
    b: Tensor,
}

impl Backward for MseBackward {
    fn name(&self) -> &'static str {
        "mse"
    }

    fn backward(&mut self, gpu: &Gpu, grad: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let need = |i: usize| needs.get(i).copied().unwrap_or(false);
        let da = need(0).then(|| mse_backward_a(gpu, &self.a, &self.b, grad)).transpose()?;
        let db = need(1).then(|| mse_backward_b(gpu, &self.a, &self.b, grad)).transpose()?;
        Ok(vec![da, db])
    }
}

/// Tape op: `mean((a − b)²)` over all elements, a `[1]` loss.
pub fn mse(tape: &Tape, a: &Var, b: &Var) -> Result<Var> {
    let loss = mse_forward(tape.gpu(), &a.tensor, &b.tensor)?;
    let (at, bt) = (a.tensor.clone(), b.tensor.clone());
    Ok(tape.record(&[a, b], loss, || Box::new(MseBackward { a: at, b: bt })))
}
