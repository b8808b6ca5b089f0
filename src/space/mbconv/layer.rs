//! One layer of the space: an MBConv (inverted residual with SE) or the identity, with its
//! tensor specs, parameter and MAC counts, and its forward pass on the tape.
//!
//! ```text
//! MBConv(e, k), c_in → c_out, stride s, hidden m = e·c_in, SE units r = max(1, round(c_in·se_ratio)):
//!   x ─ Conv1×1(c_in→m) ─ BN ─ swish ─ DWConv k×k (stride s, pad k/2) ─ BN ─ swish
//!     ─ SE(m, r) ─ Conv1×1(m→c_out) ─ BN ─(+ x when s = 1 and c_in = c_out)
//! skip: x (only where s = 1 and c_in = c_out)
//! ```
//! The convs have no bias (each is followed by a BN); the SE's two linears have one.

use super::arch::MbOp;
use super::config::MbSpace;
use crate::error::{Error, Result};
use crate::nn::{init, se};
use crate::ops::conv::{self, Conv2dParams};
use crate::ops::norm::{self, BnConfig};
use crate::ops::{act, eltwise};
use crate::space::nb201::torch_names::{Init, TensorSpec};
use crate::tensor::tape::{Tape, Var};
use crate::tensor::Tensor;
use crate::util::rng::Rng;

const OP: &str = "mbconv layer";

/// How the BatchNorms of a forward pass normalise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BnMode {
    /// Batch statistics; the running statistics move towards them (momentum 0.1).
    Train,
    /// The running statistics; nothing is updated.
    Eval,
    /// Batch statistics, and the running statistics are overwritten with exactly this
    /// batch's (reset, then updated with momentum 1): `r_mean = mean`, `r_var = var·M/(M−1)`
    /// (the unbiased variance, as PyTorch stores it). DNA recalibrates a path's BNs so before
    /// rating it in [`BnMode::Eval`].
    Recalibrate,
}

impl BnMode {
    /// `Train` when `training`, else `Eval`.
    pub fn from_training(training: bool) -> BnMode {
        if training {
            BnMode::Train
        } else {
            BnMode::Eval
        }
    }
}

/// Affine BatchNorm2d with running statistics `running = (mean, var)` under `mode`.
pub fn batch_norm(
    tape: &Tape,
    x: &Var,
    gamma: &Var,
    beta: &Var,
    running: &(Tensor, Tensor),
    mode: BnMode,
) -> Result<Var> {
    let (rm, rv) = (&running.0, &running.1);
    let affine = Some((gamma, beta));
    match mode {
        BnMode::Train => norm::batch_norm(tape, x, affine, Some((rm, rv)), true, BnConfig::default()),
        BnMode::Eval => norm::batch_norm(tape, x, affine, Some((rm, rv)), false, BnConfig::default()),
        BnMode::Recalibrate => {
            // Momentum 1 alone would leave 0·(old value) behind, which is NaN for a non-finite one.
            eltwise::zero(tape.gpu(), rm)?;
            eltwise::fill(tape.gpu(), rv, 1.0)?;
            let cfg = BnConfig { momentum: 1.0, ..BnConfig::default() };
            norm::batch_norm(tape, x, affine, Some((rm, rv)), true, cfg)
        }
    }
}

/// Initial values of `spec` (PyTorch's defaults, see [`Init`]).
pub fn initial_values(spec: &TensorSpec, rng: &mut Rng) -> Vec<f32> {
    let n = spec.numel();
    match spec.init {
        Init::Uniform { fan_in } => init::default_weight(rng, n, fan_in),
        Init::Ones => vec![1.0; n],
        Init::Zeros => vec![0.0; n],
    }
}

/// Uploads one tensor per spec, initialised from `rng`.
pub fn materialise(gpu: &crate::gpu::Gpu, specs: &[TensorSpec], rng: &mut Rng) -> Result<Vec<Tensor>> {
    specs.iter().map(|s| Tensor::from_slice(gpu, &initial_values(s, rng), &s.shape, &s.name)).collect()
}

/// One layer's geometry and op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MbLayer {
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Stride of the depthwise conv (1 or 2).
    pub stride: usize,
    /// The op.
    pub op: MbOp,
    /// SE units r (unused by `skip`).
    pub se: usize,
}

/// Weights of an MBConv layer, in this order (13 tensors).
const MB_WEIGHTS: [&str; 13] = [
    "expand.weight",
    "expand_bn.weight",
    "expand_bn.bias",
    "depthwise.weight",
    "depthwise_bn.weight",
    "depthwise_bn.bias",
    "se.reduce.weight",
    "se.reduce.bias",
    "se.expand.weight",
    "se.expand.bias",
    "project.weight",
    "project_bn.weight",
    "project_bn.bias",
];

/// The BNs of an MBConv layer, in order; each has `running_mean` and `running_var`.
const MB_BNS: [&str; 3] = ["expand_bn", "depthwise_bn", "project_bn"];

