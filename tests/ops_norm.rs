//! BatchNorm2d on the GPU against its CPU references (rtol 1e-4, see common::RTOL).

mod common;
use common::*;
use wgnas::ops::norm::{self, cpu, BnConfig, BnStats};
use wgnas::ops::testing::assert_close;
use wgnas::tensor::tape::Tape;
use wgnas::{Gpu, Tensor};

/// Shapes (N, C, H, W): odd channel counts and spatial sizes, batch 1, a 5×3 image, and
/// sizes whose channels span several 4096-element chunks (the last one shorter) so the
/// reductions run many iterations per invocation and combine partials.
const SHAPES: [[usize; 4]; 6] =
    [[2, 3, 7, 9], [1, 5, 4, 4], [3, 16, 5, 3], [1, 7, 9, 7], [8, 4, 32, 32], [4, 2, 50, 50]];

const EPS: f32 = 1e-5;

/// `[n, c, hw]` for the CPU references.
fn dims3(s: [usize; 4]) -> [usize; 3] {
    [s[0], s[1], s[2] * s[3]]
}

/// Input with a non-zero mean and a non-unit scale, so normalisation has work to do.
fn input(seed: u64, s: [usize; 4]) -> Vec<f32> {
    randn(seed, s.iter().product()).iter().map(|v| 3.0 * v + 1.5).collect()
}

/// γ, β and running statistics of length c (running var positive).
fn channel_params(seed: u64, c: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let g = randn(seed, c);
    let b = randn(seed + 1, c);
    let rm = randn(seed + 2, c);
    let rv = randn(seed + 3, c).iter().map(|v| 0.5 + v * v).collect();
    (g, b, rm, rv)
}

fn stats_down(s: &BnStats) -> (Vec<f32>, Vec<f32>) {
    (down(&s.mean), down(&s.invstd))
}

#[test]
fn train_forward_matches_reference() {
    for (k, s) in SHAPES.into_iter().enumerate() {
        let x = input(10 + k as u64, s);
        let (g, b, _, _) = channel_params(20 + k as u64, s[1]);
        let gx = up(&x, &s);
        let (gg, gb) = (up(&g, &[s[1]]), up(&b, &[s[1]]));
        for affine in [false, true] {
            let aff = affine.then_some((&gg, &gb));
            let (y, st) = norm::batch_norm_train(gpu(), &gx, aff, None, BnConfig::default()).expect("train forward");
            let caff = affine.then_some((&g[..], &b[..]));
            let (wy, wm, wi) = cpu::batch_norm_train(&x, dims3(s), caff, EPS);
            let what = format!("train y {s:?} affine={affine}");
            assert_close(&what, &down(&y), &wy, RTOL);
            let (m, i) = stats_down(&st);
            assert_close(&format!("mean {s:?}"), &m, &wm, RTOL);
            assert_close(&format!("invstd {s:?}"), &i, &wi, RTOL);
        }
    }
}

#[test]
fn running_statistics_update_in_place() {
    let cfg = BnConfig { eps: 1e-3, momentum: 0.3 };
    for (k, s) in [[2, 3, 7, 9], [1, 5, 3, 1], [8, 4, 32, 32]].into_iter().enumerate() {
        let x = input(30 + k as u64, s);
        let (_, _, rm, rv) = channel_params(40 + k as u64, s[1]);
        let (grm, grv) = (up(&rm, &[s[1]]), up(&rv, &[s[1]]));
        let (y, _) = norm::batch_norm_train(gpu(), &up(&x, &s), None, Some((&grm, &grv)), cfg).expect("train forward");
        let (wrm, wrv) = cpu::running_update(&x, dims3(s), (&rm, &rv), cfg.momentum);
        assert_close("running mean", &down(&grm), &wrm, RTOL);
        assert_close("running var", &down(&grv), &wrv, RTOL);
        let (wy, _, _) = cpu::batch_norm_train(&x, dims3(s), None, cfg.eps);
        assert_close("y with running update", &down(&y), &wy, RTOL);
    }
}

