//! Term mix: the mixed op over channel slices, written in place into a node accumulator
//! (the TopoNAS exact passes). Shader: `shaders/terms.wgsl`.
//!
//! In the exact passes all conv candidates of all out-edges of node j run as one wide
//! conv (`[N, E·C, H, W]`) plus one wide BN; each edge then mixes channel slices of those
//! wide tensors (and whole tensors: skip, the shared avg pool) straight into the
//! destination node. With terms `t = (x_t, off_t, col_t)`, `x_t` of shape `[N, Cx_t, H, W]`:
//!
//! | quantity | formula |
//! |---|---|
//! | forward | `out[N, C, H, W] (+)= Σ_t w(col_t) · x_t[:, off_t .. off_t + C]` |
//! | weights | `w = softmax(weights[row, :])` ([`Weighting::Softmax`]) or the raw row |
//! | input grad | `d_t[:, off_t .. off_t + C] (+)= w(col_t) · dy` (rest of `d_t` untouched) |
//! | dot products | `g_k = Σ_{t: col_t = k} ⟨dy, slice_t⟩` (0 for columns without a term) |
//! | weight grad | softmax: `dα[row, k] = w_k (g_k − Σ_j w_j g_j)`; raw: `dw[row, k] = g_k`; 0 in other rows |
//!
//! Columns without a term (`none`) still enter the softmax. NCHW channel slices are strided
//! (one run of `C·HW` per batch item), so out element `i = (n, r)` with `n = i / (C·HW)`
//! reads `x_t[n · Cx_t·HW + off_t·HW + r]`.
//!
//! The nested weights of partial module sharing (a candidate group `S`):
//! `w = softmax(α[r])`, `W = Σ_{m∈S} w_m`, `out[r, k] = w_k` (k ∉ S), `w_k / W` (k ∈ S),
//! `out[r, K] = W`; backward: `dw_k = d_k` (k ∉ S), `dw_k = d_k / W − Σ_{m∈S} d_m w_m / W² + d_K`
//! (k ∈ S), `dα = w ⊙ (dw − Σ_j w_j dw_j)`.

use super::{check_binding_limit, rows_cols, Weighting, MAX_K};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::tensor::Tensor;

const SHADER: &str = "terms";
const WG: u64 = 256;
/// Elements per invocation of `terms_fwd` / `terms_bwd_x`.
const PER: u64 = 4;
/// Most terms one call binds (x0..x7 or d0..d7).
pub const MAX_TERMS: usize = 8;
/// Elements per workgroup of the weight-gradient partial pass (256 invocations × 8).
const CHUNK: usize = 2048;

const FLAG_ACCUMULATE: u32 = 2;
/// `terms_bwd_x`: bit `8 + t` writes `d_t`, bit `16 + t` adds to it.
const WRITE_D: u32 = 1 << 8;
const ACCUMULATE_D: u32 = 1 << 16;

/// Binding positions (tensor index = binding − 1) of `shaders/terms.wgsl`. Position 0 is
/// the weights (α): launchers start every slot as the weights and then set the others.
const B_X0: usize = 1;
const B_DY: usize = 9;
const B_Y: usize = 10;
const B_D0: usize = 11;
const B_PARTIALS: usize = 19;
const B_DALPHA: usize = 20;
const N_BINDINGS: usize = 21;

/// Parameter block of `shaders/terms.wgsl`.
///
/// | field | meaning |
/// |---|---|
/// | n | elements of `out` / `dy` (N·C·H·W) |
/// | chw | C·H·W: elements of one batch item of `out` |
/// | k | columns of the weights (K) |
/// | row | the edge `r` |
/// | rows | rows of the weights (R) |
/// | nt | terms bound (1..8) |
/// | flags | bit 0: softmax (else raw weights); bit 1: accumulate into `out`; bits 8..15: write `d_t`; bits 16..23: accumulate into `d_t` |
/// | chunk | weight-gradient partial pass: elements per workgroup; finish: number of partial rows |
/// | mask_lo, mask_hi | nested weights: the group S as a bit mask of columns 0..31 and 32..63 |
/// | terms | per term: (Cx·H·W, off·H·W, col, 0); uniform arrays need a 16-byte stride |
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    chw: u32,
    k: u32,
    row: u32,
    rows: u32,
    nt: u32,
    flags: u32,
    chunk: u32,
    mask_lo: u32,
    mask_hi: u32,
    pad: [u32; 2],
    terms: [[u32; 4]; MAX_TERMS],
}

