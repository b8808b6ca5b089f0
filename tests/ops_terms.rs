//! Term mix (channel-slice mixing into a node accumulator) and nested weights on the GPU
//! against their CPU references (rtol 1e-4, see common::RTOL), and the tape ops' in-place
//! gradient gathering.

mod common;
use common::*;
use wgnas::ops::mix::cpu::{self, SliceTerm, TermDims};
use wgnas::ops::mix::{self, Term, TermVar, Weighting};
use wgnas::ops::testing::assert_close;
use wgnas::tensor::tape::{Tape, Var};
use wgnas::{Gpu, Tensor};

/// One term mix: tensors `[n, chans[i], h, w]`, output `[n, c, h, w]`, terms
/// `(tensor, channel offset, column)`, weights `[rows, k]`.
struct Case {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    chans: &'static [usize],
    terms: &'static [(usize, usize, usize)],
    rows: usize,
    k: usize,
    row: usize,
}

const CASES: &[Case] = &[
    // Slices of width 3 at offsets 0 and 4 of a [2, 7, 5, 3] tensor, a whole term, and
    // columns 1 and 4 without a term.
    Case { n: 2, c: 3, h: 5, w: 3, chans: &[7, 3], terms: &[(0, 0, 0), (0, 4, 2), (1, 0, 3)], rows: 3, k: 5, row: 1 },
    // Many workgroups: 3 slices of a [3, 48, 17, 19] wide tensor plus a whole one.
    Case {
        n: 3,
        c: 16,
        h: 17,
        w: 19,
        chans: &[48, 16],
        terms: &[(0, 0, 0), (0, 16, 1), (0, 32, 2), (1, 0, 4)],
        rows: 6,
        k: 5,
        row: 5,
    },
    // Batch 1, two terms on one column, odd sizes.
    Case { n: 1, c: 5, h: 7, w: 9, chans: &[5, 13], terms: &[(0, 0, 1), (1, 8, 0), (1, 3, 0)], rows: 1, k: 2, row: 0 },
    // Eight terms: every slice of one wide tensor.
    Case {
        n: 1,
        c: 2,
        h: 3,
        w: 3,
        chans: &[16],
        terms: &[(0, 0, 0), (0, 2, 1), (0, 4, 2), (0, 6, 3), (0, 8, 4), (0, 10, 5), (0, 12, 6), (0, 14, 7)],
        rows: 2,
        k: 8,
        row: 1,
    },
];

const WEIGHTINGS: [Weighting; 2] = [Weighting::Softmax, Weighting::Raw];

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Random tensors and weights of a case, on the CPU and the GPU.
struct Data {
    xs: Vec<Vec<f32>>,
    ts: Vec<Tensor>,
    weights: Vec<f32>,
    wt: Tensor,
}

impl Case {
    fn dims(&self) -> TermDims {
        TermDims { n: self.n, c: self.c, hw: self.h * self.w }
    }
    fn x_shape(&self, i: usize) -> [usize; 4] {
        [self.n, self.chans[i], self.h, self.w]
    }
    fn out_shape(&self) -> [usize; 4] {
        [self.n, self.c, self.h, self.w]
    }
    fn out_len(&self) -> usize {
        numel(&self.out_shape())
    }
    fn data(&self, seed: u64) -> Data {
        let xs: Vec<Vec<f32>> =
            (0..self.chans.len()).map(|i| randn(seed + i as u64, numel(&self.x_shape(i)))).collect();
        let ts = xs.iter().enumerate().map(|(i, x)| up(x, &self.x_shape(i))).collect();
        let weights = randn(seed + 50, self.rows * self.k);
        let wt = up(&weights, &[self.rows, self.k]);
        Data { xs, ts, weights, wt }
    }
    fn gpu_terms<'a>(&self, ts: &'a [Tensor]) -> Vec<Term<'a>> {
        self.terms.iter().map(|&(i, off, col)| Term { x: &ts[i], channel_offset: off, col }).collect()
    }
    fn cpu_terms<'a>(&self, xs: &'a [Vec<f32>]) -> Vec<SliceTerm<'a>> {
        self.terms.iter().map(|&(i, off, col)| SliceTerm { x: &xs[i], cx: self.chans[i], offset: off, col }).collect()
    }
    /// Whether element `j` of tensor `i` lies in the slice of a term starting at `off`.
    fn in_slice(&self, i: usize, off: usize, j: usize) -> bool {
        let ch = (j / (self.h * self.w)) % self.chans[i];
        (off..off + self.c).contains(&ch)
    }
}