#[test]
fn eval_forward_matches_reference() {
    for (k, s) in SHAPES.into_iter().enumerate() {
        let x = input(50 + k as u64, s);
        let (g, b, rm, rv) = channel_params(60 + k as u64, s[1]);
        let c = [s[1]];
        let (gg, gb, grm, grv) = (up(&g, &c), up(&b, &c), up(&rm, &c), up(&rv, &c));
        for affine in [false, true] {
            let aff = affine.then_some((&gg, &gb));
            let y =
                norm::batch_norm_eval(gpu(), &up(&x, &s), aff, &grm, &grv, BnConfig::default()).expect("eval forward");
            let caff = affine.then_some((&g[..], &b[..]));
            let want = cpu::batch_norm_eval(&x, dims3(s), caff, (&rm, &rv), EPS);
            assert_close(&format!("eval y {s:?} affine={affine}"), &down(&y), &want, RTOL);
        }
        assert_eq!(down(&grm), rm, "evaluation leaves running stats alone");
    }
}

#[test]
fn train_backward_matches_reference() {
    for (k, s) in SHAPES.into_iter().enumerate() {
        let x = input(70 + k as u64, s);
        let dy = randn(80 + k as u64, x.len());
        let (g, b, _, _) = channel_params(90 + k as u64, s[1]);
        let (gx, gdy) = (up(&x, &s), up(&dy, &s));
        let (gg, gb) = (up(&g, &[s[1]]), up(&b, &[s[1]]));
        for affine in [false, true] {
            let aff = affine.then_some((&gg, &gb));
            let (_, st) = norm::batch_norm_train(gpu(), &gx, aff, None, BnConfig::default()).expect("train forward");
            let gamma = affine.then_some(&gg);
            let gr = norm::batch_norm_backward_train(gpu(), &gdy, &gx, &st, gamma, [true; 3]).expect("train backward");
            let cg = affine.then_some(&g[..]);
            let (wdx, wdg, wdb) = cpu::batch_norm_backward_train(&x, &dy, dims3(s), cg, EPS);
            let tag = format!("{s:?} affine={affine}");
            assert_close(&format!("dx {tag}"), &down(&gr.dx.unwrap()), &wdx, RTOL);
            assert_close(&format!("dg {tag}"), &down(&gr.dgamma.unwrap()), &wdg, RTOL);
            assert_close(&format!("db {tag}"), &down(&gr.dbeta.unwrap()), &wdb, RTOL);
        }
    }
}

#[test]
fn eval_backward_matches_reference() {
    for (k, s) in SHAPES.into_iter().enumerate() {
        let x = input(100 + k as u64, s);
        let dy = randn(110 + k as u64, x.len());
        let (g, _, rm, rv) = channel_params(120 + k as u64, s[1]);
        let c = [s[1]];
        let (gx, gdy, gg) = (up(&x, &s), up(&dy, &s), up(&g, &c));
        let st = norm::eval_stats(gpu(), &up(&rm, &c), &up(&rv, &c), BnConfig::default()).expect("eval stats");
        for affine in [false, true] {
            let gamma = affine.then_some(&gg);
            let gr = norm::batch_norm_backward_eval(gpu(), &gdy, &gx, &st, gamma, [true; 3]).expect("eval backward");
            let cg = affine.then_some(&g[..]);
            let want = cpu::batch_norm_backward_eval(&x, &dy, dims3(s), cg, (&rm, &rv), EPS);
            let tag = format!("{s:?} affine={affine}");
            assert_close(&format!("eval dx {tag}"), &down(&gr.dx.unwrap()), &want.0, RTOL);
            assert_close(&format!("eval dg {tag}"), &down(&gr.dgamma.unwrap()), &want.1, RTOL);
            assert_close(&format!("eval db {tag}"), &down(&gr.dbeta.unwrap()), &want.2, RTOL);
        }
    }
}

