//! The GDAS edge op: one sampled candidate runs, and the straight-through weights of
//! all K candidates still enter the output, exactly as xautodl's `forward_gdas` does:
//!
//! `y = hardwts[e, idx] · x_sel + Σ_{k≠idx} hardwts[e, k]`
//!
//! The terms `k ≠ idx` are scalars (of value 0 for a one-hot sample) broadcast over the
//! tensor; they are what carries the gradient to the other columns of `hardwts`:
//!
//! | gradient | formula |
//! |---|---|
//! | `dx_sel` | `hardwts[e, idx] · dy` |
//! | `dhardwts[e, idx]` | `⟨dy, x_sel⟩` (0 when the sampled op is `none`) |
//! | `dhardwts[e, k≠idx]` | `Σ dy` |
//! | other rows | 0 |
//!
//! # Why no new kernel
//! The formula is a weighted sum `Σ_k hardwts[e, k] · c_k` with the candidates
//! `c_idx = x_sel` and `c_k = 1` (a ones tensor) for `k ≠ idx`, and its gradients are
//! the weighted sum's: `dc_k = w_k dy`, `dw[e, k] = ⟨dy, c_k⟩` gives `⟨dy, x_sel⟩` and
//! `⟨dy, 1⟩ = Σ dy`. So the op runs on the mix kernels (`shaders/mix.wgsl`): one
//! forward pass, one `dx` pass, and the two-pass α gradient that forms all K dot
//! products (`Σ dy` included) at once. The ones tensor is bound K − 1 times, so on a
//! real GPU its repeated reads hit the cache. When the sampled op is `none` its output
//! is a zeros tensor: nothing runs for the op itself.
//!
//! CPU references: [`cpu`].

use super::{mix_backward_inputs, mix_backward_weights, mix_into, Weighting};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::ops::eltwise;
use crate::tensor::tape::{Backward, Tape, Var};
use crate::tensor::Tensor;

const OP: &str = "gdas_edge";

/// The constant candidates of the GDAS edges of one feature shape: a ones tensor (the
/// broadcast of the scalar terms) and a zeros tensor (the output of a sampled `none`).
/// Build one per shape and share it across the edges of a forward pass.
#[derive(Debug, Clone)]
pub struct GdasConstants {
    ones: Tensor,
    zeros: Tensor,
}

impl GdasConstants {
    /// Ones and zeros of `shape` (one fill dispatch and one buffer clear).
    pub fn new(gpu: &Gpu, shape: &[usize]) -> Result<GdasConstants> {
        let ones = Tensor::empty(gpu, shape, "gdas ones")?;
        eltwise::fill(gpu, &ones, 1.0)?;
        Ok(GdasConstants { ones, zeros: Tensor::zeros(gpu, shape, "gdas zeros")? })
    }

    /// The feature shape these constants serve.
    pub fn shape(&self) -> &[usize] {
        self.ones.shape()
    }
}

/// `[E, K]` of the hardwts tensor, with `edge` and `idx` checked against it.
fn check_indices(hardwts: &Tensor, edge: usize, idx: usize) -> Result<(usize, usize)> {
    let [e, k] = hardwts.shape() else {
        return Err(Error::shape(OP, format!("'{}' must be [E, K], got {:?}", hardwts.name(), hardwts.shape())));
    };
    if edge >= *e || idx >= *k {
        return Err(Error::shape(
            OP,
            format!("edge {edge}, op {idx} outside '{}' of shape {:?}", hardwts.name(), hardwts.shape()),
        ));
    }
    Ok((*e, *k))
}

/// The weighted-sum candidates: `x_sel` (or zeros) at `idx`, ones elsewhere.
fn candidates(k: usize, idx: usize, x_sel: Option<&Tensor>, c: &GdasConstants) -> Vec<Tensor> {
    (0..k).map(|j| if j == idx { x_sel.unwrap_or(&c.zeros).clone() } else { c.ones.clone() }).collect()
}

/// Backward of [`gdas_edge_with`]. Inputs on the tape: `[hardwts]` or `[hardwts, x_sel]`.
struct GdasBackward {
    hardwts: Tensor,
    edge: usize,
    idx: usize,
    /// The weighted-sum candidates, kept only when hardwts is tracked.
    cands: Vec<Tensor>,
    has_x: bool,
}