#[test]
fn forward_matches_reference() {
    for (ci, c) in CASES.iter().enumerate() {
        let d = c.data(100 * ci as u64);
        let terms = c.gpu_terms(&d.ts);
        let cterms = c.cpu_terms(&d.xs);
        let init = randn(77 + ci as u64, c.out_len());
        for weighting in WEIGHTINGS {
            for accumulate in [false, true] {
                // Not accumulating must overwrite whatever the buffer held.
                let out = up(&init, &c.out_shape());
                mix::term_mix_into(gpu(), weighting, &d.wt, c.row, &terms, &out, accumulate).unwrap();
                let acc = accumulate.then_some(init.as_slice());
                let want = cpu::term_mix(weighting, &d.weights, c.k, c.row, &cterms, c.dims(), acc);
                assert_close(&format!("fwd {ci} {weighting:?} acc={accumulate}"), &down(&out), &want, RTOL);
            }
        }
    }
}

#[test]
fn weight_gradients_match_reference() {
    for (ci, c) in CASES.iter().enumerate() {
        let d = c.data(1000 + 100 * ci as u64);
        let dy = randn(2000 + ci as u64, c.out_len());
        let dyt = up(&dy, &c.out_shape());
        for weighting in WEIGHTINGS {
            let got =
                mix::term_mix_backward_weights(gpu(), weighting, &d.wt, c.row, &c.gpu_terms(&d.ts), &dyt).unwrap();
            let want =
                cpu::term_mix_backward_weights(weighting, &d.weights, c.k, c.row, &c.cpu_terms(&d.xs), c.dims(), &dy);
            assert_close(&format!("dw {ci} {weighting:?}"), &down(&got), &want, RTOL);
        }
    }
}

/// Expected destinations after `term_mix_backward_inputs` on buffers that held `init`.
fn expected_input_grads(c: &Case, d: &Data, w: Weighting, dy: &[f32], init: &[Vec<f32>], acc: bool) -> Vec<Vec<f32>> {
    let dx = cpu::term_mix_backward_inputs(w, &d.weights, c.k, c.row, &c.cpu_terms(&d.xs), c.dims(), dy);
    let mut want = init.to_vec();
    for (&(i, off, _), g) in c.terms.iter().zip(&dx) {
        for (j, v) in want[i].iter_mut().enumerate().filter(|(j, _)| c.in_slice(i, off, *j)) {
            *v = if acc { *v + g[j] } else { g[j] };
        }
    }
    want
}

#[test]
fn input_gradients_go_into_shared_buffers() {
    // All terms of a case write in one call; slices of one wide tensor share its buffer.
    for (ci, c) in CASES.iter().enumerate() {
        let d = c.data(3000 + 100 * ci as u64);
        let dy = randn(4000 + ci as u64, c.out_len());
        let dyt = up(&dy, &c.out_shape());
        let init: Vec<Vec<f32>> = d.xs.iter().enumerate().map(|(i, x)| randn(5000 + i as u64, x.len())).collect();
        for (weighting, accumulate) in [(Weighting::Softmax, true), (Weighting::Raw, false)] {
            let dst: Vec<Tensor> = init.iter().enumerate().map(|(i, v)| up(v, &c.x_shape(i))).collect();
            let refs: Vec<Option<&Tensor>> = c.terms.iter().map(|&(i, _, _)| Some(&dst[i])).collect();
            let terms = c.gpu_terms(&d.ts);
            mix::term_mix_backward_inputs(gpu(), weighting, &d.wt, c.row, &terms, &dyt, &refs, accumulate).unwrap();
            let want = expected_input_grads(c, &d, weighting, &dy, &init, accumulate);
            for (i, (t, w)) in dst.iter().zip(&want).enumerate() {
                assert_close(&format!("dx {ci} tensor {i} acc={accumulate}"), &down(t), w, RTOL);
            }
        }
    }
}