#[test]
fn backward_computes_only_requested_gradients() {
    let s = [2, 5, 7, 9];
    let x = input(130, s);
    let dy = randn(131, x.len());
    let (g, b, _, _) = channel_params(132, s[1]);
    let (gx, gdy) = (up(&x, &s), up(&dy, &s));
    let (gg, gb) = (up(&g, &[5]), up(&b, &[5]));
    let (_, st) =
        norm::batch_norm_train(gpu(), &gx, Some((&gg, &gb)), None, BnConfig::default()).expect("train forward");
    let want = cpu::batch_norm_backward_train(&x, &dy, dims3(s), Some(&g), EPS);
    for needs in [[true, false, false], [false, true, false], [false, false, true], [false, true, true]] {
        let gr = norm::batch_norm_backward_train(gpu(), &gdy, &gx, &st, Some(&gg), needs).expect("backward");
        assert_eq!([gr.dx.is_some(), gr.dgamma.is_some(), gr.dbeta.is_some()], needs);
        if let Some(dx) = gr.dx {
            assert_close("dx alone", &down(&dx), &want.0, RTOL);
        }
        if let Some(dg) = gr.dgamma {
            assert_close("dgamma subset", &down(&dg), &want.1, RTOL);
        }
        if let Some(db) = gr.dbeta {
            assert_close("dbeta subset", &down(&db), &want.2, RTOL);
        }
    }
}

/// Dispatches recorded by `f` on a private device (the shared one is used by parallel tests).
fn dispatches(gpu: &Gpu, f: impl FnOnce()) -> u64 {
    let before = gpu.work().dispatches;
    f();
    gpu.work().dispatches - before
}

#[test]
fn dispatch_counts_match_the_documented_plan() {
    let gpu = &Gpu::from_env().expect("second device");
    let s = [2, 3, 5, 5];
    let x = Tensor::from_slice(gpu, &input(140, s), &s, "x").unwrap();
    let v = Tensor::from_slice(gpu, &[1.0; 3], &[3], "v").unwrap();
    let rm = Tensor::from_slice(gpu, &[0.0; 3], &[3], "rm").unwrap();
    let rv = Tensor::from_slice(gpu, &[1.0; 3], &[3], "rv").unwrap();
    let cfg = BnConfig::default();
    let mut st = None;
    let n = dispatches(gpu, || {
        st = Some(norm::batch_norm_train(gpu, &x, Some((&v, &v)), Some((&rm, &rv)), cfg).unwrap().1)
    });
    assert_eq!(n, 3, "train forward: partials, finalize, normalise");
    let st = st.unwrap();
    let bwd = |needs, batch: bool| {
        dispatches(gpu, || {
            let r = if batch {
                norm::batch_norm_backward_train(gpu, &x, &x, &st, Some(&v), needs)
            } else {
                norm::batch_norm_backward_eval(gpu, &x, &x, &st, Some(&v), needs)
            };
            r.unwrap();
        })
    };
    assert_eq!(bwd([true, true, true], true), 3);
    assert_eq!(bwd([false, true, false], true), 2, "no dx kernel");
    assert_eq!(bwd([true, false, false], false), 1, "eval dx needs no reduction");
    assert_eq!(bwd([false, false, false], true), 0);
    let n = dispatches(gpu, || {
        norm::batch_norm_eval(gpu, &x, None, &rm, &rv, cfg).unwrap();
    });
    assert_eq!(n, 2, "eval forward: statistics, normalise");
    gpu.flush().unwrap();
}

