//! BatchNorm2d on NCHW tensors, matching PyTorch's `nn.BatchNorm2d`: statistics per
//! channel over N, H, W; affine or not; running statistics updated in training and used
//! in evaluation. Shader: `shaders/norm.wgsl`.
//!
//! Forward (training): `y = (x − mean)/√(var + eps)·γ + β` with the batch mean and the
//! biased batch variance; the running statistics, when given, are updated in place:
//! `r_mean ← (1 − momentum)·r_mean + momentum·mean`,
//! `r_var ← (1 − momentum)·r_var + momentum·var·M/(M − 1)`, `M = N·H·W`.
//! Forward (evaluation): the same with `r_mean`, `r_var` in place of the batch statistics.
//!
//! Backward (training), with `x̂ = (x − mean)·invstd` and means/sums per channel:
//! `dx = γ·invstd·(dy − mean(dy) − x̂·mean(dy·x̂))`, `dγ = Σ dy·x̂`, `dβ = Σ dy`.
//! Backward (evaluation): `dx = γ·invstd_running·dy`, `dγ`, `dβ` as above.
//!
//! Dispatches: training forward 3 (chunk statistics, finalize, normalise), evaluation
//! forward 2; backward 2 for the reductions (skipped when only an evaluation-mode dx is
//! wanted) plus 1 for dx (skipped when dx is not wanted).
//! CPU references: [`cpu`].

pub mod cpu;

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::tensor::tape::{Backward, Tape, Var};
use crate::tensor::Tensor;

const SHADER: &str = "norm";
/// Invocations per workgroup of the elementwise and chunk-reduction kernels (`WG` in the shader).
const WG: u64 = 256;
/// Invocations per workgroup of the per-channel finalize kernels (`FWG` in the shader).
const FWG: u64 = 64;
/// Elements a reduction workgroup aims to cover: enough work per invocation to amortise
/// the tree reduction, few enough that small-C layers still fill the GPU.
const CHUNK_TARGET: usize = 4096;
/// Upper bound on chunks per channel, so that a finalize thread's serial combine stays short.
const MAX_CHUNKS: usize = 64;

/// BatchNorm hyper-parameters (PyTorch defaults: eps 1e-5, momentum 0.1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BnConfig {
    /// Added to the variance before the square root.
    pub eps: f32,
    /// Weight of the new batch statistic in the running-statistics update.
    pub momentum: f32,
}

impl Default for BnConfig {
    fn default() -> Self {
        BnConfig { eps: 1e-5, momentum: 0.1 }
    }
}

/// Per-channel statistics used to normalise: `mean` and `invstd = 1/√(var + eps)`, each `[C]`.
#[derive(Debug, Clone)]
pub struct BnStats {
    /// Channel means.
    pub mean: Tensor,
    /// Channel inverse standard deviations.
    pub invstd: Tensor,
}

/// Gradients of a BatchNorm: `Some` exactly where they were requested.
#[derive(Debug, Default)]
pub struct BnGrads {
    /// ∂L/∂x, shaped like x.
    pub dx: Option<Tensor>,
    /// ∂L/∂γ = Σ dy·x̂, `[C]`.
    pub dgamma: Option<Tensor>,
    /// ∂L/∂β = Σ dy, `[C]`.
    pub dbeta: Option<Tensor>,
}

/// Parameter block of `shaders/norm.wgsl`.
///
/// | field | meaning |
/// |---|---|
/// | n | batch size N |
/// | c | channels C |
/// | hw | H·W |
/// | chunks | chunks per channel of the reduction kernels |
/// | chunk_len | elements per chunk (the last may be shorter) |
/// | total | N·C·H·W |
/// | eps | variance epsilon |
/// | momentum | running-statistics momentum |
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    c: u32,
    hw: u32,
    chunks: u32,
    chunk_len: u32,
    total: u32,
    eps: f32,
    momentum: f32,
}

