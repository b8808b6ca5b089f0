//! Optimizers on the GPU against their CPU references over several steps (rtol 1e-4,
//! see common::RTOL), state save/restore, and error paths.

mod common;
use common::*;
use wgnas::ops::optim::{cpu, Adam, Optimizer, Sgd};
use wgnas::ops::testing::assert_close;
use wgnas::Tensor;

/// Parameter shapes: a conv weight with 3 and 5 channels, odd vectors, one past a workgroup.
const SHAPES: &[&[usize]] = &[&[5, 3, 3, 3], &[7], &[1], &[16, 5, 3, 3], &[9, 7]];
const STEPS: u64 = 5;

fn numel(s: &[usize]) -> usize {
    s.iter().product()
}

/// Initial parameters (CPU copies and GPU tensors).
fn init(seed: u64) -> (Vec<Vec<f32>>, Vec<Tensor>) {
    let cpu: Vec<Vec<f32>> = SHAPES.iter().enumerate().map(|(i, s)| randn(seed + i as u64, numel(s))).collect();
    let gpu_t = cpu.iter().zip(SHAPES).map(|(v, s)| up(v, s)).collect();
    (cpu, gpu_t)
}

/// The gradients of step `t` (fresh random values every step).
fn grads(seed: u64, t: u64) -> Vec<Vec<f32>> {
    SHAPES.iter().enumerate().map(|(i, s)| randn(seed * 1000 + t * 10 + i as u64, numel(s))).collect()
}

fn refs(ts: &[Tensor]) -> Vec<&Tensor> {
    ts.iter().collect()
}

/// Runs SGD on the GPU and the reference side by side, halving lr after step 2.
fn check_sgd(seed: u64, mut opt: Sgd) {
    let (mut want, params) = init(seed);
    let mut bufs: Vec<Option<Vec<f32>>> = vec![None; SHAPES.len()];
    for t in 1..=STEPS {
        if t == 3 {
            opt.set_lr(opt.lr() * 0.5);
        }
        let g = grads(seed, t);
        let gt: Vec<Tensor> = g.iter().zip(SHAPES).map(|(v, s)| up(v, s)).collect();
        opt.step(gpu(), &refs(&params), &refs(&gt)).unwrap();
        for i in 0..SHAPES.len() {
            let (p, b) = cpu::sgd_step(&opt, &want[i], &g[i], bufs[i].as_deref());
            want[i] = p;
            bufs[i] = Some(b);
        }
    }
    assert_eq!(opt.steps(), STEPS);
    for (i, p) in params.iter().enumerate() {
        assert_close(&format!("sgd {opt:?} param {i}"), &down(p), &want[i], RTOL);
    }
    let state = opt.state();
    if opt.momentum == 0.0 {
        assert!(state.is_empty(), "no momentum buffers without momentum");
    }
    for (name, t) in &state {
        let i: usize = name.trim_start_matches("momentum_buffer.").parse().unwrap();
        let want_buf = bufs[i].as_ref().unwrap();
        assert_close(name, &down(t), want_buf, RTOL);
    }
}

#[test]
fn sgd_plain_matches_reference() {
    check_sgd(1, Sgd::new(0.1, 0.0, false, 0.0));
}

#[test]
fn sgd_weight_decay_matches_reference() {
    check_sgd(2, Sgd::new(0.1, 0.0, false, 0.01));
}

#[test]
fn sgd_momentum_matches_reference() {
    check_sgd(3, Sgd::new(0.05, 0.9, false, 0.0));
}

#[test]
fn sgd_nesterov_with_weight_decay_matches_reference() {
    // The NB201 DARTS weight optimizer.
    check_sgd(4, Sgd::new(0.025, 0.9, true, 5e-4));
}

/// Runs Adam on the GPU and the reference side by side, halving lr after step 2.
fn check_adam(seed: u64, mut opt: Adam) {
    let (mut want, params) = init(seed);
    let mut m: Vec<Vec<f32>> = SHAPES.iter().map(|s| vec![0.0; numel(s)]).collect();
    let mut v = m.clone();
    for t in 1..=STEPS {
        if t == 3 {
            opt.set_lr(opt.lr() * 0.5);
        }
        let g = grads(seed, t);
        let gt: Vec<Tensor> = g.iter().zip(SHAPES).map(|(v, s)| up(v, s)).collect();
        opt.step(gpu(), &refs(&params), &refs(&gt)).unwrap();
        for i in 0..SHAPES.len() {
            let (p, mi, vi) = cpu::adam_step(&opt, t, &want[i], &g[i], &m[i], &v[i]);
            (want[i], m[i], v[i]) = (p, mi, vi);
        }
    }
    for (i, p) in params.iter().enumerate() {
        assert_close(&format!("adam {opt:?} param {i}"), &down(p), &want[i], RTOL);
    }
    for (name, t) in opt.state() {
        let (kind, i) = name.rsplit_once('.').unwrap();
        let i: usize = i.parse().unwrap();
        let w = if kind == "exp_avg" { &m[i] } else { &v[i] };
        assert_close(&name, &down(&t), w, RTOL);
    }
    assert_eq!(opt.state().len(), 2 * SHAPES.len());
}

