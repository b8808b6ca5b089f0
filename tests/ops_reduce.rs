//! On-GPU reductions against their CPU references (rtol 1e-4, see common::RTOL).

mod common;
use common::*;
use wgnas::ops::reduce::{self, cpu};
use wgnas::ops::testing::assert_close;
use wgnas::{Gpu, Tensor};

/// Lengths: 1, odd, one chunk ± 1, and one spanning many workgroups.
const LENGTHS: [usize; 6] = [1, 7, 4095, 4097, 9000, 100_003];

#[test]
fn sum_and_dot_match_reference() {
    for (i, &n) in LENGTHS.iter().enumerate() {
        let a = randn(10 + i as u64, n);
        let b = randn(20 + i as u64, n);
        let (ga, gb) = (up(&a, &[n]), up(&b, &[n]));
        let s = reduce::sum(gpu(), &ga).unwrap();
        assert_close(&format!("sum n={n}"), &down(&s), &[cpu::sum(&a)], RTOL);
        let d = reduce::dot(gpu(), &ga, &gb).unwrap();
        assert_close(&format!("dot n={n}"), &down(&d), &[cpu::dot(&a, &b)], RTOL);
        // The same tensor on both sides binds one buffer twice (read-only): allowed.
        let d = reduce::dot(gpu(), &ga, &ga).unwrap();
        assert_close(&format!("dot(a,a) n={n}"), &down(&d), &[cpu::dot(&a, &a)], RTOL);
    }
}

#[test]
fn global_norm_covers_all_tensors_in_few_dispatches() {
    // 9 tensors (more than one 6-slot batch), including an empty one and NCHW shapes.
    let lens = [3usize, 100_003, 0, 5 * 3 * 3 * 3, 7, 4096, 1, 9 * 7, 4097];
    let data: Vec<Vec<f32>> = lens.iter().enumerate().map(|(i, &n)| randn(30 + i as u64, n)).collect();
    let ts: Vec<Tensor> = data.iter().map(|d| up(d, &[d.len()])).collect();
    let refs: Vec<&Tensor> = ts.iter().collect();
    let slices: Vec<&[f32]> = data.iter().map(|d| d.as_slice()).collect();
    let n = reduce::global_norm(gpu(), &refs).unwrap();
    assert_close("global norm", &down(&n), &[cpu::global_norm(&slices)], RTOL);
    let s = reduce::sum_squares(gpu(), &refs).unwrap();
    assert_close("sum squares", &down(&s), &[cpu::sum_squares(&slices)], RTOL);
}

#[test]
fn sum_squares_into_writes_one_slot() {
    let a = randn(40, 513);
    let out = up(&[7.0, 7.0, 7.0], &[3]);
    reduce::sum_squares_into(gpu(), &[&up(&a, &[513])], &out, 1).unwrap();
    let got = down(&out);
    assert_eq!((got[0], got[2]), (7.0, 7.0), "other slots untouched");
    assert_close("slot 1", &got[1..2], &[cpu::sum_squares(&[&a])], RTOL);
}

#[test]
fn empty_inputs_reduce_to_zero() {
    assert_eq!(down(&reduce::global_norm(gpu(), &[]).unwrap()), vec![0.0]);
    let e = Tensor::zeros(gpu(), &[0], "empty").unwrap();
    assert_eq!(down(&reduce::sum(gpu(), &e).unwrap()), vec![0.0]);
}

fn check_clip(seed: u64, lens: &[usize], max_norm: f32) {
    let data: Vec<Vec<f32>> = lens.iter().enumerate().map(|(i, &n)| randn(seed + i as u64, n)).collect();
    let ts: Vec<Tensor> = data.iter().map(|d| up(d, &[d.len()])).collect();
    let refs: Vec<&Tensor> = ts.iter().collect();
    let slices: Vec<&[f32]> = data.iter().map(|d| d.as_slice()).collect();
    let (want_norm, want) = cpu::clip_grad_norm(&slices, max_norm);
    let norm = reduce::clip_grad_norm(gpu(), &refs, max_norm).unwrap();
    assert_close("pre-clip norm", &down(&norm), &[want_norm], RTOL);
    for (t, w) in ts.iter().zip(&want) {
        assert_close("clipped grad", &down(t), w, RTOL);
    }
}

#[test]
fn clip_grad_norm_matches_torch_rule() {
    let lens = [5usize, 3 * 3 * 3 * 5, 10_001, 1, 7, 64, 4097, 2];
    // Norm ≈ 120 > 5: every gradient is scaled.
    check_clip(50, &lens, 5.0);
    // Norm below max_norm: factor 1, gradients unchanged.
    check_clip(60, &lens, 1e4);
}

#[test]
fn errors_not_panics() {
    let a = up(&[1.0, 2.0], &[2]);
    let b = up(&[1.0, 2.0, 3.0], &[3]);
    let e = reduce::dot(gpu(), &a, &b).unwrap_err().to_string();
    assert!(e.contains("dot") && e.contains("differ"), "{e}");
    for bad in [0.0, -1.0, f32::NAN, f32::INFINITY] {
        assert!(reduce::clip_grad_norm(gpu(), &[&a], bad).is_err());
    }
    let e = reduce::sum_squares_into(gpu(), &[&a], &b, 3).unwrap_err();
    assert!(e.to_string().contains("index 3"), "{e}");
}