#[test]
fn input_gradients_from_separate_calls_and_overlapping_slices() {
    let c = &CASES[0];
    let d = c.data(6000);
    let dy = randn(6001, c.out_len());
    let dyt = up(&dy, &c.out_shape());
    let init = vec![randn(6002, d.xs[0].len()), randn(6003, d.xs[1].len())];
    let want = expected_input_grads(c, &d, Weighting::Softmax, &dy, &init, true);
    // The two slices of the wide tensor, one call each (the other terms not requested).
    let wide = up(&init[0], &c.x_shape(0));
    let terms = c.gpu_terms(&d.ts);
    for t in 0..2 {
        let mut dst = vec![None; 3];
        dst[t] = Some(&wide);
        mix::term_mix_backward_inputs(gpu(), Weighting::Softmax, &d.wt, c.row, &terms, &dyt, &dst, true).unwrap();
    }
    assert_close("two calls", &down(&wide), &want[0], RTOL);

    // Slices [0, 3) and [2, 5) overlap on channel 2: they must take separate passes.
    let overlap = Case { terms: &[(0, 0, 0), (0, 2, 4), (0, 1, 0)], ..*c };
    let dst = up(&init[0], &c.x_shape(0));
    let terms = overlap.gpu_terms(&d.ts);
    let refs = vec![Some(&dst); 3];
    mix::term_mix_backward_inputs(gpu(), Weighting::Softmax, &d.wt, c.row, &terms, &dyt, &refs, true).unwrap();
    let want = expected_input_grads(&overlap, &d, Weighting::Softmax, &dy, &init, true);
    assert_close("overlapping slices", &down(&dst), &want[0], RTOL);
}

#[test]
fn nested_weights_match_reference() {
    for (rows, group) in [(4usize, &[2usize, 3][..]), (4, &[1]), (300, &[0, 4])] {
        let k = 5;
        let alpha = randn(rows as u64 + group[0] as u64, rows * k);
        let dout = randn(7000 + rows as u64, rows * (k + 1));
        let at = up(&alpha, &[rows, k]);
        let out = mix::nested_weights_forward(gpu(), &at, group).unwrap();
        assert_close(&format!("nested fwd {group:?}"), &down(&out), &cpu::nested_weights(&alpha, k, group), RTOL);
        let da = mix::nested_weights_backward(gpu(), &at, group, &up(&dout, &[rows, k + 1])).unwrap();
        let want = cpu::nested_weights_backward(&alpha, k, group, &dout);
        assert_close(&format!("nested bwd {group:?}"), &down(&da), &want, RTOL);
    }
}

fn add_into(acc: &mut [f32], v: &[f32]) {
    acc.iter_mut().zip(v).for_each(|(a, b)| *a += b);
}

fn tv(x: &Var, channel_offset: usize, col: usize) -> TermVar<'_> {
    TermVar { x, channel_offset, col }
}

fn st(x: &[f32], cx: usize, offset: usize, col: usize) -> SliceTerm<'_> {
    SliceTerm { x, cx, offset, col }
}

