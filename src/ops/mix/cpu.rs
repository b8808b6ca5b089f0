//! CPU references of the mix ops (f64 accumulation). `alpha` / `weights` are `[rows, k]`
//! row-major; every candidate slice in `xs` has the same length.

/// Row-wise softmax of a `[rows, k]` tensor.
pub fn softmax_rows(alpha: &[f32], k: usize) -> Vec<f32> {
    softmax_f64(alpha, k).iter().map(|&v| v as f32).collect()
}

fn softmax_f64(alpha: &[f32], k: usize) -> Vec<f64> {
    alpha
        .chunks(k.max(1))
        .flat_map(|row| {
            let m = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
            let e: Vec<f64> = row.iter().map(|&v| (v as f64 - m).exp()).collect();
            let s: f64 = e.iter().sum();
            e.into_iter().map(move |v| v / s)
        })
        .collect()
}

/// ∂L/∂α of the row softmax from its output `s` and `ds`: `s_i (ds_i − Σ_j s_j ds_j)`.
pub fn softmax_rows_backward(s: &[f32], ds: &[f32], k: usize) -> Vec<f32> {
    s.chunks(k.max(1))
        .zip(ds.chunks(k.max(1)))
        .flat_map(|(s, ds)| {
            let dot: f64 = s.iter().zip(ds).map(|(&a, &b)| a as f64 * b as f64).sum();
            s.iter().zip(ds).map(move |(&a, &b)| (a as f64 * (b as f64 - dot)) as f32)
        })
        .collect()
}

/// `Σ_k w_k x_k` for the given weights of one edge.
fn mix(w: &[f64], xs: &[&[f32]]) -> Vec<f32> {
    let n = xs.first().map_or(0, |x| x.len());
    (0..n).map(|i| w.iter().zip(xs).map(|(&w, x)| w * x[i] as f64).sum::<f64>() as f32).collect()
}

/// `g_k = ⟨dy, x_k⟩` for every candidate.
fn dots(xs: &[&[f32]], dy: &[f32]) -> Vec<f64> {
    xs.iter().map(|x| x.iter().zip(dy).map(|(&a, &b)| a as f64 * b as f64).sum()).collect()
}

/// The weights of edge `row`: softmax of the α row.
fn edge_softmax(alpha: &[f32], k: usize, row: usize) -> Vec<f64> {
    softmax_f64(&alpha[row * k..(row + 1) * k], k)
}

/// Mixed op forward: `y = Σ_k softmax(α[row])_k x_k`.
pub fn mixed_op(alpha: &[f32], k: usize, row: usize, xs: &[&[f32]]) -> Vec<f32> {
    mix(&edge_softmax(alpha, k, row), xs)
}

/// Mixed op backward: (`dα` of α's full shape, zero outside `row`; `dx_k = w_k dy`).
/// `dα[row, k] = w_k (g_k − Σ_j w_j g_j)` with `g_k = ⟨dy, x_k⟩`.
pub fn mixed_op_backward(alpha: &[f32], k: usize, row: usize, xs: &[&[f32]], dy: &[f32]) -> (Vec<f32>, Vec<Vec<f32>>) {
    let w = edge_softmax(alpha, k, row);
    let g = dots(xs, dy);
    let mean: f64 = w.iter().zip(&g).map(|(w, g)| w * g).sum();
    let mut dalpha = vec![0.0f32; alpha.len()];
    for j in 0..k {
        dalpha[row * k + j] = (w[j] * (g[j] - mean)) as f32;
    }
    (dalpha, scaled_copies(&w, dy))
}

/// `w_k dy` for every k.
fn scaled_copies(w: &[f64], dy: &[f32]) -> Vec<Vec<f32>> {
    w.iter().map(|&w| dy.iter().map(|&g| (w * g as f64) as f32).collect()).collect()
}

/// Weighted sum forward: `y = Σ_k weights[row, k] x_k`.
pub fn weighted_sum(weights: &[f32], k: usize, row: usize, xs: &[&[f32]]) -> Vec<f32> {
    let w: Vec<f64> = weights[row * k..(row + 1) * k].iter().map(|&v| v as f64).collect();
    mix(&w, xs)
}

