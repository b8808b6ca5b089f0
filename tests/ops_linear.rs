//! Matmul and linear ops on the GPU against their CPU references (rtol 1e-4, see common::RTOL).

mod common;
use common::*;
use wgnas::ops::linear::{self, cpu};
use wgnas::ops::testing::assert_close;
use wgnas::tensor::tape::{Tape, Var};
use wgnas::Gpu;

/// Shapes (m, n, k) with sizes 1, 3, 7, 33, 65: odd, below and above one 64×64 workgroup tile.
const SIZES: [(usize, usize, usize); 7] =
    [(1, 1, 1), (3, 7, 5), (7, 3, 33), (33, 65, 7), (65, 33, 65), (1, 65, 3), (130, 70, 9)];

#[test]
fn matmul_matches_reference_for_every_transpose() {
    for (m, n, k) in SIZES {
        let a = randn(1, m * k);
        let b = randn(2, k * n);
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            let a_shape = if ta { [k, m] } else { [m, k] };
            let b_shape = if tb { [n, k] } else { [k, n] };
            let c = linear::matmul(gpu(), &up(&a, &a_shape), &up(&b, &b_shape), ta, tb).unwrap();
            assert_eq!(c.shape(), &[m, n]);
            let want = cpu::matmul(&a, &b, m, n, k, ta, tb);
            assert_close(&format!("matmul {m}x{n}x{k} ta={ta} tb={tb}"), &down(&c), &want, RTOL);
        }
    }
}

#[test]
fn matmul_flops_is_2mnk() {
    assert_eq!(linear::matmul_flops(512, 512, 512), 2 * 512 * 512 * 512);
    assert_eq!(linear::linear_flops(64, 256, 10), 2 * 64 * 256 * 10);
}

/// Runs linear forward and all three backward products for x `[n, in]` (given as `x_shape`).
fn check_linear(x_shape: &[usize], inputs: usize, outputs: usize, with_bias: bool) {
    let n = x_shape[0];
    let (x, w, b, dy) = (randn(3, n * inputs), randn(4, outputs * inputs), randn(5, outputs), randn(6, n * outputs));
    let (gx, gw, gb, gdy) = (up(&x, x_shape), up(&w, &[outputs, inputs]), up(&b, &[outputs]), up(&dy, &[n, outputs]));
    let what = format!("linear x {x_shape:?} out {outputs} bias {with_bias}");
    let bias = with_bias.then_some(&gb);
    let y = linear::linear_forward(gpu(), &gx, &gw, bias).unwrap();
    assert_eq!(y.shape(), &[n, outputs]);
    let want = cpu::linear_forward(&x, &w, with_bias.then_some(&b[..]), n, inputs, outputs);
    assert_close(&what, &down(&y), &want, RTOL);

    let dx = linear::linear_backward_x(gpu(), &gdy, &gw, x_shape).unwrap();
    assert_eq!(dx.shape(), x_shape);
    let want = cpu::linear_backward_x(&dy, &w, n, inputs, outputs);
    assert_close(&format!("{what} dx"), &down(&dx), &want, RTOL);

    let dw = linear::linear_backward_w(gpu(), &gdy, &gx).unwrap();
    let want = cpu::linear_backward_w(&dy, &x, n, inputs, outputs);
    assert_close(&format!("{what} dW"), &down(&dw), &want, RTOL);

    let db = linear::linear_backward_b(gpu(), &gdy).unwrap();
    let want = cpu::linear_backward_b(&dy, n, outputs);
    assert_close(&format!("{what} db"), &down(&db), &want, RTOL);
}

#[test]
fn linear_forward_and_backward_match_reference() {
    check_linear(&[1, 7], 7, 3, true);
    check_linear(&[5, 33], 33, 10, false);
    check_linear(&[65, 9], 9, 65, true);
    // Past one workgroup of the 256-wide bias-gradient kernel.
    check_linear(&[3, 5], 5, 300, true);
}

#[test]
fn linear_accepts_pooled_nchw_input() {
    // [N, C, 1, 1] from a global average pool, and [N, C, H, W] flattened.
    check_linear(&[4, 7, 1, 1], 7, 10, true);
    check_linear(&[2, 3, 3, 5], 45, 6, false);
}

