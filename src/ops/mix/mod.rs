//! The mixed op of differentiable NAS and its relatives. Shader: `shaders/mix.wgsl`.
//!
//! An edge `r` of a supernet mixes K same-shape candidate outputs `x_k` with the
//! weights of row `r` of a `[R, K]` tensor:
//!
//! - [`mixed_op`]: `y = Σ_k w_k x_k`, `w = softmax(α[r, :])` (DARTS);
//!   `dx_k = w_k dy`, `g_k = ⟨dy, x_k⟩`, `dα[r, k] = w_k (g_k − Σ_j w_j g_j)`, 0 in other rows.
//! - [`weighted_sum`]: the same with given weights (GDAS one-hot samples):
//!   `dx_k = w_k dy`, `dw[r, k] = g_k`, 0 in other rows.
//! - [`softmax_rows`]: `s = softmax` of every row; `dα = s ⊙ (ds − ⟨s, ds⟩)` row-wise.
//!
//! The forward is one pass over the output for K ≤ 8 (candidates bind as separate
//! storage buffers, the softmax is recomputed in-kernel), `⌈K/8⌉` passes beyond.
//! The α gradient is two dispatches (per-workgroup partial dot products of all
//! candidates at once, then one workgroup that finishes `dα`), with no readback.

pub mod cpu;
pub mod gdas;
mod tape;
mod terms;
mod terms_tape;

pub use tape::{mixed_op, softmax_rows, weighted_sum};
pub use terms::{
    nested_weights_backward, nested_weights_forward, term_mix_backward_inputs, term_mix_backward_weights,
    term_mix_into, Term, MAX_TERMS,
};
pub use terms_tape::{nested_weights, term_mix, TermVar};

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::tensor::Tensor;

const SHADER: &str = "mix";
const WG: u64 = 256;
/// Elements per invocation of `mix_fwd` / `mix_bwd_x`.
const PER: u64 = 4;
/// Candidates bound per pass.
const GROUP: usize = 8;
/// Largest K (columns of α) the α-gradient kernel supports.
pub const MAX_K: usize = 64;
/// Elements per workgroup of the α-gradient partial pass (256 invocations × 8).
const CHUNK: usize = 2048;
/// Storage buffers one mix kernel binds (8 candidates, α, and the output or `dy`).
const STORAGE_BUFFERS: u32 = 10;

/// Parameter block of `shaders/mix.wgsl`.
///
/// | field | meaning |
/// |---|---|
/// | n | elements per candidate tensor |
/// | k | columns of α (K) |
/// | row | the edge `r` |
/// | rows | rows of α (R) |
/// | k0 | first candidate bound to `x0` / `d0` in this pass |
/// | kg | candidates bound in this pass (1..8) |
/// | flags | bit 0: softmax of α (else raw weights); bit 1: accumulate into y; bits 8..15: which `dx` to write |
/// | chunk | α-gradient partial pass: elements per workgroup; finish: number of partial rows |
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    k: u32,
    row: u32,
    rows: u32,
    k0: u32,
    kg: u32,
    flags: u32,
    chunk: u32,
}

const FLAG_SOFTMAX: u32 = 1;
const FLAG_ACCUMULATE: u32 = 2;

/// Binding positions (tensor index = binding − 1) of `shaders/mix.wgsl`.
const B_ALPHA: usize = 0;
const B_X0: usize = 1;
const B_DY: usize = 9;
const B_Y: usize = 10;
const B_D0: usize = 11;
const B_PARTIALS: usize = 19;
const B_DALPHA: usize = 20;
const N_BINDINGS: usize = 21;

/// How the row of the `[R, K]` tensor turns into mixing weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weighting {
    /// `w = softmax(α[r, :])` (DARTS mixed op).
    Softmax,
    /// `w = α[r, :]` as given (already normalised, e.g. a GDAS one-hot sample).
    Raw,
}

impl Weighting {
    fn flag(self) -> u32 {
        match self {
            Weighting::Softmax => FLAG_SOFTMAX,
            Weighting::Raw => 0,
        }
    }
}

/// The validated geometry of one edge: α is `[rows, k]`, candidates have `n` elements.
#[derive(Debug, Clone, Copy)]
struct Edge {
    rows: usize,
    k: usize,
    row: usize,
    n: usize,
}

impl Edge {
    fn params(&self, k0: usize, kg: usize, flags: u32, chunk: usize) -> Params {
        Params {
            n: self.n as u32,
            k: self.k as u32,
            row: self.row as u32,
            rows: self.rows as u32,
            k0: k0 as u32,
            kg: kg as u32,
            flags,
            chunk: chunk as u32,
        }
    }

    /// Grid of the elementwise kernels (PER elements per invocation).
    fn grid(&self, gpu: &Gpu) -> [u32; 3] {
        gpu.grid((self.n as u64).div_ceil(WG * PER))
    }
}

/// The `[R, K]` shape of α or of the weights.
fn rows_cols(op: &'static str, alpha: &Tensor) -> Result<(usize, usize)> {
    match alpha.shape() {
        [r, k] => Ok((*r, *k)),
        s => Err(Error::shape(op, format!("'{}' must be [R, K], got shape {s:?}", alpha.name()))),
    }
}

