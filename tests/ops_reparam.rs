//! Re-parameterization ops (kernel normalization, merged conv kernel, skip + avg pool as one
//! depthwise 3×3) on the GPU against their CPU references and against the unmerged ops.

mod common;
use common::*;
use wgnas::ops::conv::{self, Conv2dParams};
use wgnas::ops::pool::{self, Pool2d};
use wgnas::ops::reparam::{self, cpu, SkipPool, KNORM_EPS};
use wgnas::ops::{eltwise, testing::assert_close};
use wgnas::tensor::tape::{Tape, Var};

#[test]
fn kernel_norm_forward_and_backward_match_reference() {
    // [5,3,3,3] with a gain, [7,3,1,1] without, and a filter of 360 elements (past one workgroup).
    for (shape, with_gain) in [([5usize, 3, 3, 3], true), ([7, 3, 1, 1], false), ([2, 40, 3, 3], true)] {
        let n: usize = shape.iter().product();
        let o = shape[0];
        let k = randn(1, n);
        let g: Vec<f32> = randn(2, o).iter().map(|v| v + 0.5).collect();
        let dy = randn(3, n);
        let gain = with_gain.then_some(g.as_slice());
        let (gk, gg, gdy) = (up(&k, &shape), up(&g, &[o]), up(&dy, &shape));
        let gpu_gain = with_gain.then_some(&gg);

        let y = down(&reparam::kernel_norm_forward(gpu(), &gk, gpu_gain).unwrap());
        assert_close("knorm fwd", &y, &cpu::kernel_norm(&k, o, gain, KNORM_EPS), RTOL);
        for (f, row) in y.chunks(n / o).enumerate() {
            let norm = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
            let want = gain.map_or(1.0, |g| g[f].abs() as f64);
            assert!((norm - want).abs() < 1e-5 * (1.0 + want), "filter {f}: norm {norm}, want {want}");
        }

        let (dk, dg) = cpu::kernel_norm_backward(&k, o, gain, KNORM_EPS, &dy);
        let gdk = reparam::kernel_norm_backward_kernel(gpu(), &gk, gpu_gain, &gdy).unwrap();
        assert_close("knorm dK", &down(&gdk), &dk, RTOL);
        let gdg = reparam::kernel_norm_backward_gain(gpu(), &gk, &gdy).unwrap();
        assert_close("knorm dg", &down(&gdg), &dg, RTOL);
    }
}

/// O = 5, I = 3 candidates: a 1×1 and a 3×3, with weights in row 1, columns [3, 0] of a [2, 4] tensor.
struct MergeCase {
    k1: Vec<f32>,
    k3: Vec<f32>,
    w: Vec<f32>,
    cols: [usize; 2],
}

fn merge_case() -> MergeCase {
    MergeCase { k1: randn(11, 15), k3: randn(12, 15 * 9), w: randn(13, 8), cols: [3, 0] }
}

impl MergeCase {
    fn wt(&self) -> [f32; 2] {
        [self.w[4 + self.cols[0]], self.w[4 + self.cols[1]]]
    }
}

#[test]
fn merged_conv_equals_sum_of_separate_convs() {
    // conv(x, Σ_m w_m pad(K̂_m)) = Σ_m w_m conv(x, pad(K̂_m)) (linearity), checked with ops::conv.
    let c = merge_case();
    let (gk1, gk3, gw) = (up(&c.k1, &[5, 3, 1, 1]), up(&c.k3, &[5, 3, 3, 3]), up(&c.w, &[2, 4]));
    let merged = reparam::merge_kernels_forward(gpu(), &gw, 1, &c.cols, &[&gk1, &gk3], 3).unwrap();
    let x = up(&randn(14, 2 * 3 * 7 * 9), &[2, 3, 7, 9]);
    let p = Conv2dParams::same(3);
    let y = conv::conv2d_forward(gpu(), &x, &merged, None, &p).unwrap();

    let [w1, w3] = c.wt();
    let k1_pad = up(&cpu::pad_kernel(&c.k1, 15, 1, 3), &[5, 3, 3, 3]);
    let y1 = conv::conv2d_forward(gpu(), &x, &k1_pad, None, &p).unwrap();
    let y3 = conv::conv2d_forward(gpu(), &x, &gk3, None, &p).unwrap();
    let sum = eltwise::scale(gpu(), &y3, w3).unwrap();
    eltwise::axpy(gpu(), &sum, w1, &y1).unwrap();
    assert_close("merged conv", &down(&y), &down(&sum), RTOL);
}

