//! CPU references of the convolution ops (f64 accumulation): the ground truth of the GPU tests.
//!
//! All four walk the same list of taps `(y index, x index, w index)`, one per product
//! `w[co, ci, ky, kx] · x[n, c, iy, ix]` that lands inside the image, so forward and both
//! backwards are transposes of one another by construction. Slices must match `s`'s shapes.

use super::ConvShape;

/// Calls `f(yi, xi, wi)` for every multiply-add of the forward pass (taps in the padding are skipped).
fn for_each_tap(s: &ConvShape, mut f: impl FnMut(usize, usize, usize)) {
    let (cin_g, cout_g) = (s.cin_g(), s.cout_g());
    let [sh, sw] = s.p.stride;
    let [ph, pw] = s.p.padding;
    let [dh, dw] = s.p.dilation;
    for n in 0..s.n {
        for co in 0..s.c_out {
            let g = co / cout_g;
            for oy in 0..s.oh {
                for ox in 0..s.ow {
                    let yi = ((n * s.c_out + co) * s.oh + oy) * s.ow + ox;
                    for ci in 0..cin_g {
                        let c = g * cin_g + ci;
                        for ky in 0..s.kh {
                            // iy = oy·sh − ph + ky·dh, skipped when it falls in the padding.
                            let Some(iy) = (oy * sh + ky * dh).checked_sub(ph) else {
                                continue;
                            };
                            if iy >= s.h {
                                continue;
                            }
                            for kx in 0..s.kw {
                                let Some(ix) = (ox * sw + kx * dw).checked_sub(pw) else {
                                    continue;
                                };
                                if ix >= s.w {
                                    continue;
                                }
                                let xi = ((n * s.c_in + c) * s.h + iy) * s.w + ix;
                                let wi = ((co * cin_g + ci) * s.kh + ky) * s.kw + kx;
                                f(yi, xi, wi);
                            }
                        }
                    }
                }
            }
        }
    }
}

fn to_f32(v: Vec<f64>) -> Vec<f32> {
    v.into_iter().map(|a| a as f32).collect()
}

/// `y[n, co, oy, ox] = b[co] + Σ_{ci, ky, kx} w[co, ci, ky, kx] · x[n, g(co)·Cg + ci, oy·sh − ph + ky·dh, ox·sw − pw + kx·dw]`.
pub fn conv2d_forward(x: &[f32], w: &[f32], bias: Option<&[f32]>, s: &ConvShape) -> Vec<f32> {
    let plane = s.oh * s.ow;
    let mut y: Vec<f64> =
        (0..s.n * s.c_out * plane).map(|i| bias.map_or(0.0, |b| b[(i / plane) % s.c_out] as f64)).collect();
    for_each_tap(s, |yi, xi, wi| y[yi] += w[wi] as f64 * x[xi] as f64);
    to_f32(y)
}

/// `∂L/∂x[n, c, iy, ix] = Σ` over the taps that read `x[n, c, iy, ix]` of `w[co, ci, ky, kx] · dy[n, co, oy, ox]`.
pub fn conv2d_backward_data(dy: &[f32], w: &[f32], s: &ConvShape) -> Vec<f32> {
    let mut dx = vec![0.0f64; s.n * s.c_in * s.h * s.w];
    for_each_tap(s, |yi, xi, wi| dx[xi] += w[wi] as f64 * dy[yi] as f64);
    to_f32(dx)
}

/// `∂L/∂w[co, ci, ky, kx] = Σ_{n, oy, ox} dy[n, co, oy, ox] · x[n, g(co)·Cg + ci, oy·sh − ph + ky·dh, ox·sw − pw + kx·dw]`.
pub fn conv2d_backward_weight(dy: &[f32], x: &[f32], s: &ConvShape) -> Vec<f32> {
    let mut dw = vec![0.0f64; s.c_out * s.cin_g() * s.kh * s.kw];
    for_each_tap(s, |yi, xi, wi| dw[wi] += dy[yi] as f64 * x[xi] as f64);
    to_f32(dw)
}