#[test]
fn tape_op_trains_and_skips_unrequested_gradients() {
    let s = [3, 5, 3, 7];
    let x = input(150, s);
    let dy = randn(151, x.len());
    let (g, b, rm, rv) = channel_params(152, s[1]);
    let c = [s[1]];
    let (grm, grv) = (up(&rm, &c), up(&rv, &c));
    let tape = Tape::new(gpu());
    let xv = tape.leaf(&up(&x, &s));
    let (gv, bv) = (tape.leaf(&up(&g, &c)), tape.leaf(&up(&b, &c)));
    let cfg = BnConfig::default();
    let y = norm::batch_norm(&tape, &xv, Some((&gv, &bv)), Some((&grm, &grv)), true, cfg).expect("tape forward");
    let (wy, _, _) = cpu::batch_norm_train(&x, dims3(s), Some((&g, &b)), EPS);
    assert_close("tape y", &down(&y.tensor), &wy, RTOL);
    let (wrm, _) = cpu::running_update(&x, dims3(s), (&rm, &rv), cfg.momentum);
    assert_close("tape running mean", &down(&grm), &wrm, RTOL);

    // Only γ requested: x and β get nothing.
    let grads = tape.backward_with(&y, up(&dy, &s), &[&gv]).expect("backward");
    let want = cpu::batch_norm_backward_train(&x, &dy, dims3(s), Some(&g), EPS);
    assert_close("tape dgamma", &down(grads.get(&gv).unwrap()), &want.1, RTOL);
    assert!(grads.get(&xv).is_none() && grads.get(&bv).is_none());
    assert!(tape.is_empty());

    // Now x and β.
    let y = norm::batch_norm(&tape, &xv, Some((&gv, &bv)), None, true, cfg).unwrap();
    let grads = tape.backward_with(&y, up(&dy, &s), &[&xv, &bv]).unwrap();
    assert_close("tape dx", &down(grads.get(&xv).unwrap()), &want.0, RTOL);
    assert_close("tape dbeta", &down(grads.get(&bv).unwrap()), &want.2, RTOL);
    assert!(grads.get(&gv).is_none());
}

#[test]
fn tape_op_eval_mode_uses_running_or_batch_statistics() {
    let s = [2, 3, 5, 3];
    let x = input(160, s);
    let dy = randn(161, x.len());
    let (_, _, rm, rv) = channel_params(162, s[1]);
    let c = [s[1]];
    let (grm, grv) = (up(&rm, &c), up(&rv, &c));
    let cfg = BnConfig::default();
    let tape = Tape::new(gpu());
    let xv = tape.leaf(&up(&x, &s));

    // Running statistics given: they normalise, stay unchanged, and are constants for dx.
    let y = norm::batch_norm(&tape, &xv, None, Some((&grm, &grv)), false, cfg).unwrap();
    let want = cpu::batch_norm_eval(&x, dims3(s), None, (&rm, &rv), EPS);
    assert_close("tape eval y", &down(&y.tensor), &want, RTOL);
    let grads = tape.backward_with(&y, up(&dy, &s), &[&xv]).unwrap();
    let wdx = cpu::batch_norm_backward_eval(&x, &dy, dims3(s), None, (&rm, &rv), EPS).0;
    assert_close("tape eval dx", &down(grads.get(&xv).unwrap()), &wdx, RTOL);
    assert_eq!(down(&grv), rv);

    // No running statistics (track_running_stats = False): batch statistics even in eval.
    let y = norm::batch_norm(&tape, &xv, None, None, false, cfg).unwrap();
    let want = cpu::batch_norm_train(&x, dims3(s), None, EPS).0;
    assert_close("tape eval batch-stat y", &down(&y.tensor), &want, RTOL);
    let grads = tape.backward_with(&y, up(&dy, &s), &[&xv]).unwrap();
    let wdx = cpu::batch_norm_backward_train(&x, &dy, dims3(s), None, EPS).0;
    assert_close("tape eval batch-stat dx", &down(grads.get(&xv).unwrap()), &wdx, RTOL);
}