#[test]
fn shape_mismatches_are_errors_not_panics() {
    let a = up(&randn(7, 6), &[2, 3]);
    let b = up(&randn(8, 8), &[4, 2]);
    let e = linear::matmul(gpu(), &a, &b, false, false).unwrap_err().to_string();
    assert!(e.contains("matmul") && e.contains("inner"), "{e}");
    // Transposing both makes them fit: [2, 3]ᵀ·[4, 2]ᵀ = [3, 2]·[2, 4].
    assert!(linear::matmul(gpu(), &a, &b, true, true).is_ok());
    let v = up(&randn(9, 6), &[6]);
    assert!(linear::matmul(gpu(), &v, &b, false, false).is_err(), "1-D operand");

    let w = up(&randn(10, 12), &[4, 3]);
    let x = up(&randn(11, 10), &[2, 5]);
    let e = linear::linear_forward(gpu(), &x, &w, None).unwrap_err().to_string();
    assert!(e.contains("linear"), "{e}");
    let x = up(&randn(12, 6), &[2, 3]);
    let bad_bias = up(&randn(13, 3), &[3]);
    assert!(linear::linear_forward(gpu(), &x, &w, Some(&bad_bias)).is_err());
    let dy = up(&randn(14, 6), &[3, 2]);
    assert!(linear::linear_backward_w(gpu(), &dy, &x).is_err(), "batch mismatch");
    assert!(linear::linear_backward_x(gpu(), &dy, &w, &[2, 3]).is_err());
}

#[test]
fn tape_linear_computes_only_requested_gradients() {
    // A private device, so that the dispatch count is not disturbed by parallel tests.
    let gpu = Gpu::from_env().unwrap();
    let (n, inputs, outputs) = (5, 7, 3);
    let (x, w, b, dy) =
        (randn(20, n * inputs), randn(21, outputs * inputs), randn(22, outputs), randn(23, n * outputs));
    let t = |d: &[f32], s: &[usize]| wgnas::Tensor::from_slice(&gpu, d, s, "t").unwrap();
    let tape = Tape::new(&gpu);
    let xv = tape.leaf(&t(&x, &[n, inputs, 1, 1]));
    let wv = tape.leaf(&t(&w, &[outputs, inputs]));
    let bv = tape.leaf(&t(&b, &[outputs]));
    let y = linear::linear(&tape, &xv, &wv, Some(&bv)).unwrap();
    let seed = t(&dy, &[n, outputs]);

    let before = gpu.work().dispatches;
    let grads = tape.backward_with(&y, seed, &[&wv]).unwrap();
    assert_eq!(gpu.work().dispatches - before, 1, "only the dW product runs");
    assert!(grads.get(&xv).is_none() && grads.get(&bv).is_none());
    let dw = grads.get(&wv).unwrap().to_vec(&gpu).unwrap();
    assert_close("tape dW", &dw, &cpu::linear_backward_w(&dy, &x, n, inputs, outputs), RTOL);

    // All three on a fresh recording; dx keeps x's [N, C, 1, 1] shape.
    let y = linear::linear(&tape, &xv, &wv, Some(&bv)).unwrap();
    let grads = tape.backward_with(&y, t(&dy, &[n, outputs]), &[&xv, &wv, &bv]).unwrap();
    let dx = grads.get(&xv).unwrap();
    assert_eq!(dx.shape(), &[n, inputs, 1, 1]);
    let want = cpu::linear_backward_x(&dy, &w, n, inputs, outputs);
    assert_close("tape dx", &dx.to_vec(&gpu).unwrap(), &want, RTOL);
    let db = grads.get(&bv).unwrap().to_vec(&gpu).unwrap();
    assert_close("tape db", &db, &cpu::linear_backward_b(&dy, n, outputs), RTOL);
}

#[test]
fn constant_inputs_record_nothing() {
    let tape = Tape::new(gpu());
    let x = Var::constant(up(&randn(30, 6), &[2, 3]));
    let w = Var::constant(up(&randn(31, 6), &[2, 3]));
    let y = linear::linear(&tape, &x, &w, None).unwrap();
    assert!(!y.tracked() && tape.is_empty());
}