/// One term: the channel slice `[channel_offset, channel_offset + C)` of `x` (`[N, Cx, H, W]`),
/// weighted by column `col` of the weights row. A whole tensor is offset 0 with `Cx = C`.
#[derive(Debug, Clone, Copy)]
pub struct Term<'a> {
    /// The tensor the slice is taken from, `[N, Cx, H, W]`.
    pub x: &'a Tensor,
    /// First channel of the slice.
    pub channel_offset: usize,
    /// Column of the weights row that weighs this term.
    pub col: usize,
}

impl<'a> Term<'a> {
    /// The whole tensor `x` weighted by column `col`.
    pub fn whole(x: &'a Tensor, col: usize) -> Term<'a> {
        Term { x, channel_offset: 0, col }
    }
}

/// The validated geometry of one call: weights `[rows, k]`, `out` of `n` elements.
#[derive(Clone, Copy)]
struct Geometry {
    rows: usize,
    k: usize,
    row: usize,
    n: usize,
    chw: usize,
    nt: usize,
    terms: [[u32; 4]; MAX_TERMS],
}

impl Geometry {
    fn params(&self, flags: u32, chunk: usize) -> Params {
        Params {
            n: self.n as u32,
            chw: self.chw as u32,
            k: self.k as u32,
            row: self.row as u32,
            rows: self.rows as u32,
            nt: self.nt as u32,
            flags,
            chunk: chunk as u32,
            mask_lo: 0,
            mask_hi: 0,
            pad: [0; 2],
            terms: self.terms,
        }
    }

    /// Grid of the elementwise kernels (PER elements per invocation).
    fn grid(&self, gpu: &Gpu) -> [u32; 3] {
        gpu.grid((self.n as u64).div_ceil(WG * PER))
    }
}

/// `n` as u32, or an error saying what is too large.
fn to_u32(op: &'static str, n: usize, what: &str) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::invalid(op, format!("{what} exceeds u32 elements")))
}

/// Checks the weights, the row and every term's slice against `out` (`[N, C, H, W]`).
fn check_terms(
    gpu: &Gpu,
    op: &'static str,
    weights: &Tensor,
    row: usize,
    terms: &[Term],
    out: &Tensor,
) -> Result<Geometry> {
    let (rows, k) = rows_cols(op, weights)?;
    if k == 0 || k > MAX_K {
        return Err(Error::invalid(op, format!("'{}' has {k} columns, 1..={MAX_K} are supported", weights.name())));
    }
    if row >= rows {
        return Err(Error::shape(op, format!("row {row} is outside '{}' with {rows} rows", weights.name())));
    }
    if terms.is_empty() {
        return Err(Error::invalid(op, "needs at least one term"));
    }
    if terms.len() > MAX_TERMS {
        return Err(Error::invalid(op, format!("{} terms, at most {MAX_TERMS} per call", terms.len())));
    }
    let [n, c, h, w] = out.dims4(op)?;
    let hw = h * w;
    let mut packed = [[0u32; 4]; MAX_TERMS];
    for (t, (term, slot)) in terms.iter().zip(&mut packed).enumerate() {
        let [xn, cx, xh, xw] = term.x.dims4(op)?;
        let off = term.channel_offset;
        if (xn, xh, xw) != (n, h, w) || off + c > cx {
            return Err(Error::shape(
                op,
                format!(
                    "term {t}: channels [{off}, {}) of '{}' {:?} do not give '{}' {:?}",
                    off + c,
                    term.x.name(),
                    term.x.shape(),
                    out.name(),
                    out.shape()
                ),
            ));
        }
        if term.col >= k {
            return Err(Error::shape(op, format!("term {t}: column {} is outside the {k} columns", term.col)));
        }
        to_u32(op, term.x.numel(), &format!("term tensor '{}'", term.x.name()))?;
        *slot = [(cx * hw) as u32, (off * hw) as u32, term.col as u32, 0];
    }
    check_binding_limit(gpu, op)?;
    let n_out = to_u32(op, out.numel(), &format!("'{}'", out.name()))? as usize;
    Ok(Geometry { rows, k, row, n: n_out, chw: c * hw, nt: terms.len(), terms: packed })
}

/// Binds the terms' tensors to `x0..x7`; slots past the last term repeat it (never read).
fn bind_terms<'a>(b: &mut [&'a Tensor], terms: &[Term<'a>]) {
    for j in 0..MAX_TERMS {
        b[B_X0 + j] = terms[j.min(terms.len() - 1)].x;
    }
}

