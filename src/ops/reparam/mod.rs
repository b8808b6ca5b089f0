//! TopoNAS re-parameterization ops (DESIGN.md §4, passes 5 and 6). Shader: `shaders/reparam.wgsl`.
//!
//! - [`kernel_norm`]: `K̂[o] = g_o · K[o] / n_o` with `n_o = sqrt(‖K[o]‖² + ε)` per output filter o
//!   (the norm runs over in-channels × kh × kw; ε = [`KNORM_EPS`] keeps an all-zero filter finite).
//!   With `u = K[o]/n_o` (so `K̂/g = u`), `∂u/∂K = (I − u uᵀ)/n`, hence
//!   `dK = (g/n)(dK̂ − u⟨u, dK̂⟩) = (g/n)(dK̂ − (K̂/g)⟨K̂/g, dK̂⟩)` and `dg = ⟨K/n, dK̂⟩`.
//! - [`merge_kernels`]: `K = Σ_m w̃_m · pad_k(K̂_m)` with the s×s candidates zero-padded to the
//!   centre of k×k; `dK̂_m = w̃_m · crop(dK)`, `dw̃_m = ⟨dK, pad(K̂_m)⟩`. The merged conv is then an
//!   ordinary [`crate::ops::conv::conv2d`] with K (padding (k − 1)/2).
//! - [`skip_avgpool`]: `y = a·x + b·avgpool3x3(x)` (stride 1, padding 1, `count_include_pad = false`)
//!   as one depthwise 3×3 whose tap weight at pixel p is `b / count(p)` on in-image taps plus `a` at
//!   the centre. `dx = a·dy + b·Σ_{q ∈ window(p)} dy[q]/count(q)`, `da = ⟨x, dy⟩`, `db = ⟨avgpool(x), dy⟩`.
//!
//! The mixing weights w̃ (and a, b) are entries `weights[row, col]` of a `[R, K]` tensor (a `[M]`
//! tensor counts as one row), read on the GPU; their gradient is a full tensor of `weights`' shape,
//! zero outside the used entries.

pub mod cpu;
mod tape;

pub use tape::{kernel_norm, merge_kernels, skip_avgpool, skip_avgpool_acc};

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::tensor::Tensor;

const SHADER: &str = "reparam";
const WG: u64 = 256;
/// Elements per workgroup of the skip/avg-pool weight-gradient partial pass.
const CHUNK: usize = 4096;
/// ε added to ‖K[o]‖² under the square root of the kernel normalization.
pub const KNORM_EPS: f32 = 1e-12;

/// Parameter block of `shaders/reparam.wgsl`.
///
/// | field | meaning |
/// |---|---|
/// | n | threads with work (elements), or filters for the per-filter kernels |
/// | f | knorm: elements per filter; merge: target size k; dwmerge: H |
/// | s | merge: candidate size s; dwmerge: W |
/// | ia | flat index into the weights of w̃_m (merge) or a (dwmerge) |
/// | ib | dwmerge: flat index of b |
/// | flags | knorm: bit 0 gain given; merge: bit 0 accumulate; dwmerge: bit 0 has a, bit 1 has b |
/// | eps | knorm: ε under the square root |
/// | chunk | dwmerge weight partials: elements per workgroup; finish: number of partials |
#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    f: u32,
    s: u32,
    ia: u32,
    ib: u32,
    flags: u32,
    eps: f32,
    chunk: u32,
}

fn u32_of(op: &'static str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::invalid(op, format!("{v} exceeds the u32 range of the kernels")))
}

fn elementwise_grid(gpu: &Gpu, n: usize) -> [u32; 3] {
    gpu.grid((n as u64).div_ceil(WG))
}

/// Flat index of `weights[row, col]`; a 1-D `[M]` weights tensor is one row.
fn weight_index(op: &'static str, weights: &Tensor, row: usize, col: usize) -> Result<u32> {
    let (rows, cols) = match weights.shape() {
        [m] => (1, *m),
        [r, k] => (*r, *k),
        s => return Err(Error::shape(op, format!("weights '{}' must be [R, K] or [M], got {s:?}", weights.name()))),
    };
    if row >= rows || col >= cols {
        return Err(Error::shape(
            op,
            format!("weight ({row}, {col}) is outside '{}' {:?}", weights.name(), weights.shape()),
        ));
    }
    u32_of(op, row * cols + col)
}

// ------------------------------------------------------------------ kernel normalization

