//! `wgnas bench kernels`: each kernel at realistic NAS shapes, in milliseconds and
//! GFLOP/s, with compute kernels also given as a fraction of the best plain matmul
//! rate measured on the same device in the same run.

use crate::error::Result;
use crate::gpu::timer::Timer;
use crate::gpu::Gpu;
use crate::ops::conv::{self, Conv2dParams};
use crate::ops::optim::Optimizer;
use crate::ops::pool::{self, Pool2d};
use crate::ops::{eltwise, linear, loss, mix, norm, optim, reduce};
use crate::tensor::Tensor;
use crate::util::rng::Rng;

/// One measured kernel.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KernelRow {
    /// Kernel family and direction, e.g. `conv3x3 fwd`.
    pub kernel: String,
    /// Input shape in words, e.g. `64x16x32x32`.
    pub shape: String,
    /// Milliseconds per call.
    pub ms: f64,
    /// Floating-point operations per call (0 where the kernel is memory-bound and not counted).
    pub flops: u64,
    /// Bytes read and written per call (a lower bound: each tensor once).
    pub bytes: u64,
    /// flops / time.
    pub gflops: f64,
    /// bytes / time.
    pub gbytes: f64,
    /// gflops / the best plain matmul GFLOP/s of this run (compute kernels only).
    pub matmul_ratio: Option<f64>,
}

/// The whole report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KernelReport {
    /// Adapter description.
    pub device: String,
    /// Clock used.
    pub clock: String,
    /// Batch size of the NAS shapes.
    pub batch: usize,
    /// Best plain matmul rate in GFLOP/s, and its size.
    pub best_matmul_gflops: f64,
    /// Rows, in measurement order.
    pub rows: Vec<KernelRow>,
}

/// How big and how long.
#[derive(Debug, Clone, Copy)]
pub struct KernelBenchConfig {
    /// Batch size (64 in NAS-Bench-201 search).
    pub batch: usize,
    /// Square matmul sizes tried for the reference rate.
    pub matmul_sizes: &'static [usize],
    /// Timed repetitions per kernel.
    pub reps: usize,
}

impl KernelBenchConfig {
    /// Full NAS-Bench-201 shapes: batch 64; C = 16/32/64 at 32²/16²/8².
    pub fn full() -> Self {
        KernelBenchConfig { batch: 64, matmul_sizes: &[256, 512, 1024, 2048], reps: 5 }
    }
    /// A quick version for software adapters: batch 8.
    pub fn small() -> Self {
        KernelBenchConfig { batch: 8, matmul_sizes: &[128, 256, 512], reps: 2 }
    }
}

struct Bench<'a> {
    gpu: &'a Gpu,
    timer: Timer,
    reps: usize,
    rng: Rng,
    rows: Vec<KernelRow>,
    progress: &'a mut dyn FnMut(&KernelRow),
}

impl Bench<'_> {
    fn tensor(&mut self, shape: &[usize]) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let data = self.rng.normal_vec(n, 1.0);
        Tensor::from_slice(self.gpu, &data, shape, "bench input")
    }

    fn run(
        &mut self,
        kernel: &str,
        shape: &[usize],
        flops: u64,
        bytes: u64,
        mut record: impl FnMut() -> Result<()>,
    ) -> Result<()> {
        let ms = super::time_per_rep(self.gpu, &self.timer, 1, self.reps, &mut record)?;
        let secs = ms / 1e3;
        let row = KernelRow {
            kernel: kernel.to_string(),
            shape: shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x"),
            ms,
            flops,
            bytes,
            gflops: flops as f64 / secs / 1e9,
            gbytes: bytes as f64 / secs / 1e9,
            matmul_ratio: None,
        };
        (self.progress)(&row);
        self.rows.push(row);
        Ok(())
    }
}

fn bytes_of(shapes: &[&[usize]]) -> u64 {
    shapes.iter().map(|s| s.iter().product::<usize>() as u64 * 4).sum()
}

