//! 2-D convolution: forward, backward-data, backward-weight and bias gradient on the GPU,
//! the tape op [`conv2d`], and CPU references in [`cpu`]. Shader: `shaders/conv.wgsl`.
//!
//! Layouts follow PyTorch: x is NCHW, w is OIHW with I = C_in / groups, bias is `[C_out]`.
//! With `g(co) = co / (C_out / groups)` the group of output channel `co` and `Cg = C_in / groups`:
//!
//! `y[n, co, oy, ox] = b[co] + Σ_{ci < Cg, ky, kx} w[co, ci, ky, kx] · x[n, g(co)·Cg + ci, oy·sh − ph + ky·dh, ox·sw − pw + kx·dw]`
//!
//! where x is zero outside the image. Depthwise convolutions (`groups == C_in`, `C_out = m·C_in`)
//! take dedicated kernels, because the generic kernels tile several channels per group.
//!
//! # Shapes
//! - x: `[N, C_in, H, W]`, w: `[C_out, C_in / groups, KH, KW]`, bias: `[C_out]`
//! - y: `[N, C_out, OH, OW]` with `OH = (H + 2·ph − dh·(KH − 1) − 1) / sh + 1` (likewise OW)

pub mod cpu;
mod launch;
mod tape;

pub use launch::{conv2d_backward_bias, conv2d_backward_data, conv2d_backward_weight, conv2d_forward};
pub use tape::conv2d;

use crate::error::{Error, Result};

/// Stride, zero padding and dilation per axis (`[vertical, horizontal]`) and channel groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dParams {
    /// Step between output positions, `[sh, sw]` (≥ 1).
    pub stride: [usize; 2],
    /// Zeros added on each side of the input, `[ph, pw]`.
    pub padding: [usize; 2],
    /// Spacing between kernel taps, `[dh, dw]` (≥ 1).
    pub dilation: [usize; 2],
    /// Channel groups: C_in and C_out must both be multiples (C_in for depthwise).
    pub groups: usize,
}

impl Default for Conv2dParams {
    /// Stride 1, no padding, dilation 1, one group.
    fn default() -> Self {
        Conv2dParams { stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1 }
    }
}

impl Conv2dParams {
    /// Stride 1 with padding `(k − 1) / 2`: a k×k kernel (k odd) keeps the spatial size.
    pub fn same(k: usize) -> Self {
        Self::same_dilated(k, 1)
    }

    /// Stride 1, dilation `d`, padding `d·(k − 1) / 2`: keeps the spatial size for odd k.
    pub fn same_dilated(k: usize, d: usize) -> Self {
        let pad = d * k.saturating_sub(1) / 2;
        Conv2dParams { padding: [pad, pad], dilation: [d, d], ..Self::default() }
    }

    /// The same parameters with stride `s` on both axes.
    pub fn with_stride(self, s: usize) -> Self {
        Conv2dParams { stride: [s, s], ..self }
    }

    /// The same parameters with `groups` channel groups (`groups = C_in` for depthwise).
    pub fn with_groups(self, groups: usize) -> Self {
        Conv2dParams { groups, ..self }
    }
}

/// Output size of one axis: `(in + 2·pad − dil·(k − 1) − 1) / stride + 1`, or `None` when
/// the dilated kernel does not fit in the padded input or the stride is 0.
fn output_len(input: usize, k: usize, stride: usize, pad: usize, dil: usize) -> Option<usize> {
    let span = dil.checked_mul(k.checked_sub(1)?)?.checked_add(1)?;
    let room = input.checked_add(2 * pad)?.checked_sub(span)?;
    room.checked_div(stride).map(|r| r + 1)
}

/// Output `[OH, OW]` of a `k_hw` kernel on an `in_hw` input:
/// `OH = (H + 2·ph − dh·(KH − 1) − 1) / sh + 1`, likewise OW.
pub fn output_hw(in_hw: [usize; 2], k_hw: [usize; 2], p: &Conv2dParams) -> Result<[usize; 2]> {
    let axis = |a: usize| {
        output_len(in_hw[a], k_hw[a], p.stride[a], p.padding[a], p.dilation[a]).ok_or_else(|| {
            Error::shape(
                "conv2d",
                format!(
                    "kernel {k_hw:?} with dilation {:?} does not fit input {in_hw:?} padded by {:?} \
                     (stride {:?})",
                    p.dilation, p.padding, p.stride
                ),
            )
        })
    };
    Ok([axis(0)?, axis(1)?])
}

