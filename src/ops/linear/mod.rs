//! Linear layers and the matrix product under them.
//!
//! `matmul` computes `C[M,N] = op(A)·op(B)` with optional transposes that cost no copy,
//! so a linear layer's three products read the stored tensors directly:
//!
//! | product | formula | call |
//! |---|---|---|
//! | forward | `y = x·Wᵀ + b` | `matmul(x, W, false, true)` + bias |
//! | input gradient | `dx = dy·W` | `matmul(dy, W, false, false)` |
//! | weight gradient | `dW = dyᵀ·x` | `matmul(dy, x, true, false)` |
//! | bias gradient | `db = Σ_n dy[n, :]` | column sum |
//!
//! Shader: `shaders/matmul.wgsl`.

pub mod cpu;

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::tensor::tape::{Backward, Tape, Var};
use crate::tensor::Tensor;

const SHADER: &str = "matmul";
/// Invocations per workgroup along the columns of C (WGSL override `WG_N`).
const WG_N: u32 = 8;
/// Invocations per workgroup along the rows of C (WGSL override `WG_M`).
const WG_M: u32 = 8;
/// Rows of C per invocation (WGSL const `TM`).
const TM: u32 = 8;
/// Columns of C per invocation (WGSL const `TN`, two vec4s).
const TN: u32 = 8;
/// Invocations per workgroup of the column-sum kernel.
const SUM_WG: u64 = 256;

/// Parameter block of `shaders/matmul.wgsl`.
///
/// | field | meaning |
/// |---|---|
/// | m, n, k | C is `[m, n]`, the inner dimension is k |
/// | has_bias | 1 to add `bias[col]` to every row of C |
/// | a_sm, a_sk | element strides of op(A) along m and k |
/// | b_sk, b_sn | element strides of op(B) along k and n |
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    has_bias: u32,
    a_sm: u32,
    a_sk: u32,
    b_sk: u32,
    b_sn: u32,
}

/// Floating-point operations of an `[m, k]·[k, n]` product: `2·m·n·k`.
pub fn matmul_flops(m: usize, n: usize, k: usize) -> u64 {
    2 * m as u64 * n as u64 * k as u64
}

/// Floating-point operations of a linear layer's forward pass on `n` rows (bias adds excluded).
pub fn linear_flops(n: usize, inputs: usize, outputs: usize) -> u64 {
    matmul_flops(n, outputs, inputs)
}

/// The two dimensions of a 2-D tensor, or a shape error naming `op`.
fn dims2(op: &'static str, t: &Tensor) -> Result<[usize; 2]> {
    match t.shape() {
        [r, c] => Ok([*r, *c]),
        s => Err(Error::shape(op, format!("'{}' must be 2-D, got shape {s:?}", t.name()))),
    }
}

/// Fails unless every dimension fits the u32 index arithmetic of the kernels.
fn fits_u32(op: &'static str, dims: &[usize]) -> Result<()> {
    if dims.iter().any(|&d| d > u32::MAX as usize) {
        return Err(Error::invalid(op, format!("dimensions {dims:?} exceed u32")));
    }
    Ok(())
}

/// Records `c = op(a)·op(b) (+ bias)` into the `[m, n]` tensor `c`, after all shape checks.
fn launch_matmul(
    gpu: &Gpu,
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
    c: &Tensor,
    [m, n, k]: [usize; 3],
    [trans_a, trans_b]: [bool; 2],
) -> Result<()> {
    fits_u32("matmul", &[m, n, k, m * k, k * n, m * n])?;
    let (m32, n32, k32) = (m as u32, n as u32, k as u32);
    // op(A)[i, l] = A[i, l] (stored [m, k]) or A[l, i] (stored [k, m]); likewise for B.
    let (a_sm, a_sk) = if trans_a { (1, m32) } else { (k32, 1) };
    let (b_sk, b_sn) = if trans_b { (1, k32) } else { (n32, 1) };
    let params = Params { m: m32, n: n32, k: k32, has_bias: bias.is_some() as u32, a_sm, a_sk, b_sk, b_sn };
    let groups = [n32.div_ceil(WG_N * TN), m32.div_ceil(WG_M * TM), 1];
    // Without a bias the binding is never read; `a` stands in for it.
    let bias = bias.unwrap_or(a);
    gpu.dispatch_with(
        SHADER,
        "matmul",
        &[("WG_N", WG_N as f64), ("WG_M", WG_M as f64)],
        &params,
        &[a, b, bias, c],
        groups,
    )
}

