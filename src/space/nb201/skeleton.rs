//! The parts of the NB201 skeleton that the search supernet and the training network share:
//! the weight specs of the stem/block/head BNs and of the ResNet reduction blocks, named as
//! in PyTorch, their forward passes, and the kernel size of the conv ops.

use super::genotype::Nb201Op;
use super::torch_names::{self as names, Branch, Init, TensorSpec};
use crate::error::{Error, Result};
use crate::ops::conv::{self, Conv2dParams};
use crate::ops::eltwise;
use crate::ops::norm::{self, BnConfig};
use crate::ops::pool::{self, Pool2d};
use crate::tensor::tape::{Tape, Var};
use crate::tensor::Tensor;

/// Weight indices of an affine BN, and the index of its running-statistics pair.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bn {
    pub gamma: usize,
    pub beta: usize,
    pub stats: usize,
}

/// Weight indices of a reduction block.
#[derive(Debug, Clone, Copy)]
pub(super) struct Block {
    pub conv_a: usize,
    pub bn_a: Bn,
    pub conv_b: usize,
    pub bn_b: Bn,
    pub shortcut: usize,
}

/// The kernel size of a conv op.
pub(super) fn kernel(op: Nb201Op) -> Option<usize> {
    match op {
        Nb201Op::NorConv1x1 => Some(1),
        Nb201Op::NorConv3x3 => Some(3),
        _ => None,
    }
}

/// Conv weight `[c_out, c_in, k, k]` with PyTorch's default init.
pub(super) fn conv_spec(prefix: &str, c_out: usize, c_in: usize, k: usize) -> TensorSpec {
    TensorSpec {
        name: names::field(prefix, "weight"),
        shape: vec![c_out, c_in, k, k],
        init: Init::Uniform { fan_in: c_in * k * k },
    }
}

/// A `[c]` tensor.
pub(super) fn vector(name: String, c: usize, init: Init) -> TensorSpec {
    TensorSpec { name, shape: vec![c], init }
}

/// A list of weight and buffer specs being laid out in PyTorch's module order.
pub(super) trait SpecList {
    /// The trained weights so far.
    fn weights_mut(&mut self) -> &mut Vec<TensorSpec>;

    /// The BN running statistics so far (mean, variance pairs).
    fn buffers_mut(&mut self) -> &mut Vec<TensorSpec>;

    /// Appends a weight; returns its index.
    fn push(&mut self, spec: TensorSpec) -> usize {
        let w = self.weights_mut();
        w.push(spec);
        w.len() - 1
    }

    /// An affine BN with running statistics: γ = 1, β = 0, mean 0, variance 1.
    fn bn(&mut self, prefix: &str, c: usize) -> Bn {
        let gamma = self.push(vector(names::field(prefix, "weight"), c, Init::Ones));
        let beta = self.push(vector(names::field(prefix, "bias"), c, Init::Zeros));
        let buffers = self.buffers_mut();
        let stats = buffers.len() / 2;
        buffers.push(vector(names::field(prefix, "running_mean"), c, Init::Zeros));
        buffers.push(vector(names::field(prefix, "running_var"), c, Init::Ones));
        Bn { gamma, beta, stats }
    }

    /// `ResNetBasicblock(c_in, c_out, stride 2)` at module index `cell`.
    fn block(&mut self, cell: usize, c_in: usize, c_out: usize) -> Block {
        let conv_a = self.push(conv_spec(&names::block_conv(cell, Branch::A), c_out, c_in, 3));
        let bn_a = self.bn(&names::block_bn(cell, Branch::A), c_out);
        let conv_b = self.push(conv_spec(&names::block_conv(cell, Branch::B), c_out, c_out, 3));
        let bn_b = self.bn(&names::block_bn(cell, Branch::B), c_out);
        let shortcut = self.push(conv_spec(&names::block_shortcut(cell), c_out, c_in, 1));
        Block { conv_a, bn_a, conv_b, bn_b, shortcut }
    }
}

/// An affine BN with running statistics `running[bn.stats]` (batch statistics and an update
/// in training, the running statistics in evaluation).
pub(super) fn affine_bn(
    tape: &Tape,
    w: &[Var],
    running: &[(Tensor, Tensor)],
    training: bool,
    x: &Var,
    bn: Bn,
) -> Result<Var> {
    let (rm, rv) =
        running.get(bn.stats).ok_or_else(|| Error::invalid("nb201", "internal: BN statistics index out of range"))?;
    let affine = Some((&w[bn.gamma], &w[bn.beta]));
    norm::batch_norm(tape, x, affine, Some((rm, rv)), training, BnConfig::default())
}

/// `ResNetBasicblock` with stride 2: shortcut(x) + BN(Conv(ReLU(BN(Conv_s2(ReLU(x)))))).
pub(super) fn res_block(
    tape: &Tape,
    w: &[Var],
    running: &[(Tensor, Tensor)],
    training: bool,
    x: &Var,
    b: &Block,
) -> Result<Var> {
    let h = eltwise::relu(tape, x)?;
    let h = conv::conv2d(tape, &h, &w[b.conv_a], None, &Conv2dParams::same(3).with_stride(2))?;
    let h = affine_bn(tape, w, running, training, &h, b.bn_a)?;
    let h = eltwise::relu(tape, &h)?;
    let h = conv::conv2d(tape, &h, &w[b.conv_b], None, &Conv2dParams::same(3))?;
    let h = affine_bn(tape, w, running, training, &h, b.bn_b)?;
    let s = pool::pool2d(tape, x, &Pool2d::avg(2, 2, 0))?;
    let s = conv::conv2d(tape, &s, &w[b.shortcut], None, &Conv2dParams::default())?;
    eltwise::add_var(tape, &s, &h)
}
