//! The mbconv space: squeeze-and-excitation on the GPU against its CPU reference, the
//! architecture string, the per-block supernet (path enumeration, counts, exactness against
//! the same block inside an `MbNet`, BN recalibration, gradient routing), and a tiny `MbNet`
//! memorising a batch.

mod common;
use common::*;
use wgnas::nn::se;
use wgnas::ops::conv::{self, Conv2dParams, ConvShape};
use wgnas::ops::loss;
use wgnas::ops::optim::{Optimizer, Sgd};
use wgnas::ops::testing::assert_close;
use wgnas::space::mbconv::{candidates, BnMode, MbArch, MbBlockSupernet, MbNet, MbOp, MbSpace};
use wgnas::tensor::tape::{Tape, Var};
use wgnas::train::model::FixedNet;
use wgnas::util::rng::Rng;

fn mb(expand: usize, kernel: usize) -> MbOp {
    MbOp::MbConv { expand, kernel }
}

/// C = 4, 3×8×8 inputs, 3 classes.
fn tiny(layers: Vec<usize>) -> MbSpace {
    MbSpace::aligned_to_nb201(4, 3, 8, 3, layers)
}

#[test]
fn se_matches_cpu_reference_forward_and_every_gradient() {
    // N = 3, C = 5, odd 7×9 planes (63 > one 64-wide reduction lane only just), r = 2.
    let shape = [3usize, 5, 7, 9];
    let (c, r) = (5, 2);
    let x = randn(1, shape.iter().product());
    let (w1, b1, w2, b2) = (randn(2, r * c), randn(3, r), randn(4, c * r), randn(5, c));
    let dy = randn(6, x.len());
    let tape = Tape::new(gpu());
    let xv = tape.leaf(&up(&x, &shape));
    let (w1v, b1v) = (tape.leaf(&up(&w1, &[r, c])), tape.leaf(&up(&b1, &[r])));
    let (w2v, b2v) = (tape.leaf(&up(&w2, &[c, r])), tape.leaf(&up(&b2, &[c])));
    let y = se::se(&tape, &xv, &w1v, &b1v, &w2v, &b2v).unwrap();
    let w = se::SeRef { w1: &w1, b1: &b1, w2: &w2, b2: &b2 };
    assert_close("se forward", &down(&y.tensor), &se::reference(&x, shape, &w), RTOL);
    let g = tape.backward_with(&y, up(&dy, &shape), &[&xv, &w1v, &b1v, &w2v, &b2v]).unwrap();
    let want = se::reference_backward(&x, shape, &w, &dy);
    assert_close("se dx", &down(g.get(&xv).unwrap()), &want.dx, RTOL);
    assert_close("se dw1", &down(g.get(&w1v).unwrap()), &want.dw1, RTOL);
    assert_close("se db1", &down(g.get(&b1v).unwrap()), &want.db1, RTOL);
    assert_close("se dw2", &down(g.get(&w2v).unwrap()), &want.dw2, RTOL);
    assert_close("se db2", &down(g.get(&b2v).unwrap()), &want.db2, RTOL);

    let bad = tape.leaf(&up(&w1, &[c, r]));
    let e = se::se(&tape, &xv, &bad, &b1v, &w2v, &b2v).unwrap_err().to_string();
    assert!(e.contains("W1 [r, 5]"), "{e}");
}

#[test]
fn arch_strings_round_trip_and_errors_name_the_valid_ops() {
    let s = "mb6_k3,mb3_k5|mb6_k7,skip|mb3_k3,mb3_k3";
    let a = MbArch::parse(s).unwrap();
    assert_eq!(a.blocks[0], vec![mb(6, 3), mb(3, 5)]);
    assert_eq!(a.blocks[1][1], MbOp::Skip);
    assert_eq!(a.to_string(), s);
    assert_eq!(MbArch::parse(&a.to_string()).unwrap(), a);
    for (bad, want) in [
        ("mb6_k3,mb4_k3", "valid ops are mb3_k3, mb3_k5, mb3_k7, mb6_k3, mb6_k5, mb6_k7, skip"),
        ("mb6_k3|skip,mb3_k3", "starts with skip"),
        ("mb6_k3||mb3_k3", "unknown op ''"),
        ("", "empty architecture"),
    ] {
        let e = MbArch::parse(bad).unwrap_err().to_string();
        assert!(e.contains(want), "'{bad}': {e}");
    }
    let names: Vec<String> = candidates(false).iter().map(MbOp::name).collect();
    assert_eq!(names, ["mb3_k3", "mb3_k5", "mb3_k7", "mb6_k3", "mb6_k5", "mb6_k7", "skip"]);
    assert_eq!(candidates(true), candidates(false)[..6].to_vec());

    // The architecture must fit the space's layer counts.
    let e = MbNet::new(gpu(), tiny(vec![2, 2, 3]), &a, 0).err().unwrap().to_string();
    assert!(e.contains("[2, 2, 2]") && e.contains("[2, 2, 3]"), "{e}");
    let mut sp = tiny(vec![2, 5, 2]);
    assert!(sp.validate().unwrap_err().to_string().contains("2 to 4"));
    sp.layers = vec![2, 2];
    assert!(sp.validate().unwrap_err().to_string().contains("one entry per block"));
}