/// The logical `[rows, cols]` of `op(t)` for a 2-D `t`.
fn op_dims(op: &'static str, t: &Tensor, trans: bool) -> Result<[usize; 2]> {
    let [r, c] = dims2(op, t)?;
    Ok(if trans { [c, r] } else { [r, c] })
}

/// `C[M,N] = op(A)·op(B)` where `op(X)` is `X` or `Xᵀ`; A and B are 2-D (`A` stored
/// `[M,K]`, or `[K,M]` when `trans_a`; `B` stored `[K,N]`, or `[N,K]` when `trans_b`).
pub fn matmul(gpu: &Gpu, a: &Tensor, b: &Tensor, trans_a: bool, trans_b: bool) -> Result<Tensor> {
    let [m, k] = op_dims("matmul", a, trans_a)?;
    let [kb, n] = op_dims("matmul", b, trans_b)?;
    if k != kb {
        return Err(Error::shape(
            "matmul",
            format!(
                "inner dimensions differ: op('{}') is [{m}, {k}], op('{}') is [{kb}, {n}] \
                 (trans_a = {trans_a}, trans_b = {trans_b})",
                a.name(),
                b.name()
            ),
        ));
    }
    let c = Tensor::empty(gpu, &[m, n], "matmul out")?;
    launch_matmul(gpu, a, b, None, &c, [m, n, k], [trans_a, trans_b])?;
    Ok(c)
}

/// `x` seen as `[N, in]`: its first dimension is the batch and the rest must multiply to `inputs`.
fn rows_view(op: &'static str, x: &Tensor, inputs: usize) -> Result<Tensor> {
    let shape = x.shape();
    let rest: usize = shape.iter().skip(1).product();
    if shape.len() < 2 || rest != inputs {
        return Err(Error::shape(
            op,
            format!(
                "input '{}' has shape {shape:?}; expected [N, {inputs}] or [N, ...] with trailing \
                 dimensions multiplying to {inputs}",
                x.name()
            ),
        ));
    }
    x.reshape(&[shape[0], inputs])
}

/// `y[N, out] = x·Wᵀ + b` for `x` of shape `[N, in]` (or `[N, ...]` with trailing dims
/// multiplying to `in`, e.g. `[N, C, 1, 1]`), `W` of shape `[out, in]`, optional `b` of shape `[out]`.
pub fn linear_forward(gpu: &Gpu, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    let [outputs, inputs] = dims2("linear", w)?;
    let x2 = rows_view("linear", x, inputs)?;
    if let Some(b) = b {
        b.expect_shape("linear", &[outputs])?;
    }
    let n = x2.shape()[0];
    let y = Tensor::empty(gpu, &[n, outputs], "linear out")?;
    launch_matmul(gpu, &x2, w, b, &y, [n, outputs, inputs], [false, true])?;
    Ok(y)
}

