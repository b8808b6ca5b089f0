//! Mix ops (mixed op, weighted sum, row softmax) on the GPU against their CPU
//! references (rtol 1e-4, see common::RTOL), and the α gradient against finite differences.

mod common;
use common::*;
use wgnas::ops::mix::{self, cpu, Weighting};
use wgnas::ops::testing::{assert_close, assert_close_f64, finite_diff};
use wgnas::tensor::tape::{Tape, Var};
use wgnas::{Gpu, Tensor};

/// One edge: α is `[rows, k]`, the candidates have `shape`.
struct Case {
    rows: usize,
    k: usize,
    row: usize,
    shape: &'static [usize],
}

const CASES: &[Case] = &[
    // NB201 edge, odd spatial size.
    Case { rows: 6, k: 5, row: 3, shape: &[2, 3, 7, 9] },
    // One candidate, batch 1, 5x3 spatial.
    Case { rows: 1, k: 1, row: 0, shape: &[1, 5, 5, 3] },
    // DARTS' 8 ops, more than one α-gradient chunk (2048) and one forward workgroup (1024).
    Case { rows: 14, k: 8, row: 13, shape: &[2, 7, 16, 16] },
    // More than 8 candidates: two binding groups.
    Case { rows: 2, k: 11, row: 1, shape: &[1, 3, 9, 7] },
    // Many workgroups.
    Case { rows: 6, k: 5, row: 0, shape: &[4, 5, 33, 33] },
];

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Random candidates of one case, on the CPU and the GPU.
fn candidates(seed: u64, c: &Case) -> (Vec<Vec<f32>>, Vec<Tensor>) {
    let xs: Vec<Vec<f32>> = (0..c.k).map(|i| randn(seed + i as u64, numel(c.shape))).collect();
    let ts = xs.iter().map(|x| up(x, c.shape)).collect();
    (xs, ts)
}

fn slices(xs: &[Vec<f32>]) -> Vec<&[f32]> {
    xs.iter().map(|x| x.as_slice()).collect()
}

/// Runs `op` on the tape and returns (y, d weights, d inputs) with every gradient requested.
fn run_tape(
    op: fn(&Tape, &Var, usize, &[&Var]) -> wgnas::Result<Var>,
    w: &Tensor,
    row: usize,
    xs: &[Tensor],
    dy: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<Vec<f32>>) {
    let tape = Tape::new(gpu());
    let wv = tape.leaf(w);
    let xv: Vec<Var> = xs.iter().map(|x| tape.leaf(x)).collect();
    let xr: Vec<&Var> = xv.iter().collect();
    let y = op(&tape, &wv, row, &xr).unwrap();
    let mut wrt = vec![&wv];
    wrt.extend(&xr);
    let g = tape.backward_with(&y, up(dy, y.shape()), &wrt).unwrap();
    let dxs = xv.iter().map(|x| down(g.get(x).unwrap())).collect();
    (down(&y.tensor), down(g.get(&wv).unwrap()), dxs)
}

#[test]
fn mixed_op_forward_and_backward_match_reference() {
    for (ci, c) in CASES.iter().enumerate() {
        let seed = 100 * ci as u64;
        let alpha = randn(seed + 50, c.rows * c.k);
        let (xs, ts) = candidates(seed, c);
        let dy = randn(seed + 60, numel(c.shape));
        let (y, da, dxs) = run_tape(mix::mixed_op, &up(&alpha, &[c.rows, c.k]), c.row, &ts, &dy);
        let xr = slices(&xs);
        assert_close(&format!("mix fwd {ci}"), &y, &cpu::mixed_op(&alpha, c.k, c.row, &xr), RTOL);
        let (want_da, want_dx) = cpu::mixed_op_backward(&alpha, c.k, c.row, &xr, &dy);
        assert_close(&format!("mix dalpha {ci}"), &da, &want_da, RTOL);
        for (k, (got, want)) in dxs.iter().zip(&want_dx).enumerate() {
            assert_close(&format!("mix dx{k} {ci}"), got, want, RTOL);
        }
    }
}

