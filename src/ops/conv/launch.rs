//! GPU launchers of `shaders/conv.wgsl`: shape checks, then one or two recorded dispatches.
//!
//! Generic convolutions use the 4×4 register-tiled implicit GEMMs; depthwise ones (one input
//! channel per group) use the per-plane `dw_*` kernels. Weight and bias gradients reduce over
//! N·OH·OW with split-K: partial sums of `chunk` pixels each go to a `[splits, len]` buffer that
//! `sum_splits` adds up (a single split writes the result directly).

use bytemuck::Zeroable;

use super::{Conv2dParams, ConvShape};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::tensor::{numel, Tensor};

const SHADER: &str = "conv";
/// Threads of the 1-D kernels: the default of the shader's `WG` override.
const WG: usize = 64;
/// Threads per workgroup of the generic tiled kernels (`TILE_X · TILE_Y`).
const TILE_THREADS: usize = 64;
/// Threads a split-K launch aims for: enough to fill a large GPU.
const TARGET_THREADS: usize = 1 << 14;
/// Shortest reduction range worth its own partial sum.
const MIN_CHUNK: usize = 64;
/// Most floats a partial-sum buffer may hold (64 MiB).
const MAX_PARTIAL: usize = 1 << 24;

/// Parameter block of `shaders/conv.wgsl` (all `u32`).
///
/// | field | meaning |
/// |---|---|
/// | n, c_in, h, w | input shape N, C_in, H, W |
/// | c_out, oh, ow | output channels and spatial size |
/// | kh, kw | kernel size |
/// | sh, sw / ph, pw / dh, dw | stride / padding / dilation per axis |
/// | groups, cin_g, cout_g | channel groups and channels per group |
/// | has_bias | 1 when the forward adds `bias` |
/// | splits, chunk | split-K: number of partial sums and pixels per partial |
/// | len | elements per partial (`sum_splits`) |
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    c_in: u32,
    h: u32,
    w: u32,
    c_out: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    ph: u32,
    pw: u32,
    dh: u32,
    dw: u32,
    groups: u32,
    cin_g: u32,
    cout_g: u32,
    has_bias: u32,
    splits: u32,
    chunk: u32,
    len: u32,
    _pad: [u32; 2],
}

fn params(s: &ConvShape) -> Params {
    let u = |v: usize| v as u32;
    let p = &s.p;
    Params {
        n: u(s.n),
        c_in: u(s.c_in),
        h: u(s.h),
        w: u(s.w),
        c_out: u(s.c_out),
        oh: u(s.oh),
        ow: u(s.ow),
        kh: u(s.kh),
        kw: u(s.kw),
        sh: u(p.stride[0]),
        sw: u(p.stride[1]),
        ph: u(p.padding[0]),
        pw: u(p.padding[1]),
        dh: u(p.dilation[0]),
        dw: u(p.dilation[1]),
        groups: u(p.groups),
        cin_g: u(s.cin_g()),
        cout_g: u(s.cout_g()),
        has_bias: 0,
        splits: 1,
        chunk: 0,
        len: 0,
        _pad: [0; 2],
    }
}

/// The shader's binding list `x, wt, bias, dy, out, part` (bindings 1–6). The dispatcher
/// binds only what an entry point reads, so absent slots are filled with `out`.
struct Bind<'a> {
    x: Option<&'a Tensor>,
    w: Option<&'a Tensor>,
    bias: Option<&'a Tensor>,
    dy: Option<&'a Tensor>,
    part: Option<&'a Tensor>,
    out: &'a Tensor,
}

impl<'a> Bind<'a> {
    fn to(out: &'a Tensor) -> Self {
        Bind { x: None, w: None, bias: None, dy: None, part: None, out }
    }

    fn list(&self) -> [&'a Tensor; 6] {
        let o = self.out;
        [
            self.x.unwrap_or(o),
            self.w.unwrap_or(o),
            self.bias.unwrap_or(o),
            self.dy.unwrap_or(o),
            o,
            self.part.unwrap_or(o),
        ]
    }
}

/// `(TILE_X, TILE_Y)` for a group of `channels` channels: each invocation holds 4 channels, so
/// narrow groups get fewer channel threads and more pixel threads (64 in all).
fn tile_shape(channels: usize) -> (usize, usize) {
    let ty = match channels {
        0..=4 => 1,
        5..=8 => 2,
        _ => 4,
    };
    (TILE_THREADS / ty, ty)
}

/// Workgroup size of a depthwise kernel over planes of `pixels`: small planes (8×8) would
/// leave most of a 64-wide, 4-pixel-per-invocation workgroup idle.
fn plane_wg(pixels: usize) -> usize {
    pixels.div_ceil(4).next_power_of_two().clamp(16, WG)
}