/// `dx = dy·W`, shaped like `x_shape` (`dy` is `[N, out]`, `W` is `[out, in]`).
pub fn linear_backward_x(gpu: &Gpu, dy: &Tensor, w: &Tensor, x_shape: &[usize]) -> Result<Tensor> {
    let [outputs, inputs] = dims2("linear_backward_x", w)?;
    let [n, o] = dims2("linear_backward_x", dy)?;
    let x_rows = x_shape.first().copied().unwrap_or(0);
    let x_rest: usize = x_shape.iter().skip(1).product();
    if o != outputs || x_rows != n || x_shape.len() < 2 || x_rest != inputs {
        return Err(Error::shape(
            "linear_backward_x",
            format!("dy {:?}, W {:?} and x {x_shape:?} do not fit together", dy.shape(), w.shape()),
        ));
    }
    let dx = Tensor::empty(gpu, x_shape, "linear grad x")?;
    launch_matmul(gpu, dy, w, None, &dx, [n, inputs, outputs], [false, false])?;
    Ok(dx)
}

/// `dW[out, in] = dyᵀ·x` (`dy` is `[N, out]`, `x` is `[N, in]` or `[N, ...]`).
pub fn linear_backward_w(gpu: &Gpu, dy: &Tensor, x: &Tensor) -> Result<Tensor> {
    let [n, outputs] = dims2("linear_backward_w", dy)?;
    let inputs: usize = x.shape().iter().skip(1).product();
    let x2 = rows_view("linear_backward_w", x, inputs)?;
    if x2.shape()[0] != n {
        return Err(Error::shape(
            "linear_backward_w",
            format!("dy {:?} and x {:?} differ in batch size", dy.shape(), x.shape()),
        ));
    }
    let dw = Tensor::empty(gpu, &[outputs, inputs], "linear grad w")?;
    launch_matmul(gpu, dy, &x2, None, &dw, [outputs, inputs, n], [true, false])?;
    Ok(dw)
}

/// `db[out] = Σ_n dy[n, :]` (`dy` is `[N, out]`).
pub fn linear_backward_b(gpu: &Gpu, dy: &Tensor) -> Result<Tensor> {
    let [n, outputs] = dims2("linear_backward_b", dy)?;
    fits_u32("linear_backward_b", &[n, outputs, n * outputs])?;
    let db = Tensor::empty(gpu, &[outputs], "linear grad b")?;
    let params = Params { m: n as u32, n: outputs as u32, k: 0, has_bias: 0, a_sm: 0, a_sk: 0, b_sk: 0, b_sn: 0 };
    gpu.dispatch(SHADER, "col_sum", &params, &[dy, dy, dy, &db], gpu.grid((outputs as u64).div_ceil(SUM_WG)))?;
    Ok(db)
}

/// Saved state of a linear op: the input (for dW) and the weight (for dx).
struct LinearBackward {
    x: Tensor,
    w: Tensor,
}

impl Backward for LinearBackward {
    fn name(&self) -> &'static str {
        "linear"
    }

    fn backward(&mut self, gpu: &Gpu, grad: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let need = |i: usize| needs.get(i).copied().unwrap_or(false);
        // dy/dx = W, dy/dW = x, dy/db = 1: each product runs only when its gradient is wanted.
        let dx = need(0).then(|| linear_backward_x(gpu, grad, &self.w, self.x.shape())).transpose()?;
        let dw = need(1).then(|| linear_backward_w(gpu, grad, &self.x)).transpose()?;
        let mut out = vec![dx, dw];
        if needs.len() > 2 {
            out.push(need(2).then(|| linear_backward_b(gpu, grad)).transpose()?);
        }
        Ok(out)
    }
}

/// Tape op: `y = x·Wᵀ + b` (see [`linear_forward`] for shapes).
pub fn linear(tape: &Tape, x: &Var, w: &Var, b: Option<&Var>) -> Result<Var> {
    let y = linear_forward(tape.gpu(), &x.tensor, &w.tensor, b.map(|b| &b.tensor))?;
    let mut inputs = vec![x, w];
    inputs.extend(b);
    let (xs, ws) = (x.tensor.clone(), w.tensor.clone());
    Ok(tape.record(&inputs, y, || Box::new(LinearBackward { x: xs, w: ws })))
}
