//! A small CNN trained on a synthetic task: the engine's end-to-end check and the
//! `wgnas demo` command.
//!
//! Network: Conv3×3(C_in→C, pad 1, bias) → BatchNorm(affine, batch statistics) → ReLU →
//! AvgPool 2×2 → Linear(C·(H/2)·(W/2) → K). Task: each image holds a bright patch in
//! one of four quadrants, under noise; the class is the quadrant.
//!
//! The same network is implemented twice: on the GPU through the tape and the WGSL
//! kernels, and on the CPU from the reference ops alone, so the two training curves
//! can be compared step by step.

use crate::error::Result;
use crate::gpu::readback::PendingRead;
use crate::gpu::Gpu;
use crate::nn::init;
use crate::ops::conv::{self, Conv2dParams, ConvShape};
use crate::ops::optim::{self, Optimizer, Sgd};
use crate::ops::pool::{self, Pool2d};
use crate::ops::{eltwise, linear, loss, norm};
use crate::tensor::tape::{Tape, Var};
use crate::tensor::Tensor;
use crate::util::rng::Rng;

/// Sizes and optimiser settings of the demo.
#[derive(Debug, Clone, Copy)]
pub struct DemoConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Input height and width (even).
    pub size: usize,
    /// Conv output channels.
    pub channels: usize,
    /// Classes (the quadrant task has 4).
    pub classes: usize,
    /// Batch size.
    pub batch: usize,
    /// SGD learning rate.
    pub lr: f32,
    /// SGD momentum.
    pub momentum: f32,
    /// Noise standard deviation of the synthetic images.
    pub noise: f32,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig { in_channels: 3, size: 8, channels: 8, classes: 4, batch: 32, lr: 0.05, momentum: 0.9, noise: 0.5 }
    }
}

impl DemoConfig {
    fn conv_shape(&self) -> Result<ConvShape> {
        ConvShape::new(
            [self.batch, self.in_channels, self.size, self.size],
            [self.channels, self.in_channels, 3, 3],
            &Conv2dParams::same(3),
        )
    }

    /// Inputs of the linear layer.
    pub fn features(&self) -> usize {
        self.channels * (self.size / 2) * (self.size / 2)
    }
}

/// The six parameter tensors, on the CPU, in the order conv w, conv b, γ, β, fc w, fc b.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoWeights {
    /// Parameter values.
    pub values: Vec<Vec<f32>>,
}

/// Names of the parameters, in [`DemoWeights`] order.
pub const PARAM_NAMES: [&str; 6] = ["conv.weight", "conv.bias", "bn.weight", "bn.bias", "fc.weight", "fc.bias"];

impl DemoWeights {
    /// PyTorch-default initialisation from `seed`.
    pub fn init(cfg: &DemoConfig, seed: u64) -> DemoWeights {
        let mut rng = Rng::new(seed);
        let fan_conv = cfg.in_channels * 9;
        let fan_fc = cfg.features();
        DemoWeights {
            values: vec![
                init::default_weight(&mut rng, cfg.channels * fan_conv, fan_conv),
                init::default_bias(&mut rng, cfg.channels, fan_conv),
                vec![1.0; cfg.channels],
                vec![0.0; cfg.channels],
                init::default_weight(&mut rng, cfg.classes * fan_fc, fan_fc),
                init::default_bias(&mut rng, cfg.classes, fan_fc),
            ],
        }
    }

    fn shapes(cfg: &DemoConfig) -> [Vec<usize>; 6] {
        let c = cfg.channels;
        [
            vec![c, cfg.in_channels, 3, 3],
            vec![c],
            vec![c],
            vec![c],
            vec![cfg.classes, cfg.features()],
            vec![cfg.classes],
        ]
    }
}

