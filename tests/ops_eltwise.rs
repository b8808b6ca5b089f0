//! Elementwise ops on the GPU against their CPU references (rtol 1e-4, see common::RTOL).

mod common;
use common::*;
use wgnas::ops::eltwise::{self, cpu};
use wgnas::ops::testing::assert_close;
use wgnas::tensor::tape::{Tape, Var};

#[test]
fn relu_forward_and_backward_match_reference() {
    // Odd length and a length past one 256-wide workgroup.
    for n in [1usize, 7, 255, 1000] {
        let x = randn(1, n);
        let dy = randn(2, n);
        let gx = up(&x, &[n]);
        let y = eltwise::relu_forward(gpu(), &gx).unwrap();
        assert_close("relu", &down(&y), &cpu::relu(&x), RTOL);
        let dx = eltwise::relu_backward(gpu(), &gx, &up(&dy, &[n])).unwrap();
        assert_close("relu bwd", &down(&dx), &cpu::relu_backward(&x, &dy), RTOL);
    }
}

#[test]
fn add_scale_axpy_fill_match_reference() {
    let n = 333;
    let a = randn(3, n);
    let b = randn(4, n);
    let (ga, gb) = (up(&a, &[n]), up(&b, &[n]));
    assert_close("add", &down(&eltwise::add(gpu(), &ga, &gb).unwrap()), &cpu::add(&a, &b), RTOL);
    assert_close("scale", &down(&eltwise::scale(gpu(), &ga, -1.5).unwrap()), &cpu::scale(&a, -1.5), RTOL);
    let y = up(&b, &[n]);
    eltwise::axpy(gpu(), &y, 0.25, &ga).unwrap();
    assert_close("axpy", &down(&y), &cpu::axpy(&b, 0.25, &a), RTOL);
    eltwise::fill(gpu(), &y, 3.5).unwrap();
    assert!(down(&y).iter().all(|&v| v == 3.5));
    eltwise::zero(gpu(), &y).unwrap();
    assert!(down(&y).iter().all(|&v| v == 0.0));
}

#[test]
fn size_mismatch_is_an_error_not_a_panic() {
    let a = up(&[1.0, 2.0], &[2]);
    let b = up(&[1.0, 2.0, 3.0], &[3]);
    let e = eltwise::add(gpu(), &a, &b).unwrap_err().to_string();
    assert!(e.contains("add") && e.contains("differ"), "{e}");
}

#[test]
fn tape_accumulates_gradients_of_a_reused_value() {
    // L = Σ relu(x) + Σ 2x  ⇒  dL/dx = [x > 0] + 2
    let x = vec![-1.0f32, 0.5, 2.0, -0.1];
    let tape = Tape::new(gpu());
    let xv = tape.leaf(&up(&x, &[4]));
    let r = eltwise::relu(&tape, &xv).unwrap();
    let s = eltwise::scale_var(&tape, &xv, 2.0).unwrap();
    let sum = eltwise::add_var(&tape, &r, &s).unwrap();
    // Reduce to a scalar by seeding with ones.
    let g = tape.backward_with(&sum, up(&[1.0; 4], &[4]), &[&xv]).unwrap();
    assert_eq!(down(g.get(&xv).unwrap()), vec![2.0, 3.0, 3.0, 2.0]);
    assert!(tape.is_empty(), "backward consumes the recording");
}

#[test]
fn untracked_inputs_record_nothing() {
    let tape = Tape::new(gpu());
    let c = Var::constant(up(&[1.0, -1.0], &[2]));
    let y = eltwise::relu(&tape, &c).unwrap();
    assert!(!y.tracked());
    assert!(tape.is_empty());
}

#[test]
fn concat0_stacks_rows_and_splits_the_gradient_back() {
    use wgnas::ops::eltwise::concat0;
    let (a, b) = (randn(81, 2 * 3 * 3), randn(82, 5 * 3 * 3));
    let tape = Tape::new(gpu());
    let av = tape.leaf(&up(&a, &[2, 3, 3]));
    let bv = tape.leaf(&up(&b, &[5, 3, 3]));
    let y = concat0(&tape, &[&av, &bv]).unwrap();
    assert_eq!(y.shape(), &[7, 3, 3]);
    let want: Vec<f32> = a.iter().chain(&b).copied().collect();
    assert_eq!(down(&y.tensor), want, "a copy is exact");
    let dy = randn(83, 63);
    let g = tape.backward_with(&y, up(&dy, &[7, 3, 3]), &[&bv]).unwrap();
    assert!(g.get(&av).is_none(), "only the requested part gets a gradient");
    assert_eq!(down(g.get(&bv).unwrap()), dy[18..].to_vec());
    let bad = tape.leaf(&up(&a, &[2, 9]));
    assert!(concat0(&tape, &[&av, &bad]).is_err(), "mismatched trailing dimensions are an error");
}
