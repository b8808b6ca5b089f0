//! Squeeze-and-excitation (Hu et al.), as in EfficientNet / ProxylessNAS MBConv layers:
//!
//! `se(x) = x · sigmoid(W2·swish(W1·gap(x) + b1) + b2)`, the gate applied per (n, c) plane.
//!
//! Composed from tape ops (`pool::global_avg_pool`, `linear::linear`, `act::swish`,
//! `act::sigmoid`, `act::channel_scale`), so its backward is theirs; [`reference`] and
//! [`reference_backward`] compose the CPU references of the same ops.
//!
//! # Shapes
//! x `[N, C, H, W]`, W1 `[r, C]`, b1 `[r]`, W2 `[C, r]`, b2 `[C]`; the output is shaped like x.

use crate::error::{Error, Result};
use crate::ops::{act, linear, pool};
use crate::tensor::tape::{Tape, Var};

const OP: &str = "squeeze_excite";

/// Checks W1 `[r, C]`, b1 `[r]`, W2 `[C, r]`, b2 `[C]` against x's C; returns r.
fn check(c: usize, w1: &[usize], b1: &[usize], w2: &[usize], b2: &[usize]) -> Result<usize> {
    let r = w1.first().copied().unwrap_or(0);
    if w1 != [r, c] || b1 != [r] || w2 != [c, r] || b2 != [c] || r == 0 {
        return Err(Error::shape(
            OP,
            format!(
                "for {c} channels the weights must be W1 [r, {c}], b1 [r], W2 [{c}, r], b2 [{c}] with r ≥ 1; \
                 got W1 {w1:?}, b1 {b1:?}, W2 {w2:?}, b2 {b2:?}"
            ),
        ));
    }
    Ok(r)
}

/// Tape op: `x · sigmoid(W2·swish(W1·gap(x) + b1) + b2)` per channel.
pub fn se(tape: &Tape, x: &Var, w1: &Var, b1: &Var, w2: &Var, b2: &Var) -> Result<Var> {
    let [_, c, _, _] = x.tensor.dims4(OP)?;
    check(c, w1.shape(), b1.shape(), w2.shape(), b2.shape())?;
    let g = pool::global_avg_pool(tape, x)?;
    let z1 = linear::linear(tape, &g, w1, Some(b1))?;
    let a = act::swish(tape, &z1)?;
    let z2 = linear::linear(tape, &a, w2, Some(b2))?;
    let s = act::sigmoid(tape, &z2)?;
    act::channel_scale(tape, x, &s)
}

/// SE weights on the CPU (row-major, shapes as in [`se`]).
#[derive(Debug, Clone, Copy)]
pub struct SeRef<'a> {
    /// W1 `[r, C]`.
    pub w1: &'a [f32],
    /// b1 `[r]`.
    pub b1: &'a [f32],
    /// W2 `[C, r]`.
    pub w2: &'a [f32],
    /// b2 `[C]`.
    pub b2: &'a [f32],
}

/// Gradients of the SE block (CPU reference).
#[derive(Debug, Clone)]
pub struct SeGrads {
    /// ∂L/∂x.
    pub dx: Vec<f32>,
    /// ∂L/∂W1.
    pub dw1: Vec<f32>,
    /// ∂L/∂b1.
    pub db1: Vec<f32>,
    /// ∂L/∂W2.
    pub dw2: Vec<f32>,
    /// ∂L/∂b2.
    pub db2: Vec<f32>,
}

/// Intermediate values of the CPU forward: gap(x), W1·g + b1, swish of it, and the gate s.
struct Trace {
    g: Vec<f32>,
    z1: Vec<f32>,
    a: Vec<f32>,
    s: Vec<f32>,
}

fn trace(x: &[f32], shape: [usize; 4], w: &SeRef) -> Trace {
    use crate::ops::act::cpu as act_cpu;
    use crate::ops::linear::cpu as lin;
    use crate::ops::pool::cpu as pool_cpu;
    let [n, c, _, _] = shape;
    let r = w.b1.len();
    let g = pool_cpu::global_avg_pool(x, shape);
    let z1 = lin::linear_forward(&g, w.w1, Some(w.b1), n, c, r);
    let a = act_cpu::swish(&z1);
    let z2 = lin::linear_forward(&a, w.w2, Some(w.b2), n, r, c);
    let s = act_cpu::sigmoid(&z2);
    Trace { g, z1, a, s }
}

