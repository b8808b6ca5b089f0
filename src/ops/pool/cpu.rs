//! CPU references of the pooling ops (f64 accumulation), written independently of the
//! GPU kernels: the backward references scatter from each output window, where the
//! kernels gather into each input pixel. They assume a valid [`Pool2d`] (see
//! [`Pool2d::validate`]) and an input of `numel(shape)` values.

use super::{Pool2d, PoolKind};

/// Output length `⌊(len + 2p − k)/s⌋ + 1` (for a valid config).
fn out_len(len: usize, p: &Pool2d) -> usize {
    (len + 2 * p.padding).saturating_sub(p.kernel) / p.stride.max(1) + 1
}

/// In-image range `[lo, hi)` along one axis of the window of output position `o`.
fn span(o: usize, len: usize, p: &Pool2d) -> (usize, usize) {
    let start = (o * p.stride) as isize - p.padding as isize;
    let lo = start.max(0) as usize;
    let hi = ((start + p.kernel as isize).max(0) as usize).min(len);
    (lo, hi)
}

/// Average divisor: k², or the number of in-image pixels of the window.
fn divisor(p: &Pool2d, ys: (usize, usize), xs: (usize, usize)) -> f64 {
    match p.kind {
        PoolKind::Avg { count_include_pad: true } => (p.kernel * p.kernel) as f64,
        _ => ((ys.1 - ys.0) * (xs.1 - xs.0)) as f64,
    }
}

/// In-plane index of the first maximal pixel of a window in row-major order (ties keep the earlier).
fn first_max(plane: &[f32], w: usize, ys: (usize, usize), xs: (usize, usize)) -> usize {
    let mut at = ys.0 * w + xs.0;
    for y in ys.0..ys.1 {
        for x in xs.0..xs.1 {
            if plane[y * w + x] > plane[at] {
                at = y * w + x;
            }
        }
    }
    at
}

/// Calls `f(plane_index, output_index, rows, cols)` for every output window of every plane.
fn each_window(shape: [usize; 4], p: &Pool2d, mut f: impl FnMut(usize, usize, (usize, usize), (usize, usize))) {
    let [n, c, h, w] = shape;
    let (oh, ow) = (out_len(h, p), out_len(w, p));
    for plane in 0..n * c {
        for oy in 0..oh {
            let ys = span(oy, h, p);
            for ox in 0..ow {
                f(plane, (plane * oh + oy) * ow + ox, ys, span(ox, w, p));
            }
        }
    }
}

/// Window pooling forward of `x` (NCHW `shape`): `[N, C, OH, OW]` values.
pub fn pool2d(x: &[f32], shape: [usize; 4], p: &Pool2d) -> Vec<f32> {
    let [n, c, h, w] = shape;
    let hw = h * w;
    let mut y = vec![0.0f32; n * c * out_len(h, p) * out_len(w, p)];
    each_window(shape, p, |plane, o, ys, xs| {
        let px = &x[plane * hw..(plane + 1) * hw];
        y[o] = match p.kind {
            PoolKind::Max => px[first_max(px, w, ys, xs)],
            PoolKind::Avg { .. } => {
                let sum: f64 =
                    (ys.0..ys.1).flat_map(|r| px[r * w + xs.0..r * w + xs.1].iter()).map(|&v| v as f64).sum();
                (sum / divisor(p, ys, xs)) as f32
            }
        };
    });
    y
}

/// Window pooling backward: ∂L/∂x from `x`, its `shape` and `dy` = ∂L/∂y. Average spreads
/// `dy_o / d_o` over the in-image window; max sends `dy_o` to the window's first maximum.
pub fn pool2d_backward(x: &[f32], shape: [usize; 4], dy: &[f32], p: &Pool2d) -> Vec<f32> {
    let [_, _, h, w] = shape;
    let hw = h * w;
    let mut dx = vec![0.0f64; x.len()];
    each_window(shape, p, |plane, o, ys, xs| {
        let base = plane * hw;
        let g = dy[o] as f64;
        match p.kind {
            PoolKind::Max => dx[base + first_max(&x[base..base + hw], w, ys, xs)] += g,
            PoolKind::Avg { .. } => {
                let share = g / divisor(p, ys, xs);
                for r in ys.0..ys.1 {
                    for v in &mut dx[base + r * w + xs.0..base + r * w + xs.1] {
                        *v += share;
                    }
                }
            }
        }
    });
    dx.into_iter().map(|v| v as f32).collect()
}

/// Global average pooling: `[N, C]` means over each H×W plane.
pub fn global_avg_pool(x: &[f32], shape: [usize; 4]) -> Vec<f32> {
    let [n, c, h, w] = shape;
    let hw = h * w;
    (0..n * c)
        .map(|pl| {
            let sum: f64 = x[pl * hw..(pl + 1) * hw].iter().map(|&v| v as f64).sum();
            (sum / hw as f64) as f32
        })
        .collect()
}