/// Binding slots of the shader (binding = slot + 1).
mod slot {
    pub const X: usize = 0;
    pub const DY: usize = 1;
    pub const GAMMA: usize = 2;
    pub const BETA: usize = 3;
    pub const MEAN: usize = 4;
    pub const INVSTD: usize = 5;
    pub const RUN_MEAN: usize = 6;
    pub const RUN_VAR: usize = 7;
    pub const PART: usize = 8;
    pub const OUT: usize = 9;
    pub const DGAMMA: usize = 10;
    pub const DBETA: usize = 11;
    pub const COUNT: usize = 12;
}

/// Shape of an NCHW input as `(n, c, hw)`, checked to be indexable with u32.
#[derive(Clone, Copy)]
struct Dims {
    n: usize,
    c: usize,
    hw: usize,
}

impl Dims {
    fn of(op: &'static str, x: &Tensor) -> Result<Dims> {
        let [n, c, h, w] = x.dims4(op)?;
        if x.numel() > u32::MAX as usize {
            return Err(Error::shape(op, format!("'{}' has {} elements, over 2^32", x.name(), x.numel())));
        }
        Ok(Dims { n, c, hw: h * w })
    }

    /// Elements per channel, M = N·H·W.
    fn m(&self) -> usize {
        self.n * self.hw
    }

    fn total(&self) -> usize {
        self.n * self.c * self.hw
    }

    /// `(chunks, chunk_len)`: every chunk non-empty, at most [`MAX_CHUNKS`] of them.
    fn chunking(&self) -> (usize, usize) {
        let m = self.m();
        if m == 0 {
            return (0, 0);
        }
        let len = m.div_ceil(m.div_ceil(CHUNK_TARGET).clamp(1, MAX_CHUNKS));
        (m.div_ceil(len), len)
    }

    fn params(&self, cfg: BnConfig) -> Params {
        let (chunks, len) = self.chunking();
        Params {
            n: self.n as u32,
            c: self.c as u32,
            hw: self.hw as u32,
            chunks: chunks as u32,
            chunk_len: len as u32,
            total: self.total() as u32,
            eps: cfg.eps,
            momentum: cfg.momentum,
        }
    }
}

/// Fails unless `t` is a `[c]` vector.
fn per_channel(op: &'static str, t: &Tensor, c: usize) -> Result<()> {
    t.expect_shape(op, &[c])
}

fn check_config(op: &'static str, cfg: BnConfig) -> Result<()> {
    if !(cfg.eps.is_finite() && cfg.eps >= 0.0) {
        return Err(Error::invalid(op, format!("eps must be ≥ 0, got {}", cfg.eps)));
    }
    if !(0.0..=1.0).contains(&cfg.momentum) {
        return Err(Error::invalid(op, format!("momentum must lie in [0, 1], got {}", cfg.momentum)));
    }
    Ok(())
}

fn check_affine(op: &'static str, affine: Option<(&Tensor, &Tensor)>, c: usize) -> Result<()> {
    if let Some((g, b)) = affine {
        per_channel(op, g, c)?;
        per_channel(op, b, c)?;
    }
    Ok(())
}

fn check_running(op: &'static str, rm: &Tensor, rv: &Tensor, c: usize) -> Result<()> {
    per_channel(op, rm, c)?;
    per_channel(op, rv, c)?;
    if rm.same_storage(rv) {
        return Err(Error::invalid(op, "running mean and running variance must be distinct tensors"));
    }
    Ok(())
}

/// Records one launch; `set` places tensors in their slots, the rest are unused by `entry`.
fn launch(gpu: &Gpu, entry: &str, params: &Params, groups: [u32; 3], set: &[(usize, &Tensor)]) -> Result<()> {
    launch_with(gpu, entry, false, params, groups, set)
}

/// [`launch`] with the `XHAT` override: the kernel reads x̂ from the `x` slot.
fn launch_with(
    gpu: &Gpu,
    entry: &str,
    xhat: bool,
    params: &Params,
    groups: [u32; 3],
    set: &[(usize, &Tensor)],
) -> Result<()> {
    let Some(&(_, filler)) = set.first() else {
        return Err(Error::invalid("batch_norm", "launch without tensors"));
    };
    let mut slots = [filler; slot::COUNT];
    for &(i, t) in set {
        slots[i] = t;
    }
    if xhat {
        gpu.dispatch_with(SHADER, entry, &[("XHAT", 1.0)], params, &slots, groups)
    } else {
        gpu.dispatch(SHADER, entry, params, &slots, groups)
    }
}