#[test]
fn paths_are_counted_and_enumerated_in_a_stable_order() {
    let space = tiny(vec![2, 3, 2]);
    for (block, layers) in [(0usize, 2u32), (1, 3)] {
        let sn = MbBlockSupernet::new(gpu(), &space, block, 7).unwrap();
        assert_eq!(sn.path_count(), 6 * 7usize.pow(layers - 1));
        let paths = sn.paths();
        assert_eq!(paths.len(), sn.path_count());
        assert_eq!(paths, sn.paths(), "the order does not change between calls");
        // Odometer order: path i has layer l's candidate at digit l of i (radix 6, 7, …, 7).
        for (i, p) in paths.iter().enumerate() {
            let mut rest = i;
            let mut want = Vec::new();
            for l in (0..layers as usize).rev() {
                let c = candidates(l == 0);
                want.push(c[rest % c.len()]);
                rest /= c.len();
            }
            want.reverse();
            assert_eq!(p, &want, "path {i}");
        }
        let mut rng = Rng::new(3);
        for _ in 0..20 {
            assert!(paths.contains(&sn.sample_path(&mut rng)));
        }
    }
}

/// Per-layer parameters written out independently of the library.
fn layer_params(c_in: usize, c_out: usize, op: MbOp) -> usize {
    match op {
        MbOp::Skip => 0,
        MbOp::MbConv { expand, kernel } => {
            let m = expand * c_in;
            let r = ((c_in as f32 * 0.25).round() as usize).max(1);
            c_in * m + 2 * m + m * kernel * kernel + 2 * m + (r * m + r) + (m * r + m) + m * c_out + 2 * c_out
        }
    }
}

#[test]
fn params_and_macs_follow_the_formulas() {
    let space = tiny(vec![2, 2, 3]);
    let arch = MbArch::parse("mb6_k3,mb3_k5|mb6_k7,skip|mb3_k3,skip,mb6_k5").unwrap();
    let net = MbNet::new(gpu(), space.clone(), &arch, 1).unwrap();
    let (c, classes) = (4, 3);
    let widths = [c, 2 * c, 4 * c];
    let mut want = 3 * c * 9 + 2 * c; // stem conv + BN
    let mut c_prev = c;
    for (b, ops) in arch.blocks.iter().enumerate() {
        for (l, &op) in ops.iter().enumerate() {
            let c_in = if l == 0 { c_prev } else { widths[b] };
            want += layer_params(c_in, widths[b], op);
        }
        c_prev = widths[b];
    }
    want += 4 * c * 8 * c + 2 * 8 * c + 8 * c * classes + classes; // head conv + BN + classifier
    assert_eq!(net.param_count(), want);
    assert_eq!(net.param_count(), net.weight_specs().iter().map(|s| s.numel()).sum::<usize>());

    // Block 1 (4 → 8, stride 2, input 8×8) with path mb6_k7, skip: MACs written out.
    let sn = MbBlockSupernet::new(gpu(), &space, 1, 2).unwrap();
    let path = arch.blocks[1].clone();
    assert_eq!(sn.path_params(&path).unwrap(), layer_params(4, 8, mb(6, 7)));
    let (m, r) = (24u64, 1u64);
    assert_eq!(sn.path_macs(&path).unwrap(), 4 * m * 64 + m * 49 * 16 + 2 * m * r + m * 8 * 16);
    assert!(sn.path_params(&[MbOp::Skip, MbOp::Skip]).is_err(), "skip cannot start a block");
    assert!(sn.path_params(&[mb(3, 3)]).is_err(), "a path needs one op per layer");
}

/// Copies a block supernet path's tensors into `net` under the net's names.
fn copy_path(net: &mut MbNet, sn: &MbBlockSupernet, path: &[MbOp]) {
    for (name, t) in sn.path_weights(path).unwrap() {
        net.load(gpu(), &name, &down(&t)).unwrap();
    }
}

