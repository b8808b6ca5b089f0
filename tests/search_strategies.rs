//! Search strategies on the toy supernet: the update rules against independent
//! computations (MiLeNAS α step, DARTS-2nd hypergradient vs finite differences, GDAS
//! sampling and straight-through gradient, β-DARTS gradient), loss reduction for
//! every strategy, checkpoint resume, schedules, the GPU-scalar helpers and error paths.

mod common;
use common::*;
use wgnas::ops::eltwise;
use wgnas::ops::loss;
use wgnas::ops::optim::{Adam, Optimizer};
use wgnas::ops::testing::{assert_close, assert_close_f64, closeness, finite_diff};
use wgnas::search::darts::{Darts, Order};
use wgnas::search::gdas::{self, Gdas};
use wgnas::search::toy::{toy_batch, ToyConfig, ToyNet};
use wgnas::search::{beta, build, scalar, schedule, strategy_names, ArchMode, Batch, SearchModel, Strategy};
use wgnas::search::{StepOutput, StrategyConfig};
use wgnas::tensor::tape::{Tape, Var};
use wgnas::util::rng::Rng;
use wgnas::Tensor;

// ---- helpers ---------------------------------------------------------------

fn net(seed: u64, alpha_scale: f32) -> ToyNet {
    ToyNet::new(gpu(), ToyConfig { seed, alpha_scale, ..ToyConfig::default() }).unwrap()
}

/// A train and a val batch of `n` samples from `seed`.
fn batches(model: &ToyNet, seed: u64, n: usize) -> (Batch, Batch) {
    let mut rng = Rng::new(seed);
    let cfg = model.config();
    (toy_batch(gpu(), cfg, n, &mut rng).unwrap(), toy_batch(gpu(), cfg, n, &mut rng).unwrap())
}

/// Loss of `batch` and its gradients w.r.t. w and/or α, computed directly on a tape
/// (independently of the strategies' own pass helper). `w` and `a` replace the model's.
fn direct(
    model: &ToyNet,
    batch: &Batch,
    w: &[Tensor],
    a: &[Tensor],
    want_w: bool,
    want_a: bool,
) -> (f32, Vec<Tensor>, Vec<Tensor>) {
    let tape = Tape::new(gpu());
    let leaf = |t: &Tensor, track: bool| if track { tape.leaf(t) } else { Var::constant(t.clone()) };
    let wv: Vec<Var> = w.iter().map(|t| leaf(t, want_w)).collect();
    let av: Vec<Var> = a.iter().map(|t| leaf(t, want_a)).collect();
    let logits = model.forward(&tape, &batch.x, &wv, &av, &ArchMode::Softmax, true).unwrap();
    let (l, _) = loss::cross_entropy(&tape, &logits, &batch.y).unwrap();
    if !(want_w || want_a) {
        return (down(&l.tensor)[0], vec![], vec![]);
    }
    let wrt: Vec<&Var> = wv.iter().filter(|_| want_w).chain(av.iter().filter(|_| want_a)).collect();
    let mut g = tape.backward(&l, &wrt).unwrap();
    let gw = if want_w { wv.iter().map(|v| g.take(v).unwrap()).collect() } else { vec![] };
    let ga = if want_a { av.iter().map(|v| g.take(v).unwrap()).collect() } else { vec![] };
    (down(&l.tensor)[0], gw, ga)
}

fn cfg_fast() -> StrategyConfig {
    StrategyConfig { epochs: 1, w_lr: 0.25, a_lr: 3e-3, ..StrategyConfig::default() }
}

/// Reads a step's losses (blocking; tests only).
fn losses(o: &StepOutput) -> (f32, f32) {
    (down(&o.train_loss)[0], down(&o.val_loss)[0])
}

// ---- registry and config -----------------------------------------------------

#[test]
fn registry_lists_and_builds_every_strategy() {
    let names = strategy_names();
    assert_eq!(names, ["darts-1st", "darts-2nd", "milenas", "gdas"]);
    for n in names {
        let s = build(n, &StrategyConfig::default()).unwrap();
        assert_eq!(s.name(), n);
        assert_eq!(s.epoch(), 0);
    }
    let e = build("enas", &StrategyConfig::default()).err().unwrap().to_string();
    assert!(e.contains("darts-1st"), "{e}");
    let bad = StrategyConfig { tau_min: -1.0, ..StrategyConfig::default() };
    assert!(build("gdas", &bad).is_err());
}