/// Checks α against the candidates and the row, and the device's binding limit.
fn check_edge(gpu: &Gpu, op: &'static str, alpha: &Tensor, row: usize, xs: &[&Tensor]) -> Result<Edge> {
    let (rows, k) = rows_cols(op, alpha)?;
    let Some(first) = xs.first() else {
        return Err(Error::invalid(op, "needs at least one candidate input"));
    };
    if xs.len() != k {
        return Err(Error::shape(
            op,
            format!("{} inputs but '{}' {:?} has {k} columns", xs.len(), alpha.name(), alpha.shape()),
        ));
    }
    if k > MAX_K {
        return Err(Error::invalid(op, format!("{k} candidates per edge, at most {MAX_K} are supported")));
    }
    if row >= rows {
        return Err(Error::shape(op, format!("row {row} is outside '{}' with {rows} rows", alpha.name())));
    }
    if let Some(x) = xs.iter().find(|x| x.shape() != first.shape()) {
        return Err(Error::shape(
            op,
            format!("candidate '{}' {:?} differs from '{}' {:?}", x.name(), x.shape(), first.name(), first.shape()),
        ));
    }
    check_binding_limit(gpu, op)?;
    let n = u32::try_from(first.numel()).map_err(|_| Error::invalid(op, "candidate tensors exceed u32 elements"))?;
    Ok(Edge { rows, k, row, n: n as usize })
}

fn check_binding_limit(gpu: &Gpu, op: &'static str) -> Result<()> {
    let have = gpu.limits().max_storage_buffers_per_shader_stage;
    if have < STORAGE_BUFFERS {
        return Err(Error::invalid(
            op,
            format!("needs {STORAGE_BUFFERS} storage buffers per shader stage, the device allows {have}"),
        ));
    }
    Ok(())
}

/// Candidate groups of at most [`GROUP`]: (first index, count).
fn groups(k: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..k).step_by(GROUP).map(move |k0| (k0, GROUP.min(k - k0)))
}

/// Binds candidates `k0..k0+kg` to `x0..x7`; slots past `kg` repeat `x0` (never read).
fn bind_candidates<'a>(b: &mut [&'a Tensor], xs: &[&'a Tensor], k0: usize, kg: usize) {
    for j in 0..GROUP {
        b[B_X0 + j] = xs[k0 + j.min(kg - 1)];
    }
}

/// Records `out (+)= Σ_k w_k x_k` for row `row` of `weights`, in place: with
/// `accumulate` the mix is added to `out` (a node accumulator), else it overwrites it.
/// `out` must have the candidates' element count and must not be one of them.
pub fn mix_into(
    gpu: &Gpu,
    weighting: Weighting,
    weights: &Tensor,
    row: usize,
    xs: &[&Tensor],
    out: &Tensor,
    accumulate: bool,
) -> Result<()> {
    let op = "mix_into";
    let e = check_edge(gpu, op, weights, row, xs)?;
    if out.numel() != e.n {
        return Err(Error::shape(
            op,
            format!("output '{}' {:?} does not match the candidates {:?}", out.name(), out.shape(), xs[0].shape()),
        ));
    }
    if xs.iter().any(|x| x.same_storage(out)) || weights.same_storage(out) {
        return Err(Error::invalid(op, format!("output '{}' aliases an input", out.name())));
    }
    for (k0, kg) in groups(e.k) {
        let acc = accumulate || k0 > 0;
        let flags = weighting.flag() | if acc { FLAG_ACCUMULATE } else { 0 };
        let mut b = vec![weights; N_BINDINGS];
        b[B_ALPHA] = weights;
        bind_candidates(&mut b, xs, k0, kg);
        b[B_Y] = out;
        gpu.dispatch(SHADER, "mix_fwd", &e.params(k0, kg, flags, 0), &b, e.grid(gpu))?;
    }
    Ok(())
}

/// `y = Σ_k softmax(α[row])_k x_k` as a new tensor of the candidates' shape.
pub fn mixed_forward(gpu: &Gpu, alpha: &Tensor, row: usize, xs: &[&Tensor]) -> Result<Tensor> {
    forward(gpu, Weighting::Softmax, alpha, row, xs)
}

/// `y = Σ_k weights[row, k] x_k` as a new tensor of the candidates' shape.
pub fn weighted_sum_forward(gpu: &Gpu, weights: &Tensor, row: usize, xs: &[&Tensor]) -> Result<Tensor> {
    forward(gpu, Weighting::Raw, weights, row, xs)
}

fn forward(gpu: &Gpu, weighting: Weighting, weights: &Tensor, row: usize, xs: &[&Tensor]) -> Result<Tensor> {
    let shape = xs.first().map(|x| x.shape().to_vec()).unwrap_or_default();
    let y = Tensor::empty(gpu, &shape, "mix out")?;
    mix_into(gpu, weighting, weights, row, xs, &y, false)?;
    Ok(y)
}

