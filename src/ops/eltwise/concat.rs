//! Stacking tensors along their first dimension (buffer copies, no kernel): the TopoNAS
//! batched-sibling pass stacks the kernels (`[C, I, k, k]` each) and biases of several convs
//! into one wide conv.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::tensor::tape::{Backward, Tape, Var};
use crate::tensor::Tensor;

const OP: &str = "concat0";

/// Copies `src[offset .. offset + numel(shape)]` (elements) into a new tensor of `shape`.
fn copy_out(gpu: &Gpu, src: &Tensor, offset: usize, shape: &[usize]) -> Result<Tensor> {
    let out = Tensor::empty(gpu, shape, "concat0 grad")?;
    if out.numel() > 0 {
        let (from, bytes) = (offset as u64 * 4, out.byte_len());
        gpu.with_encoder(|enc| enc.copy_buffer_to_buffer(src.buffer(), from, out.buffer(), 0, bytes));
    }
    Ok(out)
}

/// `[Σ d0_i, rest...]` stacked from parts that share their trailing dimensions, as a new tensor.
pub fn concat0_forward(gpu: &Gpu, parts: &[&Tensor]) -> Result<Tensor> {
    let first = parts.first().ok_or_else(|| Error::invalid(OP, "nothing to stack"))?;
    let rest = first.shape().get(1..).ok_or_else(|| Error::shape(OP, "parts must have at least one dimension"))?;
    let mut rows = 0;
    for p in parts {
        match p.shape().split_first() {
            Some((&d0, r)) if r == rest => rows += d0,
            _ => {
                return Err(Error::shape(
                    OP,
                    format!("part '{}' {:?} does not stack with {:?}", p.name(), p.shape(), first.shape()),
                ))
            }
        }
    }
    let mut shape = vec![rows];
    shape.extend_from_slice(rest);
    Tensor::pack(gpu, parts, "concat0 out")?.reshape(&shape)
}

/// Backward of [`concat0`]: each part's gradient is its rows of the upstream gradient.
struct Concat0Backward {
    shapes: Vec<Vec<usize>>,
}

impl Backward for Concat0Backward {
    fn name(&self) -> &'static str {
        OP
    }

    fn backward(&mut self, gpu: &Gpu, grad: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let mut offset = 0;
        let mut out = Vec::with_capacity(self.shapes.len());
        for (shape, &need) in self.shapes.iter().zip(needs) {
            out.push(if need { Some(copy_out(gpu, grad, offset, shape)?) } else { None });
            offset += shape.iter().product::<usize>();
        }
        Ok(out)
    }
}

/// Tape op: stacks `parts` along their first dimension (`torch.cat(parts, 0)`).
pub fn concat0(tape: &Tape, parts: &[&Var]) -> Result<Var> {
    let tensors: Vec<&Tensor> = parts.iter().map(|v| &v.tensor).collect();
    let y = concat0_forward(tape.gpu(), &tensors)?;
    Ok(tape
        .record(parts, y, || Box::new(Concat0Backward { shapes: parts.iter().map(|v| v.shape().to_vec()).collect() })))
}