// ---- GPU scalars -------------------------------------------------------------

#[test]
fn gpu_scalar_helpers_match_cpu() {
    let s = up(&[6.25], &[1]);
    assert_close("rsqrt", &down(&scalar::rsqrt(gpu(), &s).unwrap()), &[0.4], RTOL);
    let zero = scalar::rsqrt(gpu(), &up(&[0.0], &[1])).unwrap();
    assert!(down(&zero)[0].is_finite(), "rsqrt(0) stays finite");
    // A tensor larger than one mix workgroup, odd size.
    let x = randn(3, 3 * 5 * 7 * 11);
    let xt = up(&x, &[3, 5, 7, 11]);
    let want: Vec<f32> = x.iter().map(|v| v * 6.25).collect();
    assert_close("mul", &down(&scalar::mul(gpu(), &s, &xt).unwrap()), &want, RTOL);
    let out = scalar::copy(gpu(), &xt).unwrap();
    scalar::add_scaled_into(gpu(), &out, &s, &xt).unwrap();
    let want: Vec<f32> = x.iter().map(|v| v * 7.25).collect();
    assert_close("add_scaled_into", &down(&out), &want, RTOL);
    assert_close("copy untouched source", &down(&xt), &x, 0.0);
}

// ---- MiLeNAS -----------------------------------------------------------------

/// α after one MiLeNAS step equals Adam fed with ∇α L_tr + λ∇α L_val (+ the β term)
/// computed separately at the initial parameters.
fn check_milenas(lambda: f32, beta_lambda: f32) {
    let model = net(11, 0.5);
    let (train, val) = batches(&model, 12, 6);
    let cfg = StrategyConfig { milenas_lambda: lambda, beta_lambda, ..cfg_fast() };
    let w0: Vec<Tensor> = model.weights().iter().map(|t| scalar::copy(gpu(), t).unwrap()).collect();
    let a0 = scalar::copy(gpu(), &model.alphas()[0]).unwrap();
    let (_, _, g_tr) = direct(&model, &train, &w0, std::slice::from_ref(&a0), false, true);
    let (_, _, g_val) = direct(&model, &val, &w0, std::slice::from_ref(&a0), false, true);
    let (gt, gv, a0v) = (down(&g_tr[0]), down(&g_val[0]), down(&a0));
    let bg = beta::grad_cpu(&a0v, 5, beta_lambda);
    let g: Vec<f32> = gt.iter().zip(&gv).zip(&bg).map(|((t, v), b)| t + lambda * v + b).collect();
    let manual = scalar::copy(gpu(), &a0).unwrap();
    let mut adam = Adam::new(cfg.a_lr, cfg.a_beta1, cfg.a_beta2, cfg.a_eps, cfg.a_weight_decay);
    adam.step(gpu(), &[&manual], &[&up(&g, a0.shape())]).unwrap();

    let mut s = build("milenas", &cfg).unwrap();
    s.step(gpu(), &model, &train, &val).unwrap();
    let got = down(&model.alphas()[0]);
    assert_close(&format!("milenas α (λ {lambda}, β {beta_lambda})"), &got, &down(&manual), RTOL);
    assert!(closeness(&got, &a0v, RTOL) > 1.0, "α moved");
}

#[test]
fn milenas_alpha_step_is_adam_on_mixed_level_gradient() {
    check_milenas(1.0, 0.0);
    check_milenas(0.3, 0.5);
}

// ---- DARTS second order ------------------------------------------------------