/// Records `out (+)= Σ_t w(col_t) · slice_t(x_t)` with `w = softmax(weights[row])` or the raw
/// row: with `accumulate` the mix is added to `out` (a node accumulator), else it overwrites it.
/// One dispatch; at most 8 terms; `out` must not share storage with any `x_t` or the weights.
pub fn term_mix_into(
    gpu: &Gpu,
    weighting: Weighting,
    weights: &Tensor,
    row: usize,
    terms: &[Term],
    out: &Tensor,
    accumulate: bool,
) -> Result<()> {
    let op = "term_mix_into";
    let g = check_terms(gpu, op, weights, row, terms, out)?;
    if terms.iter().any(|t| t.x.same_storage(out)) || weights.same_storage(out) {
        return Err(Error::invalid(op, format!("output '{}' aliases an input", out.name())));
    }
    let flags = weighting.flag() | if accumulate { FLAG_ACCUMULATE } else { 0 };
    let mut b = vec![weights; N_BINDINGS];
    bind_terms(&mut b, terms);
    b[B_Y] = out;
    gpu.dispatch(SHADER, "terms_fwd", &g.params(flags, 0), &b, g.grid(gpu))
}

/// For each `t` with `dst[t] = Some(d)` (`d` of `x_t`'s shape): `slice_t(d) (+)= w(col_t) · dy`;
/// the other elements of `d` are left untouched. One pass over `dy` writes every destination
/// (two slices of one wide buffer included); overlapping slices of one buffer take one pass each.
#[allow(clippy::too_many_arguments)]
pub fn term_mix_backward_inputs(
    gpu: &Gpu,
    weighting: Weighting,
    weights: &Tensor,
    row: usize,
    terms: &[Term],
    dy: &Tensor,
    dst: &[Option<&Tensor>],
    accumulate: bool,
) -> Result<()> {
    let op = "term_mix_backward_inputs";
    if dst.len() != terms.len() {
        return Err(Error::invalid(op, format!("{} destinations for {} terms", dst.len(), terms.len())));
    }
    let mut writes = Vec::with_capacity(terms.len());
    for (t, (term, d)) in terms.iter().zip(dst).enumerate() {
        let Some(d) = d else { continue };
        if d.shape() != term.x.shape() {
            return Err(Error::shape(
                op,
                format!("destination {t} '{}' {:?} differs from its term {:?}", d.name(), d.shape(), term.x.shape()),
            ));
        }
        writes.push((Term { x: d, ..*term }, accumulate));
    }
    scatter_input_grads(gpu, weighting, weights, row, &writes, dy)
}

