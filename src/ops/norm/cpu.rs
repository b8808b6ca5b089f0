//! CPU references of BatchNorm2d (f64 arithmetic), matching PyTorch's `BatchNorm2d`.
//!
//! Shapes are given as `dims = [n, c, hw]` for an NCHW tensor with `hw = H·W`;
//! statistics are per channel over the `M = n·hw` elements of that channel.

/// Elements of channel `c` of an NCHW tensor, in (n, h, w) order.
fn channel(x: &[f32], dims: [usize; 3], c: usize) -> impl Iterator<Item = f64> + '_ {
    let [n, nc, hw] = dims;
    (0..n).flat_map(move |b| {
        let base = (b * nc + c) * hw;
        x[base..base + hw].iter().map(|&v| v as f64)
    })
}

/// Per-channel batch mean and biased variance `Σ (x − mean)² / M` (two-pass).
pub fn batch_stats(x: &[f32], dims: [usize; 3]) -> (Vec<f64>, Vec<f64>) {
    let m = (dims[0] * dims[2]) as f64;
    (0..dims[1])
        .map(|c| {
            let mean = channel(x, dims, c).sum::<f64>() / m;
            let var = channel(x, dims, c).map(|v| (v - mean).powi(2)).sum::<f64>() / m;
            (mean, var)
        })
        .unzip()
}

/// `y = (x − mean[c])·invstd[c]·γ[c] + β[c]` elementwise (γ = 1, β = 0 without affine).
fn apply(x: &[f32], dims: [usize; 3], mean: &[f64], invstd: &[f64], affine: Option<(&[f32], &[f32])>) -> Vec<f32> {
    let [_, nc, hw] = dims;
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = (i / hw) % nc;
            let (g, b) = affine.map_or((1.0, 0.0), |(g, b)| (g[c] as f64, b[c] as f64));
            ((v as f64 - mean[c]) * invstd[c] * g + b) as f32
        })
        .collect()
}

fn invstd(var: &[f64], eps: f32) -> Vec<f64> {
    var.iter().map(|&v| 1.0 / (v + eps as f64).sqrt()).collect()
}

/// Training-mode forward: `y = (x − mean)/√(var + eps)·γ + β` with batch mean and biased
/// variance. Returns `(y, mean, invstd)`.
pub fn batch_norm_train(
    x: &[f32],
    dims: [usize; 3],
    affine: Option<(&[f32], &[f32])>,
    eps: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (mean, var) = batch_stats(x, dims);
    let is = invstd(&var, eps);
    let y = apply(x, dims, &mean, &is, affine);
    let f = |v: &[f64]| v.iter().map(|&a| a as f32).collect();
    (y, f(&mean), f(&is))
}

/// Running-statistics update of one training step:
/// `r_mean ← (1 − m)·r_mean + m·mean`, `r_var ← (1 − m)·r_var + m·var·M/(M − 1)`.
/// Returns the new `(running_mean, running_var)`.
pub fn running_update(x: &[f32], dims: [usize; 3], running: (&[f32], &[f32]), momentum: f32) -> (Vec<f32>, Vec<f32>) {
    let (mean, var) = batch_stats(x, dims);
    let m = (dims[0] * dims[2]) as f64;
    let mo = momentum as f64;
    let blend = |r: f32, b: f64| ((1.0 - mo) * r as f64 + mo * b) as f32;
    let rm = running.0.iter().zip(&mean).map(|(&r, &b)| blend(r, b));
    let rv = running.1.iter().zip(&var).map(|(&r, &b)| blend(r, b * m / (m - 1.0)));
    (rm.collect(), rv.collect())
}

/// Evaluation-mode forward: `y = (x − r_mean)/√(r_var + eps)·γ + β`.
pub fn batch_norm_eval(
    x: &[f32],
    dims: [usize; 3],
    affine: Option<(&[f32], &[f32])>,
    running: (&[f32], &[f32]),
    eps: f32,
) -> Vec<f32> {
    let mean: Vec<f64> = running.0.iter().map(|&v| v as f64).collect();
    let var: Vec<f64> = running.1.iter().map(|&v| v as f64).collect();
    apply(x, dims, &mean, &invstd(&var, eps), affine)
}