#[test]
fn darts2_hypergradient_matches_finite_differences() {
    // Plain SGD (no momentum, no weight decay): the unrolled step is exactly w − ξ∇w L_train.
    let xi = 0.5;
    let cfg = StrategyConfig {
        epochs: 1,
        w_lr: xi,
        w_momentum: 0.0,
        w_nesterov: false,
        w_weight_decay: 0.0,
        ..StrategyConfig::default()
    };
    let model = net(21, 1.0);
    let (train, val) = batches(&model, 22, 8);
    let darts = Darts::new(cfg, Order::Second);
    assert_eq!(darts.w_lr(), xi);
    let hyper = down(&darts.alpha_grad(gpu(), &model, &train, &val).unwrap().alpha_grads[0]);

    let w = model.weights().to_vec();
    let alpha = down(&model.alphas()[0]);
    // f(α) = L_val(w − ξ ∇w L_train(w, α), α)
    let unrolled = |a: &[f32]| -> Vec<Tensor> {
        let at = up(a, &[2, 5]);
        let (_, gw, _) = direct(&model, &train, &w, &[at], true, false);
        w.iter()
            .zip(&gw)
            .map(|(wi, gi)| {
                let t = scalar::copy(gpu(), wi).unwrap();
                eltwise::axpy(gpu(), &t, -xi, gi).unwrap();
                t
            })
            .collect()
    };
    let f = |a: &[f32]| -> f64 { direct(&model, &val, &unrolled(a), &[up(a, &[2, 5])], false, false).0 as f64 };
    let fd = finite_diff(&alpha, f, 1e-2);
    assert_close_f64("darts-2nd dα vs finite differences", &hyper, &fd, 2e-2);

    // The Hessian term matters here: the first-order part alone (and so pt.darts'
    // `(p − n) / 2.*eps`, which shrinks the term by ε²) misses the finite difference.
    let (_, _, first) = direct(&model, &val, &unrolled(&alpha), &[up(&alpha, &[2, 5])], false, true);
    let fd32: Vec<f32> = fd.iter().map(|&v| v as f32).collect();
    let c = closeness(&down(&first[0]), &fd32, 2e-2);
    assert!(c > 5.0, "second-order term too small to pin the formula (closeness {c})");
}

// ---- GDAS --------------------------------------------------------------------

#[test]
fn gdas_runs_one_candidate_per_edge_and_follows_tau_schedule() {
    let model = net(31, 1.0);
    let (train, val) = batches(&model, 32, 4);
    let cfg = StrategyConfig { epochs: 5, steps_per_epoch: 2, ..cfg_fast() };
    let mut s = Gdas::new(cfg.clone());
    let mut taus = Vec::new();
    for step in 0..6 {
        model.reset_runs();
        let out = s.step(gpu(), &model, &train, &val).unwrap();
        // Two passes per step (w, then α), each running exactly one op per edge.
        for (e, runs) in model.runs().iter().enumerate() {
            assert_eq!(runs.iter().sum::<usize>(), 2, "step {step} edge {e}: {runs:?}");
        }
        let tau = out.scalars.iter().find(|(n, _)| *n == "tau").unwrap().1;
        taus.push(tau);
        let (l, v) = losses(&out);
        assert!(l.is_finite() && v.is_finite());
    }
    // steps_per_epoch = 2: epochs 0, 0, 1, 1, 2, 2; τ_e = 10 − 9.9·e/4.
    let want = [10.0, 10.0, 7.525, 7.525, 5.05, 5.05];
    assert_close("tau", &taus, &want, 1e-6);
    s.begin_epoch(4);
    assert!((s.tau() - 0.1).abs() < 1e-6);
    assert_eq!(schedule::tau(&cfg, 4), s.tau());
}