/// Grid of one invocation per element (256 per workgroup).
fn elementwise_grid(gpu: &Gpu, d: Dims) -> [u32; 3] {
    gpu.grid((d.total() as u64).div_ceil(WG))
}

/// Grid of one workgroup per (channel, chunk).
fn chunk_grid(gpu: &Gpu, d: Dims) -> [u32; 3] {
    gpu.grid((d.c * d.chunking().0) as u64)
}

/// Grid of one invocation per channel; 1-D because the finalize kernels index by global id.
fn channel_grid(d: Dims) -> [u32; 3] {
    let groups = (d.c as u64).div_ceil(FWG);
    [u32::try_from(groups).unwrap_or(u32::MAX), 1, 1]
}

/// Batch statistics of `x` (mean and invstd per channel), updating `running` in place when given.
pub fn batch_stats(gpu: &Gpu, x: &Tensor, running: Option<(&Tensor, &Tensor)>, cfg: BnConfig) -> Result<BnStats> {
    const OP: &str = "batch_norm_train";
    check_config(OP, cfg)?;
    let d = Dims::of(OP, x)?;
    if let Some((rm, rv)) = running {
        check_running(OP, rm, rv, d.c)?;
    }
    // PyTorch refuses too: one value per channel has no variance (and M − 1 = 0 below).
    if d.m() < 2 {
        return Err(Error::invalid(
            OP,
            format!(
                "training needs more than one value per channel, got N·H·W = {} for '{}' {:?}",
                d.m(),
                x.name(),
                x.shape()
            ),
        ));
    }
    let p = d.params(cfg);
    let part = Tensor::empty(gpu, &[d.c, d.chunking().0, 2], "bn stat partials")?;
    let mean = Tensor::empty(gpu, &[d.c], "bn mean")?;
    let invstd = Tensor::empty(gpu, &[d.c], "bn invstd")?;
    let sets = [(slot::X, x), (slot::PART, &part)];
    launch(gpu, "stats_partial", &p, chunk_grid(gpu, d), &sets)?;
    let mut sets = vec![(slot::PART, &part), (slot::MEAN, &mean), (slot::INVSTD, &invstd)];
    let entry = match running {
        Some((rm, rv)) => {
            sets.extend([(slot::RUN_MEAN, rm), (slot::RUN_VAR, rv)]);
            "stats_finalize_running"
        }
        None => "stats_finalize",
    };
    launch(gpu, entry, &p, channel_grid(d), &sets)?;
    Ok(BnStats { mean, invstd })
}

/// Evaluation statistics: copies of `running_mean` and `1/√(running_var + eps)`, so that a
/// later update of the running tensors does not change them.
pub fn eval_stats(gpu: &Gpu, running_mean: &Tensor, running_var: &Tensor, cfg: BnConfig) -> Result<BnStats> {
    const OP: &str = "batch_norm_eval";
    check_config(OP, cfg)?;
    let c = running_mean.numel();
    check_running(OP, running_mean, running_var, c)?;
    let d = Dims { n: 0, c, hw: 0 };
    let mean = Tensor::empty(gpu, &[c], "bn eval mean")?;
    let invstd = Tensor::empty(gpu, &[c], "bn eval invstd")?;
    let sets =
        [(slot::RUN_MEAN, running_mean), (slot::RUN_VAR, running_var), (slot::MEAN, &mean), (slot::INVSTD, &invstd)];
    launch(gpu, "eval_stats", &d.params(cfg), channel_grid(d), &sets)?;
    Ok(BnStats { mean, invstd })
}