#[test]
fn merge_kernels_forward_and_backward_match_reference() {
    let c = merge_case();
    let (gk1, gk3, gw) = (up(&c.k1, &[5, 3, 1, 1]), up(&c.k3, &[5, 3, 3, 3]), up(&c.w, &[2, 4]));
    let wt = c.wt();
    let sizes = [1, 3];
    let merged = reparam::merge_kernels_forward(gpu(), &gw, 1, &c.cols, &[&gk1, &gk3], 3).unwrap();
    assert_close("merge fwd", &down(&merged), &cpu::merge_kernels(&wt, &[&c.k1, &c.k3], &sizes, 15, 3), RTOL);

    let dk = randn(15, 15 * 9);
    let gdk = up(&dk, &[5, 3, 3, 3]);
    let (dw, dks) = cpu::merge_kernels_backward(&wt, &[&c.k1, &c.k3], &sizes, 15, 3, &dk);
    let shapes: [&[usize]; 2] = [&[5, 3, 1, 1], &[5, 3, 3, 3]];
    let got = reparam::merge_kernels_backward_kernels(gpu(), &gw, 1, &c.cols, &shapes, &gdk, &[true, true]).unwrap();
    assert_close("merge dK1", &down(got[0].as_ref().unwrap()), &dks[0], RTOL);
    assert_close("merge dK3", &down(got[1].as_ref().unwrap()), &dks[1], RTOL);
    let gdw = down(&reparam::merge_kernels_backward_weights(gpu(), &gw, 1, &c.cols, &[&gk1, &gk3], &gdk).unwrap());
    let mut want = vec![0.0f32; 8];
    want[4 + c.cols[0]] = dw[0];
    want[4 + c.cols[1]] = dw[1];
    assert_close("merge dw", &gdw, &want, RTOL);
}

/// a·x + b·avgpool(x) with the unmerged ops (ops::pool, ops::eltwise).
fn skip_pool_reference(x: &wgnas::Tensor, a: f32, b: f32) -> Vec<f32> {
    let pooled = pool::pool2d_forward(gpu(), x, &Pool2d::avg(3, 1, 1)).unwrap();
    let y = eltwise::scale(gpu(), &pooled, b).unwrap();
    eltwise::axpy(gpu(), &y, a, x).unwrap();
    down(&y)
}

#[test]
fn skip_avgpool_equals_skip_plus_pool_border_pixels_included() {
    // Odd sizes, batch 1, 3 channels, and a case past one workgroup and one weight-partial chunk.
    for shape in [[1usize, 3, 5, 7], [2, 5, 9, 3], [1, 1, 1, 1], [2, 3, 41, 37]] {
        let n: usize = shape.iter().product();
        let xs = randn(21, n);
        let w = randn(22, 6);
        let sp = SkipPool { row: 1, col_skip: Some(2), col_pool: Some(0) };
        let (a, b) = (w[5], w[3]);
        let (x, gw) = (up(&xs, &shape), up(&w, &[2, 3]));
        let y = down(&reparam::skip_avgpool_forward(gpu(), &gw, &sp, &x).unwrap());
        assert_close("dwmerge vs pool+eltwise", &y, &skip_pool_reference(&x, a, b), RTOL);
        assert_close("dwmerge vs cpu", &y, &cpu::skip_avgpool(&xs, shape, a, b), RTOL);

        let dy = randn(23, n);
        let gdy = up(&dy, &shape);
        let (dx, da, db) = cpu::skip_avgpool_backward(&xs, shape, a, b, &dy);
        let gdx = down(&reparam::skip_avgpool_backward_x(gpu(), &gw, &sp, &gdy).unwrap());
        assert_close("dwmerge dx", &gdx, &dx, RTOL);
        // dx also equals a·dy + the avg-pool backward of b·dy.
        let pool_dx = pool::pool2d_backward(gpu(), &x, &gdy, &Pool2d::avg(3, 1, 1)).unwrap();
        let composed = eltwise::scale(gpu(), &pool_dx, b).unwrap();
        eltwise::axpy(gpu(), &composed, a, &gdy).unwrap();
        assert_close("dwmerge dx vs pool bwd", &gdx, &down(&composed), RTOL);
        let gdw = down(&reparam::skip_avgpool_backward_weights(gpu(), &gw, &sp, &x, &gdy).unwrap());
        assert_close("dwmerge dw", &gdw, &[0.0, 0.0, 0.0, db, 0.0, da], RTOL);
    }
}