#[test]
fn gumbel_straight_through_is_one_hot_forward_with_softmax_gradient() {
    let (e, k, tau) = (3, 5, 0.7);
    let alpha = randn(41, e * k);
    let mut rng = Rng::new(42);
    let s = gdas::sample(&mut rng, &alpha, k);
    assert!(s.noise.iter().all(|g| g.is_finite()));
    let tape = Tape::new(gpu());
    let av = tape.leaf(&up(&alpha, &[e, k]));
    let other = tape.leaf(&up(&[1.0; 4], &[4]));
    let hard = gdas::straight_through(&tape, &av, &s.noise, &s.index, tau).unwrap();
    // Forward value: exactly one-hot at the sampled index, which is argmax(α + g).
    let hv = down(&hard.tensor);
    for r in 0..e {
        let row = &hv[r * k..(r + 1) * k];
        let z: Vec<f32> = (0..k).map(|j| alpha[r * k + j] + s.noise[r * k + j]).collect();
        let arg = (0..k).fold(0, |b, j| if z[j] > z[b] { j } else { b });
        assert_eq!(s.index[r], arg);
        for (j, &v) in row.iter().enumerate() {
            assert_eq!(v, if j == arg { 1.0 } else { 0.0 });
        }
    }
    // Gradient: that of h = softmax((α + g)/τ): dα = (1/τ)·h ⊙ (G − ⟨h, G⟩) row-wise.
    let gup = randn(43, e * k);
    let grads = tape.backward_with(&hard, up(&gup, &[e, k]), &[&av]).unwrap();
    assert!(grads.get(&other).is_none(), "unrequested leaf gets no gradient");
    let mut want = vec![0f32; e * k];
    for r in 0..e {
        let z: Vec<f64> = (0..k).map(|j| (alpha[r * k + j] + s.noise[r * k + j]) as f64 / tau as f64).collect();
        let m = z.iter().cloned().fold(f64::MIN, f64::max);
        let sum: f64 = z.iter().map(|v| (v - m).exp()).sum();
        let h: Vec<f64> = z.iter().map(|v| (v - m).exp() / sum).collect();
        let dot: f64 = (0..k).map(|j| h[j] * gup[r * k + j] as f64).sum();
        for j in 0..k {
            want[r * k + j] = (h[j] * (gup[r * k + j] as f64 - dot) / tau as f64) as f32;
        }
    }
    assert_close("straight-through dα", &down(grads.get(&av).unwrap()), &want, RTOL);
    // Bad arguments are errors, not panics.
    let tape = Tape::new(gpu());
    let av = tape.leaf(&up(&alpha, &[e, k]));
    assert!(gdas::straight_through(&tape, &av, &s.noise, &[0, 1, 5], tau).is_err());
    assert!(gdas::straight_through(&tape, &av, &s.noise[1..], &s.index, tau).is_err());
    assert!(gdas::straight_through(&tape, &av, &s.noise, &s.index, 0.0).is_err());
}

// ---- β-DARTS -----------------------------------------------------------------

#[test]
fn beta_regularizer_gradient_matches_finite_differences() {
    // ∂/∂α [λ/E Σ_e logsumexp(α_e)] = λ softmax(α_e)/E; 6 edges × 5 ops like NB201, and a
    // 14 × 8 DARTS-like α.
    for (e, k, lambda) in [(6, 5, 0.8f32), (14, 8, 2.0)] {
        let a = Rng::new(e as u64).normal_vec(e * k, 1.5);
        let g = beta::grad(gpu(), &up(&a, &[e, k]), lambda).unwrap();
        let fd = finite_diff(&a, |a| beta::penalty_cpu(a, k, lambda), 1e-2);
        assert_close_f64("beta grad vs fd", &down(&g), &fd, 1e-3);
    }
}

// ---- every strategy ----------------------------------------------------------

/// `steps` steps on fresh batches; returns the train losses (read one step late).
fn train(name: &str, cfg: &StrategyConfig, steps: usize) -> Vec<f32> {
    let model = net(51, 1e-3);
    let mut s = build(name, cfg).unwrap();
    let mut rng = Rng::new(52);
    let mut pending = None;
    let mut out = Vec::new();
    for _ in 0..steps {
        let train = toy_batch(gpu(), model.config(), 16, &mut rng).unwrap();
        let val = toy_batch(gpu(), model.config(), 16, &mut rng).unwrap();
        let o = s.step(gpu(), &model, &train, &val).unwrap();
        let reads = (o.train_loss.read_async(gpu()).unwrap(), o.val_loss.read_async(gpu()).unwrap());
        if let Some((l, v)) = pending.replace(reads) {
            let (l, v): (wgnas::gpu::readback::PendingRead, wgnas::gpu::readback::PendingRead) = (l, v);
            let (l, v) = (l.wait(gpu()).unwrap()[0], v.wait(gpu()).unwrap()[0]);
            assert!(l.is_finite() && v.is_finite(), "{name}: non-finite loss");
            out.push(l);
        }
    }
    for t in model.weights().iter().chain(model.alphas()) {
        assert!(down(t).iter().all(|v| v.is_finite()), "{name}: non-finite parameter {}", t.name());
    }
    out
}

