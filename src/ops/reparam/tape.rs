//! Tape ops of the re-parameterization family and their backward rules.

use super::{
    kernel_norm_backward_gain, kernel_norm_backward_kernel, kernel_norm_forward, merge_kernels_backward_kernels,
    merge_kernels_backward_weights, merge_kernels_forward, skip_avgpool_backward_weights, skip_avgpool_backward_x,
    skip_avgpool_forward, skip_avgpool_into, SkipPool,
};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::tensor::tape::{Backward, Tape, Var};
use crate::tensor::Tensor;

fn need(needs: &[bool], i: usize) -> bool {
    needs.get(i).copied().unwrap_or(false)
}

/// Backward of [`kernel_norm`]. Inputs on the tape: `[K]` or `[K, g]`.
struct KernelNormBackward {
    k: Tensor,
    gain: Option<Tensor>,
}

impl Backward for KernelNormBackward {
    fn name(&self) -> &'static str {
        "kernel_norm"
    }

    fn backward(&mut self, gpu: &Gpu, grad: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let dk =
            need(needs, 0).then(|| kernel_norm_backward_kernel(gpu, &self.k, self.gain.as_ref(), grad)).transpose()?;
        let mut out = vec![dk];
        if self.gain.is_some() {
            out.push(need(needs, 1).then(|| kernel_norm_backward_gain(gpu, &self.k, grad)).transpose()?);
        }
        Ok(out)
    }
}

/// Tape op: kernel normalization `K̂[o] = g_o · K[o] / sqrt(‖K[o]‖² + ε)` per output filter o of
/// `k` (`[O, ...]`), with an optional learned gain `[O]` (else g = 1).
/// Gradients: `dK = (g/n)(dK̂ − (K̂/g)⟨K̂/g, dK̂⟩)`, `dg = ⟨K/n, dK̂⟩` (see the module docs).
pub fn kernel_norm(tape: &Tape, k: &Var, gain: Option<&Var>) -> Result<Var> {
    let y = kernel_norm_forward(tape.gpu(), &k.tensor, gain.map(|g| &g.tensor))?;
    let mut inputs = vec![k];
    inputs.extend(gain);
    Ok(tape.record(&inputs, y, || {
        Box::new(KernelNormBackward { k: k.tensor.clone(), gain: gain.map(|g| g.tensor.clone()) })
    }))
}

/// Backward of [`merge_kernels`]. Inputs on the tape: `[weights, K̂_0 .. K̂_{M-1}]`.
struct MergeBackward {
    weights: Tensor,
    row: usize,
    cols: Vec<usize>,
    shapes: Vec<Vec<usize>>,
    /// The candidates, kept only when the weights are tracked (their gradient needs them).
    kernels: Vec<Tensor>,
}

impl Backward for MergeBackward {
    fn name(&self) -> &'static str {
        "merge_kernels"
    }

    fn backward(&mut self, gpu: &Gpu, grad: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let (need_w, need_k) = needs.split_first().ok_or_else(|| Error::Autodiff("merge_kernels: no inputs".into()))?;
        let mut out = vec![None];
        if *need_w {
            if self.kernels.is_empty() {
                return Err(Error::Autodiff("merge_kernels: weight gradient requested but kernels not saved".into()));
            }
            let ks: Vec<&Tensor> = self.kernels.iter().collect();
            out[0] = Some(merge_kernels_backward_weights(gpu, &self.weights, self.row, &self.cols, &ks, grad)?);
        }
        let shapes: Vec<&[usize]> = self.shapes.iter().map(|s| s.as_slice()).collect();
        out.extend(merge_kernels_backward_kernels(gpu, &self.weights, self.row, &self.cols, &shapes, grad, need_k)?);
        Ok(out)
    }
}