/// (filters O, elements per filter) of a kernel `[O, ...]`, after checking the gain is `[O]`.
fn knorm_geometry(op: &'static str, k: &Tensor, gain: Option<&Tensor>) -> Result<(usize, usize)> {
    let o = match k.shape() {
        [o, ..] if *o > 0 && k.numel() > 0 => *o,
        s => return Err(Error::shape(op, format!("kernel '{}' must be [O, ...] and non-empty, got {s:?}", k.name()))),
    };
    if let Some(g) = gain {
        g.expect_shape(op, &[o])?;
    }
    u32_of(op, k.numel())?;
    Ok((o, k.numel() / o))
}

fn knorm_launch(gpu: &Gpu, entry: &str, geo: (usize, usize), gain: bool, tensors: &[&Tensor]) -> Result<()> {
    let p = Params { n: geo.0 as u32, f: geo.1 as u32, flags: gain as u32, eps: KNORM_EPS, ..Params::default() };
    gpu.dispatch(SHADER, entry, &p, tensors, gpu.grid(geo.0 as u64))
}

/// `K̂[o] = g_o · K[o] / sqrt(‖K[o]‖² + ε)` as a new tensor of K's shape (`g = 1` without a gain).
pub fn kernel_norm_forward(gpu: &Gpu, k: &Tensor, gain: Option<&Tensor>) -> Result<Tensor> {
    let geo = knorm_geometry("kernel_norm", k, gain)?;
    let y = Tensor::empty(gpu, k.shape(), "kernel_norm out")?;
    knorm_launch(gpu, "knorm_fwd", geo, gain.is_some(), &[k, k, gain.unwrap_or(k), &y])?;
    Ok(y)
}

/// `dK = (g/n)(dK̂ − K·⟨K, dK̂⟩/n²)` per filter, `n = sqrt(‖K‖² + ε)`.
pub fn kernel_norm_backward_kernel(gpu: &Gpu, k: &Tensor, gain: Option<&Tensor>, dy: &Tensor) -> Result<Tensor> {
    let op = "kernel_norm_backward";
    let geo = knorm_geometry(op, k, gain)?;
    dy.expect_shape(op, k.shape())?;
    let dk = Tensor::empty(gpu, k.shape(), "kernel_norm kernel grad")?;
    knorm_launch(gpu, "knorm_bwd_k", geo, gain.is_some(), &[k, dy, gain.unwrap_or(k), &dk])?;
    Ok(dk)
}

/// `dg_o = ⟨K[o]/n_o, dK̂[o]⟩` as an `[O]` tensor.
pub fn kernel_norm_backward_gain(gpu: &Gpu, k: &Tensor, dy: &Tensor) -> Result<Tensor> {
    let op = "kernel_norm_backward";
    let geo = knorm_geometry(op, k, None)?;
    dy.expect_shape(op, k.shape())?;
    let dg = Tensor::empty(gpu, &[geo.0], "kernel_norm gain grad")?;
    knorm_launch(gpu, "knorm_bwd_g", geo, false, &[k, dy, k, &dg])?;
    Ok(dg)
}

// ------------------------------------------------------------------ merged conv kernel

/// The checked geometry of a kernel merge: `planes = O·I`, target size `k`, candidate sizes.
#[derive(Debug, Clone)]
struct Merge {
    o: usize,
    i: usize,
    k: usize,
    sizes: Vec<usize>,
    idx: Vec<u32>,
}

impl Merge {
    fn planes(&self) -> usize {
        self.o * self.i
    }

    fn params(&self, m: usize, n: usize, flags: u32) -> Params {
        Params { n: n as u32, f: self.k as u32, s: self.sizes[m] as u32, ia: self.idx[m], flags, ..Params::default() }
    }
}

/// Checks the candidates (`[O, I, s, s]`, one O and I, s ≤ k with k − s even) and the weights.
fn check_merge(
    op: &'static str,
    weights: &Tensor,
    row: usize,
    cols: &[usize],
    shapes: &[&[usize]],
    k: usize,
) -> Result<Merge> {
    let Some(first) = shapes.first() else {
        return Err(Error::invalid(op, "needs at least one candidate kernel"));
    };
    if cols.len() != shapes.len() {
        return Err(Error::shape(op, format!("{} weight columns for {} kernels", cols.len(), shapes.len())));
    }
    let (o, i) = match first {
        [o, i, _, _] => (*o, *i),
        s => return Err(Error::shape(op, format!("kernels must be [O, I, s, s], got {s:?}"))),
    };
    let mut sizes = Vec::with_capacity(shapes.len());
    for s in shapes {
        match s {
            [so, si, h, w] if *so == o && *si == i && h == w && *h <= k && (k - h).is_multiple_of(2) && *h > 0 => {
                sizes.push(*h)
            }
            _ => {
                return Err(Error::shape(
                    op,
                    format!("kernel {s:?} is not [{o}, {i}, s, s] with s ≤ {k} and {k} − s even"),
                ))
            }
        }
    }
    u32_of(op, o * i * k * k)?;
    let idx = cols.iter().map(|&c| weight_index(op, weights, row, c)).collect::<Result<_>>()?;
    Ok(Merge { o, i, k, sizes, idx })
}