/// CPU reference of [`se`] on x of `shape` (NCHW).
pub fn reference(x: &[f32], shape: [usize; 4], w: &SeRef) -> Vec<f32> {
    let t = trace(x, shape, w);
    act::cpu::channel_scale(x, &t.s, shape[2] * shape[3])
}

/// CPU reference of the backward of [`se`] for upstream gradient `dy`:
/// `ds = Σ_hw dy·x`, `dz2 = ds·s(1 − s)`, `dz1 = swish'(z1)·(dz2·W2)`,
/// `dx = dy·s + gap'(dz1·W1)`, and the linear layers' `dW = dzᵀ·input`, `db = Σ_n dz`.
pub fn reference_backward(x: &[f32], shape: [usize; 4], w: &SeRef, dy: &[f32]) -> SeGrads {
    use crate::ops::act::cpu as act_cpu;
    use crate::ops::linear::cpu as lin;
    use crate::ops::pool::cpu as pool_cpu;
    let [n, c, h, wd] = shape;
    let (hw, r) = (h * wd, w.b1.len());
    let t = trace(x, shape, w);
    let ds = act_cpu::channel_scale_backward_s(dy, x, hw);
    let dz2 = act_cpu::sigmoid_backward(&t.s, &ds);
    let dw2 = lin::linear_backward_w(&dz2, &t.a, n, r, c);
    let db2 = lin::linear_backward_b(&dz2, n, c);
    let da = lin::linear_backward_x(&dz2, w.w2, n, r, c);
    let dz1 = act_cpu::swish_backward(&t.z1, &da);
    let dw1 = lin::linear_backward_w(&dz1, &t.g, n, c, r);
    let db1 = lin::linear_backward_b(&dz1, n, r);
    let dg = lin::linear_backward_x(&dz1, w.w1, n, c, r);
    let direct = act_cpu::channel_scale_backward_x(dy, &t.s, hw);
    let via_gap = pool_cpu::global_avg_pool_backward(&dg, shape);
    let dx = direct.iter().zip(&via_gap).map(|(&a, &b)| (a as f64 + b as f64) as f32).collect();
    SeGrads { dx, dw1, db1, dw2, db2 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{assert_close_f64, finite_diff};
    use crate::util::rng::Rng;

    #[test]
    fn reference_backward_matches_finite_differences() {
        // N = 2, C = 3, 3×2 planes, r = 2.
        let shape = [2usize, 3, 3, 2];
        let (c, r) = (3, 2);
        let mut rng = Rng::new(9);
        let x = rng.normal_vec(36, 1.0);
        let (w1, b1) = (rng.normal_vec(r * c, 1.0), rng.normal_vec(r, 1.0));
        let (w2, b2) = (rng.normal_vec(c * r, 1.0), rng.normal_vec(c, 1.0));
        let dy = rng.normal_vec(36, 1.0);
        let loss = |y: Vec<f32>| y.iter().zip(&dy).map(|(&a, &b)| a as f64 * b as f64).sum::<f64>();
        let w = SeRef { w1: &w1, b1: &b1, w2: &w2, b2: &b2 };
        let g = reference_backward(&x, shape, &w, &dy);
        let h = 1e-2;
        let num = finite_diff(&x, |x| loss(reference(x, shape, &w)), h);
        assert_close_f64("dx", &g.dx, &num, 1e-3);
        let num = finite_diff(&w1, |v| loss(reference(&x, shape, &SeRef { w1: v, ..w })), h);
        assert_close_f64("dw1", &g.dw1, &num, 1e-3);
        let num = finite_diff(&b1, |v| loss(reference(&x, shape, &SeRef { b1: v, ..w })), h);
        assert_close_f64("db1", &g.db1, &num, 1e-3);
        let num = finite_diff(&w2, |v| loss(reference(&x, shape, &SeRef { w2: v, ..w })), h);
        assert_close_f64("dw2", &g.dw2, &num, 1e-3);
        let num = finite_diff(&b2, |v| loss(reference(&x, shape, &SeRef { b2: v, ..w })), h);
        assert_close_f64("db2", &g.db2, &num, 1e-3);
    }
}