/// `y = (x − mean)·invstd·γ + β` per channel (γ = 1, β = 0 without `affine`).
pub fn normalize(gpu: &Gpu, x: &Tensor, stats: &BnStats, affine: Option<(&Tensor, &Tensor)>) -> Result<Tensor> {
    const OP: &str = "batch_norm";
    let d = Dims::of(OP, x)?;
    per_channel(OP, &stats.mean, d.c)?;
    per_channel(OP, &stats.invstd, d.c)?;
    check_affine(OP, affine, d.c)?;
    let y = Tensor::empty(gpu, x.shape(), "batch_norm out")?;
    let mut sets = vec![(slot::X, x), (slot::MEAN, &stats.mean), (slot::INVSTD, &stats.invstd), (slot::OUT, &y)];
    let entry = match affine {
        Some((g, b)) => {
            sets.extend([(slot::GAMMA, g), (slot::BETA, b)]);
            "norm_fwd_affine"
        }
        None => "norm_fwd",
    };
    let p = d.params(BnConfig::default());
    launch(gpu, entry, &p, elementwise_grid(gpu, d), &sets)?;
    Ok(y)
}

/// Training-mode BatchNorm: normalises with batch statistics and, when `running` =
/// `(running_mean, running_var)` is given, updates them in place. Returns y and the
/// statistics the backward needs.
pub fn batch_norm_train(
    gpu: &Gpu,
    x: &Tensor,
    affine: Option<(&Tensor, &Tensor)>,
    running: Option<(&Tensor, &Tensor)>,
    cfg: BnConfig,
) -> Result<(Tensor, BnStats)> {
    // Validate everything before the first dispatch, so an error records no work.
    let d = Dims::of("batch_norm_train", x)?;
    check_affine("batch_norm_train", affine, d.c)?;
    let stats = batch_stats(gpu, x, running, cfg)?;
    let y = normalize(gpu, x, &stats, affine)?;
    Ok((y, stats))
}

/// Evaluation-mode BatchNorm: `y = (x − running_mean)/√(running_var + eps)·γ + β`.
pub fn batch_norm_eval(
    gpu: &Gpu,
    x: &Tensor,
    affine: Option<(&Tensor, &Tensor)>,
    running_mean: &Tensor,
    running_var: &Tensor,
    cfg: BnConfig,
) -> Result<Tensor> {
    Ok(batch_norm_eval_stats(gpu, x, affine, running_mean, running_var, cfg)?.0)
}

/// [`batch_norm_eval`] that also returns the statistics its backward needs.
fn batch_norm_eval_stats(
    gpu: &Gpu,
    x: &Tensor,
    affine: Option<(&Tensor, &Tensor)>,
    running_mean: &Tensor,
    running_var: &Tensor,
    cfg: BnConfig,
) -> Result<(Tensor, BnStats)> {
    let d = Dims::of("batch_norm_eval", x)?;
    check_affine("batch_norm_eval", affine, d.c)?;
    check_running("batch_norm_eval", running_mean, running_var, d.c)?;
    let stats = eval_stats(gpu, running_mean, running_var, cfg)?;
    let y = normalize(gpu, x, &stats, affine)?;
    Ok((y, stats))
}

/// Backward of [`batch_norm_train`] given `dy`, the input `x` and the returned statistics.
/// `needs` = [dx, dγ, dβ]; unrequested gradients cost nothing. dγ and dβ can be asked for
/// without `gamma` (they are then the gradients of a γ = 1, β = 0 affine).
pub fn batch_norm_backward_train(
    gpu: &Gpu,
    dy: &Tensor,
    x: &Tensor,
    stats: &BnStats,
    gamma: Option<&Tensor>,
    needs: [bool; 3],
) -> Result<BnGrads> {
    backward(gpu, dy, x, stats, gamma, needs, true, false)
}

/// Backward of [`batch_norm_eval`]: the statistics (from [`eval_stats`]) are constants.
pub fn batch_norm_backward_eval(
    gpu: &Gpu,
    dy: &Tensor,
    x: &Tensor,
    stats: &BnStats,
    gamma: Option<&Tensor>,
    needs: [bool; 3],
) -> Result<BnGrads> {
    backward(gpu, dy, x, stats, gamma, needs, false, false)
}