/// Per-channel `(Σ dy, Σ dy·x̂)` with `x̂ = (x − mean)·invstd`.
fn grad_sums(x: &[f32], dy: &[f32], dims: [usize; 3], mean: &[f64], is: &[f64]) -> (Vec<f64>, Vec<f64>) {
    (0..dims[1])
        .map(|c| {
            channel(dy, dims, c)
                .zip(channel(x, dims, c))
                .fold((0.0, 0.0), |(s, sx), (d, v)| (s + d, sx + d * (v - mean[c]) * is[c]))
        })
        .unzip()
}

fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&a| a as f32).collect()
}

/// Training-mode backward. Returns `(dx, dgamma, dbeta)`:
/// `dx = γ·invstd·(dy − mean(dy) − x̂·mean(dy·x̂))`, `dgamma = Σ dy·x̂`, `dbeta = Σ dy`
/// (means and sums per channel over N, H, W; γ = 1 without affine).
pub fn batch_norm_backward_train(
    x: &[f32],
    dy: &[f32],
    dims: [usize; 3],
    gamma: Option<&[f32]>,
    eps: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let [_, nc, hw] = dims;
    let m = (dims[0] * hw) as f64;
    let (mean, var) = batch_stats(x, dims);
    let is = invstd(&var, eps);
    let (sdy, sdyx) = grad_sums(x, dy, dims, &mean, &is);
    let dx = x
        .iter()
        .zip(dy)
        .enumerate()
        .map(|(i, (&v, &d))| {
            let c = (i / hw) % nc;
            let g = gamma.map_or(1.0, |g| g[c] as f64);
            let xh = (v as f64 - mean[c]) * is[c];
            (g * is[c] * (d as f64 - sdy[c] / m - xh * sdyx[c] / m)) as f32
        })
        .collect();
    (dx, to_f32(&sdyx), to_f32(&sdy))
}