#[test]
fn weighted_sum_forward_and_backward_match_reference() {
    for (ci, c) in CASES.iter().enumerate().take(4) {
        let seed = 1000 + 100 * ci as u64;
        let mut w = randn(seed + 50, c.rows * c.k);
        if ci == 0 {
            // A GDAS-style one-hot row.
            w[c.row * c.k..(c.row + 1) * c.k].fill(0.0);
            w[c.row * c.k + 2] = 1.0;
        }
        let (xs, ts) = candidates(seed, c);
        let dy = randn(seed + 60, numel(c.shape));
        let (y, dw, dxs) = run_tape(mix::weighted_sum, &up(&w, &[c.rows, c.k]), c.row, &ts, &dy);
        let xr = slices(&xs);
        assert_close(&format!("wsum fwd {ci}"), &y, &cpu::weighted_sum(&w, c.k, c.row, &xr), RTOL);
        let (want_dw, want_dx) = cpu::weighted_sum_backward(&w, c.k, c.row, &xr, &dy);
        assert_close(&format!("wsum dw {ci}"), &dw, &want_dw, RTOL);
        for (k, (got, want)) in dxs.iter().zip(&want_dx).enumerate() {
            assert_close(&format!("wsum dx{k} {ci}"), got, want, RTOL);
        }
    }
}

#[test]
fn softmax_rows_forward_and_backward_match_reference() {
    // 300 rows: more than one 256-invocation workgroup.
    for (i, &(r, k)) in [(6usize, 5usize), (1, 1), (300, 7), (3, 8)].iter().enumerate() {
        let a = randn(200 + i as u64, r * k);
        let ds = randn(300 + i as u64, r * k);
        let tape = Tape::new(gpu());
        let av = tape.leaf(&up(&a, &[r, k]));
        let s = mix::softmax_rows(&tape, &av).unwrap();
        let g = tape.backward_with(&s, up(&ds, &[r, k]), &[&av]).unwrap();
        let want_s = cpu::softmax_rows(&a, k);
        assert_close("softmax fwd", &down(&s.tensor), &want_s, RTOL);
        let want = cpu::softmax_rows_backward(&want_s, &ds, k);
        assert_close("softmax bwd", &down(g.get(&av).unwrap()), &want, RTOL);
    }
}

#[test]
fn gpu_alpha_gradient_matches_finite_differences_of_reference() {
    // L = ⟨dy, mixed_op(α)⟩, differentiated numerically through the CPU forward.
    let c = &CASES[0];
    let alpha = randn(7, c.rows * c.k);
    let (xs, ts) = candidates(8, c);
    let dy = randn(9, numel(c.shape));
    let xr = slices(&xs);
    let loss = |a: &[f32]| -> f64 {
        cpu::mixed_op(a, c.k, c.row, &xr).iter().zip(&dy).map(|(&y, &g)| y as f64 * g as f64).sum()
    };
    let num = finite_diff(&alpha, loss, 1e-2);
    let (_, da, _) = run_tape(mix::mixed_op, &up(&alpha, &[c.rows, c.k]), c.row, &ts, &dy);
    // Finite differences of an f32 forward: O(h²) truncation plus rounding noise / h.
    assert_close_f64("dalpha vs finite differences", &da, &num, 5e-3);
}

#[test]
fn mix_into_accumulates_into_a_node() {
    let c = &CASES[3];
    let alpha = randn(11, c.rows * c.k);
    let (xs, ts) = candidates(12, c);
    let acc = randn(13, numel(c.shape));
    let node = up(&acc, c.shape);
    let tr: Vec<&Tensor> = ts.iter().collect();
    let a = up(&alpha, &[c.rows, c.k]);
    mix::mix_into(gpu(), Weighting::Softmax, &a, c.row, &tr, &node, true).unwrap();
    let mixed = cpu::mixed_op(&alpha, c.k, c.row, &slices(&xs));
    let want: Vec<f32> = acc.iter().zip(&mixed).map(|(a, m)| a + m).collect();
    assert_close("accumulated", &down(&node), &want, RTOL);
    let e = mix::mix_into(gpu(), Weighting::Softmax, &a, c.row, &tr, &ts[0], true).unwrap_err();
    assert!(e.to_string().contains("aliases"), "{e}");
}

/// Dispatches recorded by `f` on a private device (the shared one is busy with other tests).
fn dispatches(g: &Gpu, f: impl FnOnce()) -> u64 {
    let before = g.work().dispatches;
    f();
    g.work().dispatches - before
}