/// `K = Σ_m weights[row, cols[m]] · pad_k(kernels[m])` as a new `[O, I, k, k]` tensor.
pub fn merge_kernels_forward(
    gpu: &Gpu,
    weights: &Tensor,
    row: usize,
    cols: &[usize],
    kernels: &[&Tensor],
    k: usize,
) -> Result<Tensor> {
    let shapes: Vec<&[usize]> = kernels.iter().map(|t| t.shape()).collect();
    let g = check_merge("merge_kernels", weights, row, cols, &shapes, k)?;
    let out = Tensor::empty(gpu, &[g.o, g.i, k, k], "merged kernel")?;
    let n = g.planes() * k * k;
    // One pass per candidate: the first overwrites (covering every element), the rest accumulate.
    for (m, cand) in kernels.iter().enumerate() {
        let p = g.params(m, n, (m > 0) as u32);
        gpu.dispatch(SHADER, "merge_fwd", &p, &[cand, cand, weights, &out], elementwise_grid(gpu, n))?;
    }
    Ok(out)
}

/// `dK̂_m = weights[row, cols[m]] · crop_{s_m}(dK)` for each m with `needs[m]`, `None` elsewhere.
/// `shapes[m]` is the shape of candidate m.
pub fn merge_kernels_backward_kernels(
    gpu: &Gpu,
    weights: &Tensor,
    row: usize,
    cols: &[usize],
    shapes: &[&[usize]],
    dk: &Tensor,
    needs: &[bool],
) -> Result<Vec<Option<Tensor>>> {
    let op = "merge_kernels_backward";
    let k = dk.shape().last().copied().unwrap_or(0);
    let g = check_merge(op, weights, row, cols, shapes, k)?;
    dk.expect_shape(op, &[g.o, g.i, k, k])?;
    let mut out = Vec::with_capacity(shapes.len());
    for (m, shape) in shapes.iter().enumerate() {
        if !needs.get(m).copied().unwrap_or(false) {
            out.push(None);
            continue;
        }
        let d = Tensor::empty(gpu, shape, "merged candidate grad")?;
        let n = d.numel();
        gpu.dispatch(SHADER, "merge_bwd_kernel", &g.params(m, n, 0), &[dk, dk, weights, &d], elementwise_grid(gpu, n))?;
        out.push(Some(d));
    }
    Ok(out)
}

/// The gradient of the weights tensor: `dw[row, cols[m]] += ⟨dK, pad(kernels[m])⟩`, 0 elsewhere.
pub fn merge_kernels_backward_weights(
    gpu: &Gpu,
    weights: &Tensor,
    row: usize,
    cols: &[usize],
    kernels: &[&Tensor],
    dk: &Tensor,
) -> Result<Tensor> {
    let op = "merge_kernels_backward";
    let shapes: Vec<&[usize]> = kernels.iter().map(|t| t.shape()).collect();
    let k = dk.shape().last().copied().unwrap_or(0);
    let g = check_merge(op, weights, row, cols, &shapes, k)?;
    dk.expect_shape(op, &[g.o, g.i, k, k])?;
    let dw = Tensor::zeros(gpu, weights.shape(), "merge weights grad")?;
    // One workgroup per candidate; the dispatches run in order, so repeated columns accumulate.
    for (m, cand) in kernels.iter().enumerate() {
        let p = g.params(m, cand.numel(), 0);
        gpu.dispatch(SHADER, "merge_bwd_w", &p, &[cand, dk, weights, &dw], [1, 1, 1])?;
    }
    Ok(dw)
}

// ------------------------------------------------------------------ skip + avg pool

/// Where the skip weight a and the pool weight b sit in a weights tensor (`None`: weight 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkipPool {
    /// Row of the weights tensor.
    pub row: usize,
    /// Column of a (skip), if the edge has a skip candidate.
    pub col_skip: Option<usize>,
    /// Column of b (3×3 average pool), if the edge has one.
    pub col_pool: Option<usize>,
}