#[test]
fn every_strategy_reduces_the_loss() {
    // 80 steps over 4 epochs (cosine lr, τ 10 → 0.1), with the β regularizer on.
    let cfg = StrategyConfig { epochs: 4, steps_per_epoch: 20, beta_lambda: 0.5, ..cfg_fast() };
    for name in strategy_names() {
        // GDAS trains one sampled path per step: a gentler w lr, an α lr large enough to
        // concentrate the samples within the test, and no β term pulling α back to uniform.
        let cfg = match name {
            "gdas" => StrategyConfig { w_lr: 0.1, a_lr: 0.05, beta_lambda: 0.0, ..cfg.clone() },
            _ => cfg.clone(),
        };
        let l = train(name, &cfg, 80);
        let head: f32 = l[..10].iter().sum::<f32>() / 10.0;
        let tail: f32 = l[l.len() - 10..].iter().sum::<f32>() / 10.0;
        assert!(tail < 0.5 * head, "{name}: mean loss {head} → {tail} ({l:?})");
    }
}

// ---- checkpoints -------------------------------------------------------------

/// Overwrites `dst` with `src` in place.
fn assign(dst: &Tensor, src: &Tensor) {
    eltwise::zero(gpu(), dst).unwrap();
    eltwise::axpy(gpu(), dst, 1.0, src).unwrap();
}

#[test]
fn resuming_from_state_repeats_the_uninterrupted_run() {
    // A large α lr, so that GDAS's samples depend on which lagged α they come from.
    let cfg = StrategyConfig { steps_per_epoch: 2, epochs: 3, a_lr: 0.5, ..cfg_fast() };
    for name in strategy_names() {
        let a = net(61, 0.3);
        let mut rng = Rng::new(62);
        let data: Vec<(Batch, Batch)> = (0..5)
            .map(|_| {
                (toy_batch(gpu(), a.config(), 4, &mut rng).unwrap(), toy_batch(gpu(), a.config(), 4, &mut rng).unwrap())
            })
            .collect();
        let mut sa = build(name, &cfg).unwrap();
        for (t, v) in &data[..3] {
            sa.step(gpu(), &a, t, v).unwrap();
        }
        // A checkpoint: copies of the parameters and of the strategy's tensors.
        let mut state = sa.state();
        for (_, t) in state.tensors.iter_mut() {
            *t = scalar::copy(gpu(), t).unwrap();
        }
        let params: Vec<Tensor> =
            a.weights().iter().chain(a.alphas()).map(|t| scalar::copy(gpu(), t).unwrap()).collect();
        for (t, v) in &data[3..] {
            sa.step(gpu(), &a, t, v).unwrap();
        }

        let b = net(99, 0.3); // different initial values, all overwritten
        for (dst, src) in b.weights().iter().chain(b.alphas()).zip(&params) {
            assign(dst, src);
        }
        let mut sb = build(name, &cfg).unwrap();
        sb.load_state(gpu(), &state).unwrap();
        assert_eq!(sb.epoch(), 1, "{name}: 3 steps of 2 per epoch");
        for (t, v) in &data[3..] {
            sb.step(gpu(), &b, t, v).unwrap();
        }
        assert_eq!(sa.epoch(), sb.epoch());
        for (x, y) in a.weights().iter().chain(a.alphas()).zip(b.weights().iter().chain(b.alphas())) {
            assert_close(&format!("{name} resumed {}", x.name()), &down(y), &down(x), 1e-6);
        }
        // A state of another strategy is refused.
        let other = if name == "gdas" { "milenas" } else { "gdas" };
        assert!(build(other, &cfg).unwrap().load_state(gpu(), &state).is_err());
    }
}

// ---- errors ------------------------------------------------------------------

#[test]
fn bad_batches_and_models_are_errors_not_panics() {
    let model = net(71, 1e-3);
    let (train, val) = batches(&model, 72, 4);
    // Label count differs from the batch size.
    assert!(Batch::new(train.x.clone(), up(&[0.0; 3], &[3])).is_err());
    // Images with the wrong channel count.
    let bad = Batch::new(up(&[0.0; 4 * 2 * 8 * 8], &[4, 2, 8, 8]), train.y.clone()).unwrap();
    for name in strategy_names() {
        let mut s = build(name, &cfg_fast()).unwrap();
        assert!(s.step(gpu(), &model, &bad, &val).is_err(), "{name}");
    }
    // Weights substituted with the wrong count.
    let w = &model.weights()[..3];
    let r = wgnas::search::common::pass(
        gpu(),
        &model,
        &train,
        w,
        wgnas::search::common::Want { w: true, a: false },
        &mut wgnas::search::common::softmax_mode,
    );
    assert!(r.is_err());
}