#[test]
fn backward_skips_work_for_inputs_not_requested() {
    let g = Gpu::from_env().unwrap();
    let (r, k, shape) = (6usize, 5usize, [2usize, 3, 5, 5]);
    let n = numel(&shape);
    let put = |d: &[f32], s: &[usize]| Tensor::from_slice(&g, d, s, "t").unwrap();
    let alpha = randn(20, r * k);
    let xs: Vec<Vec<f32>> = (0..k).map(|i| randn(21 + i as u64, n)).collect();
    let dy = randn(30, n);
    let forward = |tape: &Tape| {
        let av = tape.leaf(&put(&alpha, &[r, k]));
        let xv: Vec<Var> = xs.iter().map(|x| tape.leaf(&put(x, &shape))).collect();
        let xr: Vec<&Var> = xv.iter().collect();
        let y = mix::mixed_op(tape, &av, 2, &xr).unwrap();
        (av, xv, y)
    };

    // α only: the partial dot products and the finish, no input-gradient kernel.
    let tape = Tape::new(&g);
    let (av, xv, y) = forward(&tape);
    let mut grads = None;
    let d = dispatches(&g, || {
        grads = Some(tape.backward_with(&y, put(&dy, &shape), &[&av]).unwrap());
    });
    let grads = grads.unwrap();
    assert_eq!(d, 2, "α-only backward");
    assert!(grads.get(&av).is_some() && xv.iter().all(|x| grads.get(x).is_none()));
    let xr = slices(&xs);
    let (want_da, want_dx) = cpu::mixed_op_backward(&alpha, k, 2, &xr, &dy);
    assert_close("α only", &grads.get(&av).unwrap().to_vec(&g).unwrap(), &want_da, RTOL);

    // Two inputs only: one input-gradient pass, no α kernels.
    let tape = Tape::new(&g);
    let (av, xv, y) = forward(&tape);
    let mut grads = None;
    let d = dispatches(&g, || {
        grads = Some(tape.backward_with(&y, put(&dy, &shape), &[&xv[1], &xv[4]]).unwrap());
    });
    let grads = grads.unwrap();
    assert_eq!(d, 1, "inputs-only backward");
    assert!(grads.get(&av).is_none() && grads.get(&xv[0]).is_none());
    for i in [1, 4] {
        let got = grads.get(&xv[i]).unwrap().to_vec(&g).unwrap();
        assert_close("x only", &got, &want_dx[i], RTOL);
    }
}

#[test]
fn constant_alpha_keeps_no_candidates_and_still_gives_input_grads() {
    let c = &CASES[0];
    let (xs, ts) = candidates(40, c);
    let alpha = randn(41, c.rows * c.k);
    let dy = randn(42, numel(c.shape));
    let tape = Tape::new(gpu());
    let av = Var::constant(up(&alpha, &[c.rows, c.k]));
    let xv: Vec<Var> = ts.iter().map(|x| tape.leaf(x)).collect();
    let xr: Vec<&Var> = xv.iter().collect();
    let y = mix::mixed_op(&tape, &av, c.row, &xr).unwrap();
    let g = tape.backward_with(&y, up(&dy, c.shape), &[&xv[0]]).unwrap();
    let (_, want) = cpu::mixed_op_backward(&alpha, c.k, c.row, &slices(&xs), &dy);
    assert_close("dx0", &down(g.get(&xv[0]).unwrap()), &want[0], RTOL);
}

#[test]
fn bad_shapes_are_errors_not_panics() {
    let tape = Tape::new(gpu());
    let x = tape.leaf(&up(&randn(1, 12), &[1, 3, 2, 2]));
    let x2 = tape.leaf(&up(&randn(2, 12), &[1, 3, 2, 2]));
    let other = tape.leaf(&up(&randn(3, 6), &[1, 3, 2, 1]));
    let alpha = tape.leaf(&up(&randn(4, 6), &[3, 2]));
    let err = |r: wgnas::Result<Var>| r.unwrap_err().to_string();
    // K mismatch: 3 inputs, 2 columns.
    let e = err(mix::mixed_op(&tape, &alpha, 0, &[&x, &x2, &x]));
    assert!(e.contains("3 inputs") && e.contains("2 columns"), "{e}");
    // Row out of range.
    let e = err(mix::mixed_op(&tape, &alpha, 3, &[&x, &x2]));
    assert!(e.contains("row 3"), "{e}");
    // Differing input shapes.
    let e = err(mix::weighted_sum(&tape, &alpha, 0, &[&x, &other]));
    assert!(e.contains("differs"), "{e}");
    // α not 2-D, no inputs, too many candidates.
    let flat = tape.leaf(&up(&randn(5, 6), &[6]));
    assert!(err(mix::mixed_op(&tape, &flat, 0, &[&x])).contains("[R, K]"));
    let none = tape.leaf(&up(&[], &[1, 0]));
    assert!(mix::mixed_op(&tape, &none, 0, &[]).is_err());
    let wide = tape.leaf(&up(&vec![0.0; 65], &[1, 65]));
    let many: Vec<&Var> = vec![&x; 65];
    assert!(err(mix::mixed_op(&tape, &wide, 0, &many)).contains("at most 64"));
    assert!(mix::softmax_rows(&tape, &flat).is_err());
    assert!(tape.is_empty(), "failed ops record nothing");
}