/// `∂L/∂b[c] = Σ_{n, y, x} dy[n, c, y, x]` for `dy` of shape `[N, C, H, W]`.
pub fn conv2d_backward_bias(dy: &[f32], dy_shape: [usize; 4]) -> Vec<f32> {
    let [_, c, h, w] = dy_shape;
    let plane = h * w;
    let mut db = vec![0.0f64; c];
    for (i, &g) in dy.iter().enumerate() {
        db[(i / plane) % c] += g as f64;
    }
    to_f32(db)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::conv::Conv2dParams;
    use crate::ops::testing::finite_diff;
    use crate::util::rng::Rng;

    fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(&u, &v)| u as f64 * v as f64).sum()
    }

    fn assert_near(what: &str, ana: &[f32], num: &[f64]) {
        assert_eq!(ana.len(), num.len(), "{what}");
        for (i, (a, n)) in ana.iter().zip(num).enumerate() {
            assert!((*a as f64 - n).abs() < 2e-3 * (1.0 + n.abs()), "{what}[{i}]: {a} vs {n}");
        }
    }

    /// Checks all three backward references against central differences of
    /// `L = Σ r ⊙ conv(x, w, b)` for a random `r`.
    fn check(x_shape: [usize; 4], w_shape: [usize; 4], p: Conv2dParams) {
        let s = ConvShape::new(x_shape, w_shape, &p).unwrap();
        let mut rng = Rng::new(7);
        let x = rng.normal_vec(s.x_shape().iter().product(), 1.0);
        let w = rng.normal_vec(s.w_shape().iter().product(), 1.0);
        let b = rng.normal_vec(s.c_out, 1.0);
        let r = rng.normal_vec(s.y_shape().iter().product(), 1.0);
        // L is linear in each argument, so central differences are exact up to rounding.
        // dL/dx = convᵀ(r, w)
        let num = finite_diff(&x, |x| dot(&conv2d_forward(x, &w, Some(&b), &s), &r), 1e-2);
        assert_near("dx", &conv2d_backward_data(&r, &w, &s), &num);
        // dL/dw[co, ci, ky, kx] = Σ r[n, co, oy, ox] · x[n, c, iy, ix]
        let num = finite_diff(&w, |w| dot(&conv2d_forward(&x, w, Some(&b), &s), &r), 1e-2);
        assert_near("dw", &conv2d_backward_weight(&r, &x, &s), &num);
        // dL/db[c] = Σ_{n, oy, ox} r[n, c, oy, ox]
        let num = finite_diff(&b, |b| dot(&conv2d_forward(&x, &w, Some(b), &s), &r), 1e-2);
        assert_near("db", &conv2d_backward_bias(&r, s.y_shape()), &num);
    }

    #[test]
    fn backward_refs_match_finite_differences_plain() {
        check([2, 3, 5, 4], [4, 3, 3, 3], Conv2dParams::same(3));
    }

    #[test]
    fn backward_refs_match_finite_differences_strided_dilated_grouped() {
        let p = Conv2dParams { stride: [2, 1], padding: [1, 2], dilation: [2, 1], groups: 2 };
        check([1, 4, 6, 5], [6, 2, 3, 2], p);
    }

    #[test]
    fn backward_refs_match_finite_differences_depthwise_multiplier() {
        check([2, 3, 5, 5], [6, 1, 3, 3], Conv2dParams::same(3).with_stride(2).with_groups(3));
    }

    #[test]
    fn forward_of_a_delta_kernel_is_a_shift() {
        // A 3×3 kernel with a single 1 at (0, 0) and padding 1 reads x[iy − 1, ix − 1].
        let s = ConvShape::new([1, 1, 3, 3], [1, 1, 3, 3], &Conv2dParams::same(3)).unwrap();
        let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let mut w = vec![0.0f32; 9];
        w[0] = 1.0;
        let y = conv2d_forward(&x, &w, Some(&[0.5]), &s);
        assert_eq!(y, vec![0.5, 0.5, 0.5, 0.5, 1.5, 2.5, 0.5, 4.5, 5.5]);
    }
}