/// `dx_k = w_k dy` for every `k` with `needs[k]` (`None` elsewhere, and no work done).
/// One pass over `dy` writes all needed gradients of a group of 8 candidates.
pub fn mix_backward_inputs(
    gpu: &Gpu,
    weighting: Weighting,
    weights: &Tensor,
    row: usize,
    dy: &Tensor,
    needs: &[bool],
) -> Result<Vec<Option<Tensor>>> {
    let op = "mix_backward_inputs";
    // dy stands in for every candidate: only its shape matters here.
    let e = check_edge(gpu, op, weights, row, &vec![dy; needs.len()])?;
    let out: Vec<Option<Tensor>> = needs
        .iter()
        .map(|&need| need.then(|| Tensor::empty(gpu, dy.shape(), "mix input grad")).transpose())
        .collect::<Result<_>>()?;
    for (k0, kg) in groups(e.k) {
        let wanted: Vec<&Tensor> = out[k0..k0 + kg].iter().flatten().collect();
        let Some(&spare) = wanted.first() else {
            continue;
        };
        let mut flags = weighting.flag();
        let mut b = vec![weights; N_BINDINGS];
        b[B_DY] = dy;
        for j in 0..GROUP {
            // Slots not written repeat a written output (read_write twice is allowed).
            b[B_D0 + j] = spare;
            if let Some(Some(d)) = out.get(k0 + j).filter(|_| j < kg) {
                b[B_D0 + j] = d;
                flags |= 256 << j;
            }
        }
        gpu.dispatch(SHADER, "mix_bwd_x", &e.params(k0, kg, flags, 0), &b, e.grid(gpu))?;
    }
    Ok(out)
}

/// The full `[R, K]` gradient of the weights tensor: with `g_k = ⟨dy, x_k⟩`,
/// softmax: `dα[row, k] = w_k (g_k − Σ_j w_j g_j)`; raw: `dw[row, k] = g_k`; 0 in other rows.
pub fn mix_backward_weights(
    gpu: &Gpu,
    weighting: Weighting,
    weights: &Tensor,
    row: usize,
    xs: &[&Tensor],
    dy: &Tensor,
) -> Result<Tensor> {
    let op = "mix_backward_weights";
    let e = check_edge(gpu, op, weights, row, xs)?;
    dy.expect_shape(op, xs[0].shape())?;
    let nwg = e.n.div_ceil(CHUNK);
    let partials = Tensor::empty(gpu, &[nwg.max(1) * e.k], "mix alpha partials")?;
    for (k0, kg) in groups(e.k) {
        let mut b = vec![weights; N_BINDINGS];
        b[B_DY] = dy;
        bind_candidates(&mut b, xs, k0, kg);
        b[B_PARTIALS] = &partials;
        let p = e.params(k0, kg, 0, CHUNK);
        gpu.dispatch(SHADER, "mix_alpha_partial", &p, &b, gpu.grid(nwg as u64))?;
    }
    let dalpha = Tensor::empty(gpu, weights.shape(), "mix alpha grad")?;
    let mut b = vec![weights; N_BINDINGS];
    b[B_PARTIALS] = &partials;
    b[B_DALPHA] = &dalpha;
    let p = e.params(0, 0, weighting.flag(), nwg);
    gpu.dispatch(SHADER, "mix_alpha_finish", &p, &b, [1, 1, 1])?;
    Ok(dalpha)
}

/// Params and grid of the row-softmax kernels (one invocation per row).
fn softmax_launch(gpu: &Gpu, alpha: &Tensor) -> Result<(Params, [u32; 3])> {
    let (rows, k) = rows_cols("softmax_rows", alpha)?;
    let e = Edge { rows, k, row: 0, n: 0 };
    Ok((e.params(0, 0, 0, 0), gpu.grid((rows as u64).div_ceil(WG))))
}

/// Row-wise softmax of a `[R, K]` tensor: `s[r, k] = exp(α[r, k]) / Σ_j exp(α[r, j])`.
pub fn softmax_rows_forward(gpu: &Gpu, alpha: &Tensor) -> Result<Tensor> {
    let (p, grid) = softmax_launch(gpu, alpha)?;
    let s = Tensor::empty(gpu, alpha.shape(), "softmax rows")?;
    let mut b = vec![alpha; N_BINDINGS];
    b[B_Y] = &s;
    gpu.dispatch(SHADER, "softmax_rows_fwd", &p, &b, grid)?;
    Ok(s)
}

/// ∂L/∂α of the row softmax from its output `s` and `ds`: `s ⊙ (ds − Σ_j s_j ds_j)` row-wise.
pub fn softmax_rows_backward(gpu: &Gpu, s: &Tensor, ds: &Tensor) -> Result<Tensor> {
    let (p, grid) = softmax_launch(gpu, s)?;
    ds.expect_shape("softmax_rows_backward", s.shape())?;
    let dalpha = Tensor::empty(gpu, s.shape(), "softmax rows grad")?;
    let mut b = vec![s; N_BINDINGS];
    b[B_DY] = ds;
    b[B_DALPHA] = &dalpha;
    gpu.dispatch(SHADER, "softmax_rows_bwd", &p, &b, grid)?;
    Ok(dalpha)
}
