//! CPU references of the re-parameterization ops (f64 accumulation).

/// `K̂[o] = g_o · K[o] / sqrt(‖K[o]‖² + eps)` for `o < filters`; `g = 1` without a gain.
pub fn kernel_norm(k: &[f32], filters: usize, gain: Option<&[f32]>, eps: f32) -> Vec<f32> {
    let f = k.len() / filters.max(1);
    let mut out = Vec::with_capacity(k.len());
    for (o, row) in k.chunks(f.max(1)).enumerate().take(filters) {
        let n = norm(row, eps);
        let g = gain.map_or(1.0, |g| g[o] as f64);
        out.extend(row.iter().map(|&v| (g * v as f64 / n) as f32));
    }
    out
}

fn norm(row: &[f32], eps: f32) -> f64 {
    (row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() + eps as f64).sqrt()
}

/// Gradients of [`kernel_norm`]: with `n = sqrt(‖K‖² + eps)` and `u = K/n` per filter,
/// `dK = (g/n)(dK̂ − u⟨u, dK̂⟩)` and `dg = ⟨u, dK̂⟩`. Returns `(dK, dg)`.
pub fn kernel_norm_backward(
    k: &[f32],
    filters: usize,
    gain: Option<&[f32]>,
    eps: f32,
    dy: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let f = k.len() / filters.max(1);
    let mut dk = Vec::with_capacity(k.len());
    let mut dg = Vec::with_capacity(filters);
    for (o, (row, drow)) in k.chunks(f.max(1)).zip(dy.chunks(f.max(1))).enumerate().take(filters) {
        let n = norm(row, eps);
        let g = gain.map_or(1.0, |g| g[o] as f64);
        let udot = row.iter().zip(drow).map(|(&v, &d)| v as f64 * d as f64).sum::<f64>() / n;
        dk.extend(row.iter().zip(drow).map(|(&v, &d)| ((g / n) * (d as f64 - v as f64 / n * udot)) as f32));
        dg.push(udot as f32);
    }
    (dk, dg)
}

/// Zero-pads `planes` s×s kernels to the centre of t×t (t ≥ s, t − s even).
pub fn pad_kernel(k: &[f32], planes: usize, s: usize, t: usize) -> Vec<f32> {
    let off = (t - s) / 2;
    let mut out = vec![0.0; planes * t * t];
    for pl in 0..planes {
        for y in 0..s {
            for x in 0..s {
                out[pl * t * t + (y + off) * t + x + off] = k[pl * s * s + y * s + x];
            }
        }
    }
    out
}

/// Crops the centre s×s of `planes` t×t kernels (the adjoint of [`pad_kernel`]).
pub fn crop_kernel(k: &[f32], planes: usize, t: usize, s: usize) -> Vec<f32> {
    let off = (t - s) / 2;
    let mut out = Vec::with_capacity(planes * s * s);
    for pl in 0..planes {
        for y in 0..s {
            out.extend_from_slice(&k[pl * t * t + (y + off) * t + off..][..s]);
        }
    }
    out
}

/// `K = Σ_m w_m · pad_t(K̂_m)`: `kernels[m]` holds `planes` (= O·I) `sizes[m]`² kernels.
pub fn merge_kernels(ws: &[f32], kernels: &[&[f32]], sizes: &[usize], planes: usize, t: usize) -> Vec<f32> {
    let mut acc = vec![0.0f64; planes * t * t];
    for ((&w, k), &s) in ws.iter().zip(kernels).zip(sizes) {
        for (a, v) in acc.iter_mut().zip(pad_kernel(k, planes, s, t)) {
            *a += w as f64 * v as f64;
        }
    }
    acc.into_iter().map(|v| v as f32).collect()
}