#[test]
fn skip_avgpool_with_one_candidate_missing() {
    // Only the pool (a = 0), on a [M] weights vector.
    let shape = [1usize, 3, 5, 7];
    let xs = randn(31, 105);
    let w = [0.0f32, 0.8];
    let sp = SkipPool { row: 0, col_skip: None, col_pool: Some(1) };
    let x = up(&xs, &shape);
    let y = down(&reparam::skip_avgpool_forward(gpu(), &up(&w, &[2]), &sp, &x).unwrap());
    assert_close("pool only", &y, &cpu::skip_avgpool(&xs, shape, 0.0, 0.8), RTOL);
}

#[test]
fn bad_shapes_and_columns_are_errors_not_panics() {
    let k = up(&randn(1, 24), &[2, 3, 2, 2]);
    let e = reparam::kernel_norm_forward(gpu(), &k, Some(&up(&[1.0; 3], &[3]))).unwrap_err().to_string();
    assert!(e.contains("kernel_norm"), "{e}");
    let w = up(&[0.5; 4], &[1, 4]);
    // A 2×2 candidate cannot sit centred in a 3×3 target.
    let e = reparam::merge_kernels_forward(gpu(), &w, 0, &[0], &[&k], 3).unwrap_err().to_string();
    assert!(e.contains("merge_kernels"), "{e}");
    let k3 = up(&randn(2, 54), &[2, 3, 3, 3]);
    assert!(reparam::merge_kernels_forward(gpu(), &w, 0, &[4], &[&k3], 3).is_err(), "column out of range");
    assert!(reparam::merge_kernels_forward(gpu(), &w, 1, &[0], &[&k3], 3).is_err(), "row out of range");
    assert!(reparam::merge_kernels_forward(gpu(), &w, 0, &[0], &[&k3], 1).is_err(), "target smaller");
    let sp = SkipPool { row: 0, col_skip: Some(9), col_pool: None };
    assert!(reparam::skip_avgpool_forward(gpu(), &w, &sp, &up(&[0.0; 9], &[1, 1, 3, 3])).is_err());
    let sp = SkipPool { row: 0, col_skip: Some(0), col_pool: None };
    assert!(reparam::skip_avgpool_forward(gpu(), &w, &sp, &up(&[0.0; 9], &[9])).is_err(), "x not 4-D");
}

#[test]
fn tape_merged_conv_chain_and_needs_skipping() {
    // α → weights; K̂_m = knorm(K_m, g_m); K = merge; y = conv(x, K); L = ⟨y, dy⟩.
    let tape = Tape::new(gpu());
    let c = merge_case();
    let wv = tape.leaf(&up(&c.w, &[2, 4]));
    let k1 = tape.leaf(&up(&c.k1, &[5, 3, 1, 1]));
    let k3 = tape.leaf(&up(&c.k3, &[5, 3, 3, 3]));
    let g3 = tape.leaf(&up(&[1.5; 5], &[5]));
    let n1 = reparam::kernel_norm(&tape, &k1, None).unwrap();
    let n3 = reparam::kernel_norm(&tape, &k3, Some(&g3)).unwrap();
    let merged = reparam::merge_kernels(&tape, &wv, 1, &c.cols, &[&n1, &n3], 3).unwrap();
    let xs = randn(41, 3 * 5 * 5);
    let x = Var::constant(up(&xs, &[1, 3, 5, 5]));
    let y = conv::conv2d(&tape, &x, &merged, None, &Conv2dParams::same(3)).unwrap();
    let dy = randn(42, 5 * 25);
    // Only the mixing weights: no kernel or gain gradients come back.
    let grads = tape.backward_with(&y, up(&dy, &[1, 5, 5, 5]), &[&wv]).unwrap();
    assert!(grads.get(&k1).is_none() && grads.get(&k3).is_none() && grads.get(&g3).is_none());

    // Reference: dK = conv weight gradient on the CPU, dw_m = ⟨dK, pad(K̂_m)⟩.
    let kh1 = cpu::kernel_norm(&c.k1, 5, None, KNORM_EPS);
    let kh3 = cpu::kernel_norm(&c.k3, 5, Some(&[1.5; 5]), KNORM_EPS);
    let s = conv::ConvShape::new([1, 3, 5, 5], [5, 3, 3, 3], &Conv2dParams::same(3)).unwrap();
    let dk = conv::cpu::conv2d_backward_weight(&dy, &xs, &s);
    let (dw, _) = cpu::merge_kernels_backward(&c.wt(), &[&kh1, &kh3], &[1, 3], 15, 3, &dk);
    let mut want = vec![0.0f32; 8];
    want[4 + c.cols[0]] = dw[0];
    want[4 + c.cols[1]] = dw[1];
    assert_close("tape dw", &down(grads.get(&wv).unwrap()), &want, RTOL);
}

