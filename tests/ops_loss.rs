//! Loss ops on the GPU against their CPU references (rtol 1e-4, see common::RTOL).

mod common;
use common::*;
use wgnas::ops::linear;
use wgnas::ops::loss::{self, cpu};
use wgnas::ops::testing::assert_close;
use wgnas::tensor::tape::Tape;
use wgnas::util::rng::Rng;
use wgnas::{Gpu, Tensor};

/// `n` labels in `[0, k)` as f32 class indices.
fn labels(seed: u64, n: usize, k: usize) -> Vec<f32> {
    let mut r = Rng::new(seed);
    (0..n).map(|_| ((r.uniform() * k as f64) as usize).min(k - 1) as f32).collect()
}

#[test]
fn cross_entropy_matches_reference() {
    // Batch 1, odd sizes, and a batch past one 256-row workgroup; K = 10 and 3.
    for (n, k) in [(1, 10), (7, 3), (33, 10), (300, 10), (5, 1)] {
        let z = Rng::new(n as u64).normal_vec(n * k, 3.0);
        let y = labels(k as u64, n, k);
        let (gz, gy) = (up(&z, &[n, k]), up(&y, &[n]));
        let ce = loss::cross_entropy_forward(gpu(), &gz, &gy).unwrap();
        let (want_loss, want_correct) = cpu::cross_entropy(&z, &y, n, k);
        assert_close(&format!("ce {n}x{k}"), &down(&ce.loss), &[want_loss], RTOL);
        assert_eq!(down(&ce.correct), vec![want_correct], "correct {n}x{k}");

        let dl = 0.7;
        let dz = loss::cross_entropy_backward(gpu(), &gz, &gy, &ce.lse, &up(&[dl], &[1])).unwrap();
        let want = cpu::cross_entropy_backward(&z, &y, n, k, dl);
        assert_close(&format!("ce bwd {n}x{k}"), &down(&dz), &want, RTOL);
    }
}

#[test]
fn cross_entropy_counts_correct_predictions_by_hand() {
    // Row 0: argmax 2 = label 2 → correct. Row 1: tie between 0 and 1 → 0 (lowest) ≠ label 1.
    // Row 2: argmax 1 = label 1 → correct. Row 3: tie between 0 and 1 → 0 = label 0 → correct.
    let z = [
        0.1, 0.2, 0.9, //
        0.5, 0.5, -1.0, //
        -3.0, 4.0, 3.9, //
        2.0, 2.0, 1.0,
    ];
    let y = [2.0, 1.0, 1.0, 0.0];
    let ce = loss::cross_entropy_forward(gpu(), &up(&z, &[4, 3]), &up(&y, &[4])).unwrap();
    assert_eq!(down(&ce.correct), vec![3.0]);
    assert_eq!(cpu::cross_entropy(&z, &y, 4, 3).1, 3.0);
}

#[test]
fn cross_entropy_is_stable_and_clamps_labels() {
    // Logits near f32's exp overflow, and labels outside [0, K): -2 → 0, 7.4 → 2, 0.6 → 1.
    let z = [1000.0, 990.0, 980.0, -500.0, 0.0, 500.0, 80.0, 90.0, 100.0];
    let y = [-2.0, 7.4, 0.6];
    let (gz, gy) = (up(&z, &[3, 3]), up(&y, &[3]));
    let ce = loss::cross_entropy_forward(gpu(), &gz, &gy).unwrap();
    let (want_loss, want_correct) = cpu::cross_entropy(&z, &y, 3, 3);
    assert!(want_loss.is_finite());
    assert_close("ce large", &down(&ce.loss), &[want_loss], RTOL);
    assert_eq!(down(&ce.correct), vec![want_correct]);
    let dz = loss::cross_entropy_backward(gpu(), &gz, &gy, &ce.lse, &up(&[1.0], &[1])).unwrap();
    assert_close("ce large bwd", &down(&dz), &cpu::cross_entropy_backward(&z, &y, 3, 3, 1.0), RTOL);
}