/// Whether two slice writes may touch the same element (then they take separate passes).
fn overlaps(a: &Term, b: &Term, c: usize) -> bool {
    let disjoint = a.channel_offset + c <= b.channel_offset || b.channel_offset + c <= a.channel_offset;
    a.x.same_storage(b.x) && !(a.x.shape() == b.x.shape() && disjoint)
}

/// Writes `slice(d) (+)= w(col) · dy` for each `(Term { x: d, .. }, accumulate)`, in order:
/// a write goes one pass after every earlier write it overlaps, so an overwrite listed
/// first is seen by the accumulations that follow it.
pub(super) fn scatter_input_grads(
    gpu: &Gpu,
    weighting: Weighting,
    weights: &Tensor,
    row: usize,
    writes: &[(Term, bool)],
    dy: &Tensor,
) -> Result<()> {
    let op = "term_mix_backward_inputs";
    let terms: Vec<Term> = writes.iter().map(|(t, _)| *t).collect();
    if terms.is_empty() {
        return Ok(());
    }
    check_terms(gpu, op, weights, row, &terms, dy)?;
    if terms.iter().any(|t| t.x.same_storage(dy) || t.x.same_storage(weights)) {
        return Err(Error::invalid(op, "a gradient destination aliases dy or the weights"));
    }
    let c = dy.shape()[1]; // dy is [N, C, H, W]: check_terms has checked it
    let mut pass = vec![0usize; terms.len()];
    for t in 0..terms.len() {
        pass[t] = (0..t).filter(|&u| overlaps(&terms[u], &terms[t], c)).map(|u| pass[u] + 1).max().unwrap_or(0);
    }
    for p in 0..=pass.iter().copied().max().unwrap_or(0) {
        let ids: Vec<usize> = (0..terms.len()).filter(|&t| pass[t] == p).collect();
        let wave: Vec<(Term, bool)> = ids.iter().map(|&t| writes[t]).collect();
        dispatch_bwd_x(gpu, weighting, weights, row, &wave, dy)?;
    }
    Ok(())
}

/// One `terms_bwd_x` pass over `dy` writing up to 8 non-overlapping slices.
fn dispatch_bwd_x(
    gpu: &Gpu,
    weighting: Weighting,
    weights: &Tensor,
    row: usize,
    wave: &[(Term, bool)],
    dy: &Tensor,
) -> Result<()> {
    let terms: Vec<Term> = wave.iter().map(|(t, _)| *t).collect();
    let g = check_terms(gpu, "term_mix_backward_inputs", weights, row, &terms, dy)?;
    let mut flags = weighting.flag();
    let mut b = vec![weights; N_BINDINGS];
    b[B_DY] = dy;
    for j in 0..MAX_TERMS {
        // Slots past the last term repeat a written buffer (two writable bindings are allowed).
        b[B_D0 + j] = terms[j.min(terms.len() - 1)].x;
    }
    for (j, (_, acc)) in wave.iter().enumerate() {
        flags |= WRITE_D << j;
        if *acc {
            flags |= ACCUMULATE_D << j;
        }
    }
    gpu.dispatch(SHADER, "terms_bwd_x", &g.params(flags, 0), &b, g.grid(gpu))
}

/// The full `[R, K]` gradient of the weights tensor (0 outside `row`): with
/// `g_k = Σ_{t: col_t = k} ⟨dy, slice_t⟩` (0 for columns without a term),
/// softmax: `dα[row, k] = w_k (g_k − Σ_j w_j g_j)` over all K columns; raw: `dw[row, k] = g_k`.
/// Two dispatches: per-workgroup dot products of `dy` with every slice, then one workgroup.
pub fn term_mix_backward_weights(
    gpu: &Gpu,
    weighting: Weighting,
    weights: &Tensor,
    row: usize,
    terms: &[Term],
    dy: &Tensor,
) -> Result<Tensor> {
    let g = check_terms(gpu, "term_mix_backward_weights", weights, row, terms, dy)?;
    let nwg = g.n.div_ceil(CHUNK);
    let partials = Tensor::empty(gpu, &[nwg.max(1) * MAX_TERMS], "term mix weight partials")?;
    let mut b = vec![weights; N_BINDINGS];
    b[B_DY] = dy;
    bind_terms(&mut b, terms);
    b[B_PARTIALS] = &partials;
    gpu.dispatch(SHADER, "terms_alpha_partial", &g.params(0, CHUNK), &b, gpu.grid(nwg as u64))?;
    let dw = Tensor::empty(gpu, weights.shape(), "term mix weight grad")?;
    let mut b = vec![weights; N_BINDINGS];
    b[B_PARTIALS] = &partials;
    b[B_DALPHA] = &dw;
    gpu.dispatch(SHADER, "terms_alpha_finish", &g.params(weighting.flag(), nwg), &b, [1, 1, 1])?;
    Ok(dw)
}