impl MbLayer {
    /// A layer of `space` mapping `c_in` to `c_out` channels with `stride`; `skip` is
    /// refused unless it is the identity there (stride 1, `c_in = c_out`).
    pub fn new(space: &MbSpace, c_in: usize, c_out: usize, stride: usize, op: MbOp) -> Result<MbLayer> {
        if op == MbOp::Skip && (stride != 1 || c_in != c_out) {
            return Err(Error::invalid(
                OP,
                format!(
                    "skip needs stride 1 and equal widths, but this layer maps {c_in}→{c_out} with stride {stride}"
                ),
            ));
        }
        if let MbOp::MbConv { expand, kernel } = op {
            if expand == 0 || kernel % 2 == 0 {
                return Err(Error::invalid(OP, format!("{op}: the expansion must be ≥ 1 and the kernel odd")));
            }
        }
        Ok(MbLayer { c_in, c_out, stride, op, se: space.se_units(c_in) })
    }

    /// Hidden width `expand·c_in` (0 for `skip`).
    pub fn hidden(&self) -> usize {
        match self.op {
            MbOp::MbConv { expand, .. } => expand * self.c_in,
            MbOp::Skip => 0,
        }
    }

    /// Whether an MBConv adds its input (stride 1 and `c_in = c_out`).
    pub fn residual(&self) -> bool {
        self.stride == 1 && self.c_in == self.c_out
    }

    /// Output side for an input side `in_hw`: `⌈in_hw / stride⌉` (pad k/2, odd k).
    pub fn out_size(&self, in_hw: usize) -> usize {
        in_hw.div_ceil(self.stride)
    }

    /// The trained tensors under `prefix` (e.g. `blocks.0.1`), in [`MB_WEIGHTS`] order; none for skip.
    pub fn weight_specs(&self, prefix: &str) -> Vec<TensorSpec> {
        let MbOp::MbConv { kernel: k, .. } = self.op else {
            return Vec::new();
        };
        let (m, r, ci, co) = (self.hidden(), self.se, self.c_in, self.c_out);
        let u = |fan_in| Init::Uniform { fan_in };
        let shapes: [(Vec<usize>, Init); 13] = [
            (vec![m, ci, 1, 1], u(ci)),
            (vec![m], Init::Ones),
            (vec![m], Init::Zeros),
            (vec![m, 1, k, k], u(k * k)),
            (vec![m], Init::Ones),
            (vec![m], Init::Zeros),
            (vec![r, m], u(m)),
            (vec![r], u(m)),
            (vec![m, r], u(r)),
            (vec![m], u(r)),
            (vec![co, m, 1, 1], u(m)),
            (vec![co], Init::Ones),
            (vec![co], Init::Zeros),
        ];
        MB_WEIGHTS
            .iter()
            .zip(shapes)
            .map(|(name, (shape, init))| TensorSpec { name: format!("{prefix}.{name}"), shape, init })
            .collect()
    }

    /// The BN running statistics under `prefix`: (mean, var) per BN in [`MB_BNS`] order.
    pub fn buffer_specs(&self, prefix: &str) -> Vec<TensorSpec> {
        if self.op == MbOp::Skip {
            return Vec::new();
        }
        let widths = [self.hidden(), self.hidden(), self.c_out];
        MB_BNS.iter().zip(widths).flat_map(|(bn, c)| bn_buffers(&format!("{prefix}.{bn}"), c)).collect()
    }

    /// Trained parameters: `c_in·m + 2m` (expand, BN) `+ m·k² + 2m` (depthwise, BN)
    /// `+ 2·m·r + r + m` (SE) `+ m·c_out + 2·c_out` (project, BN); 0 for skip.
    pub fn params(&self) -> usize {
        self.weight_specs("").iter().map(TensorSpec::numel).sum()
    }

    /// Multiply-accumulates of one image at input side `in_hw`: `c_in·m·in_hw²` (expand)
    /// `+ m·k²·o²` (depthwise) `+ 2·m·r` (SE) `+ m·c_out·o²` (project), `o = ⌈in_hw/s⌉`; 0 for skip.
    pub fn macs(&self, in_hw: usize) -> u64 {
        let MbOp::MbConv { kernel: k, .. } = self.op else {
            return 0;
        };
        let (m, r, ci, co) = (self.hidden() as u64, self.se as u64, self.c_in as u64, self.c_out as u64);
        let (i2, o2, k2) = ((in_hw * in_hw) as u64, (self.out_size(in_hw).pow(2)) as u64, (k * k) as u64);
        ci * m * i2 + m * k2 * o2 + 2 * m * r + m * co * o2
    }