/// Every size of one convolution, validated: the geometry the kernels and references share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvShape {
    /// Batch size N.
    pub n: usize,
    /// Input channels C_in.
    pub c_in: usize,
    /// Input height H.
    pub h: usize,
    /// Input width W.
    pub w: usize,
    /// Output channels C_out.
    pub c_out: usize,
    /// Kernel height KH.
    pub kh: usize,
    /// Kernel width KW.
    pub kw: usize,
    /// Output height OH.
    pub oh: usize,
    /// Output width OW.
    pub ow: usize,
    /// Stride, padding, dilation, groups.
    pub p: Conv2dParams,
}

impl ConvShape {
    /// Validates x `[N, C_in, H, W]` against w `[C_out, C_in / groups, KH, KW]` under `p`.
    pub fn new(x_shape: [usize; 4], w_shape: [usize; 4], p: &Conv2dParams) -> Result<ConvShape> {
        let [n, c_in, h, w] = x_shape;
        let [c_out, cin_g, kh, kw] = w_shape;
        let bad = |msg: String| Err(Error::shape("conv2d", msg));
        if p.stride.contains(&0) || p.dilation.contains(&0) || p.groups == 0 {
            return Err(Error::invalid(
                "conv2d",
                format!("stride {:?}, dilation {:?} and groups {} must be ≥ 1", p.stride, p.dilation, p.groups),
            ));
        }
        if x_shape.contains(&0) || w_shape.contains(&0) {
            return bad(format!("empty tensor: x {x_shape:?}, w {w_shape:?}"));
        }
        if c_in % p.groups != 0 || c_out % p.groups != 0 {
            return bad(format!("C_in {c_in} and C_out {c_out} must be multiples of groups {}", p.groups));
        }
        if cin_g * p.groups != c_in {
            return bad(format!(
                "weight {w_shape:?} has {cin_g} input channels per group, but x {x_shape:?} with \
                 {} groups needs {}",
                p.groups,
                c_in / p.groups
            ));
        }
        let [oh, ow] = output_hw([h, w], [kh, kw], p)?;
        Ok(ConvShape { n, c_in, h, w, c_out, kh, kw, oh, ow, p: *p })
    }

    /// Input shape `[N, C_in, H, W]`.
    pub fn x_shape(&self) -> [usize; 4] {
        [self.n, self.c_in, self.h, self.w]
    }

    /// Weight shape `[C_out, C_in / groups, KH, KW]`.
    pub fn w_shape(&self) -> [usize; 4] {
        [self.c_out, self.cin_g(), self.kh, self.kw]
    }

    /// Output shape `[N, C_out, OH, OW]`.
    pub fn y_shape(&self) -> [usize; 4] {
        [self.n, self.c_out, self.oh, self.ow]
    }

    /// Input channels per group.
    pub fn cin_g(&self) -> usize {
        self.c_in / self.p.groups
    }

    /// Output channels per group (the depth multiplier of a depthwise conv).
    pub fn cout_g(&self) -> usize {
        self.c_out / self.p.groups
    }

    /// Whether each group has one input channel (depthwise, possibly with a multiplier).
    pub fn is_depthwise(&self) -> bool {
        self.p.groups > 1 && self.cin_g() == 1
    }

    /// `2 · N · C_out · OH · OW · (C_in / groups) · KH · KW`: twice the multiply-adds of the forward.
    pub fn flops(&self) -> u64 {
        let macs = [self.n, self.c_out, self.oh, self.ow, self.cin_g(), self.kh, self.kw]
            .iter()
            .fold(1u64, |a, &d| a.saturating_mul(d as u64));
        macs.saturating_mul(2)
    }
}

/// Floating-point operations of one forward pass, `2 · N · C_out · OH · OW · (C_in / groups) · KH · KW`
/// (backward-data and backward-weight cost the same); 0 when the shapes do not fit together.
pub fn flops(x_shape: [usize; 4], w_shape: [usize; 4], p: &Conv2dParams) -> u64 {
    ConvShape::new(x_shape, w_shape, p).map_or(0, |s| s.flops())
}