impl Backward for GdasBackward {
    fn name(&self) -> &'static str {
        OP
    }

    fn backward(&mut self, gpu: &Gpu, grad: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let need = |i: usize| needs.get(i).copied().unwrap_or(false);
        let mut out = vec![None];
        if need(0) {
            if self.cands.is_empty() {
                return Err(Error::Autodiff(format!("{OP}: hardwts gradient requested but nothing was saved")));
            }
            // dhardwts[e, k] = ⟨dy, c_k⟩: ⟨dy, x_sel⟩ at idx, Σ dy elsewhere in row e, 0 in other rows.
            let cands: Vec<&Tensor> = self.cands.iter().collect();
            out[0] = Some(mix_backward_weights(gpu, Weighting::Raw, &self.hardwts, self.edge, &cands, grad)?);
        }
        if self.has_x {
            let mut want = vec![false; self.hardwts.shape().get(1).copied().unwrap_or(0)];
            if need(1) {
                want[self.idx] = true;
            }
            // dx_sel = hardwts[e, idx] · dy; the constant candidates get nothing.
            let dx = mix_backward_inputs(gpu, Weighting::Raw, &self.hardwts, self.edge, grad, &want)?;
            out.push(dx.into_iter().nth(self.idx).flatten());
        }
        Ok(out)
    }
}

/// Tape op: the GDAS edge `y = hardwts[edge, idx] · x_sel + Σ_{k≠idx} hardwts[edge, k]`,
/// with `x_sel = None` for a sampled `none` (its output is zero, nothing runs for it).
/// `consts` must have the shape of `x_sel` (the edge's feature shape).
pub fn gdas_edge_with(
    tape: &Tape,
    hardwts: &Var,
    edge: usize,
    idx: usize,
    x_sel: Option<&Var>,
    consts: &GdasConstants,
) -> Result<Var> {
    let (_, k) = check_indices(&hardwts.tensor, edge, idx)?;
    if let Some(x) = x_sel {
        x.tensor.expect_shape(OP, consts.shape())?;
    }
    let cands = candidates(k, idx, x_sel.map(|x| &x.tensor), consts);
    let refs: Vec<&Tensor> = cands.iter().collect();
    let gpu = tape.gpu();
    let y = Tensor::empty(gpu, consts.shape(), "gdas edge out")?;
    mix_into(gpu, Weighting::Raw, &hardwts.tensor, edge, &refs, &y, false)?;
    let mut inputs = vec![hardwts];
    inputs.extend(x_sel);
    Ok(tape.record(&inputs, y, || {
        let cands = if hardwts.tracked() { cands } else { Vec::new() };
        Box::new(GdasBackward { hardwts: hardwts.tensor.clone(), edge, idx, cands, has_x: x_sel.is_some() })
    }))
}

/// Tape op: the GDAS edge of a sampled op with output `x_sel` (see [`gdas_edge_with`]);
/// builds its own constants, so prefer [`gdas_edge_with`] for many edges of one shape.
pub fn gdas_edge(tape: &Tape, hardwts: &Var, edge: usize, idx: usize, x_sel: &Var) -> Result<Var> {
    let consts = GdasConstants::new(tape.gpu(), x_sel.shape())?;
    gdas_edge_with(tape, hardwts, edge, idx, Some(x_sel), &consts)
}

/// CPU references of the GDAS edge (f64 accumulation). `hardwts` is `[E, K]` row-major.
pub mod cpu {
    /// `Σ_{k≠idx} hardwts[edge, k]`: the broadcast scalar terms.
    fn others(hardwts: &[f32], k: usize, edge: usize, idx: usize) -> f64 {
        let row = &hardwts[edge * k..(edge + 1) * k];
        row.iter().enumerate().filter(|&(j, _)| j != idx).map(|(_, &w)| w as f64).sum()
    }

    /// `y = hardwts[edge, idx] · x_sel + Σ_{k≠idx} hardwts[edge, k]`; `x_sel = None` is a
    /// sampled `none` (zero) of `n` elements.
    pub fn forward(hardwts: &[f32], k: usize, edge: usize, idx: usize, x_sel: Option<&[f32]>, n: usize) -> Vec<f32> {
        let w = hardwts[edge * k + idx] as f64;
        let s = others(hardwts, k, edge, idx);
        (0..n).map(|i| (w * x_sel.map_or(0.0, |x| x[i] as f64) + s) as f32).collect()
    }