/// Evaluation-mode backward (the running statistics are constants). Returns
/// `(dx, dgamma, dbeta)`: `dx = γ·dy/√(r_var + eps)`, `dgamma = Σ dy·x̂`, `dbeta = Σ dy`
/// with `x̂ = (x − r_mean)/√(r_var + eps)`.
pub fn batch_norm_backward_eval(
    x: &[f32],
    dy: &[f32],
    dims: [usize; 3],
    gamma: Option<&[f32]>,
    running: (&[f32], &[f32]),
    eps: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let [_, nc, hw] = dims;
    let mean: Vec<f64> = running.0.iter().map(|&v| v as f64).collect();
    let var: Vec<f64> = running.1.iter().map(|&v| v as f64).collect();
    let is = invstd(&var, eps);
    let (sdy, sdyx) = grad_sums(x, dy, dims, &mean, &is);
    let dx = dy
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            let c = (i / hw) % nc;
            let g = gamma.map_or(1.0, |g| g[c] as f64);
            (g * is[c] * d as f64) as f32
        })
        .collect();
    (dx, to_f32(&sdyx), to_f32(&sdy))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::finite_diff;
    use crate::util::rng::Rng;

    const DIMS: [usize; 3] = [2, 3, 5]; // n = 2, c = 3, hw = 5 (M = 10 per channel)
    const EPS: f32 = 1e-5;

    fn data() -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
        let mut r = Rng::new(7);
        let x = r.normal_vec(30, 1.5);
        let dy = r.normal_vec(30, 1.0);
        let g = vec![0.7f32, -1.2, 1.9];
        let b = vec![0.1f32, 0.4, -0.3];
        (x, dy, g, b)
    }

    /// Σ y·dy: its gradient with respect to any input is that input's backward given dy.
    fn dot(y: &[f32], dy: &[f32]) -> f64 {
        y.iter().zip(dy).map(|(&a, &b)| a as f64 * b as f64).sum()
    }

    fn assert_near(what: &str, ana: &[f32], num: &[f64], tol: f64) {
        for (i, (a, n)) in ana.iter().zip(num).enumerate() {
            assert!((*a as f64 - n).abs() < tol * (1.0 + n.abs()), "{what}[{i}]: {a} vs {n}");
        }
    }

    #[test]
    fn worked_example_matches_hand_computation() {
        // One channel [1, 2, 3, 4]: mean 2.5, biased var 1.25, unbiased var 5/3.
        let x = [1.0f32, 2.0, 3.0, 4.0];
        let (y, mean, is) = batch_norm_train(&x, [1, 1, 4], None, EPS);
        assert!((mean[0] - 2.5).abs() < 1e-6);
        assert!((is[0] as f64 - 1.0 / (1.25f64 + 1e-5).sqrt()).abs() < 1e-6);
        assert!((y[0] as f64 + 1.5 / (1.25f64 + 1e-5).sqrt()).abs() < 1e-6);
        let (rm, rv) = running_update(&x, [1, 1, 4], (&[0.0], &[1.0]), 0.1);
        assert!((rm[0] - 0.25).abs() < 1e-6);
        assert!((rv[0] as f64 - (0.9 + 0.1 * 5.0 / 3.0)).abs() < 1e-6);
    }

    #[test]
    fn train_output_has_beta_mean_and_gamma_scale() {
        let (x, _, g, b) = data();
        let (y, _, _) = batch_norm_train(&x, DIMS, Some((&g, &b)), EPS);
        let (mean, var) = batch_stats(&y, DIMS);
        for c in 0..3 {
            assert!((mean[c] - b[c] as f64).abs() < 1e-5);
            assert!((var[c] - (g[c] as f64).powi(2)).abs() < 1e-3);
        }
    }

    #[test]
    fn train_backward_matches_finite_differences() {
        let (x, dy, g, b) = data();
        let (dx, dg, db) = batch_norm_backward_train(&x, &dy, DIMS, Some(&g), EPS);
        // dL/dx = γ·invstd·(dy − mean(dy) − x̂·mean(dy·x̂)), L = Σ y·dy
        let num = finite_diff(&x, |x| dot(&batch_norm_train(x, DIMS, Some((&g, &b)), EPS).0, &dy), 1e-2);
        assert_near("dx", &dx, &num, 2e-3);
        // dL/dγ = Σ dy·x̂
        let num = finite_diff(&g, |g| dot(&batch_norm_train(&x, DIMS, Some((g, &b)), EPS).0, &dy), 1e-2);
        assert_near("dgamma", &dg, &num, 1e-3);
        // dL/dβ = Σ dy
        let num = finite_diff(&b, |b| dot(&batch_norm_train(&x, DIMS, Some((&g, b)), EPS).0, &dy), 1e-2);
        assert_near("dbeta", &db, &num, 1e-3);
    }

    #[test]
    fn train_backward_without_affine_matches_finite_differences() {
        let (x, dy, _, _) = data();
        let (dx, _, _) = batch_norm_backward_train(&x, &dy, DIMS, None, EPS);
        // dL/dx = invstd·(dy − mean(dy) − x̂·mean(dy·x̂))
        let num = finite_diff(&x, |x| dot(&batch_norm_train(x, DIMS, None, EPS).0, &dy), 1e-2);
        assert_near("dx", &dx, &num, 2e-3);
    }

    #[test]
    fn eval_backward_matches_finite_differences() {
        let (x, dy, g, b) = data();
        let rm = [0.3f32, -0.2, 0.05];
        let rv = [0.8f32, 1.7, 0.4];
        let run = (&rm[..], &rv[..]);
        let (dx, dg, db) = batch_norm_backward_eval(&x, &dy, DIMS, Some(&g), run, EPS);
        let fwd = |x: &[f32], g: &[f32], b: &[f32]| dot(&batch_norm_eval(x, DIMS, Some((g, b)), run, EPS), &dy);
        // dL/dx = γ·dy/√(r_var + eps)
        assert_near("dx", &dx, &finite_diff(&x, |x| fwd(x, &g, &b), 1e-2), 1e-3);
        // dL/dγ = Σ dy·x̂, dL/dβ = Σ dy
        assert_near("dg", &dg, &finite_diff(&g, |g| fwd(&x, g, &b), 1e-2), 1e-3);
        assert_near("db", &db, &finite_diff(&b, |b| fwd(&x, &g, b), 1e-2), 1e-3);
    }
}