/// Runs every kernel and returns the report; `progress` sees each row as it is measured.
pub fn run(gpu: &Gpu, cfg: KernelBenchConfig, progress: &mut dyn FnMut(&KernelRow)) -> Result<KernelReport> {
    let mut b = Bench { gpu, timer: Timer::new(gpu), reps: cfg.reps, rng: Rng::new(0), rows: Vec::new(), progress };
    let n = cfg.batch;

    // The reference: plain square matmuls; the best rate of the run is the yardstick.
    for &s in cfg.matmul_sizes {
        let a = b.tensor(&[s, s])?;
        let m = b.tensor(&[s, s])?;
        b.run("matmul", &[s, s, s], linear::matmul_flops(s, s, s), bytes_of(&[&[s, s], &[s, s], &[s, s]]), || {
            linear::matmul(gpu, &a, &m, false, false).map(drop)
        })?;
    }

    let stages: [(usize, usize); 3] = [(16, 32), (32, 16), (64, 8)];
    for &(c, hw) in &stages {
        let xs = [n, c, hw, hw];
        let x = b.tensor(&xs)?;
        for k in [3usize, 1] {
            let p = Conv2dParams::same(k);
            let ws = [c, c, k, k];
            let w = b.tensor(&ws)?;
            let dy = b.tensor(&xs)?;
            let f = conv::flops(xs, ws, &p);
            let io = bytes_of(&[&xs, &ws, &xs]);
            b.run(&format!("conv{k}x{k} fwd"), &xs, f, io, || conv::conv2d_forward(gpu, &x, &w, None, &p).map(drop))?;
            b.run(&format!("conv{k}x{k} bwd-data"), &xs, f, io, || {
                conv::conv2d_backward_data(gpu, &dy, &w, xs, &p).map(drop)
            })?;
            b.run(&format!("conv{k}x{k} bwd-weight"), &xs, f, io, || {
                conv::conv2d_backward_weight(gpu, &dy, &x, ws, &p).map(drop)
            })?;
        }
        // Depthwise 3x3, as in separable convolutions.
        let p = Conv2dParams::same(3).with_groups(c);
        let ws = [c, 1, 3, 3];
        let w = b.tensor(&ws)?;
        let f = conv::flops(xs, ws, &p);
        b.run("dwconv3x3 fwd", &xs, f, bytes_of(&[&xs, &ws, &xs]), || {
            conv::conv2d_forward(gpu, &x, &w, None, &p).map(drop)
        })?;

        let gamma = b.tensor(&[c])?;
        let beta = b.tensor(&[c])?;
        let io = bytes_of(&[&xs, &xs]);
        b.run("batchnorm train fwd", &xs, 0, io, || {
            norm::batch_norm_train(gpu, &x, Some((&gamma, &beta)), None, norm::BnConfig::default()).map(drop)
        })?;
        let (_, stats) = norm::batch_norm_train(gpu, &x, Some((&gamma, &beta)), None, norm::BnConfig::default())?;
        b.run("batchnorm train bwd", &xs, 0, bytes_of(&[&xs, &xs, &xs]), || {
            norm::batch_norm_backward_train(gpu, &x, &x, &stats, Some(&gamma), [true, true, true]).map(drop)
        })?;
        b.run("relu fwd", &xs, 0, io, || eltwise::relu_forward(gpu, &x).map(drop))?;
        let avg = Pool2d::avg(3, 1, 1);
        b.run("avgpool3x3 fwd", &xs, 0, io, || pool::pool2d_forward(gpu, &x, &avg).map(drop))?;
        b.run("avgpool3x3 bwd", &xs, 0, io, || pool::pool2d_backward(gpu, &x, &x, &avg).map(drop))?;
        let max = Pool2d::max(3, 1, 1);
        b.run("maxpool3x3 fwd", &xs, 0, io, || pool::pool2d_forward(gpu, &x, &max).map(drop))?;
        b.run("maxpool3x3 bwd", &xs, 0, io, || pool::pool2d_backward(gpu, &x, &x, &max).map(drop))?;
        let down = Pool2d::avg(2, 2, 0);
        b.run("avgpool2x2s2 fwd", &xs, 0, io / 2, || pool::pool2d_forward(gpu, &x, &down).map(drop))?;

        // The mixed op of one NB201 edge: 5 candidates of this shape.
        let inputs: Vec<Tensor> = (0..5).map(|_| b.tensor(&xs)).collect::<Result<_>>()?;
        let refs: Vec<&Tensor> = inputs.iter().collect();
        let alpha = b.tensor(&[6, 5])?;
        let io = bytes_of(&[&xs, &xs, &xs, &xs, &xs, &xs]);
        b.run("mixed op fwd (K=5)", &xs, 0, io, || mix::mixed_forward(gpu, &alpha, 0, &refs).map(drop))?;
    }

    // Head: global pool, linear to 10 classes, cross-entropy.
    let xs = [n, 64, 8, 8];
    let x = b.tensor(&xs)?;
    b.run("global avg pool fwd", &xs, 0, bytes_of(&[&xs]), || pool::global_avg_pool_forward(gpu, &x).map(drop))?;
    let feat = b.tensor(&[n, 64])?;
    let w = b.tensor(&[10, 64])?;
    let bias = b.tensor(&[10])?;
    b.run("linear fwd", &[n, 64], linear::linear_flops(n, 64, 10), bytes_of(&[&[n, 64], &[10, 64]]), || {
        linear::linear_forward(gpu, &feat, &w, Some(&bias)).map(drop)
    })?;
    let logits = b.tensor(&[n, 10])?;
    let labels_data: Vec<f32> = (0..n).map(|i| (i % 10) as f32).collect();
    let labels = Tensor::from_slice(gpu, &labels_data, &[n], "labels")?;
    b.run("cross-entropy fwd", &[n, 10], 0, bytes_of(&[&[n, 10]]), || {
        loss::cross_entropy_forward(gpu, &logits, &labels).map(drop)
    })?;

    // Optimizer and clipping over a supernet-sized parameter list (NB201 C=16 N=5: ~1.1M weights).
    let params: Vec<Tensor> = (0..30).map(|_| b.tensor(&[64, 64, 3, 3])).collect::<Result<_>>()?;
    let grads: Vec<Tensor> = (0..30).map(|_| b.tensor(&[64, 64, 3, 3])).collect::<Result<_>>()?;
    let pr: Vec<&Tensor> = params.iter().collect();
    let gr: Vec<&Tensor> = grads.iter().collect();
    let total = [30 * 64 * 64 * 9];
    let mut sgd = optim::Sgd::new(0.025, 0.9, true, 5e-4);
    b.run("sgd nesterov step", &total, 0, bytes_of(&[&total, &total, &total]) * 2, || sgd.step(gpu, &pr, &gr))?;
    let mut adam = optim::Adam::new(3e-4, 0.5, 0.999, 1e-8, 1e-3);
    b.run("adam step", &total, 0, bytes_of(&[&total, &total, &total, &total]) * 2, || adam.step(gpu, &pr, &gr))?;
    b.run("grad-norm clip", &total, 0, bytes_of(&[&total]) * 2, || reduce::clip_grad_norm(gpu, &gr, 5.0).map(drop))?;

    let best = b.rows.iter().filter(|r| r.kernel == "matmul").map(|r| r.gflops).fold(0.0, f64::max);
    for r in &mut b.rows {
        if r.flops > 0 && best > 0.0 {
            r.matmul_ratio = Some(r.gflops / best);
        }
    }
    Ok(KernelReport {
        device: gpu.describe(),
        clock: super::clock_name(b.timer.clock()).to_string(),
        batch: n,
        best_matmul_gflops: best,
        rows: b.rows,
    })
}

/// The report as an aligned text table.
pub fn format_table(r: &KernelReport) -> String {
    let mut s = format!(
        "device: {}\nclock:  {}\nbatch:  {}\nbest plain matmul: {:.2} GFLOP/s\n\n",
        r.device, r.clock, r.batch, r.best_matmul_gflops
    );
    s += &format!("{:<22} {:<14} {:>10} {:>10} {:>9} {:>9}\n", "kernel", "shape", "ms", "GFLOP/s", "GB/s", "x matmul");
    for row in &r.rows {
        let gf = if row.flops > 0 { format!("{:.2}", row.gflops) } else { "-".into() };
        let ratio = row.matmul_ratio.map(|x| format!("{x:.2}")).unwrap_or_else(|| "-".into());
        s += &format!(
            "{:<22} {:<14} {:>10.3} {:>10} {:>9.2} {:>9}\n",
            row.kernel, row.shape, row.ms, gf, row.gbytes, ratio
        );
    }
    s
}