    /// Returns (`dhardwts` of the full `[E, K]` shape, `dx_sel`):
    /// `dhardwts[edge, idx] = ⟨dy, x_sel⟩`, `dhardwts[edge, k≠idx] = Σ dy`, 0 in other rows;
    /// `dx_sel = hardwts[edge, idx] · dy`.
    pub fn backward(
        hardwts: &[f32],
        k: usize,
        edge: usize,
        idx: usize,
        x_sel: Option<&[f32]>,
        dy: &[f32],
    ) -> (Vec<f32>, Vec<f32>) {
        let sum: f64 = dy.iter().map(|&g| g as f64).sum();
        let dot: f64 = x_sel.map_or(0.0, |x| x.iter().zip(dy).map(|(&a, &b)| a as f64 * b as f64).sum());
        let mut dw = vec![0.0f32; hardwts.len()];
        for j in 0..k {
            dw[edge * k + j] = if j == idx { dot } else { sum } as f32;
        }
        let w = hardwts[edge * k + idx] as f64;
        (dw, dy.iter().map(|&g| (w * g as f64) as f32).collect())
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::ops::testing::finite_diff;
        use crate::util::rng::Rng;

        const K: usize = 5;
        const E: usize = 3;
        const N: usize = 7;

        fn dotv(a: &[f32], b: &[f32]) -> f64 {
            a.iter().zip(b).map(|(&a, &b)| a as f64 * b as f64).sum()
        }

        fn assert_fd(what: &str, ana: &[f32], num: &[f64]) {
            for (i, (a, n)) in ana.iter().zip(num).enumerate() {
                assert!((*a as f64 - n).abs() < 2e-3, "{what}[{i}]: {a} vs {n}");
            }
        }

        #[test]
        fn gdas_backward_matches_finite_differences() {
            // L = ⟨dy, y⟩ with y = w_idx x + Σ_{k≠idx} w_k:
            // dL/dw_idx = ⟨dy, x⟩, dL/dw_k = Σ dy (k ≠ idx), 0 off the edge's row; dL/dx = w_idx dy
            let mut r = Rng::new(11);
            let hw = r.normal_vec(E * K, 1.0);
            let x = r.normal_vec(N, 1.0);
            let dy = r.normal_vec(N, 1.0);
            let (edge, idx) = (1, 3);
            let (dw, dx) = backward(&hw, K, edge, idx, Some(&x), &dy);
            let num = finite_diff(&hw, |w| dotv(&forward(w, K, edge, idx, Some(&x), N), &dy), 1e-2);
            assert_fd("dhardwts", &dw, &num);
            let num = finite_diff(&x, |x| dotv(&forward(&hw, K, edge, idx, Some(x), N), &dy), 1e-2);
            assert_fd("dx", &dx, &num);
        }

        #[test]
        fn gdas_none_backward_matches_finite_differences() {
            // Sampled `none`: y = Σ_{k≠idx} w_k ⇒ dL/dw_idx = 0, dL/dw_k = Σ dy
            let mut r = Rng::new(12);
            let hw = r.normal_vec(E * K, 1.0);
            let dy = r.normal_vec(N, 1.0);
            let (edge, idx) = (2, 0);
            let (dw, _) = backward(&hw, K, edge, idx, None, &dy);
            let num = finite_diff(&hw, |w| dotv(&forward(w, K, edge, idx, None, N), &dy), 1e-2);
            assert_fd("dhardwts none", &dw, &num);
            assert_eq!(dw[edge * K + idx], 0.0);
        }

        #[test]
        fn one_hot_sample_passes_the_op_through() {
            // With hardwts one-hot at idx the edge is exactly the sampled op's output.
            let mut hw = vec![0.0f32; E * K];
            hw[K + 2] = 1.0;
            let x = [1.5f32, -2.0, 0.25];
            assert_eq!(forward(&hw, K, 1, 2, Some(&x), 3), x.to_vec());
            // A sampled `none` (one-hot at its column) gives zeros.
            hw[2 * K] = 1.0;
            assert_eq!(forward(&hw, K, 2, 0, None, 3), vec![0.0; 3]);
        }
    }
}