/// `x` is the input, or x̂ itself (the output of a non-affine BN) when `xhat`.
#[allow(clippy::too_many_arguments)]
fn backward(
    gpu: &Gpu,
    dy: &Tensor,
    x: &Tensor,
    stats: &BnStats,
    gamma: Option<&Tensor>,
    needs: [bool; 3],
    batch: bool,
    xhat: bool,
) -> Result<BnGrads> {
    const OP: &str = "batch_norm_backward";
    let d = Dims::of(OP, x)?;
    dy.expect_shape(OP, x.shape())?;
    per_channel(OP, &stats.mean, d.c)?;
    per_channel(OP, &stats.invstd, d.c)?;
    if let Some(g) = gamma {
        per_channel(OP, g, d.c)?;
    }
    let [need_dx, need_dg, need_db] = needs;
    // Batch-statistics dx depends on Σ dy and Σ dy·x̂; evaluation-mode dx does not.
    let sums =
        if need_dg || need_db || (need_dx && batch) { Some(grad_sums(gpu, dy, x, stats, d, xhat)?) } else { None };
    let dx = if need_dx {
        // Evaluation-mode dx ignores the sums even when dγ or dβ made us compute them.
        let centring = sums.as_ref().filter(|_| batch);
        Some(grad_input(gpu, dy, x, stats, gamma, centring, d, xhat)?)
    } else {
        None
    };
    let (dgamma, dbeta) = sums.unzip();
    Ok(BnGrads { dx, dgamma: dgamma.filter(|_| need_dg), dbeta: dbeta.filter(|_| need_db) })
}

/// `(Σ dy·x̂, Σ dy)` per channel, i.e. `(dγ, dβ)`: chunk partials, then one thread per channel.
fn grad_sums(gpu: &Gpu, dy: &Tensor, x: &Tensor, stats: &BnStats, d: Dims, xhat: bool) -> Result<(Tensor, Tensor)> {
    let p = d.params(BnConfig::default());
    let part = Tensor::empty(gpu, &[d.c, d.chunking().0, 2], "bn grad partials")?;
    let dgamma = Tensor::empty(gpu, &[d.c], "bn dgamma")?;
    let dbeta = Tensor::empty(gpu, &[d.c], "bn dbeta")?;
    let sets =
        [(slot::X, x), (slot::DY, dy), (slot::MEAN, &stats.mean), (slot::INVSTD, &stats.invstd), (slot::PART, &part)];
    launch_with(gpu, "grad_partial", xhat, &p, chunk_grid(gpu, d), &sets)?;
    let sets = [(slot::PART, &part), (slot::DGAMMA, &dgamma), (slot::DBETA, &dbeta)];
    launch(gpu, "grad_finalize", &p, channel_grid(d), &sets)?;
    Ok((dgamma, dbeta))
}

/// ∂L/∂x: with batch statistics (`sums` given) `γ·invstd·(dy − Σdy/M − x̂·Σdy·x̂/M)`,
/// otherwise `γ·invstd·dy`.
#[allow(clippy::too_many_arguments)]
fn grad_input(
    gpu: &Gpu,
    dy: &Tensor,
    x: &Tensor,
    stats: &BnStats,
    gamma: Option<&Tensor>,
    sums: Option<&(Tensor, Tensor)>,
    d: Dims,
    xhat: bool,
) -> Result<Tensor> {
    let dx = Tensor::empty(gpu, x.shape(), "batch_norm grad")?;
    let mut sets = vec![(slot::DY, dy), (slot::INVSTD, &stats.invstd), (slot::OUT, &dx)];
    if let Some((sdyx, sdy)) = sums {
        sets.extend([(slot::X, x), (slot::MEAN, &stats.mean), (slot::DGAMMA, sdyx), (slot::DBETA, sdy)]);
    }
    if let Some(g) = gamma {
        sets.push((slot::GAMMA, g));
    }
    let entry = match (sums.is_some(), gamma.is_some()) {
        (true, true) => "dx_train_affine",
        (true, false) => "dx_train",
        (false, true) => "dx_eval_affine",
        (false, false) => "dx_eval",
    };
    let p = d.params(BnConfig::default());
    launch_with(gpu, entry, xhat && sums.is_some(), &p, elementwise_grid(gpu, d), &sets)?;
    Ok(dx)
}