/// Weighted sum backward: (`dw` of the weights' full shape with `dw[row, k] = ⟨dy, x_k⟩`,
/// zero elsewhere; `dx_k = w_k dy`).
pub fn weighted_sum_backward(
    weights: &[f32],
    k: usize,
    row: usize,
    xs: &[&[f32]],
    dy: &[f32],
) -> (Vec<f32>, Vec<Vec<f32>>) {
    let w: Vec<f64> = weights[row * k..(row + 1) * k].iter().map(|&v| v as f64).collect();
    let mut dw = vec![0.0f32; weights.len()];
    for (j, g) in dots(xs, dy).into_iter().enumerate() {
        dw[row * k + j] = g as f32;
    }
    (dw, scaled_copies(&w, dy))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::finite_diff;
    use crate::util::rng::Rng;

    const K: usize = 4;
    const ROWS: usize = 3;
    const N: usize = 6;

    fn data(seed: u64) -> (Vec<f32>, Vec<Vec<f32>>, Vec<f32>) {
        let mut r = Rng::new(seed);
        let alpha = r.normal_vec(ROWS * K, 1.0);
        let xs = (0..K).map(|_| r.normal_vec(N, 1.0)).collect();
        (alpha, xs, r.normal_vec(N, 1.0))
    }

    fn dotv(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(&a, &b)| a as f64 * b as f64).sum()
    }

    fn assert_fd(what: &str, ana: &[f32], num: &[f64]) {
        for (i, (a, n)) in ana.iter().zip(num).enumerate() {
            assert!((*a as f64 - n).abs() < 2e-3, "{what}[{i}]: {a} vs {n}");
        }
    }

    #[test]
    fn mixed_op_alpha_gradient_matches_finite_differences() {
        // L = ⟨dy, Σ_k softmax(α_r)_k x_k⟩ ⇒ dL/dα_rk = w_k (g_k − Σ_j w_j g_j), 0 off row r
        let (alpha, xs, dy) = data(1);
        let xr: Vec<&[f32]> = xs.iter().map(|x| x.as_slice()).collect();
        let row = 1;
        let num = finite_diff(&alpha, |a| dotv(&mixed_op(a, K, row, &xr), &dy), 1e-2);
        let (ana, _) = mixed_op_backward(&alpha, K, row, &xr, &dy);
        assert_fd("dalpha", &ana, &num);
    }

    #[test]
    fn mixed_op_input_gradients_match_finite_differences() {
        // dL/dx_k = w_k dy
        let (alpha, xs, dy) = data(2);
        let row = 2;
        let (_, dxs) = {
            let xr: Vec<&[f32]> = xs.iter().map(|x| x.as_slice()).collect();
            mixed_op_backward(&alpha, K, row, &xr, &dy)
        };
        for k in 0..K {
            let num = finite_diff(
                &xs[k],
                |xk| {
                    let mut xr: Vec<&[f32]> = xs.iter().map(|x| x.as_slice()).collect();
                    xr[k] = xk;
                    dotv(&mixed_op(&alpha, K, row, &xr), &dy)
                },
                1e-2,
            );
            assert_fd("dx", &dxs[k], &num);
        }
    }

    #[test]
    fn weighted_sum_gradients_match_finite_differences() {
        // dL/dw_rk = ⟨dy, x_k⟩, 0 off row r; dL/dx_k = w_k dy
        let (w, xs, dy) = data(3);
        let xr: Vec<&[f32]> = xs.iter().map(|x| x.as_slice()).collect();
        let row = 0;
        let (dw, dxs) = weighted_sum_backward(&w, K, row, &xr, &dy);
        let num = finite_diff(&w, |w| dotv(&weighted_sum(w, K, row, &xr), &dy), 1e-2);
        assert_fd("dw", &dw, &num);
        let num = finite_diff(
            &xs[1],
            |x1| {
                let mut xr = xr.clone();
                xr[1] = x1;
                dotv(&weighted_sum(&w, K, row, &xr), &dy)
            },
            1e-2,
        );
        assert_fd("dx1", &dxs[1], &num);
    }

    #[test]
    fn softmax_rows_gradient_matches_finite_differences() {
        // ∂s_j/∂α_i = s_j (δ_ij − s_i) ⇒ dα_i = s_i (ds_i − Σ_j s_j ds_j)
        let (alpha, _, _) = data(4);
        let ds = Rng::new(5).normal_vec(alpha.len(), 1.0);
        let s = softmax_rows(&alpha, K);
        let ana = softmax_rows_backward(&s, &ds, K);
        let num = finite_diff(&alpha, |a| dotv(&softmax_rows(a, K), &ds), 1e-2);
        assert_fd("softmax", &ana, &num);
    }

    #[test]
    fn softmax_rows_sum_to_one_and_survive_large_logits() {
        let s = softmax_rows(&[1000.0, 1000.0, -1000.0, 0.0, 0.0, 0.0], 3);
        assert!((s[0] - 0.5).abs() < 1e-6 && s[2] == 0.0);
        assert!((s[3..].iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }
}