/// Global average pooling backward: `dx_{nchw} = dy_{nc} / (H·W)`.
pub fn global_avg_pool_backward(dy: &[f32], shape: [usize; 4]) -> Vec<f32> {
    let [n, c, h, w] = shape;
    let hw = h * w;
    (0..n * c * hw).map(|i| (dy[i / hw] as f64 / hw as f64) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::finite_diff;
    use crate::util::rng::Rng;

    /// Compares `grad` with the finite-difference gradient of L(x) = Σ f(x) · dy.
    fn check_grad(x: &[f32], dy: &[f32], f: impl Fn(&[f32]) -> Vec<f32>, grad: &[f32], what: &str) {
        let loss = |x: &[f32]| f(x).iter().zip(dy).map(|(&a, &b)| a as f64 * b as f64).sum();
        let num = finite_diff(x, loss, 1e-2);
        for (i, (a, n)) in grad.iter().zip(&num).enumerate() {
            assert!((*a as f64 - n).abs() < 1e-3, "{what}: element {i}: {a} vs {n}");
        }
    }

    fn configs() -> Vec<Pool2d> {
        vec![
            Pool2d::avg(3, 1, 1),
            Pool2d::avg(3, 2, 1),
            Pool2d::avg(2, 2, 0),
            Pool2d { kind: PoolKind::Avg { count_include_pad: true }, ..Pool2d::avg(3, 1, 1) },
            Pool2d::max(3, 1, 1),
            Pool2d::max(3, 2, 1),
        ]
    }

    #[test]
    fn pool2d_backward_matches_finite_differences() {
        // avg: dL/dx_i = Σ_{o ∋ i} dy_o / d_o;  max: dL/dx_i = Σ_{o : argmax(o) = i} dy_o.
        // Distinct values 0.1 apart keep every argmax fixed under the ±0.01 perturbation.
        let shape = [1, 2, 5, 4];
        let n = 40;
        let mut rng = Rng::new(7);
        let mut x: Vec<f32> = (0..n).map(|i| i as f32 * 0.1 - 2.0).collect();
        rng.shuffle(&mut x);
        for p in configs() {
            let ny = pool2d(&x, shape, &p).len();
            let dy = rng.normal_vec(ny, 1.0);
            let grad = pool2d_backward(&x, shape, &dy, &p);
            check_grad(&x, &dy, |x| pool2d(x, shape, &p), &grad, &format!("{p:?}"));
        }
    }

    #[test]
    fn global_avg_pool_backward_matches_finite_differences() {
        // dL/dx_{nchw} = dy_{nc} / (H·W)
        let shape = [2, 3, 3, 2];
        let mut rng = Rng::new(3);
        let x = rng.normal_vec(36, 1.0);
        let dy = rng.normal_vec(6, 1.0);
        let grad = global_avg_pool_backward(&dy, shape);
        check_grad(&x, &dy, |x| global_avg_pool(x, shape), &grad, "gap");
    }

    #[test]
    fn avg_divisor_counts_only_in_image_pixels_unless_asked() {
        // A constant image stays constant under count_include_pad = false; with it the
        // 3×3 corner window holds 4 in-image pixels of 9.
        let x = vec![1.0f32; 9];
        let shape = [1, 1, 3, 3];
        assert!(pool2d(&x, shape, &Pool2d::avg(3, 1, 1)).iter().all(|&v| v == 1.0));
        let with_pad = Pool2d { kind: PoolKind::Avg { count_include_pad: true }, ..Pool2d::avg(3, 1, 1) };
        let y = pool2d(&x, shape, &with_pad);
        assert!((y[0] - 4.0 / 9.0).abs() < 1e-7 && (y[4] - 1.0).abs() < 1e-7);
    }

    #[test]
    fn max_ties_go_to_the_first_pixel_in_row_major_order() {
        // All equal, 3×3 s1 p1 on 3×3: window (oy, ox) picks pixel (max(oy−1, 0), max(ox−1, 0)).
        let x = vec![0.5f32; 9];
        let dx = pool2d_backward(&x, [1, 1, 3, 3], &[1.0; 9], &Pool2d::max(3, 1, 1));
        assert_eq!(dx, vec![4.0, 2.0, 0.0, 2.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn padding_never_wins_the_max() {
        let x = vec![-3.0f32, -2.0, -5.0, -1.0];
        assert_eq!(pool2d(&x, [1, 1, 2, 2], &Pool2d::max(3, 2, 1)), vec![-1.0]);
    }
}
