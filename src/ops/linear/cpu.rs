//! CPU references of the matrix product and the linear layer (f64 accumulation).

/// `C[m, n] = op(A)·op(B)`: `a` is stored `[m, k]` (or `[k, m]` when `trans_a`),
/// `b` is stored `[k, n]` (or `[n, k]` when `trans_b`).
pub fn matmul(a: &[f32], b: &[f32], m: usize, n: usize, k: usize, trans_a: bool, trans_b: bool) -> Vec<f32> {
    let at = |i: usize, l: usize| if trans_a { a[l * m + i] } else { a[i * k + l] };
    let bt = |l: usize, j: usize| if trans_b { b[j * k + l] } else { b[l * n + j] };
    let mut c = vec![0.0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let s: f64 = (0..k).map(|l| at(i, l) as f64 * bt(l, j) as f64).sum();
            c[i * n + j] = s as f32;
        }
    }
    c
}

/// `y[n, out] = x·Wᵀ + b` for `x` `[n, inputs]`, `w` `[out, inputs]`, optional `b` `[out]`.
pub fn linear_forward(x: &[f32], w: &[f32], b: Option<&[f32]>, n: usize, inputs: usize, outputs: usize) -> Vec<f32> {
    let mut y = matmul(x, w, n, outputs, inputs, false, true);
    if let Some(b) = b {
        for row in y.chunks_mut(outputs) {
            for (v, bi) in row.iter_mut().zip(b) {
                *v = (*v as f64 + *bi as f64) as f32;
            }
        }
    }
    y
}

/// `dx[n, inputs] = dy·W`.
pub fn linear_backward_x(dy: &[f32], w: &[f32], n: usize, inputs: usize, outputs: usize) -> Vec<f32> {
    matmul(dy, w, n, inputs, outputs, false, false)
}

/// `dW[out, inputs] = dyᵀ·x`.
pub fn linear_backward_w(dy: &[f32], x: &[f32], n: usize, inputs: usize, outputs: usize) -> Vec<f32> {
    matmul(dy, x, outputs, inputs, n, true, false)
}

/// `db[out] = Σ_n dy[n, :]`.
pub fn linear_backward_b(dy: &[f32], n: usize, outputs: usize) -> Vec<f32> {
    (0..outputs).map(|j| (0..n).map(|i| dy[i * outputs + j] as f64).sum::<f64>() as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::finite_diff;
    use crate::util::rng::Rng;

    const N: usize = 3;
    const IN: usize = 5;
    const OUT: usize = 4;

    fn randn(seed: u64, n: usize) -> Vec<f32> {
        Rng::new(seed).normal_vec(n, 1.0)
    }

    /// L = Σ dy ⊙ linear(x, W, b), the scalar whose gradients are the backward rules.
    fn loss(x: &[f32], w: &[f32], b: &[f32], dy: &[f32]) -> f64 {
        linear_forward(x, w, Some(b), N, IN, OUT).iter().zip(dy).map(|(y, g)| *y as f64 * *g as f64).sum()
    }

    fn check(what: &str, ana: &[f32], num: &[f64]) {
        for (a, n) in ana.iter().zip(num) {
            assert!((*a as f64 - n).abs() < 2e-3 * (1.0 + n.abs()), "{what}: {a} vs {n}");
        }
    }

    #[test]
    fn matmul_transposes_agree() {
        // op(A)·op(B) must not depend on how the operands are stored.
        let (m, n, k) = (3, 4, 5);
        let a = randn(1, m * k);
        let b = randn(2, k * n);
        let at = transpose(&a, m, k);
        let bt = transpose(&b, k, n);
        let want = matmul(&a, &b, m, n, k, false, false);
        for (ta, tb, aa, bb) in [(true, false, &at, &b), (false, true, &a, &bt), (true, true, &at, &bt)] {
            let got = matmul(aa, bb, m, n, k, ta, tb);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-5, "trans {ta} {tb}: {g} vs {w}");
            }
        }
    }

    /// The `[c, r]` transpose of a row-major `[r, c]` matrix.
    fn transpose(x: &[f32], r: usize, c: usize) -> Vec<f32> {
        (0..r * c).map(|i| x[(i % r) * c + i / r]).collect()
    }

    #[test]
    fn linear_backward_x_matches_finite_differences() {
        // dL/dx = dy·W
        let (x, w, b, dy) = (randn(3, N * IN), randn(4, OUT * IN), randn(5, OUT), randn(6, N * OUT));
        let num = finite_diff(&x, |x| loss(x, &w, &b, &dy), 1e-2);
        check("dx", &linear_backward_x(&dy, &w, N, IN, OUT), &num);
    }

    #[test]
    fn linear_backward_w_matches_finite_differences() {
        // dL/dW = dyᵀ·x
        let (x, w, b, dy) = (randn(7, N * IN), randn(8, OUT * IN), randn(9, OUT), randn(10, N * OUT));
        let num = finite_diff(&w, |w| loss(&x, w, &b, &dy), 1e-2);
        check("dW", &linear_backward_w(&dy, &x, N, IN, OUT), &num);
    }

    #[test]
    fn linear_backward_b_matches_finite_differences() {
        // dL/db = Σ_n dy[n, :]
        let (x, w, b, dy) = (randn(11, N * IN), randn(12, OUT * IN), randn(13, OUT), randn(14, N * OUT));
        let num = finite_diff(&b, |b| loss(&x, &w, b, &dy), 1e-2);
        check("db", &linear_backward_b(&dy, N, OUT), &num);
    }
}