/// A wide tensor [N, 3C, H, W] read by three term mixes (together all 3 slices), a whole
/// tensor read by two of them, and an accumulator chain; gradients against the references.
#[test]
fn tape_gathers_slice_gradients_of_a_wide_tensor() {
    let (n, c, h, w, k) = (2usize, 3usize, 4usize, 5usize, 5usize);
    let dims = TermDims { n, c, hw: h * w };
    let node = [n, c, h, w];
    let wide = randn(1, n * 3 * c * h * w);
    let pool = randn(2, numel(&node));
    let a2 = randn(3, numel(&node));
    let alpha = randn(4, 3 * k);
    let r = randn(5, numel(&node));
    let combine = [1.0f32, 2.0];

    let tape = Tape::new(gpu());
    let wv = tape.leaf(&up(&wide, &[n, 3 * c, h, w]));
    let pv = tape.leaf(&up(&pool, &node));
    let a2v = tape.leaf(&up(&a2, &node));
    let av = tape.leaf(&up(&alpha, &[3, k]));
    // Op 2 reads two slices of the wide tensor: both land in one gradient buffer.
    let y1 = mix::term_mix(&tape, Weighting::Softmax, &av, 0, c, None, &[tv(&wv, 0, 1), tv(&pv, 0, 3)]).unwrap();
    let t2 = [tv(&wv, c, 2), tv(&pv, 0, 4), tv(&wv, 2 * c, 0)];
    let y2 = mix::term_mix(&tape, Weighting::Softmax, &av, 1, c, Some(&a2v), &t2).unwrap();
    let y3 = mix::term_mix(&tape, Weighting::Softmax, &av, 2, c, Some(&y1), &[tv(&wv, 2 * c, 1)]).unwrap();
    assert!(y2.tensor.same_storage(&a2v.tensor) && y3.tensor.same_storage(&y1.tensor), "in place");
    let cw = Var::constant(up(&combine, &[1, 2]));
    let y = mix::term_mix(&tape, Weighting::Raw, &cw, 0, c, None, &[tv(&y2, 0, 0), tv(&y3, 0, 1)]).unwrap();
    let g = tape.backward_with(&y, up(&r, &node), &[&wv, &pv, &a2v, &av]).unwrap();

    // CPU: op i reads `terms` with α row i; its upstream gradient is dy_i.
    let sm = Weighting::Softmax;
    let o1 = [st(&wide, 3 * c, 0, 1), st(&pool, c, 0, 3)];
    let o2 = [st(&wide, 3 * c, c, 2), st(&pool, c, 0, 4), st(&wide, 3 * c, 2 * c, 0)];
    let o3 = [st(&wide, 3 * c, 2 * c, 1)];
    let y1c = cpu::term_mix(sm, &alpha, k, 0, &o1, dims, None);
    let y2c = cpu::term_mix(sm, &alpha, k, 1, &o2, dims, Some(&a2));
    let y3c = cpu::term_mix(sm, &alpha, k, 2, &o3, dims, Some(&y1c));
    let yc = cpu::term_mix(Weighting::Raw, &combine, 2, 0, &[st(&y2c, c, 0, 0), st(&y3c, c, 0, 1)], dims, None);
    assert_close("output", &down(&y.tensor), &yc, RTOL);

    let dy2: Vec<f32> = r.iter().map(|v| v * combine[0]).collect();
    let dy3: Vec<f32> = r.iter().map(|v| v * combine[1]).collect();
    let ops: [(&[SliceTerm], usize, &[f32]); 3] = [(&o1, 0, &dy3), (&o2, 1, &dy2), (&o3, 2, &dy3)];
    let (mut dwide, mut dpool, mut dalpha) = (vec![0.0; wide.len()], vec![0.0; pool.len()], vec![0.0; alpha.len()]);
    for (terms, row, dy) in ops {
        add_into(&mut dalpha, &cpu::term_mix_backward_weights(sm, &alpha, k, row, terms, dims, dy));
        for (t, dx) in terms.iter().zip(cpu::term_mix_backward_inputs(sm, &alpha, k, row, terms, dims, dy)) {
            add_into(if t.cx == 3 * c { &mut dwide } else { &mut dpool }, &dx);
        }
    }
    assert_close("d wide", &down(g.get(&wv).unwrap()), &dwide, RTOL);
    assert_close("d pool", &down(g.get(&pv).unwrap()), &dpool, RTOL);
    assert_close("d alpha", &down(g.get(&av).unwrap()), &dalpha, RTOL);
    assert_close("d acc", &down(g.get(&a2v).unwrap()), &dy2, RTOL);
}

/// Dispatches recorded by `f` on a private device (the shared one is busy with other tests).
fn dispatches(g: &Gpu, f: impl FnOnce()) -> u64 {
    let before = g.work().dispatches;
    f();
    g.work().dispatches - before
}

