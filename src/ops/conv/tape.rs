//! The tape op [`conv2d`] and its backward rule.

use super::{
    conv2d_backward_bias, conv2d_backward_data, conv2d_backward_weight, conv2d_forward, Conv2dParams, ConvShape,
};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::tensor::tape::{Backward, Tape, Var};
use crate::tensor::Tensor;

/// Backward of `y = conv(x, w) + b`: `∂L/∂x = convᵀ(dy, w)`, `∂L/∂w = Σ dy ⊗ x`, `∂L/∂b = Σ dy`.
struct Conv2dBackward {
    shape: ConvShape,
    /// The input, kept only when w is tracked (it feeds ∂L/∂w alone).
    x: Option<Tensor>,
    /// The weight, kept only when x is tracked (it feeds ∂L/∂x alone).
    w: Option<Tensor>,
    has_bias: bool,
}

fn saved(t: Option<Tensor>, what: &str) -> Result<Tensor> {
    t.ok_or_else(|| Error::Autodiff(format!("conv2d: {what} was not saved for backward")))
}

impl Backward for Conv2dBackward {
    fn name(&self) -> &'static str {
        "conv2d"
    }

    fn backward(&mut self, gpu: &Gpu, grad: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let need = |i: usize| needs.get(i).copied().unwrap_or(false);
        let s = self.shape;
        let (w, x) = (self.w.take(), self.x.take());
        // Each kernel runs only for a requested input; the saved tensors are dropped either way.
        let dx = need(0).then(|| conv2d_backward_data(gpu, grad, &saved(w, "w")?, s.x_shape(), &s.p)).transpose()?;
        let dw = need(1).then(|| conv2d_backward_weight(gpu, grad, &saved(x, "x")?, s.w_shape(), &s.p)).transpose()?;
        let mut grads = vec![dx, dw];
        if self.has_bias {
            grads.push(need(2).then(|| conv2d_backward_bias(gpu, grad)).transpose()?);
        }
        Ok(grads)
    }
}

/// Tape op: `y = conv(x, w) + b` (see the module docs); gradients flow to x, w and b.
pub fn conv2d(tape: &Tape, x: &Var, w: &Var, b: Option<&Var>, p: &Conv2dParams) -> Result<Var> {
    let y = conv2d_forward(tape.gpu(), &x.tensor, &w.tensor, b.map(|b| &b.tensor), p)?;
    let shape = ConvShape::new(x.tensor.dims4("conv2d")?, w.tensor.dims4("conv2d")?, p)?;
    let mut inputs = vec![x, w];
    inputs.extend(b);
    let make = || -> Box<dyn Backward> {
        Box::new(Conv2dBackward {
            shape,
            x: w.tracked().then(|| x.tensor.clone()),
            w: x.tracked().then(|| w.tensor.clone()),
            has_bias: b.is_some(),
        })
    };
    Ok(tape.record(&inputs, y, make))
}