#[test]
fn norm_and_clip_of_many_tensors_take_few_dispatches() {
    // A private device: the shared one counts the dispatches of concurrent tests too.
    let g = Gpu::from_env().unwrap();
    let ts: Vec<Tensor> = (0..9).map(|i| Tensor::from_slice(&g, &randn(80 + i, 100), &[100], "g").unwrap()).collect();
    let refs: Vec<&Tensor> = ts.iter().collect();
    let before = g.work().dispatches;
    reduce::global_norm(&g, &refs).unwrap();
    // ⌈9 / 6⌉ partial passes + 1 finish.
    assert_eq!(g.work().dispatches - before, 3);
    let before = g.work().dispatches;
    reduce::clip_grad_norm(&g, &refs, 1.0).unwrap();
    // The norm, then ⌈9 / 6⌉ scaling passes.
    assert_eq!(g.work().dispatches - before, 5);
    g.wait().unwrap();
}

// ---- DNA path rating -------------------------------------------------------------------

/// Awkward sizes of the rating reductions: one element, odd, below one chunk, many chunks.
const RATING_LENGTHS: [usize; 4] = [1, 7, 1000, 100_003];

#[test]
fn abs_diff_sum_matches_reference() {
    for (i, &n) in RATING_LENGTHS.iter().enumerate() {
        let a = randn(90 + i as u64, n);
        let b = randn(95 + i as u64, n);
        let got = reduce::abs_diff_sum(gpu(), &up(&a, &[n]), &up(&b, &[n])).unwrap();
        assert_close(&format!("Σ|a−b| n={n}"), &down(&got), &[cpu::abs_diff_sum(&a, &b)], RTOL);
    }
    // NCHW against a flat tensor of the same size: only the element count matters.
    let a = randn(99, 2 * 3 * 5 * 7);
    let got = reduce::abs_diff_sum(gpu(), &up(&a, &[2, 3, 5, 7]), &up(&a, &[210])).unwrap();
    assert_eq!(down(&got), vec![0.0]);
}

#[test]
fn std_matches_reference_even_with_a_large_mean() {
    for (i, &n) in RATING_LENGTHS.iter().enumerate().skip(1) {
        let x = randn(110 + i as u64, n);
        let got = reduce::std(gpu(), &up(&x, &[n])).unwrap();
        assert_close(&format!("std n={n}"), &down(&got), &[cpu::std(&x)], RTOL);
        // Mean 100, spread 0.5: a one-pass Σx² − n·x̄² in f32 would lose most digits.
        let shifted: Vec<f32> = x.iter().map(|v| 100.0 + 0.5 * v).collect();
        let got = reduce::std(gpu(), &up(&shifted, &[n])).unwrap();
        assert_close(&format!("std(100 + x/2) n={n}"), &down(&got), &[cpu::std(&shifted)], 1e-3);
    }
}

#[test]
fn scores_of_many_paths_accumulate_in_one_buffer() {
    // Three "paths" × two "batches" into slots 0..3 of one buffer; slot 3 stays untouched.
    let out = Tensor::zeros(gpu(), &[4], "scores").unwrap();
    let mut want = [0.0f64; 4];
    for (batch, &n) in [1000usize, 100_003].iter().enumerate() {
        let t = randn(120 + batch as u64, n);
        let inv_std = 1.0 / cpu::std(&t);
        let gt = up(&t, &[n]);
        for (path, w) in want.iter_mut().enumerate().take(3) {
            let s = randn(130 + 10 * batch as u64 + path as u64, n);
            reduce::accumulate_score(gpu(), &up(&s, &[n]), &gt, inv_std, &out, path).unwrap();
            *w += cpu::score(&s, &t, inv_std) as f64;
        }
    }
    let want: Vec<f32> = want.iter().map(|&v| v as f32).collect();
    assert_close("accumulated scores", &down(&out), &want, RTOL);
    // Sizes 1 and 7 too, each into a fresh slot.
    for &n in &[1usize, 7] {
        let (s, t) = (randn(140 + n as u64, n), randn(150 + n as u64, n));
        let out = Tensor::zeros(gpu(), &[2], "scores").unwrap();
        reduce::accumulate_score(gpu(), &up(&s, &[n]), &up(&t, &[n]), 2.0, &out, 1).unwrap();
        assert_close(&format!("score n={n}"), &down(&out), &[0.0, cpu::score(&s, &t, 2.0)], RTOL);
    }
}

#[test]
fn rating_errors_not_panics() {
    let a = up(&[1.0, 2.0], &[2]);
    let b = up(&[1.0, 2.0, 3.0], &[3]);
    let e = reduce::abs_diff_sum(gpu(), &a, &b).unwrap_err().to_string();
    assert!(e.contains("abs_diff_sum") && e.contains("differ"), "{e}");
    let e = reduce::std(gpu(), &up(&[1.0], &[1])).unwrap_err().to_string();
    assert!(e.contains("at least 2"), "{e}");
    let out = Tensor::zeros(gpu(), &[2], "scores").unwrap();
    let e = reduce::accumulate_score(gpu(), &a, &b, 1.0, &out, 0).unwrap_err().to_string();
    assert!(e.contains("differ"), "{e}");
    let e = reduce::accumulate_score(gpu(), &a, &a, 1.0, &out, 2).unwrap_err().to_string();
    assert!(e.contains("index 2"), "{e}");
    let e = reduce::accumulate_score(gpu(), &a, &a, f32::INFINITY, &out, 0).unwrap_err().to_string();
    assert!(e.contains("std"), "{e}");
    let empty = Tensor::zeros(gpu(), &[0], "empty").unwrap();
    assert!(reduce::accumulate_score(gpu(), &empty, &empty, 1.0, &out, 0).is_err());
}