#[test]
fn adam_matches_reference() {
    check_adam(5, Adam::new(1e-2, 0.9, 0.999, 1e-8, 0.0));
}

#[test]
fn adam_with_weight_decay_matches_reference() {
    // The NB201 DARTS α optimizer.
    check_adam(6, Adam::new(3e-4, 0.5, 0.999, 1e-8, 1e-3));
}

/// Two steps, then a save/restore into a fresh optimizer; both continue identically.
fn check_resume<O: Optimizer>(mut a: O, mut b: O) {
    let (_, pa) = init(70);
    let (_, pb) = init(70);
    for t in 1..=2 {
        let g = grads(7, t);
        let gt: Vec<Tensor> = g.iter().zip(SHAPES).map(|(v, s)| up(v, s)).collect();
        a.step(gpu(), &refs(&pa), &refs(&gt)).unwrap();
        b.step(gpu(), &refs(&pb), &refs(&gt)).unwrap();
    }
    let mut fresh = b;
    fresh.load_state(gpu(), &a.state(), a.steps()).unwrap();
    assert_eq!(fresh.steps(), 2);
    for t in 3..=4 {
        let g = grads(7, t);
        let gt: Vec<Tensor> = g.iter().zip(SHAPES).map(|(v, s)| up(v, s)).collect();
        a.step(gpu(), &refs(&pa), &refs(&gt)).unwrap();
        fresh.step(gpu(), &refs(&pb), &refs(&gt)).unwrap();
    }
    for (x, y) in pa.iter().zip(&pb) {
        assert_eq!(down(x), down(y), "resumed run differs");
    }
    // The loaded state was copied: the two optimizers do not share buffers.
    for ((_, x), (_, y)) in a.state().iter().zip(&fresh.state()) {
        assert!(!x.same_storage(y));
    }
}

#[test]
fn state_round_trip_resumes_exactly() {
    check_resume(Sgd::new(0.05, 0.9, true, 1e-4), Sgd::new(0.05, 0.9, true, 1e-4));
    check_resume(Adam::new(1e-2, 0.5, 0.999, 1e-8, 1e-3), Adam::new(1e-2, 0.5, 0.999, 1e-8, 1e-3));
}

#[test]
fn errors_not_panics() {
    let p = up(&[1.0, 2.0, 3.0, 4.0], &[4]);
    let g3 = up(&[1.0, 2.0, 3.0], &[3]);
    let g22 = up(&[1.0, 2.0, 3.0, 4.0], &[2, 2]);
    let mut sgd = Sgd::new(0.1, 0.9, false, 0.0);
    let e = sgd.step(gpu(), &[&p], &[&g3]).unwrap_err().to_string();
    assert!(e.contains("does not match"), "{e}");
    assert!(sgd.step(gpu(), &[&p], &[&g22]).is_err(), "same size, other shape");
    assert!(sgd.step(gpu(), &[&p], &[]).is_err());
    assert!(sgd.step(gpu(), &[&p], &[&p]).is_err(), "a parameter as its own gradient");
    let mut adam = Adam::new(1e-3, 0.9, 0.999, 1e-8, 0.0);
    assert!(adam.step(gpu(), &[&p], &[&g3]).is_err());
    assert_eq!(adam.steps(), 0, "a failed step does not count");

    // Bad hyper-parameters.
    assert!(Sgd::new(0.1, 0.0, true, 0.0).step(gpu(), &[], &[]).is_err(), "Nesterov without momentum");
    assert!(Adam::new(1e-3, 1.0, 0.999, 1e-8, 0.0).step(gpu(), &[], &[]).is_err());
    assert!(Sgd::new(f32::NAN, 0.0, false, 0.0).step(gpu(), &[], &[]).is_err());

    // Unknown state names, and state that does not fit the parameter.
    let e = sgd.load_state(gpu(), &[("exp_avg.0".into(), g3.clone())], 1).unwrap_err();
    assert!(e.to_string().contains("unknown state tensor"), "{e}");
    sgd.load_state(gpu(), &[("momentum_buffer.0".into(), g3.clone())], 1).unwrap();
    let g4 = up(&[0.0; 4], &[4]);
    let e = sgd.step(gpu(), &[&p], &[&g4]).unwrap_err().to_string();
    assert!(e.contains("momentum_buffer.0"), "{e}");
}