/// Tape op: the merged conv kernel `K = Σ_m weights[row, cols[m]] · pad_k(kernels[m])`, where each
/// `[O, I, s, s]` candidate (s ≤ k, k − s even; usually already kernel-normalized) is zero-padded
/// to the centre of k×k. `weights` is `[R, K]` (or `[M]`, one row).
/// Gradients: `dK̂_m = w_m · crop(dK)` (cropped back to s×s), `dw[row, cols[m]] = ⟨dK, pad(K̂_m)⟩`.
pub fn merge_kernels(
    tape: &Tape,
    weights: &Var,
    row: usize,
    cols: &[usize],
    kernels: &[&Var],
    k: usize,
) -> Result<Var> {
    let ks: Vec<&Tensor> = kernels.iter().map(|v| &v.tensor).collect();
    let y = merge_kernels_forward(tape.gpu(), &weights.tensor, row, cols, &ks, k)?;
    let mut inputs = vec![weights];
    inputs.extend_from_slice(kernels);
    Ok(tape.record(&inputs, y, || {
        let saved = if weights.tracked() { kernels.iter().map(|v| v.tensor.clone()).collect() } else { Vec::new() };
        Box::new(MergeBackward {
            weights: weights.tensor.clone(),
            row,
            cols: cols.to_vec(),
            shapes: kernels.iter().map(|v| v.shape().to_vec()).collect(),
            kernels: saved,
        })
    }))
}

/// Backward of [`skip_avgpool`]. Inputs on the tape: `[weights, x]`, then the accumulator
/// when there is one (its gradient is the upstream gradient itself).
struct SkipPoolBackward {
    weights: Tensor,
    sp: SkipPool,
    /// The input, kept only when the weights are tracked.
    x: Option<Tensor>,
}

impl Backward for SkipPoolBackward {
    fn name(&self) -> &'static str {
        "skip_avgpool"
    }

    fn backward(&mut self, gpu: &Gpu, grad: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let dw = match (need(needs, 0), &self.x) {
            (false, _) => None,
            (true, Some(x)) => Some(skip_avgpool_backward_weights(gpu, &self.weights, &self.sp, x, grad)?),
            (true, None) => {
                return Err(Error::Autodiff("skip_avgpool: weight gradient requested but x not saved".into()))
            }
        };
        let dx = need(needs, 1).then(|| skip_avgpool_backward_x(gpu, &self.weights, &self.sp, grad)).transpose()?;
        let mut out = vec![dw, dx];
        if needs.len() == 3 {
            out.push(need(needs, 2).then(|| grad.clone()));
        }
        Ok(out)
    }
}

/// Tape op: skip + 3×3 average pool (count_include_pad = false) as one depthwise 3×3,
/// `y = a·x + b·avgpool3x3(x)` with `a = weights[row, col_skip]`, `b = weights[row, col_pool]`
/// (a missing column means weight 0). Gradients: `dx = a·dy + b·avgpool3ᵀ(dy)`, `da = ⟨x, dy⟩`,
/// `db = ⟨avgpool3(x), dy⟩` (see the module docs).
pub fn skip_avgpool(
    tape: &Tape,
    weights: &Var,
    row: usize,
    col_skip: Option<usize>,
    col_pool: Option<usize>,
    x: &Var,
) -> Result<Var> {
    skip_avgpool_acc(tape, weights, row, col_skip, col_pool, x, None)
}

/// [`skip_avgpool`] added in place into `acc` (a node accumulator): the returned value shares
/// `acc`'s buffer, and no new tensor is made. With `acc = None` it is [`skip_avgpool`].
/// Gradient of `acc`: the upstream gradient itself.
pub fn skip_avgpool_acc(
    tape: &Tape,
    weights: &Var,
    row: usize,
    col_skip: Option<usize>,
    col_pool: Option<usize>,
    x: &Var,
    acc: Option<&Var>,
) -> Result<Var> {
    let sp = SkipPool { row, col_skip, col_pool };
    let gpu = tape.gpu();
    let (y, inputs) = match acc {
        Some(acc) => {
            skip_avgpool_into(gpu, &weights.tensor, &sp, &x.tensor, &acc.tensor, true)?;
            (acc.tensor.clone(), vec![weights, x, acc])
        }
        None => (skip_avgpool_forward(gpu, &weights.tensor, &sp, &x.tensor)?, vec![weights, x]),
    };
    Ok(tape.record(&inputs, y, || {
        let saved = weights.tracked().then(|| x.tensor.clone());
        Box::new(SkipPoolBackward { weights: weights.tensor.clone(), sp, x: saved })
    }))
}
