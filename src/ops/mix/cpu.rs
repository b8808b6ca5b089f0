//! CPU references of the mix ops (f64 accumulation). `alpha` / `weights` are `[rows, k]`
//! row-major; every candidate slice in `xs` has the same length.

use super::Weighting;

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

/// One term of the term-mix references: `x` is `[n, cx, hw]` row-major and the term is its
/// channel slice `[offset, offset + c)`, weighted by column `col`.
#[derive(Debug, Clone, Copy)]
pub struct SliceTerm<'a> {
    /// The values, `[n, cx, hw]`.
    pub x: &'a [f32],
    /// Channels of `x`.
    pub cx: usize,
    /// First channel of the slice.
    pub offset: usize,
    /// Column of the weights row.
    pub col: usize,
}

/// The output geometry `[n, c, hw]` of a term mix.
#[derive(Debug, Clone, Copy)]
pub struct TermDims {
    /// Batch.
    pub n: usize,
    /// Channels of the output (and of every slice).
    pub c: usize,
    /// Spatial size H·W.
    pub hw: usize,
}

impl TermDims {
    fn len(&self) -> usize {
        self.n * self.c * self.hw
    }

    /// Index into the term's `x` of output element `i`: `b · Cx·HW + off·HW + i % (C·HW)`.
    fn source(&self, t: &SliceTerm, i: usize) -> usize {
        let chw = self.c * self.hw;
        (i / chw) * t.cx * self.hw + t.offset * self.hw + i % chw
    }
}

/// The weights of row `row`: its softmax or the raw values.
fn row_weights(weighting: Weighting, weights: &[f32], k: usize, row: usize) -> Vec<f64> {
    match weighting {
        Weighting::Softmax => edge_softmax(weights, k, row),
        Weighting::Raw => weights[row * k..(row + 1) * k].iter().map(|&v| v as f64).collect(),
    }
}

/// Term mix forward: `out = acc + Σ_t w(col_t) · slice_t(x_t)` (no `acc`: 0).
pub fn term_mix(
    weighting: Weighting,
    weights: &[f32],
    k: usize,
    row: usize,
    terms: &[SliceTerm],
    d: TermDims,
    acc: Option<&[f32]>,
) -> Vec<f32> {
    let w = row_weights(weighting, weights, k, row);
    (0..d.len())
        .map(|i| {
            let base = acc.map_or(0.0, |a| a[i] as f64);
            let sum: f64 = terms.iter().map(|t| w[t.col] * t.x[d.source(t, i)] as f64).sum();
            (base + sum) as f32
        })
        .collect()
}

/// Term mix input backward: for each term the full gradient of its `x`, `w(col_t) · dy` in
/// the slice and 0 elsewhere (terms reading the same `x` add up).
pub fn term_mix_backward_inputs(
    weighting: Weighting,
    weights: &[f32],
    k: usize,
    row: usize,
    terms: &[SliceTerm],
    d: TermDims,
    dy: &[f32],
) -> Vec<Vec<f32>> {
    let w = row_weights(weighting, weights, k, row);
    terms
        .iter()
        .map(|t| {
            let mut dx = vec![0.0f32; t.x.len()];
            for (i, &g) in dy.iter().enumerate() {
                dx[d.source(t, i)] = (w[t.col] * g as f64) as f32;
            }
            dx
        })
        .collect()
}

/// Term mix weight backward, `[rows, k]` and 0 outside `row`: with
/// `g_k = Σ_{t: col_t = k} ⟨dy, slice_t⟩`, softmax: `w_k (g_k − Σ_j w_j g_j)`; raw: `g_k`.
pub fn term_mix_backward_weights(
    weighting: Weighting,
    weights: &[f32],
    k: usize,
    row: usize,
    terms: &[SliceTerm],
    d: TermDims,
    dy: &[f32],
) -> Vec<f32> {
    let mut g = vec![0.0f64; k];
    for t in terms {
        g[t.col] += dy.iter().enumerate().map(|(i, &v)| v as f64 * t.x[d.source(t, i)] as f64).sum::<f64>();
    }
    let mut dw = vec![0.0f32; weights.len()];
    let w = row_weights(weighting, weights, k, row);
    let mean: f64 = w.iter().zip(&g).map(|(w, g)| w * g).sum();
    for j in 0..k {
        dw[row * k + j] = match weighting {
            Weighting::Softmax => w[j] * (g[j] - mean),
            Weighting::Raw => g[j],
        } as f32;
    }
    dw
}

/// Nested weights of group `S`, `[rows, k + 1]`: `w_k` (k ∉ S), `w_k / W` (k ∈ S), then `W = Σ_{m∈S} w_m`.
pub fn nested_weights(alpha: &[f32], k: usize, group: &[usize]) -> Vec<f32> {
    softmax_f64(alpha, k)
        .chunks(k)
        .flat_map(|w| {
            let mass: f64 = group.iter().map(|&m| w[m]).sum();
            let scaled = w.iter().enumerate().map(move |(j, &v)| if group.contains(&j) { v / mass } else { v });
            scaled.chain(std::iter::once(mass)).map(|v| v as f32).collect::<Vec<_>>()
        })
        .collect()
}