/// One batch of the quadrant task: images (NCHW) and labels (class indices as f32).
pub fn synthetic_batch(cfg: &DemoConfig, rng: &mut Rng) -> (Vec<f32>, Vec<f32>) {
    let (s, half) = (cfg.size, cfg.size / 2);
    let mut x = vec![0f32; cfg.batch * cfg.in_channels * s * s];
    let mut labels = Vec::with_capacity(cfg.batch);
    for n in 0..cfg.batch {
        let class = rng.below(4);
        labels.push(class as f32);
        // A 2×2 patch somewhere inside the quadrant.
        let (qy, qx) = ((class / 2) * half, (class % 2) * half);
        let py = qy + rng.below(half.saturating_sub(1).max(1));
        let px = qx + rng.below(half.saturating_sub(1).max(1));
        for c in 0..cfg.in_channels {
            for y in 0..s {
                for xx in 0..s {
                    let inside = (py..py + 2).contains(&y) && (px..px + 2).contains(&xx);
                    let v = if inside { 2.0 } else { 0.0 } + cfg.noise * rng.normal() as f32;
                    x[((n * cfg.in_channels + c) * s + y) * s + xx] = v;
                }
            }
        }
    }
    (x, labels)
}

/// Loss and accuracy of one training step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepLog {
    /// Step index (0-based).
    pub step: usize,
    /// Mean cross-entropy of the batch, before the update.
    pub loss: f32,
    /// Fraction of the batch classified correctly, before the update.
    pub accuracy: f32,
}

/// The network on the GPU with its SGD optimiser.
pub struct GpuDemo {
    cfg: DemoConfig,
    params: Vec<Tensor>,
    opt: Sgd,
}

impl GpuDemo {
    /// Uploads `weights`.
    pub fn new(gpu: &Gpu, cfg: DemoConfig, weights: &DemoWeights) -> Result<GpuDemo> {
        cfg.conv_shape()?;
        let params = weights
            .values
            .iter()
            .zip(DemoWeights::shapes(&cfg))
            .zip(PARAM_NAMES)
            .map(|((v, s), name)| Tensor::from_slice(gpu, v, &s, name))
            .collect::<Result<Vec<_>>>()?;
        Ok(GpuDemo { cfg, params, opt: Sgd::new(cfg.lr, cfg.momentum, false, 0.0) })
    }

    /// Records forward, backward and the SGD update of one batch (no readback).
    /// Returns the loss and correct-count tensors of the batch, before the update.
    pub fn step(&mut self, gpu: &Gpu, x: &Tensor, labels: &Tensor) -> Result<(Tensor, Tensor)> {
        let tape = Tape::new(gpu);
        let p: Vec<Var> = self.params.iter().map(|t| tape.leaf(t)).collect();
        let xv = Var::constant(x.clone());
        let h = conv::conv2d(&tape, &xv, &p[0], Some(&p[1]), &Conv2dParams::same(3))?;
        let h = norm::batch_norm(&tape, &h, Some((&p[2], &p[3])), None, true, norm::BnConfig::default())?;
        let h = eltwise::relu(&tape, &h)?;
        let h = pool::pool2d(&tape, &h, &Pool2d::avg(2, 2, 0))?;
        let logits = linear::linear(&tape, &h, &p[4], Some(&p[5]))?;
        let (l, correct) = loss::cross_entropy(&tape, &logits, labels)?;
        let wrt: Vec<&Var> = p.iter().collect();
        let mut grads = tape.backward(&l, &wrt)?;
        let g: Vec<Tensor> = p
            .iter()
            .map(|v| grads.take(v).ok_or_else(|| crate::Error::Autodiff("demo parameter without gradient".into())))
            .collect::<Result<_>>()?;
        let pr: Vec<&Tensor> = self.params.iter().collect();
        let gr: Vec<&Tensor> = g.iter().collect();
        self.opt.step(gpu, &pr, &gr)?;
        Ok((l.tensor, correct))
    }

    /// Current parameter values, read back (blocking).
    pub fn weights(&self, gpu: &Gpu) -> Result<DemoWeights> {
        Ok(DemoWeights { values: self.params.iter().map(|t| t.to_vec(gpu)).collect::<Result<_>>()? })
    }

    /// The configuration.
    pub fn config(&self) -> &DemoConfig {
        &self.cfg
    }
}