/// The message of an expected error.
fn err<T>(r: wgnas::Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_shapes_and_arguments_are_errors_not_panics() {
    let s = [2, 3, 4, 4];
    let x = up(&input(170, s), &s);
    let c3 = up(&[1.0; 3], &[3]);
    let c4 = up(&[1.0; 4], &[4]);
    let cfg = BnConfig::default();

    let e = err(norm::batch_norm_train(gpu(), &x, Some((&c4, &c3)), None, cfg));
    assert!(e.contains("batch_norm") && e.contains("[4]") && e.contains("[3]"), "{e}");
    let e = err(norm::batch_norm_eval(gpu(), &x, Some((&c3, &c4)), &c3, &up(&[1.0; 3], &[3]), cfg));
    assert!(e.contains("[4]"), "{e}");
    let e = err(norm::batch_norm_train(gpu(), &x, None, Some((&c3, &c4)), cfg));
    assert!(e.contains("[4]"), "{e}");
    let e = err(norm::batch_norm_train(gpu(), &x, None, Some((&c3, &c3)), cfg));
    assert!(e.contains("distinct"), "{e}");
    let e = err(norm::batch_norm_train(gpu(), &up(&[1.0; 6], &[2, 3]), None, None, cfg));
    assert!(e.contains("NCHW"), "{e}");
    let one = up(&[1.0, 2.0], &[1, 2, 1, 1]);
    let e = err(norm::batch_norm_train(gpu(), &one, None, None, cfg));
    assert!(e.contains("more than one value"), "{e}");
    let bad = BnConfig { eps: -1.0, ..cfg };
    let e = err(norm::batch_norm_train(gpu(), &x, None, None, bad));
    assert!(e.contains("eps"), "{e}");

    let (_, st) = norm::batch_norm_train(gpu(), &x, None, None, cfg).unwrap();
    let dy = up(&[0.0; 32], &[2, 1, 4, 4]);
    let e = err(norm::batch_norm_backward_train(gpu(), &dy, &x, &st, None, [true; 3]));
    assert!(e.contains("backward"), "{e}");
    let e = err(norm::batch_norm_backward_train(gpu(), &x, &x, &st, Some(&c4), [true; 3]));
    assert!(e.contains("[4]"), "{e}");

    let tape = Tape::new(gpu());
    let xv = tape.leaf(&x);
    let (gv, bv) = (tape.leaf(&c4), tape.leaf(&c4));
    assert!(norm::batch_norm(&tape, &xv, Some((&gv, &bv)), None, true, cfg).is_err());
    assert!(tape.is_empty(), "a failed op records nothing");
}

#[test]
fn statistics_stay_accurate_far_from_zero() {
    // Mean 100, std 1: E[x²] − E[x]² would lose about 4 digits here; two passes do not.
    let s = [8, 2, 32, 32];
    let x: Vec<f32> = randn(180, s.iter().product()).iter().map(|v| v + 100.0).collect();
    let (y, st) = norm::batch_norm_train(gpu(), &up(&x, &s), None, None, BnConfig::default()).expect("train forward");
    let (wy, wm, wi) = cpu::batch_norm_train(&x, dims3(s), None, EPS);
    assert_close("far y", &down(&y), &wy, RTOL);
    assert_close("far mean", &down(&st.mean), &wm, RTOL);
    assert_close("far invstd", &down(&st.invstd), &wi, RTOL);
}

/// The BN that keeps its output equals the plain non-affine BN with batch statistics, in
/// value and in dx (its backward reads x̂ from the saved output instead of x), on every shape.
#[test]
fn keep_output_bn_equals_plain_bn() {
    let gpu = gpu();
    for (i, s) in SHAPES.iter().enumerate() {
        let n: usize = s.iter().product();
        let x = up(&input(900 + i as u64, *s), s);
        let dy = up(&randn(950 + i as u64, n), s);
        let run = |keep: bool| {
            let tape = Tape::new(gpu);
            let xv = tape.leaf(&x);
            let y = if keep {
                norm::batch_norm_keep_output(&tape, &xv, BnConfig::default()).unwrap()
            } else {
                norm::batch_norm(&tape, &xv, None, None, true, BnConfig::default()).unwrap()
            };
            let g = tape.backward_with(&y, dy.clone(), &[&xv]).unwrap();
            (down(&y.tensor), down(g.get(&xv).unwrap()))
        };
        let (y0, dx0) = run(false);
        let (y1, dx1) = run(true);
        assert_close(&format!("keep-output y {s:?}"), &y1, &y0, RTOL);
        assert_close(&format!("keep-output dx {s:?}"), &dx1, &dx0, RTOL);
    }
}