impl SkipPool {
    /// Params for an `[N, C, H, W]` input, after checking the shapes and columns.
    fn params(&self, op: &'static str, weights: &Tensor, x_shape: &[usize]) -> Result<Params> {
        let [_, _, h, w] = match x_shape {
            [n, c, h, w] if n * c * h * w > 0 => [*n, *c, *h, *w],
            s => return Err(Error::shape(op, format!("x must be a non-empty [N, C, H, W], got {s:?}"))),
        };
        let ia = self.col_skip.map(|c| weight_index(op, weights, self.row, c)).transpose()?;
        let ib = self.col_pool.map(|c| weight_index(op, weights, self.row, c)).transpose()?;
        let flags = ia.is_some() as u32 | (ib.is_some() as u32) << 1;
        let n = u32_of(op, x_shape.iter().product())?;
        Ok(Params {
            n,
            f: h as u32,
            s: w as u32,
            ia: ia.unwrap_or(0),
            ib: ib.unwrap_or(0),
            flags,
            eps: 0.0,
            chunk: CHUNK as u32,
        })
    }
}

/// `y = a·x + b·avgpool3x3(x)` (count_include_pad = false) as a new tensor of x's shape.
pub fn skip_avgpool_forward(gpu: &Gpu, weights: &Tensor, sp: &SkipPool, x: &Tensor) -> Result<Tensor> {
    let y = Tensor::empty(gpu, x.shape(), "skip_avgpool out")?;
    skip_avgpool_into(gpu, weights, sp, x, &y, false)?;
    Ok(y)
}

/// `out (+)= a·x + b·avgpool3x3(x)` in place: with `accumulate` the result is added to
/// `out` (a node accumulator), else it overwrites it. `out` has x's shape and is not x.
pub fn skip_avgpool_into(
    gpu: &Gpu,
    weights: &Tensor,
    sp: &SkipPool,
    x: &Tensor,
    out: &Tensor,
    accumulate: bool,
) -> Result<()> {
    const OP: &str = "skip_avgpool";
    let mut p = sp.params(OP, weights, x.shape())?;
    out.expect_shape(OP, x.shape())?;
    if out.same_storage(x) || out.same_storage(weights) {
        return Err(Error::invalid(OP, format!("output '{}' aliases an input", out.name())));
    }
    if accumulate {
        p.flags |= 4;
    }
    gpu.dispatch(SHADER, "dwmerge_fwd", &p, &[x, x, weights, out], elementwise_grid(gpu, x.numel()))
}

/// `dx = a·dy + b·Σ_{q ∈ window(p)} dy[q] / count(q)`.
pub fn skip_avgpool_backward_x(gpu: &Gpu, weights: &Tensor, sp: &SkipPool, dy: &Tensor) -> Result<Tensor> {
    let p = sp.params("skip_avgpool_backward", weights, dy.shape())?;
    let dx = Tensor::empty(gpu, dy.shape(), "skip_avgpool x grad")?;
    gpu.dispatch(SHADER, "dwmerge_bwd_x", &p, &[dy, dy, weights, &dx], elementwise_grid(gpu, dy.numel()))?;
    Ok(dx)
}

/// The gradient of the weights tensor: `da = ⟨x, dy⟩` at (row, col_skip), `db = ⟨avgpool(x), dy⟩`
/// at (row, col_pool), 0 elsewhere. Two passes: per-workgroup partial sums, then one workgroup.
pub fn skip_avgpool_backward_weights(
    gpu: &Gpu,
    weights: &Tensor,
    sp: &SkipPool,
    x: &Tensor,
    dy: &Tensor,
) -> Result<Tensor> {
    let op = "skip_avgpool_backward";
    let mut p = sp.params(op, weights, x.shape())?;
    dy.expect_shape(op, x.shape())?;
    let nwg = x.numel().div_ceil(CHUNK);
    let partials = Tensor::empty(gpu, &[2 * nwg], "skip_avgpool partials")?;
    let dw = Tensor::zeros(gpu, weights.shape(), "skip_avgpool weights grad")?;
    gpu.dispatch(SHADER, "dwmerge_bwd_w_partial", &p, &[x, dy, weights, &partials], gpu.grid(nwg as u64))?;
    p.chunk = nwg as u32;
    gpu.dispatch(SHADER, "dwmerge_bwd_w_finish", &p, &[x, dy, weights, &partials, &dw], [1, 1, 1])?;
    Ok(dw)
}