/// `dα` of [`nested_weights`] from `d` `[rows, k + 1]`: `dw_k = d_k` (k ∉ S),
/// `dw_k = d_k / W − Σ_{m∈S} d_m w_m / W² + d_K` (k ∈ S), `dα = w ⊙ (dw − Σ_j w_j dw_j)`.
pub fn nested_weights_backward(alpha: &[f32], k: usize, group: &[usize], d: &[f32]) -> Vec<f32> {
    softmax_f64(alpha, k)
        .chunks(k)
        .zip(d.chunks(k + 1))
        .flat_map(|(w, d)| {
            let mass: f64 = group.iter().map(|&m| w[m]).sum();
            let sd: f64 = group.iter().map(|&m| d[m] as f64 * w[m]).sum();
            let dw: Vec<f64> = (0..k)
                .map(|j| {
                    let dj = d[j] as f64;
                    if group.contains(&j) {
                        dj / mass - sd / (mass * mass) + d[k] as f64
                    } else {
                        dj
                    }
                })
                .collect();
            let mean: f64 = w.iter().zip(&dw).map(|(w, g)| w * g).sum();
            w.iter().zip(&dw).map(|(w, g)| (w * (g - mean)) as f32).collect::<Vec<_>>()
        })
        .collect()
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

    /// Term-mix test data: x [2, 5, 3] (slices of width 2 at offsets 0 and 3), a whole
    /// [2, 2, 3] term, weights [2, 4] (column 3 has no term), dy [2, 2, 3].
    fn term_data(seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
        let mut r = Rng::new(seed);
        (r.normal_vec(30, 1.0), r.normal_vec(12, 1.0), r.normal_vec(8, 1.0), r.normal_vec(12, 1.0))
    }

    const TD: TermDims = TermDims { n: 2, c: 2, hw: 3 };

    fn term_list<'a>(wide: &'a [f32], whole: &'a [f32]) -> [SliceTerm<'a>; 3] {
        [
            SliceTerm { x: wide, cx: 5, offset: 0, col: 0 },
            SliceTerm { x: wide, cx: 5, offset: 3, col: 2 },
            SliceTerm { x: whole, cx: 2, offset: 0, col: 2 },
        ]
    }

    #[test]
    fn term_mix_weight_gradients_match_finite_differences() {
        // softmax: dL/dα_rk = w_k (g_k − Σ_j w_j g_j), g_k = Σ_{t: col_t = k} ⟨dy, slice_t⟩;
        // raw: dL/dw_rk = g_k; 0 off row r and g_3 = 0 (no term) still moves the softmax.
        let (wide, whole, weights, dy) = term_data(6);
        for weighting in [Weighting::Softmax, Weighting::Raw] {
            let num = finite_diff(
                &weights,
                |w| dotv(&term_mix(weighting, w, 4, 1, &term_list(&wide, &whole), TD, None), &dy),
                1e-2,
            );
            let ana = term_mix_backward_weights(weighting, &weights, 4, 1, &term_list(&wide, &whole), TD, &dy);
            assert_fd("term dw", &ana, &num);
        }
    }

    #[test]
    fn term_mix_input_gradients_match_finite_differences() {
        // dL/dx = Σ_{t reading x} w(col_t) · dy placed in slice_t, 0 outside the slices
        let (wide, whole, weights, dy) = term_data(7);
        let acc = Rng::new(8).normal_vec(12, 1.0);
        let dx = term_mix_backward_inputs(Weighting::Softmax, &weights, 4, 0, &term_list(&wide, &whole), TD, &dy);
        let dwide: Vec<f32> = dx[0].iter().zip(&dx[1]).map(|(a, b)| a + b).collect();
        let loss = |x: &[f32], whole: &[f32]| {
            dotv(&term_mix(Weighting::Softmax, &weights, 4, 0, &term_list(x, whole), TD, Some(&acc)), &dy)
        };
        assert_fd("dwide", &dwide, &finite_diff(&wide, |x| loss(x, &whole), 1e-2));
        assert_fd("dwhole", &dx[2], &finite_diff(&whole, |x| loss(&wide, x), 1e-2));
        assert!(dwide[2 * 3..3 * 3].iter().all(|&v| v == 0.0), "channel 2 is in no slice");
    }

    #[test]
    fn nested_weights_backward_matches_finite_differences() {
        // out_k = w_k (k ∉ S), w_k / W (k ∈ S), out_K = W ⇒ dw_k = d_k / W − Σ_{m∈S} d_m w_m / W² + d_K
        // on S, d_k off S; then the softmax backward dα = w ⊙ (dw − Σ_j w_j dw_j)
        let mut r = Rng::new(9);
        let alpha = r.normal_vec(2 * 5, 1.0);
        let d = r.normal_vec(2 * 6, 1.0);
        for group in [&[2usize, 3][..], &[1], &[0, 1, 2, 3, 4]] {
            let ana = nested_weights_backward(&alpha, 5, group, &d);
            let num = finite_diff(&alpha, |a| dotv(&nested_weights(a, 5, group), &d), 1e-2);
            assert_fd("nested", &ana, &num);
        }
    }

    #[test]
    fn nested_weights_recombine_to_the_softmax() {
        // w_k = out_k (k ∉ S) and W · out_k (k ∈ S)
        let alpha = Rng::new(10).normal_vec(5, 1.0);
        let s = softmax_rows(&alpha, 5);
        let nw = nested_weights(&alpha, 5, &[2, 3]);
        for k in 0..5 {
            let back = if k == 2 || k == 3 { nw[k] * nw[5] } else { nw[k] };
            assert!((back - s[k]).abs() < 1e-6, "{k}: {back} vs {}", s[k]);
        }
    }
}
