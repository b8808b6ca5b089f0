//! Tape ops of the mix family and their backward rules.

use super::{
    forward, mix_backward_inputs, mix_backward_weights, softmax_rows_backward, softmax_rows_forward, Weighting,
};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::tensor::tape::{Backward, Tape, Var};
use crate::tensor::Tensor;

/// Backward of [`mixed_op`] and [`weighted_sum`]. Inputs on the tape: `[weights, x_0 .. x_{K-1}]`.
struct MixBackward {
    weighting: Weighting,
    weights: Tensor,
    row: usize,
    /// The candidates, kept only when the weights are tracked (the weight gradient needs them).
    xs: Vec<Tensor>,
}

impl Backward for MixBackward {
    fn name(&self) -> &'static str {
        match self.weighting {
            Weighting::Softmax => "mixed_op",
            Weighting::Raw => "weighted_sum",
        }
    }

    fn backward(&mut self, gpu: &Gpu, grad: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let (need_w, need_x) =
            needs.split_first().ok_or_else(|| Error::Autodiff(format!("{}: no inputs", self.name())))?;
        let mut out = vec![None];
        if *need_w {
            if self.xs.is_empty() {
                return Err(Error::Autodiff(format!(
                    "{}: weight gradient requested but the candidates were not saved",
                    self.name()
                )));
            }
            let xs: Vec<&Tensor> = self.xs.iter().collect();
            out[0] = Some(mix_backward_weights(gpu, self.weighting, &self.weights, self.row, &xs, grad)?);
        }
        out.extend(mix_backward_inputs(gpu, self.weighting, &self.weights, self.row, grad, need_x)?);
        Ok(out)
    }
}

fn record_mix(tape: &Tape, weighting: Weighting, weights: &Var, row: usize, inputs: &[&Var]) -> Result<Var> {
    let gpu = tape.gpu();
    let xs: Vec<&Tensor> = inputs.iter().map(|v| &v.tensor).collect();
    let y = forward(gpu, weighting, &weights.tensor, row, &xs)?;
    let mut all: Vec<&Var> = Vec::with_capacity(inputs.len() + 1);
    all.push(weights);
    all.extend_from_slice(inputs);
    Ok(tape.record(&all, y, || {
        let xs = if weights.tracked() { inputs.iter().map(|v| v.tensor.clone()).collect() } else { Vec::new() };
        Box::new(MixBackward { weighting, weights: weights.tensor.clone(), row, xs })
    }))
}

/// Tape op: the DARTS mixed op of edge `row`, `y = Σ_k softmax(α[row, :])_k · inputs[k]`.
/// `alpha` is `[R, K]` with K = `inputs.len()`; the inputs share one shape.
/// Gradients: `dx_k = w_k dy`; `dα[row, k] = w_k (⟨dy, x_k⟩ − Σ_j w_j ⟨dy, x_j⟩)`, 0 in other rows.
pub fn mixed_op(tape: &Tape, alpha: &Var, row: usize, inputs: &[&Var]) -> Result<Var> {
    record_mix(tape, Weighting::Softmax, alpha, row, inputs)
}

/// Tape op: `y = Σ_k weights[row, k] · inputs[k]` with already normalised weights `[R, K]`
/// (GDAS one-hot samples). Gradients: `dx_k = w_k dy`; `dw[row, k] = ⟨dy, x_k⟩`, 0 in other rows.
pub fn weighted_sum(tape: &Tape, weights: &Var, row: usize, inputs: &[&Var]) -> Result<Var> {
    record_mix(tape, Weighting::Raw, weights, row, inputs)
}

/// Backward of [`softmax_rows`]: keeps the output `s`, which is all the rule needs.
struct SoftmaxRowsBackward {
    s: Tensor,
}

impl Backward for SoftmaxRowsBackward {
    fn name(&self) -> &'static str {
        "softmax_rows"
    }

    fn backward(&mut self, gpu: &Gpu, grad: &Tensor, _needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        // ∂s_j/∂α_i = s_j (δ_ij − s_i)  ⇒  dα_i = s_i (ds_i − Σ_j s_j ds_j)
        Ok(vec![Some(softmax_rows_backward(gpu, &self.s, grad)?)])
    }
}

/// Tape op: row-wise softmax of a `[R, K]` tensor.
pub fn softmax_rows(tape: &Tape, alpha: &Var) -> Result<Var> {
    let s = softmax_rows_forward(tape.gpu(), &alpha.tensor)?;
    let saved = s.clone();
    Ok(tape.record(&[alpha], s, || Box::new(SoftmaxRowsBackward { s: saved })))
}