#[test]
fn mse_matches_reference() {
    // Odd shapes, one element, and sizes past one 4096-element partial-sum chunk.
    for shape in [vec![1], vec![7], vec![2, 3, 5, 3], vec![4097], vec![3, 5, 33, 33]] {
        let n: usize = shape.iter().product();
        let (a, b) = (randn(40, n), randn(41, n));
        let (ga, gb) = (up(&a, &shape), up(&b, &shape));
        let l = loss::mse_forward(gpu(), &ga, &gb).unwrap();
        assert_close(&format!("mse {shape:?}"), &down(&l), &[cpu::mse(&a, &b)], RTOL);

        let dl = up(&[-1.5], &[1]);
        let (want_a, want_b) = cpu::mse_backward(&a, &b, -1.5);
        let da = loss::mse_backward_a(gpu(), &ga, &gb, &dl).unwrap();
        assert_eq!(da.shape(), &shape[..]);
        assert_close(&format!("mse da {shape:?}"), &down(&da), &want_a, RTOL);
        let db = loss::mse_backward_b(gpu(), &ga, &gb, &dl).unwrap();
        assert_close(&format!("mse db {shape:?}"), &down(&db), &want_b, RTOL);
    }
}

#[test]
fn shape_mismatches_are_errors_not_panics() {
    let z = up(&randn(50, 12), &[4, 3]);
    let e = loss::cross_entropy_forward(gpu(), &z, &up(&[0.0; 3], &[3])).unwrap_err().to_string();
    assert!(e.contains("cross_entropy") && e.contains("labels"), "{e}");
    let flat = up(&randn(51, 12), &[12]);
    assert!(loss::cross_entropy_forward(gpu(), &flat, &up(&[0.0; 12], &[12])).is_err());
    let a = up(&randn(52, 6), &[2, 3]);
    let b = up(&randn(53, 6), &[3, 2]);
    let e = loss::mse_forward(gpu(), &a, &b).unwrap_err().to_string();
    assert!(e.contains("mse"), "{e}");
    let not_scalar = up(&[1.0, 1.0], &[2]);
    assert!(loss::mse_backward_a(gpu(), &a, &a, &not_scalar).is_err());
}

#[test]
fn tape_mse_computes_only_requested_gradients() {
    // A private device, so that the dispatch count is not disturbed by parallel tests.
    let gpu = Gpu::from_env().unwrap();
    let (a, b) = (randn(60, 45), randn(61, 45));
    let t = |d: &[f32], s: &[usize]| Tensor::from_slice(&gpu, d, s, "t").unwrap();
    let tape = Tape::new(&gpu);
    let av = tape.leaf(&t(&a, &[5, 9]));
    let bv = tape.leaf(&t(&b, &[5, 9]));
    let l = loss::mse(&tape, &av, &bv).unwrap();
    let seed = t(&[2.5], &[1]);
    let before = gpu.work().dispatches;
    let grads = tape.backward_with(&l, seed, &[&bv]).unwrap();
    assert_eq!(gpu.work().dispatches - before, 1, "only ∂L/∂b is computed");
    assert!(grads.get(&av).is_none());
    let db = grads.get(&bv).unwrap().to_vec(&gpu).unwrap();
    assert_close("tape mse db", &db, &cpu::mse_backward(&a, &b, 2.5).1, RTOL);
}

#[test]
fn tape_linear_then_cross_entropy_uses_the_upstream_gradient() {
    // L = CE(x·Wᵀ + b, y) seeded with dL = 0.5: ∂L/∂W = (0.5 · ∂CE/∂z)ᵀ·x.
    let (n, inputs, k) = (6, 5, 10);
    let (x, w, b) = (randn(70, n * inputs), randn(71, k * inputs), randn(72, k));
    let y = labels(73, n, k);
    let tape = Tape::new(gpu());
    let xv = wgnas::tensor::tape::Var::constant(up(&x, &[n, inputs]));
    let wv = tape.leaf(&up(&w, &[k, inputs]));
    let bv = tape.leaf(&up(&b, &[k]));
    let z = linear::linear(&tape, &xv, &wv, Some(&bv)).unwrap();
    let (l, correct) = loss::cross_entropy(&tape, &z, &up(&y, &[n])).unwrap();

    let zc = linear::cpu::linear_forward(&x, &w, Some(&b), n, inputs, k);
    let (want_loss, want_correct) = cpu::cross_entropy(&zc, &y, n, k);
    assert_close("tape ce", &down(&l.tensor), &[want_loss], RTOL);
    assert_eq!(down(&correct), vec![want_correct]);

    let grads = tape.backward_with(&l, up(&[0.5], &[1]), &[&wv]).unwrap();
    let dz = cpu::cross_entropy_backward(&zc, &y, n, k, 0.5);
    let want = linear::cpu::linear_backward_w(&dz, &x, n, inputs, k);
    assert_close("tape ce dW", &down(grads.get(&wv).unwrap()), &want, RTOL);
    assert!(grads.get(&bv).is_none(), "b was not requested");
}