/// `(splits, chunk)` for reducing `len` terms into `out_len` outputs with `threads` invocations
/// per split: enough splits to reach [`TARGET_THREADS`], chunks of at least [`MIN_CHUNK`] terms.
fn split_k(len: usize, threads: usize, out_len: usize) -> (usize, usize) {
    let want = TARGET_THREADS.div_ceil(threads.max(1));
    let splits = want.min(len.div_ceil(MIN_CHUNK)).min(MAX_PARTIAL / out_len.max(1)).max(1);
    let chunk = len.div_ceil(splits).max(1);
    (len.div_ceil(chunk).max(1), chunk)
}

fn launch(
    gpu: &Gpu,
    entry: &str,
    constants: &[(&str, f64)],
    prm: &Params,
    bind: &Bind,
    workgroups: usize,
) -> Result<()> {
    let list = bind.list();
    gpu.dispatch_with(SHADER, entry, constants, prm, &list, gpu.grid(workgroups as u64))
}

/// Records the split-K reduction of `part` (`[splits, len]`) into `out` (`[len]` elements).
fn sum_splits(gpu: &Gpu, part: &Tensor, out: &Tensor, splits: usize, len: usize) -> Result<()> {
    let mut prm = Params::zeroed();
    prm.splits = splits as u32;
    prm.len = len as u32;
    let bind = Bind { part: Some(part), ..Bind::to(out) };
    launch(gpu, "sum_splits", &[], &prm, &bind, len.div_ceil(WG))
}

/// The output tensor of a split-K reduction and the buffer its first pass writes: a
/// `[splits, len]` temporary, or the output itself when there is one split.
fn split_target(gpu: &Gpu, shape: &[usize], splits: usize, name: &str) -> Result<(Tensor, Tensor)> {
    let out = Tensor::empty(gpu, shape, name)?;
    let part =
        if splits > 1 { Tensor::empty(gpu, &[splits, numel(shape)], "conv2d split-K partials")? } else { out.clone() };
    Ok((out, part))
}

/// `y = conv(x, w) + bias` (see the module docs); x `[N, C_in, H, W]`, w `[C_out, C_in/groups, KH, KW]`,
/// bias `[C_out]`, y `[N, C_out, OH, OW]`.
pub fn conv2d_forward(gpu: &Gpu, x: &Tensor, w: &Tensor, bias: Option<&Tensor>, p: &Conv2dParams) -> Result<Tensor> {
    let s = ConvShape::new(x.dims4("conv2d")?, w.dims4("conv2d")?, p)?;
    if let Some(b) = bias {
        b.expect_shape("conv2d", &[s.c_out])?;
    }
    let y = Tensor::empty(gpu, &s.y_shape(), "conv2d out")?;
    let mut prm = params(&s);
    prm.has_bias = u32::from(bias.is_some());
    let bind = Bind {
        x: Some(x),
        w: Some(w),
        // Without a bias the slot still needs a buffer; the kernel does not read it.
        bias: Some(bias.unwrap_or(w)),
        ..Bind::to(&y)
    };
    let ohw = s.oh * s.ow;
    if s.is_depthwise() {
        let wg = plane_wg(ohw);
        let groups = s.n * s.c_out * ohw.div_ceil(4 * wg);
        launch(gpu, "dw_fwd", &[("WG", wg as f64)], &prm, &bind, groups)?;
    } else {
        let (tx, ty) = tile_shape(s.cout_g());
        let groups = s.p.groups * s.cout_g().div_ceil(4 * ty) * (s.n * ohw).div_ceil(4 * tx);
        let c = [("TILE_X", tx as f64), ("TILE_Y", ty as f64)];
        launch(gpu, "conv_fwd", &c, &prm, &bind, groups)?;
    }
    Ok(y)
}

/// `∂L/∂x` from `dy = ∂L/∂y` `[N, C_out, OH, OW]`: each input pixel gathers the output-gradient
/// taps that read it (`iy + ph − ky·dh = oy·sh`, likewise for columns), times the weights.
pub fn conv2d_backward_data(
    gpu: &Gpu,
    dy: &Tensor,
    w: &Tensor,
    x_shape: [usize; 4],
    p: &Conv2dParams,
) -> Result<Tensor> {
    let s = ConvShape::new(x_shape, w.dims4("conv2d_backward_data")?, p)?;
    dy.expect_shape("conv2d_backward_data", &s.y_shape())?;
    let dx = Tensor::empty(gpu, &x_shape, "conv2d grad x")?;
    let prm = params(&s);
    let bind = Bind { w: Some(w), dy: Some(dy), ..Bind::to(&dx) };
    let hw = s.h * s.w;
    // Strides are pipeline constants here, so the kernels' stride tests need no integer division.
    let [sh, sw] = s.p.stride.map(|v| v as f64);
    if s.is_depthwise() {
        let wg = plane_wg(hw);
        let groups = s.n * s.c_in * hw.div_ceil(4 * wg);
        let c = [("WG", wg as f64), ("STRIDE_H", sh), ("STRIDE_W", sw)];
        launch(gpu, "dw_bwd_data", &c, &prm, &bind, groups)?;
    } else {
        let (tx, ty) = tile_shape(s.cin_g());
        let groups = s.p.groups * s.cin_g().div_ceil(4 * ty) * (s.n * hw).div_ceil(4 * tx);
        let c = [("TILE_X", tx as f64), ("TILE_Y", ty as f64), ("STRIDE_H", sh), ("STRIDE_W", sw)];
        launch(gpu, "conv_bwd_data", &c, &prm, &bind, groups)?;
    }
    Ok(dx)
}