/// Gradients of [`merge_kernels`]: `dw_m = ⟨dK, pad(K̂_m)⟩`, `dK̂_m = w_m · crop(dK)`.
/// Returns `(dw, dK̂)`.
pub fn merge_kernels_backward(
    ws: &[f32],
    kernels: &[&[f32]],
    sizes: &[usize],
    planes: usize,
    t: usize,
    dk: &[f32],
) -> (Vec<f32>, Vec<Vec<f32>>) {
    let mut dw = Vec::with_capacity(ws.len());
    let mut dks = Vec::with_capacity(ws.len());
    for ((&w, k), &s) in ws.iter().zip(kernels).zip(sizes) {
        let c = crop_kernel(dk, planes, t, s);
        dw.push(c.iter().zip(k.iter()).map(|(&a, &b)| a as f64 * b as f64).sum::<f64>() as f32);
        dks.push(c.iter().map(|&v| (w as f64 * v as f64) as f32).collect());
    }
    (dw, dks)
}

/// 3×3 stride-1 average pool with padding 1 that divides by the in-image count.
pub fn avgpool3(x: &[f32], shape: [usize; 4]) -> Vec<f32> {
    let [n, c, h, w] = shape;
    let mut out = Vec::with_capacity(x.len());
    for plane in x.chunks(h * w).take(n * c) {
        for y in 0..h {
            for xx in 0..w {
                let (ys, xs) = (window(y, h), window(xx, w));
                let sum: f64 = ys.clone().flat_map(|a| xs.clone().map(move |b| plane[a * w + b] as f64)).sum();
                out.push((sum / (ys.len() * xs.len()) as f64) as f32);
            }
        }
    }
    out
}

/// In-image positions of the 3-wide window centred at `v` on an axis of length `len`.
fn window(v: usize, len: usize) -> std::ops::Range<usize> {
    v.saturating_sub(1)..(v + 2).min(len)
}

/// `y = a·x + b·avgpool3x3(x)` (count_include_pad = false).
pub fn skip_avgpool(x: &[f32], shape: [usize; 4], a: f32, b: f32) -> Vec<f32> {
    let pool = avgpool3(x, shape);
    x.iter().zip(&pool).map(|(&v, &p)| (a as f64 * v as f64 + b as f64 * p as f64) as f32).collect()
}