/// Trains on the GPU for `steps` steps from `weights`, drawing batches from `data_seed`.
/// Each step's loss is read back one step late, so the GPU never waits for the CPU.
pub fn train_gpu(
    gpu: &Gpu,
    cfg: DemoConfig,
    weights: &DemoWeights,
    data_seed: u64,
    steps: usize,
    mut on_step: impl FnMut(&StepLog),
) -> Result<Vec<StepLog>> {
    let mut net = GpuDemo::new(gpu, cfg, weights)?;
    let mut rng = Rng::new(data_seed);
    let mut logs = Vec::with_capacity(steps);
    let mut pending: Option<(usize, PendingRead, PendingRead)> = None;
    let mut finish = |p: Option<(usize, PendingRead, PendingRead)>, logs: &mut Vec<StepLog>| -> Result<()> {
        if let Some((step, l, c)) = p {
            let loss = l.wait(gpu)?[0];
            let accuracy = c.wait(gpu)?[0] / cfg.batch as f32;
            let log = StepLog { step, loss, accuracy };
            on_step(&log);
            logs.push(log);
        }
        Ok(())
    };
    for step in 0..steps {
        let (x, y) = synthetic_batch(&cfg, &mut rng);
        let xt = Tensor::from_slice(gpu, &x, &[cfg.batch, cfg.in_channels, cfg.size, cfg.size], "images")?;
        let yt = Tensor::from_slice(gpu, &y, &[cfg.batch], "labels")?;
        let (l, c) = net.step(gpu, &xt, &yt)?;
        // Starting the reads submits this step; then the previous step's values are collected.
        let reads = (step, l.read_async(gpu)?, c.read_async(gpu)?);
        finish(pending.replace(reads), &mut logs)?;
    }
    finish(pending.take(), &mut logs)?;
    Ok(logs)
}

/// Trains the same network on the CPU with the reference ops alone (f64 accumulation).
pub fn train_cpu(cfg: DemoConfig, weights: &DemoWeights, data_seed: u64, steps: usize) -> Result<Vec<StepLog>> {
    let s = cfg.conv_shape()?;
    let mut w = weights.clone();
    let sgd = Sgd::new(cfg.lr, cfg.momentum, false, 0.0);
    let mut bufs: Vec<Option<Vec<f32>>> = vec![None; 6];
    let mut rng = Rng::new(data_seed);
    let (n, c, k, f) = (cfg.batch, cfg.channels, cfg.classes, cfg.features());
    let hw = cfg.size * cfg.size;
    let pool_p = Pool2d::avg(2, 2, 0);
    let pool_shape = [n, c, cfg.size, cfg.size];
    let mut logs = Vec::with_capacity(steps);
    for step in 0..steps {
        let (x, labels) = synthetic_batch(&cfg, &mut rng);
        let v = &w.values;
        // Forward.
        let h1 = conv::cpu::conv2d_forward(&x, &v[0], Some(&v[1]), &s);
        let (h2, _, _) = norm::cpu::batch_norm_train(&h1, [n, c, hw], Some((&v[2], &v[3])), 1e-5);
        let h3 = eltwise::cpu::relu(&h2);
        let h4 = pool::cpu::pool2d(&h3, pool_shape, &pool_p);
        let logits = linear::cpu::linear_forward(&h4, &v[4], Some(&v[5]), n, f, k);
        let (l, correct) = loss::cpu::cross_entropy(&logits, &labels, n, k);
        logs.push(StepLog { step, loss: l, accuracy: correct / n as f32 });
        // Backward.
        let dlogits = loss::cpu::cross_entropy_backward(&logits, &labels, n, k, 1.0);
        let dfc_w = linear::cpu::linear_backward_w(&dlogits, &h4, n, f, k);
        let dfc_b = linear::cpu::linear_backward_b(&dlogits, n, k);
        let dh4 = linear::cpu::linear_backward_x(&dlogits, &v[4], n, f, k);
        let dh3 = pool::cpu::pool2d_backward(&h3, pool_shape, &dh4, &pool_p);
        let dh2 = eltwise::cpu::relu_backward(&h2, &dh3);
        let (dh1, dgamma, dbeta) = norm::cpu::batch_norm_backward_train(&h1, &dh2, [n, c, hw], Some(&v[2]), 1e-5);
        let dconv_w = conv::cpu::conv2d_backward_weight(&dh1, &x, &s);
        let dconv_b = conv::cpu::conv2d_backward_bias(&dh1, s.y_shape());
        // SGD.
        let grads = [dconv_w, dconv_b, dgamma, dbeta, dfc_w, dfc_b];
        for (i, g) in grads.iter().enumerate() {
            let (p, b) = optim::cpu::sgd_step(&sgd, &w.values[i], g, bufs[i].as_deref());
            w.values[i] = p;
            bufs[i] = Some(b);
        }
    }
    Ok(logs)
}