#[test]
fn backward_dispatches_only_the_kernels_needed() {
    let g = Gpu::from_env().unwrap();
    let put = |d: &[f32], s: &[usize]| Tensor::from_slice(&g, d, s, "t").unwrap();
    let c = &CASES[0];
    let d = c.data(8000);
    let acc = randn(8001, c.out_len());
    let dy = randn(8002, c.out_len());
    let forward = |tape: &Tape| {
        let av = tape.leaf(&put(&d.weights, &[c.rows, c.k]));
        let xv: Vec<Var> = d.xs.iter().enumerate().map(|(i, x)| tape.leaf(&put(x, &c.x_shape(i)))).collect();
        let accv = tape.leaf(&put(&acc, &c.out_shape()));
        let terms: Vec<TermVar> =
            c.terms.iter().map(|&(i, off, col)| TermVar { x: &xv[i], channel_offset: off, col }).collect();
        let y = mix::term_mix(tape, Weighting::Softmax, &av, c.row, c.c, Some(&accv), &terms).unwrap();
        (av, xv, accv, y)
    };
    let cterms = c.cpu_terms(&d.xs);

    // α only: the partial dot products and the finish, no input-gradient kernel.
    let tape = Tape::new(&g);
    let (av, xv, accv, y) = forward(&tape);
    let mut grads = None;
    let n = dispatches(&g, || grads = Some(tape.backward_with(&y, put(&dy, &c.out_shape()), &[&av]).unwrap()));
    let grads = grads.unwrap();
    assert_eq!(n, 2, "α-only backward");
    assert!(grads.get(&accv).is_none() && xv.iter().all(|x| grads.get(x).is_none()));
    let want = cpu::term_mix_backward_weights(Weighting::Softmax, &d.weights, c.k, c.row, &cterms, c.dims(), &dy);
    assert_close("α only", &grads.get(&av).unwrap().to_vec(&g).unwrap(), &want, RTOL);

    // The wide tensor only: one pass writes both of its slices, no α kernels.
    let tape = Tape::new(&g);
    let (av, xv, accv, y) = forward(&tape);
    let mut grads = None;
    let n = dispatches(&g, || grads = Some(tape.backward_with(&y, put(&dy, &c.out_shape()), &[&xv[0]]).unwrap()));
    let grads = grads.unwrap();
    assert_eq!(n, 1, "wide-only backward");
    assert!(grads.get(&av).is_none() && grads.get(&accv).is_none() && grads.get(&xv[1]).is_none());
    let dx = cpu::term_mix_backward_inputs(Weighting::Softmax, &d.weights, c.k, c.row, &cterms, c.dims(), &dy);
    let mut want = dx[0].clone();
    add_into(&mut want, &dx[1]);
    assert_close("wide only", &grads.get(&xv[0]).unwrap().to_vec(&g).unwrap(), &want, RTOL);

    // Everything: α (2), one pass for all slices; d acc is dy itself (no kernel).
    let tape = Tape::new(&g);
    let (av, xv, accv, y) = forward(&tape);
    let dyt = put(&dy, &c.out_shape());
    let mut grads = None;
    let n =
        dispatches(&g, || grads = Some(tape.backward_with(&y, dyt.clone(), &[&av, &xv[0], &xv[1], &accv]).unwrap()));
    assert_eq!(n, 3, "full backward");
    assert!(grads.unwrap().get(&accv).unwrap().same_storage(&dyt), "d acc = dy");

    // Overlapping slices of one buffer take one pass each, in order (a chain of three
    // overlaps takes three); disjoint ones share a pass.
    let wt = put(&d.weights, &[c.rows, c.k]);
    let dst = put(&d.xs[0], &c.x_shape(0));
    for (terms, passes) in
        [(&[(0, 0, 0), (0, 4, 1)][..], 1), (&[(0, 0, 0), (0, 2, 1)], 2), (&[(0, 0, 0), (0, 2, 1), (0, 4, 2)], 3)]
    {
        let case = Case { terms, ..*c };
        let ts: Vec<Tensor> = d.xs.iter().enumerate().map(|(i, x)| put(x, &c.x_shape(i))).collect();
        let refs = vec![Some(&dst); terms.len()];
        let n = dispatches(&g, || {
            let terms = case.gpu_terms(&ts);
            mix::term_mix_backward_inputs(&g, Weighting::Raw, &wt, c.row, &terms, &dyt, &refs, true).unwrap();
        });
        assert_eq!(n, passes, "{terms:?}");
    }
}

/// Partial module sharing: `Σ_{m∉S} w_m x_m + W · Σ_{m∈S} (w_m / W) x_m` built from
/// `nested_weights` and raw term mixes gives the softmax term mix and its gradients.
#[test]
fn nested_weights_recombine_to_the_softmax_mix() {
    let (c, k, row, group) = (3usize, 5usize, 1usize, [2usize, 3]);
    let shape = [1, 4 * c, 5, 3];
    let node = [1, c, 5, 3];
    let wide = randn(10, numel(&shape));
    let alpha = randn(11, 2 * k);
    let dy = randn(12, numel(&node));
    let run = |nested: bool| {
        let tape = Tape::new(gpu());
        let av = tape.leaf(&up(&alpha, &[2, k]));
        let wv = tape.leaf(&up(&wide, &shape));
        // Column 4 has no term (`none`): it only enters the softmax.
        let slice = |m: usize, col| TermVar { x: &wv, channel_offset: m * c, col };
        let y = if nested {
            let nw = mix::nested_weights(&tape, &av, &group).unwrap();
            let inner = mix::term_mix(&tape, Weighting::Raw, &nw, row, c, None, &[slice(2, 2), slice(3, 3)]).unwrap();
            let outer = [slice(0, 0), slice(1, 1), TermVar { x: &inner, channel_offset: 0, col: k }];
            mix::term_mix(&tape, Weighting::Raw, &nw, row, c, None, &outer).unwrap()
        } else {
            let all: Vec<TermVar> = (0..4).map(|m| slice(m, m)).collect();
            mix::term_mix(&tape, Weighting::Softmax, &av, row, c, None, &all).unwrap()
        };
        let g = tape.backward_with(&y, up(&dy, &node), &[&av, &wv]).unwrap();
        (down(&y.tensor), down(g.get(&av).unwrap()), down(g.get(&wv).unwrap()))
    };
    let (y, da, dw) = run(false);
    let (yn, dan, dwn) = run(true);
    assert_close("nested output", &yn, &y, RTOL);
    assert_close("nested dα", &dan, &da, RTOL);
    assert_close("nested dwide", &dwn, &dw, RTOL);
}