#[test]
fn tape_kernel_and_gain_gradients_through_merge() {
    let tape = Tape::new(gpu());
    let c = merge_case();
    let wv = tape.leaf(&up(&c.w, &[2, 4]));
    let k3 = tape.leaf(&up(&c.k3, &[5, 3, 3, 3]));
    let g: Vec<f32> = randn(51, 5);
    let g3 = tape.leaf(&up(&g, &[5]));
    let k1 = Var::constant(up(&c.k1, &[5, 3, 1, 1]));
    let n3 = reparam::kernel_norm(&tape, &k3, Some(&g3)).unwrap();
    let merged = reparam::merge_kernels(&tape, &wv, 1, &c.cols, &[&k1, &n3], 3).unwrap();
    let dk = randn(52, 15 * 9);
    let grads = tape.backward_with(&merged, up(&dk, &[5, 3, 3, 3]), &[&k3, &g3]).unwrap();
    assert!(grads.get(&wv).is_none());
    let kh3 = cpu::kernel_norm(&c.k3, 5, Some(&g), KNORM_EPS);
    let (_, dks) = cpu::merge_kernels_backward(&c.wt(), &[&c.k1, &kh3], &[1, 3], 15, 3, &dk);
    let (dk3, dg3) = cpu::kernel_norm_backward(&c.k3, 5, Some(&g), KNORM_EPS, &dks[1]);
    assert_close("tape dK3", &down(grads.get(&k3).unwrap()), &dk3, RTOL);
    assert_close("tape dg3", &down(grads.get(&g3).unwrap()), &dg3, RTOL);
}

#[test]
fn tape_skip_avgpool_needs_skipping() {
    let shape = [1usize, 3, 5, 7];
    let xs = randn(61, 105);
    let w = randn(62, 3);
    let dy = randn(63, 105);
    let (dx, da, db) = cpu::skip_avgpool_backward(&xs, shape, w[0], w[2], &dy);
    for (want_w, want_x) in [(true, false), (false, true), (true, true)] {
        let tape = Tape::new(gpu());
        let wv = tape.leaf(&up(&w, &[3]));
        let x = tape.leaf(&up(&xs, &shape));
        let y = reparam::skip_avgpool(&tape, &wv, 0, Some(0), Some(2), &x).unwrap();
        let wrt: Vec<&Var> = [(want_w, &wv), (want_x, &x)].into_iter().filter(|p| p.0).map(|p| p.1).collect();
        let grads = tape.backward_with(&y, up(&dy, &shape), &wrt).unwrap();
        assert_eq!(grads.get(&wv).is_some(), want_w);
        assert_eq!(grads.get(&x).is_some(), want_x);
        if let Some(g) = grads.get(&wv) {
            assert_close("tape da db", &down(g), &[da, 0.0, db], RTOL);
        }
        if let Some(g) = grads.get(&x) {
            assert_close("tape dx", &down(g), &dx, RTOL);
        }
    }
}

#[test]
fn skip_avgpool_accumulates_in_place_into_a_node() {
    // acc += a·x + b·avgpool(x), written into acc's own buffer; acc's gradient is dy.
    let shape = [2usize, 3, 5, 7];
    let n: usize = shape.iter().product();
    let (xs, accs, dy) = (randn(71, n), randn(72, n), randn(73, n));
    let w = randn(74, 3);
    let tape = Tape::new(gpu());
    let wv = tape.leaf(&up(&w, &[3]));
    let x = tape.leaf(&up(&xs, &shape));
    let acc = tape.leaf(&up(&accs, &shape));
    let y = reparam::skip_avgpool_acc(&tape, &wv, 0, Some(0), Some(2), &x, Some(&acc)).unwrap();
    assert!(y.tensor.same_storage(&acc.tensor), "the sum is written into the accumulator");
    let want: Vec<f32> = cpu::skip_avgpool(&xs, shape, w[0], w[2]).iter().zip(&accs).map(|(s, a)| s + a).collect();
    assert_close("accumulated", &down(&y.tensor), &want, RTOL);
    let grads = tape.backward_with(&y, up(&dy, &shape), &[&wv, &x, &acc]).unwrap();
    let (dx, da, db) = cpu::skip_avgpool_backward(&xs, shape, w[0], w[2], &dy);
    assert_close("acc dx", &down(grads.get(&x).unwrap()), &dx, RTOL);
    assert_close("acc dw", &down(grads.get(&wv).unwrap()), &[da, 0.0, db], RTOL);
    assert_close("acc dacc", &down(grads.get(&acc).unwrap()), &dy, RTOL);
    let err = reparam::skip_avgpool_acc(&tape, &wv, 0, Some(0), None, &x, Some(&x));
    assert!(err.is_err(), "an accumulator aliasing x is an error");
}