/// Saved state of a recorded BatchNorm: its input, the statistics it normalised with, γ.
struct BatchNormBackward {
    x: Tensor,
    stats: BnStats,
    gamma: Option<Tensor>,
    /// Whether the forward used batch statistics (then they depend on x).
    batch: bool,
}

impl Backward for BatchNormBackward {
    fn name(&self) -> &'static str {
        "batch_norm"
    }

    fn backward(&mut self, gpu: &Gpu, grad: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let need = |i: usize| needs.get(i).copied().unwrap_or(false);
        let g = backward(
            gpu,
            grad,
            &self.x,
            &self.stats,
            self.gamma.as_ref(),
            [need(0), need(1), need(2)],
            self.batch,
            false,
        )?;
        let mut out = vec![g.dx];
        if needs.len() == 3 {
            out.extend([g.dgamma, g.dbeta]);
        }
        Ok(out)
    }
}

/// Tape op: BatchNorm2d. Inputs are x and, when `affine` = `(γ, β)`, the two parameters.
///
/// As in PyTorch, batch statistics are used when `training` or when there are no
/// `running` = `(running_mean, running_var)` buffers (`track_running_stats = False`);
/// in training the buffers, which are not tracked, are updated in place. Otherwise
/// the running statistics normalise and are constants for the backward.
///
/// # Shapes
/// x `[N, C, H, W]`, γ, β, running mean and variance `[C]`; the output is shaped like x.
pub fn batch_norm(
    tape: &Tape,
    x: &Var,
    affine: Option<(&Var, &Var)>,
    running: Option<(&Tensor, &Tensor)>,
    training: bool,
    cfg: BnConfig,
) -> Result<Var> {
    let gpu = tape.gpu();
    let aff = affine.map(|(g, b)| (&g.tensor, &b.tensor));
    let batch = training || running.is_none();
    let (y, stats) = match running {
        Some((rm, rv)) if !training => batch_norm_eval_stats(gpu, &x.tensor, aff, rm, rv, cfg)?,
        _ => batch_norm_train(gpu, &x.tensor, aff, running.filter(|_| training), cfg)?,
    };
    let inputs: Vec<&Var> = match affine {
        Some((g, b)) => vec![x, g, b],
        None => vec![x],
    };
    Ok(tape.record(&inputs, y, || {
        Box::new(BatchNormBackward { x: x.tensor.clone(), stats, gamma: aff.map(|(g, _)| g.clone()), batch })
    }))
}

/// Saved state of [`batch_norm_keep_output`]: its output x̂ and the batch statistics.
struct KeepOutputBackward {
    y: Tensor,
    stats: BnStats,
}

impl Backward for KeepOutputBackward {
    fn name(&self) -> &'static str {
        "batch_norm_keep_output"
    }

    fn backward(&mut self, gpu: &Gpu, grad: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let need = needs.first().copied().unwrap_or(false);
        Ok(vec![backward(gpu, grad, &self.y, &self.stats, None, [need, false, false], true, true)?.dx])
    }
}

/// Tape op: non-affine BatchNorm2d with batch statistics (`affine = False,
/// track_running_stats = False`, the NB201 and DARTS candidate BN), equal to
/// [`batch_norm`]`(x, None, None, true, cfg)` in value and gradient. Its backward needs only
/// x̂ = its own output (`dx = invstd·(dy − Σdy/M − x̂·Σ(dy·x̂)/M)`), so it keeps the output
/// instead of the input: when the output is saved anyway (by a mixed op), no tensor is
/// kept for the BN at all.
pub fn batch_norm_keep_output(tape: &Tape, x: &Var, cfg: BnConfig) -> Result<Var> {
    let (y, stats) = batch_norm_train(tape.gpu(), &x.tensor, None, None, cfg)?;
    let saved = y.clone();
    Ok(tape.record(&[x], y, || Box::new(KeepOutputBackward { y: saved, stats })))
}