/// `∂L/∂w[co, ci, ky, kx] = Σ_{n, oy, ox} dy[n, co, oy, ox] · x[n, g(co)·Cg + ci, oy·sh − ph + ky·dh, ox·sw − pw + kx·dw]`,
/// reduced with split-K over N·OH·OW.
pub fn conv2d_backward_weight(
    gpu: &Gpu,
    dy: &Tensor,
    x: &Tensor,
    w_shape: [usize; 4],
    p: &Conv2dParams,
) -> Result<Tensor> {
    let s = ConvShape::new(x.dims4("conv2d_backward_weight")?, w_shape, p)?;
    dy.expect_shape("conv2d_backward_weight", &s.y_shape())?;
    let kk = s.kh * s.kw;
    let (entry, threads) = if s.is_depthwise() {
        ("dw_bwd_weight", s.c_out * kk.div_ceil(4))
    } else {
        let tiles = s.cout_g().div_ceil(4) * (s.cin_g() * kk).div_ceil(4);
        ("conv_bwd_weight", s.p.groups * tiles)
    };
    let wlen = numel(&w_shape);
    let (splits, chunk) = split_k(s.n * s.oh * s.ow, threads, wlen);
    let (dw, part) = split_target(gpu, &w_shape, splits, "conv2d grad w")?;
    let mut prm = params(&s);
    prm.splits = splits as u32;
    prm.chunk = chunk as u32;
    let bind = Bind { x: Some(x), dy: Some(dy), ..Bind::to(&part) };
    launch(gpu, entry, &[], &prm, &bind, threads.div_ceil(WG) * splits)?;
    if splits > 1 {
        sum_splits(gpu, &part, &dw, splits, wlen)?;
    }
    Ok(dw)
}

/// `∂L/∂b[c] = Σ_{n, y, x} dy[n, c, y, x]` for `dy` `[N, C, H, W]`, reduced with split-K.
pub fn conv2d_backward_bias(gpu: &Gpu, dy: &Tensor) -> Result<Tensor> {
    let [n, c, h, w] = dy.dims4("conv2d_backward_bias")?;
    if n * c * h * w == 0 {
        return Err(Error::shape("conv2d_backward_bias", format!("empty gradient {:?}", dy.shape())));
    }
    let (splits, chunk) = split_k(n * h * w, c, c);
    let (db, part) = split_target(gpu, &[c], splits, "conv2d grad bias")?;
    let mut prm = Params::zeroed();
    (prm.n, prm.c_out, prm.oh, prm.ow) = (n as u32, c as u32, h as u32, w as u32);
    prm.splits = splits as u32;
    prm.chunk = chunk as u32;
    let bind = Bind { dy: Some(dy), ..Bind::to(&part) };
    launch(gpu, "bias_grad", &[], &prm, &bind, (c * splits).div_ceil(WG))?;
    if splits > 1 {
        sum_splits(gpu, &part, &db, splits, c)?;
    }
    Ok(db)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_k_covers_the_range_with_bounded_partials() {
        for (len, threads, out_len) in
            [(1, 1, 1), (64, 144, 2304), (65536, 144, 2304), (4096, 2304, 36864), (1000, 16, 16)]
        {
            let (splits, chunk) = split_k(len, threads, out_len);
            assert!(splits >= 1 && chunk >= 1);
            assert!(splits * chunk >= len && (splits - 1) * chunk < len, "{len} {splits} {chunk}");
            assert!(splits * out_len <= MAX_PARTIAL.max(out_len));
        }
        assert_eq!(split_k(64, 144, 2304), (1, 64), "a short reduction is not split");
    }

    #[test]
    fn tiles_follow_group_width() {
        assert_eq!(tile_shape(1), (64, 1));
        assert_eq!(tile_shape(5), (32, 2));
        assert_eq!(tile_shape(64), (16, 4));
        assert_eq!(plane_wg(64), 16);
        assert_eq!(plane_wg(1024), 64);
    }
}