/// Gradients of [`skip_avgpool`]: `dx = a·dy + b·avgpool3ᵀ(dy)` with
/// `avgpool3ᵀ(dy)[p] = Σ_{q ∈ window(p)} dy[q] / count(q)`, `da = ⟨x, dy⟩`, `db = ⟨avgpool3(x), dy⟩`.
/// Returns `(dx, da, db)`.
pub fn skip_avgpool_backward(x: &[f32], shape: [usize; 4], a: f32, b: f32, dy: &[f32]) -> (Vec<f32>, f32, f32) {
    let [n, c, h, w] = shape;
    let mut dx = vec![0.0f64; x.len()];
    for pl in 0..n * c {
        for y in 0..h {
            for xx in 0..w {
                let q = pl * h * w + y * w + xx;
                let (ys, xs) = (window(y, h), window(xx, w));
                let share = dy[q] as f64 / (ys.len() * xs.len()) as f64;
                for yy in ys {
                    for xq in xs.clone() {
                        dx[pl * h * w + yy * w + xq] += b as f64 * share;
                    }
                }
                dx[q] += a as f64 * dy[q] as f64;
            }
        }
    }
    let pool = avgpool3(x, shape);
    let da = x.iter().zip(dy).map(|(&v, &d)| v as f64 * d as f64).sum::<f64>();
    let db = pool.iter().zip(dy).map(|(&v, &d)| v as f64 * d as f64).sum::<f64>();
    (dx.into_iter().map(|v| v as f32).collect(), da as f32, db as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::finite_diff;
    use crate::util::rng::Rng;

    fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
    }

    fn close(what: &str, ana: &[f32], num: &[f64]) {
        for (i, (a, n)) in ana.iter().zip(num).enumerate() {
            assert!((*a as f64 - n).abs() < 2e-3 * (1.0 + n.abs()), "{what}[{i}]: {a} vs {n}");
        }
    }

    #[test]
    fn kernel_norm_gives_gain_times_unit_norm() {
        let k = Rng::new(1).normal_vec(3 * 12, 1.0);
        let g = [0.5f32, 2.0, -1.0];
        let y = kernel_norm(&k, 3, Some(&g), 0.0);
        for (row, g) in y.chunks(12).zip(g) {
            let n = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
            assert!((n - (g as f64).abs()).abs() < 1e-5, "{n} vs {g}");
        }
    }

    #[test]
    fn kernel_norm_backward_matches_finite_differences() {
        // dK = (g/n)(dK̂ − u⟨u, dK̂⟩), dg = ⟨u, dK̂⟩ with u = K/n, n = sqrt(‖K‖² + eps)
        let (filters, f, eps) = (3, 5, 1e-6);
        let k = Rng::new(2).normal_vec(filters * f, 1.0);
        let g = vec![0.7f32, -1.3, 2.0];
        let dy = Rng::new(3).normal_vec(filters * f, 1.0);
        let (dk, dg) = kernel_norm_backward(&k, filters, Some(&g), eps, &dy);
        let num_k = finite_diff(&k, |k| dot(&kernel_norm(k, filters, Some(&g), eps), &dy), 1e-3);
        close("dK", &dk, &num_k);
        let num_g = finite_diff(&g, |g| dot(&kernel_norm(&k, filters, Some(g), eps), &dy), 1e-3);
        close("dg", &dg, &num_g);
    }

    #[test]
    fn pad_and_crop_are_adjoint() {
        // ⟨pad(a), b⟩ = ⟨a, crop(b)⟩
        let a = Rng::new(4).normal_vec(2, 1.0);
        let b = Rng::new(5).normal_vec(2 * 9, 1.0);
        let lhs = dot(&pad_kernel(&a, 2, 1, 3), &b);
        let rhs = dot(&a, &crop_kernel(&b, 2, 3, 1));
        assert!((lhs - rhs).abs() < 1e-6);
    }

    #[test]
    fn merge_kernels_backward_matches_finite_differences() {
        // dw_m = ⟨dK, pad(K̂_m)⟩, dK̂_m = w_m · crop(dK)
        let planes = 2;
        let k1 = Rng::new(6).normal_vec(planes, 1.0);
        let k3 = Rng::new(7).normal_vec(planes * 9, 1.0);
        let ws = vec![0.3f32, 0.7];
        let dk = Rng::new(8).normal_vec(planes * 9, 1.0);
        let sizes = [1, 3];
        let (dw, dks) = merge_kernels_backward(&ws, &[&k1, &k3], &sizes, planes, 3, &dk);
        let num_w = finite_diff(&ws, |w| dot(&merge_kernels(w, &[&k1, &k3], &sizes, planes, 3), &dk), 1e-3);
        close("dw", &dw, &num_w);
        let num_1 = finite_diff(&k1, |k| dot(&merge_kernels(&ws, &[k, &k3], &sizes, planes, 3), &dk), 1e-3);
        close("dK1", &dks[0], &num_1);
        let num_3 = finite_diff(&k3, |k| dot(&merge_kernels(&ws, &[&k1, k], &sizes, planes, 3), &dk), 1e-3);
        close("dK3", &dks[1], &num_3);
    }

    #[test]
    fn skip_avgpool_backward_matches_finite_differences() {
        // dx = a·dy + b·avgpool3ᵀ(dy), da = ⟨x, dy⟩, db = ⟨avgpool3(x), dy⟩
        let shape = [1, 2, 5, 3];
        let x = Rng::new(9).normal_vec(30, 1.0);
        let dy = Rng::new(10).normal_vec(30, 1.0);
        let (a, b) = (0.4f32, -1.1f32);
        let (dx, da, db) = skip_avgpool_backward(&x, shape, a, b, &dy);
        let num_x = finite_diff(&x, |x| dot(&skip_avgpool(x, shape, a, b), &dy), 1e-3);
        close("dx", &dx, &num_x);
        let num_ab = finite_diff(&[a, b], |ab| dot(&skip_avgpool(&x, shape, ab[0], ab[1]), &dy), 1e-3);
        close("da db", &[da, db], &num_ab);
    }
}