#[test]
fn block_supernet_path_equals_the_block_inside_an_mbnet() {
    let space = tiny(vec![2, 2, 2]);
    let path = vec![mb(6, 5), MbOp::Skip];
    let arch =
        MbArch::parse(&format!("mb3_k3,mb6_k3|{}|mb3_k7,mb6_k7", MbArch { blocks: vec![path.clone()] })).unwrap();
    let mut net = MbNet::new(gpu(), space.clone(), &arch, 11).unwrap();
    let sn = MbBlockSupernet::new(gpu(), &space, 1, 12).unwrap();
    let names: Vec<String> = sn.path_weights(&path).unwrap().into_iter().map(|(n, _)| n).collect();
    assert!(names.contains(&"blocks.1.0.depthwise.weight".to_string()), "{names:?}");
    assert!(names.contains(&"blocks.1.0.project_bn.running_var".to_string()), "{names:?}");
    let x = up(&randn(13, 4 * 3 * 64), &[4, 3, 8, 8]);
    for mode in [BnMode::Train, BnMode::Eval] {
        copy_path(&mut net, &sn, &path);
        let tape = Tape::new(gpu());
        let w: Vec<Var> = net.weights().iter().map(|t| tape.leaf(t)).collect();
        let out = net.forward(&tape, &x, &w, mode == BnMode::Train).unwrap();
        assert_eq!(out.features.len(), 4);
        assert_eq!(out.features[2].shape(), &[4, 8, 4, 4]);
        let xin = Var::constant(out.features[1].tensor.clone());
        let sw: Vec<Var> = sn.weights().iter().map(|t| tape.leaf(t)).collect();
        let y = sn.forward(&tape, &xin, &sw, &path, mode).unwrap();
        assert_eq!(down(&y.tensor), down(&out.features[2].tensor), "{mode:?}: the same kernels on the same values");
    }
}

#[test]
fn recalibration_sets_running_stats_to_the_batch_statistics() {
    use wgnas::ops::norm::cpu::batch_stats;
    let space = tiny(vec![2, 2, 2]);
    let sn = MbBlockSupernet::new(gpu(), &space, 0, 21).unwrap();
    let path = vec![mb(3, 3), mb(6, 5)];
    let shape = sn.input_shape(5);
    assert_eq!(shape, [5, 4, 8, 8]);
    let w: Vec<Var> = sn.weights().iter().map(|t| Var::constant(t.clone())).collect();
    // Batch A first: batch B's statistics must replace A's, not blend with them.
    for seed in [22, 23] {
        let tape = Tape::new(gpu());
        let x = Var::constant(up(&randn(seed, shape.iter().product()), &shape));
        sn.forward(&tape, &x, &w, &path, BnMode::Recalibrate).unwrap();
    }
    let x = randn(23, shape.iter().product());
    let buffers = sn.buffers();
    let get = |n: &str| down(&buffers.iter().find(|(name, _)| name == n).unwrap().1);
    let i = sn.weight_names().iter().position(|n| n == "blocks.0.0.mb3_k3.expand.weight").unwrap();
    let wexp = down(&sn.weights()[i]);
    let cs = ConvShape::new(shape, [12, 4, 1, 1], &Conv2dParams::default()).unwrap();
    let h = conv::cpu::conv2d_forward(&x, &wexp, None, &cs);
    let (mean, var) = batch_stats(&h, [5, 12, 64]);
    let m = 5.0 * 64.0;
    let unbiased: Vec<f32> = var.iter().map(|v| (v * m / (m - 1.0)) as f32).collect();
    let mean: Vec<f32> = mean.iter().map(|&v| v as f32).collect();
    assert_close("running mean", &get("blocks.0.0.mb3_k3.expand_bn.running_mean"), &mean, 1e-4);
    assert_close("running var", &get("blocks.0.0.mb3_k3.expand_bn.running_var"), &unbiased, 1e-4);
    // Candidates off the path keep their initial statistics.
    assert!(get("blocks.0.0.mb6_k3.expand_bn.running_mean").iter().all(|&v| v == 0.0));
    assert!(get("blocks.0.1.mb3_k3.project_bn.running_var").iter().all(|&v| v == 1.0));
    let moved = get("blocks.0.1.mb6_k5.project_bn.running_var");
    assert!(moved.iter().any(|&v| v != 1.0), "the path's last BN was recalibrated too");
    sn.reset_stats(gpu(), &path).unwrap();
    assert!(get("blocks.0.1.mb6_k5.project_bn.running_var").iter().all(|&v| v == 1.0));
    assert!(get("blocks.0.0.mb3_k3.expand_bn.running_mean").iter().all(|&v| v == 0.0));
}