    /// Records the layer on `x`. `w` are this layer's weights in [`MbLayer::weight_specs`]
    /// order and `running` its BNs' (mean, var) pairs.
    pub fn forward(&self, tape: &Tape, x: &Var, w: &[Var], running: &[(Tensor, Tensor)], mode: BnMode) -> Result<Var> {
        let MbOp::MbConv { kernel, .. } = self.op else {
            return Ok(x.clone());
        };
        let (Some(w), Some(bn)) = (w.get(..MB_WEIGHTS.len()), running.get(..MB_BNS.len())) else {
            return Err(Error::invalid(
                OP,
                format!("{} needs {} weights and {} BN statistics pairs", self.op, MB_WEIGHTS.len(), MB_BNS.len()),
            ));
        };
        let m = self.hidden();
        let h = conv::conv2d(tape, x, &w[0], None, &Conv2dParams::default())?;
        let h = batch_norm(tape, &h, &w[1], &w[2], &bn[0], mode)?;
        let h = act::swish(tape, &h)?;
        let dw = Conv2dParams::same(kernel).with_stride(self.stride).with_groups(m);
        let h = conv::conv2d(tape, &h, &w[3], None, &dw)?;
        let h = batch_norm(tape, &h, &w[4], &w[5], &bn[1], mode)?;
        let h = act::swish(tape, &h)?;
        let h = se::se(tape, &h, &w[6], &w[7], &w[8], &w[9])?;
        let h = conv::conv2d(tape, &h, &w[10], None, &Conv2dParams::default())?;
        let h = batch_norm(tape, &h, &w[11], &w[12], &bn[2], mode)?;
        if self.residual() {
            eltwise::add_var(tape, &h, x)
        } else {
            Ok(h)
        }
    }
}

/// Specs of an affine BN's γ and β under `prefix`.
pub fn bn_weights(prefix: &str, c: usize) -> [TensorSpec; 2] {
    [
        TensorSpec { name: format!("{prefix}.weight"), shape: vec![c], init: Init::Ones },
        TensorSpec { name: format!("{prefix}.bias"), shape: vec![c], init: Init::Zeros },
    ]
}

/// Specs of a BN's running mean (0) and variance (1) under `prefix`.
pub fn bn_buffers(prefix: &str, c: usize) -> [TensorSpec; 2] {
    [
        TensorSpec { name: format!("{prefix}.running_mean"), shape: vec![c], init: Init::Zeros },
        TensorSpec { name: format!("{prefix}.running_var"), shape: vec![c], init: Init::Ones },
    ]
}

/// Trained parameters of `op` mapping `c_in` to `c_out` channels in `space` (see [`MbLayer::params`]).
pub fn params(space: &MbSpace, c_in: usize, c_out: usize, op: MbOp) -> usize {
    MbLayer { c_in, c_out, stride: 1, op, se: space.se_units(c_in) }.params()
}

/// MACs of `op` (`c_in → c_out`, `stride`) on one `in_hw`×`in_hw` image (see [`MbLayer::macs`]).
pub fn macs(space: &MbSpace, c_in: usize, c_out: usize, stride: usize, op: MbOp, in_hw: usize) -> u64 {
    MbLayer { c_in, c_out, stride, op, se: space.se_units(c_in) }.macs(in_hw)
}

/// Where a layer's tensors sit in a model's weight list and BN-statistics list.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Placed {
    pub layer: MbLayer,
    /// Index of the first weight.
    pub w: usize,
    /// Number of weights.
    pub nw: usize,
    /// Index of the first (mean, var) pair.
    pub bn: usize,
    /// Number of BNs.
    pub nbn: usize,
}

/// Collects the tensor specs of a model while its layers are laid out.
#[derive(Debug, Default)]
pub(crate) struct Specs {
    pub weights: Vec<TensorSpec>,
    pub buffers: Vec<TensorSpec>,
}

impl Specs {
    /// Appends `layer` under `prefix` and says where it went.
    pub fn layer(&mut self, layer: MbLayer, prefix: &str) -> Placed {
        let (w, bn) = (self.weights.len(), self.buffers.len() / 2);
        let ws = layer.weight_specs(prefix);
        let bs = layer.buffer_specs(prefix);
        let (nw, nbn) = (ws.len(), bs.len() / 2);
        self.weights.extend(ws);
        self.buffers.extend(bs);
        Placed { layer, w, nw, bn, nbn }
    }

    /// Appends one weight; returns its index.
    pub fn weight(&mut self, spec: TensorSpec) -> usize {
        self.weights.push(spec);
        self.weights.len() - 1
    }

    /// Appends an affine BN of `c` channels under `prefix`; returns (γ index, statistics pair index).
    pub fn bn(&mut self, prefix: &str, c: usize) -> (usize, usize) {
        let g = self.weights.len();
        self.weights.extend(bn_weights(prefix, c));
        self.buffers.extend(bn_buffers(prefix, c));
        (g, self.buffers.len() / 2 - 1)
    }

    /// Uploads the running statistics as (mean, var) pairs.
    pub fn running(&self, gpu: &crate::gpu::Gpu, rng: &mut Rng) -> Result<Vec<(Tensor, Tensor)>> {
        let t = materialise(gpu, &self.buffers, rng)?;
        Ok(t.chunks_exact(2).map(|p| (p[0].clone(), p[1].clone())).collect())
    }
}