#[test]
fn bad_arguments_are_errors_not_panics() {
    let c = &CASES[0];
    let d = c.data(9000);
    let out = Tensor::empty(gpu(), &c.out_shape(), "out").unwrap();
    let sm = Weighting::Softmax;
    let err = |r: wgnas::Result<()>| r.unwrap_err().to_string();
    let nine = vec![Term { x: &d.ts[1], channel_offset: 0, col: 0 }; 9];
    assert!(err(mix::term_mix_into(gpu(), sm, &d.wt, c.row, &nine, &out, false)).contains("at most 8"));
    let beyond = [Term { x: &d.ts[0], channel_offset: 5, col: 0 }];
    assert!(err(mix::term_mix_into(gpu(), sm, &d.wt, c.row, &beyond, &out, false)).contains("channels [5, 8)"));
    let aliased = [Term { x: &out, channel_offset: 0, col: 0 }];
    assert!(err(mix::term_mix_into(gpu(), sm, &d.wt, c.row, &aliased, &out, true)).contains("aliases"));
    let bad_col = [Term { x: &d.ts[1], channel_offset: 0, col: c.k }];
    assert!(err(mix::term_mix_into(gpu(), sm, &d.wt, c.row, &bad_col, &out, false)).contains("column"));
    let other_hw = up(&randn(1, 2 * 3 * 5 * 4), &[2, 3, 5, 4]);
    let other = [Term { x: &other_hw, channel_offset: 0, col: 0 }];
    assert!(mix::term_mix_into(gpu(), sm, &d.wt, c.row, &other, &out, false).is_err());
    assert!(mix::term_mix_into(gpu(), sm, &d.wt, c.rows, &c.gpu_terms(&d.ts), &out, false).is_err());
    // A destination of the wrong shape, and one that aliases dy.
    let terms = c.gpu_terms(&d.ts);
    let dst = [Some(&d.ts[1]), None, None];
    let r = mix::term_mix_backward_inputs(gpu(), sm, &d.wt, c.row, &terms, &out, &dst, true);
    assert!(err(r).contains("differs"));
    let whole = [Term::whole(&out, 0)];
    let r = mix::term_mix_backward_inputs(gpu(), sm, &d.wt, c.row, &whole, &out, &[Some(&out)], true);
    assert!(err(r).contains("aliases"));
    // Nested groups must be sorted, distinct, in range and non-empty.
    for group in [&[3usize, 2][..], &[2, 2], &[5], &[]] {
        assert!(mix::nested_weights_forward(gpu(), &d.wt, group).is_err(), "{group:?}");
    }
    assert!(mix::nested_weights_backward(gpu(), &d.wt, &[1], &d.wt).is_err());
    // Tape: acc with another channel count, no terms; failed ops record nothing.
    let tape = Tape::new(gpu());
    let av = tape.leaf(&d.wt);
    let xv = tape.leaf(&d.ts[1]);
    let accv = tape.leaf(&up(&randn(2, c.out_len()), &c.out_shape()));
    let t = [TermVar { x: &xv, channel_offset: 0, col: 0 }];
    assert!(mix::term_mix(&tape, sm, &av, c.row, c.c + 1, Some(&accv), &t).is_err());
    assert!(mix::term_mix(&tape, sm, &av, c.row, c.c, None, &[]).is_err());
    assert!(mix::term_mix(&tape, sm, &av, c.row, c.c, Some(&accv), &[TermVar { x: &accv, ..t[0] }]).is_err());
    assert!(tape.is_empty(), "failed ops record nothing");
}
