//! Loading one named tensor into a model's weights or BatchNorm running statistics, the
//! `load` of every fixed network and block supernet (checkpoint restore, teacher load).

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::space::nb201::torch_names::TensorSpec;
use crate::tensor::Tensor;

/// Replaces the tensor called `name` among `names`/`weights`, or among `buffers`/`running`
/// (the specs of the (mean, var) pairs, in order), with `values`, which must fill its shape.
/// `op` names the model in errors; `docs` is the file that lists its tensor names.
pub fn load_named(
    gpu: &Gpu,
    (op, docs): (&'static str, &str),
    (names, weights): (&[String], &mut [Tensor]),
    (buffers, running): (&[TensorSpec], &mut [(Tensor, Tensor)]),
    name: &str,
    values: &[f32],
) -> Result<()> {
    let slot = if let Some(i) = names.iter().position(|n| n == name) {
        &mut weights[i]
    } else if let Some(i) = buffers.iter().position(|s| s.name == name) {
        let pair = running.get_mut(i / 2).ok_or_else(|| Error::invalid(op, "internal: statistics index"))?;
        if i % 2 == 0 {
            &mut pair.0
        } else {
            &mut pair.1
        }
    } else {
        return Err(Error::invalid(op, format!("no tensor named '{name}' in this network (see {docs})")));
    };
    let shape = slot.shape().to_vec();
    if values.len() != slot.numel() {
        return Err(Error::shape(
            op,
            format!("'{name}' has shape {shape:?} ({} values), got {} values", slot.numel(), values.len()),
        ));
    }
    *slot = Tensor::from_slice(gpu, values, &shape, name)?;
    Ok(())
}