#[test]
fn gradients_reach_only_the_chosen_candidates() {
    let space = tiny(vec![2, 3, 2]);
    let sn = MbBlockSupernet::new(gpu(), &space, 1, 31).unwrap();
    let path = vec![mb(3, 7), MbOp::Skip, mb(6, 3)];
    let shape = sn.input_shape(3);
    let tape = Tape::new(gpu());
    let w: Vec<Var> = sn.weights().iter().map(|t| tape.leaf(t)).collect();
    let x = Var::constant(up(&randn(32, shape.iter().product()), &shape));
    let y = sn.forward(&tape, &x, &w, &path, BnMode::Train).unwrap();
    assert_eq!(y.shape(), &[3, 8, 4, 4]);
    let target = Var::constant(up(&randn(33, 3 * 8 * 16), &[3, 8, 4, 4]));
    let l = loss::mse(&tape, &y, &target).unwrap();
    let refs: Vec<&Var> = w.iter().collect();
    let g = tape.backward(&l, &refs).unwrap();
    let chosen = ["blocks.1.0.mb3_k7.", "blocks.1.2.mb6_k3."];
    let mut reached = 0;
    for (v, name) in w.iter().zip(sn.weight_names()) {
        match (g.get(v), chosen.iter().any(|p| name.starts_with(p))) {
            (Some(t), true) => {
                assert!(down(t).iter().any(|&x| x != 0.0), "{name}: zero gradient");
                reached += 1;
            }
            (None, false) => {}
            (got, want) => panic!("{name}: gradient {} but on the path: {want}", got.is_some()),
        }
    }
    assert_eq!(reached, 26, "13 tensors per MBConv on the path");
    let bad = sn.forward(&tape, &x, &w, &[MbOp::Skip, mb(3, 3), mb(3, 3)], BnMode::Eval).err().unwrap().to_string();
    assert!(bad.contains("layer 0 cannot be skip"), "{bad}");
}

#[test]
fn a_tiny_mbnet_memorises_a_batch() {
    let space = tiny(vec![2, 2, 2]);
    let arch = MbArch::parse("mb3_k3,skip|mb6_k5,mb3_k3|mb3_k7,skip").unwrap();
    let net = MbNet::new(gpu(), space, &arch, 41).unwrap();
    assert_eq!(net.space(), "mbconv");
    assert_eq!(MbArch::parse(&net.arch()).unwrap(), arch);
    assert!(net.flops() > 0);
    let x = up(&randn(42, 8 * 3 * 64), &[8, 3, 8, 8]);
    let labels = up(&[0.0, 1.0, 2.0, 0.0, 1.0, 2.0, 1.0, 0.0], &[8]);
    let mut opt = Sgd::new(0.1, 0.9, false, 0.0);
    let mut losses = Vec::new();
    for _ in 0..20 {
        let tape = Tape::new(gpu());
        let w: Vec<Var> = net.weights().iter().map(|t| tape.leaf(t)).collect();
        let out = net.forward(&tape, &x, &w, true).unwrap();
        assert_eq!(out.logits.shape(), &[8, 3]);
        let (l, _) = loss::cross_entropy(&tape, &out.logits, &labels).unwrap();
        let refs: Vec<&Var> = w.iter().collect();
        let mut g = tape.backward(&l, &refs).unwrap();
        let grads: Vec<_> = w.iter().map(|v| g.take(v).unwrap()).collect();
        let params: Vec<_> = net.weights().iter().collect();
        opt.step(gpu(), &params, &grads.iter().collect::<Vec<_>>()).unwrap();
        losses.push(down(&l.tensor)[0]);
    }
    let (first, last) = (losses[0], losses[19]);
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    assert!(last < 0.5 * first, "loss should fall on a memorised batch: {losses:?}");
}

#[test]
fn mbnet_load_rejects_unknown_names_and_wrong_lengths() {
    let space = tiny(vec![2, 2, 2]);
    let arch = MbArch::parse("mb3_k3,skip|mb3_k3,skip|mb3_k3,skip").unwrap();
    let mut net = MbNet::new(gpu(), space, &arch, 51).unwrap();
    let e = net.load(gpu(), "blocks.0.1.expand.weight", &[0.0]).unwrap_err().to_string();
    assert!(e.contains("no tensor named") && e.contains("docs/mbconv.md"), "{e}");
    let e = net.load(gpu(), "stem.bn.running_var", &[1.0; 3]).unwrap_err().to_string();
    assert!(e.contains("[4]"), "{e}");
    net.load(gpu(), "stem.bn.running_var", &[2.0; 4]).unwrap();
    let names: Vec<String> = net.buffers().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names.first().map(String::as_str), Some("stem.bn.running_mean"));
    assert_eq!(net.weight_names()[0], "stem.conv.weight");
    assert_eq!(net.weight_names().last().map(String::as_str), Some("classifier.bias"));
}