/// Params and grid of the nested-weight kernels (one invocation per row) for group `S`.
fn nested_launch(gpu: &Gpu, op: &'static str, alpha: &Tensor, group: &[usize]) -> Result<(Params, [u32; 3])> {
    let (rows, k) = rows_cols(op, alpha)?;
    if k == 0 || k > MAX_K {
        return Err(Error::invalid(op, format!("'{}' has {k} columns, 1..={MAX_K} are supported", alpha.name())));
    }
    if group.is_empty() || group.windows(2).any(|p| p[0] >= p[1]) || group.iter().any(|&m| m >= k) {
        return Err(Error::invalid(op, format!("group {group:?} must be sorted distinct columns < {k}, non-empty")));
    }
    let mask = group.iter().fold(0u64, |m, &j| m | (1u64 << j));
    let g = Geometry { rows, k, row: 0, n: 0, chw: 0, nt: 0, terms: [[0; 4]; MAX_TERMS] };
    let p = Params { mask_lo: mask as u32, mask_hi: (mask >> 32) as u32, ..g.params(0, 0) };
    Ok((p, gpu.grid((rows as u64).div_ceil(WG))))
}

/// Nested softmax weights of a candidate group `S` (sorted distinct columns, non-empty,
/// all < K), as `[R, K + 1]`: `w = softmax(α[r])`, `out[r, k] = w_k` (k ∉ S),
/// `w_k / W` (k ∈ S), `out[r, K] = W = Σ_{m∈S} w_m`.
pub fn nested_weights_forward(gpu: &Gpu, alpha: &Tensor, group: &[usize]) -> Result<Tensor> {
    let (p, grid) = nested_launch(gpu, "nested_weights_forward", alpha, group)?;
    let out = Tensor::empty(gpu, &[p.rows as usize, p.k as usize + 1], "nested weights")?;
    let mut b = vec![alpha; N_BINDINGS];
    b[B_Y] = &out;
    gpu.dispatch(SHADER, "nested_fwd", &p, &b, grid)?;
    Ok(out)
}

/// `dα` `[R, K]` from `d = ∂L/∂out` `[R, K + 1]` of [`nested_weights_forward`]:
/// `dw_k = d_k` (k ∉ S); `dw_k = d_k / W − Σ_{m∈S} d_m w_m / W² + d_K` (k ∈ S);
/// `dα = w ⊙ (dw − Σ_j w_j dw_j)`.
pub fn nested_weights_backward(gpu: &Gpu, alpha: &Tensor, group: &[usize], d: &Tensor) -> Result<Tensor> {
    let op = "nested_weights_backward";
    let (p, grid) = nested_launch(gpu, op, alpha, group)?;
    d.expect_shape(op, &[p.rows as usize, p.k as usize + 1])?;
    let dalpha = Tensor::empty(gpu, alpha.shape(), "nested weights grad")?;
    let mut b = vec![alpha; N_BINDINGS];
    b[B_DY] = d;
    b[B_DALPHA] = &dalpha;
    gpu.dispatch(SHADER, "nested_bwd", &p, &b, grid)?;
    Ok(dalpha)
}
