//! Optimizers with PyTorch semantics, updating parameters in place on the GPU:
//! [`Sgd`] (momentum, Nesterov, L2 weight decay) and [`Adam`] (torch.optim.Adam, L2
//! weight decay, not AdamW). Shader: `shaders/optim.wgsl`.
//!
//! Each step is one dispatch per parameter, with the hyper-parameters in that launch's
//! parameter block, so a schedule may call [`Optimizer::set_lr`] before every step.
//! State is kept per parameter *position* in the list given to `step` (as PyTorch keys
//! it per parameter), created lazily as zeros, and exposed for checkpoints under
//! PyTorch's names: `momentum_buffer.{i}`, `exp_avg.{i}`, `exp_avg_sq.{i}`.

pub mod cpu;

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::tensor::Tensor;

const SHADER: &str = "optim";
const WG: u64 = 256;

/// Parameter block of `shaders/optim.wgsl`.
///
/// | field | meaning |
/// |---|---|
/// | n | elements of the parameter |
/// | nesterov | SGD: 1 for Nesterov momentum |
/// | lr | SGD: learning rate; Adam: `lr / (1 − β1^t)` |
/// | weight_decay | L2 factor added to the gradient |
/// | momentum | SGD momentum μ |
/// | beta1, beta2, eps | Adam coefficients |
/// | bc2_sqrt | Adam: `sqrt(1 − β2^t)` |
#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    nesterov: u32,
    lr: f32,
    weight_decay: f32,
    momentum: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    bc2_sqrt: f32,
    _pad: [u32; 3],
}

/// What every optimizer offers to a search strategy and to checkpoints.
pub trait Optimizer {
    /// Updates every `params[i]` in place from `grads[i]` (same shapes), one dispatch each.
    fn step(&mut self, gpu: &Gpu, params: &[&Tensor], grads: &[&Tensor]) -> Result<()>;
    /// The learning rate used by the next step.
    fn lr(&self) -> f32;
    /// Sets the learning rate of the next steps (for schedules).
    fn set_lr(&mut self, lr: f32);
    /// Steps taken so far.
    fn steps(&self) -> u64;
    /// The state tensors under PyTorch's names (handles to the live buffers: read or copy
    /// them before the next step).
    fn state(&self) -> Vec<(String, Tensor)>;
    /// Restores a state taken with [`Optimizer::state`] and the step count; the tensors are
    /// copied, so the caller's tensors are never modified by later steps.
    fn load_state(&mut self, gpu: &Gpu, state: &[(String, Tensor)], steps: u64) -> Result<()>;
}

/// Checks list lengths and that each grad has its parameter's shape.
fn check_pairs(op: &'static str, params: &[&Tensor], grads: &[&Tensor]) -> Result<()> {
    if params.len() != grads.len() {
        return Err(Error::invalid(op, format!("{} parameters but {} gradients", params.len(), grads.len())));
    }
    for (p, g) in params.iter().zip(grads) {
        if p.shape() != g.shape() {
            return Err(Error::shape(
                op,
                format!(
                    "gradient '{}' {:?} does not match parameter '{}' {:?}",
                    g.name(),
                    g.shape(),
                    p.name(),
                    p.shape()
                ),
            ));
        }
        if p.same_storage(g) {
            return Err(Error::invalid(op, format!("parameter '{}' is its own gradient", p.name())));
        }
        u32::try_from(p.numel()).map_err(|_| Error::invalid(op, format!("'{}' exceeds u32 elements", p.name())))?;
    }
    Ok(())
}

/// One state buffer per parameter position, created lazily as zeros.
#[derive(Debug, Clone)]
struct Slots {
    name: &'static str,
    tensors: Vec<Option<Tensor>>,
}

impl Slots {
    fn new(name: &'static str) -> Slots {
        Slots { name, tensors: Vec::new() }
    }

    /// The buffer of parameter `i` (zeros on first use); fails if its shape differs.
    fn get(&mut self, gpu: &Gpu, op: &'static str, i: usize, param: &Tensor) -> Result<Tensor> {
        if self.tensors.len() <= i {
            self.tensors.resize(i + 1, None);
        }
        match &self.tensors[i] {
            Some(t) if t.shape() == param.shape() => Ok(t.clone()),
            Some(t) => Err(Error::shape(
                op,
                format!(
                    "state '{}.{i}' {:?} does not match parameter '{}' {:?}",
                    self.name,
                    t.shape(),
                    param.name(),
                    param.shape()
                ),
            )),
            None => {
                let t = Tensor::zeros(gpu, param.shape(), self.name)?;
                self.tensors[i] = Some(t.clone());
                Ok(t)
            }
        }
    }

    fn named(&self) -> impl Iterator<Item = (String, Tensor)> + '_ {
        self.tensors
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.as_ref().map(|t| (format!("{}.{i}", self.name), t.clone())))
    }

    /// Takes a copy of `t` as the buffer named `name` if the name is `{self.name}.{i}`.
    fn load(&mut self, gpu: &Gpu, name: &str, t: &Tensor) -> Result<bool> {
        let Some(i) =
            name.strip_prefix(self.name).and_then(|rest| rest.strip_prefix('.')).and_then(|i| i.parse::<usize>().ok())
        else {
            return Ok(false);
        };
        if self.tensors.len() <= i {
            self.tensors.resize(i + 1, None);
        }
        self.tensors[i] = Some(copy(gpu, t)?);
        Ok(true)
    }
}

/// A copy of `t` in a new buffer, recorded in the command stream.
fn copy(gpu: &Gpu, t: &Tensor) -> Result<Tensor> {
    let c = Tensor::empty(gpu, t.shape(), t.name())?;
    if t.byte_len() > 0 {
        gpu.with_encoder(|enc| enc.copy_buffer_to_buffer(t.buffer(), 0, c.buffer(), 0, t.byte_len()));
    }
    Ok(c)
}

/// Replaces `slots` with the named tensors, each going to the slot set that claims its
/// name; on an unknown name nothing is changed.
fn load_all(op: &'static str, gpu: &Gpu, slots: &mut [&mut Slots], state: &[(String, Tensor)]) -> Result<()> {
    let mut fresh: Vec<Slots> = slots.iter().map(|s| Slots::new(s.name)).collect();
    for (name, t) in state {
        let mut taken = false;
        for s in fresh.iter_mut() {
            if s.load(gpu, name, t)? {
                taken = true;
                break;
            }
        }
        if !taken {
            return Err(Error::invalid(op, format!("unknown state tensor '{name}'")));
        }
    }
    for (s, f) in slots.iter_mut().zip(fresh) {
        **s = f;
    }
    Ok(())
}

fn launch(gpu: &Gpu, entry: &str, p: &Params, tensors: &[&Tensor]) -> Result<()> {
    gpu.dispatch(SHADER, entry, p, tensors, gpu.grid((p.n as u64).div_ceil(WG)))
}

fn check_hyper(op: &'static str, what: &str, v: f32, ok: bool) -> Result<()> {
    if !(v.is_finite() && ok) {
        return Err(Error::invalid(op, format!("invalid {what}: {v}")));
    }
    Ok(())
}

/// Stochastic gradient descent as `torch.optim.SGD` (dampening 0):
/// `g' = g + wd·p; buf = μ·buf + g'` (first step: `buf = g'`);
/// `d = nesterov ? g' + μ·buf : buf` (μ = 0: `d = g'`); `p -= lr·d`.
#[derive(Debug, Clone)]
pub struct Sgd {
    /// Learning rate.
    pub lr: f32,
    /// Momentum factor μ (0 disables the momentum buffer).
    pub momentum: f32,
    /// Nesterov momentum (needs μ > 0).
    pub nesterov: bool,
    /// L2 penalty added to the gradient.
    pub weight_decay: f32,
    bufs: Slots,
    steps: u64,
}

impl Sgd {
    /// SGD with the given hyper-parameters and empty state.
    pub fn new(lr: f32, momentum: f32, nesterov: bool, weight_decay: f32) -> Sgd {
        Sgd { lr, momentum, nesterov, weight_decay, bufs: Slots::new("momentum_buffer"), steps: 0 }
    }

    fn validate(&self) -> Result<()> {
        let op = "sgd";
        check_hyper(op, "learning rate", self.lr, self.lr >= 0.0)?;
        check_hyper(op, "momentum", self.momentum, self.momentum >= 0.0)?;
        check_hyper(op, "weight decay", self.weight_decay, self.weight_decay >= 0.0)?;
        if self.nesterov && self.momentum == 0.0 {
            return Err(Error::invalid(op, "Nesterov momentum requires a momentum > 0"));
        }
        Ok(())
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, gpu: &Gpu, params: &[&Tensor], grads: &[&Tensor]) -> Result<()> {
        self.validate()?;
        check_pairs("sgd", params, grads)?;
        for (i, (p, g)) in params.iter().zip(grads).enumerate() {
            let block = Params {
                n: p.numel() as u32,
                nesterov: self.nesterov as u32,
                lr: self.lr,
                weight_decay: self.weight_decay,
                momentum: self.momentum,
                ..Params::default()
            };
            if self.momentum == 0.0 {
                launch(gpu, "sgd", &block, &[p, g])?;
            } else {
                let buf = self.bufs.get(gpu, "sgd", i, p)?;
                launch(gpu, "sgd_momentum", &block, &[p, g, &buf])?;
            }
        }
        self.steps += 1;
        Ok(())
    }

    fn lr(&self) -> f32 {
        self.lr
    }

    fn set_lr(&mut self, lr: f32) {
        self.lr = lr;
    }

    fn steps(&self) -> u64 {
        self.steps
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        self.bufs.named().collect()
    }

    fn load_state(&mut self, gpu: &Gpu, state: &[(String, Tensor)], steps: u64) -> Result<()> {
        load_all("sgd", gpu, &mut [&mut self.bufs], state)?;
        self.steps = steps;
        Ok(())
    }
}

/// Adam as `torch.optim.Adam` (L2 weight decay added to the gradient, not AdamW), step t:
/// `g' = g + wd·p; m = β1 m + (1−β1) g'; v = β2 v + (1−β2) g'²;
/// p -= lr · (m / (1−β1^t)) / (sqrt(v / (1−β2^t)) + eps)`.
#[derive(Debug, Clone)]
pub struct Adam {
    /// Learning rate.
    pub lr: f32,
    /// Decay of the first moment.
    pub beta1: f32,
    /// Decay of the second moment.
    pub beta2: f32,
    /// Added to the denominator.
    pub eps: f32,
    /// L2 penalty added to the gradient.
    pub weight_decay: f32,
    exp_avg: Slots,
    exp_avg_sq: Slots,
    steps: u64,
}

impl Adam {
    /// Adam with the given hyper-parameters and empty state.
    pub fn new(lr: f32, beta1: f32, beta2: f32, eps: f32, weight_decay: f32) -> Adam {
        Adam {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
            exp_avg: Slots::new("exp_avg"),
            exp_avg_sq: Slots::new("exp_avg_sq"),
            steps: 0,
        }
    }

    fn validate(&self) -> Result<()> {
        let op = "adam";
        check_hyper(op, "learning rate", self.lr, self.lr >= 0.0)?;
        check_hyper(op, "beta1", self.beta1, (0.0..1.0).contains(&self.beta1))?;
        check_hyper(op, "beta2", self.beta2, (0.0..1.0).contains(&self.beta2))?;
        check_hyper(op, "eps", self.eps, self.eps >= 0.0)?;
        check_hyper(op, "weight decay", self.weight_decay, self.weight_decay >= 0.0)
    }

    /// The step-dependent factors `(lr / (1 − β1^t), sqrt(1 − β2^t))`, in f64 as PyTorch does.
    fn bias_corrections(&self, t: u64) -> (f32, f32) {
        let t = t.min(i32::MAX as u64) as i32;
        let bc1 = 1.0 - (self.beta1 as f64).powi(t);
        let bc2 = 1.0 - (self.beta2 as f64).powi(t);
        ((self.lr as f64 / bc1) as f32, bc2.sqrt() as f32)
    }
}

impl Optimizer for Adam {
    fn step(&mut self, gpu: &Gpu, params: &[&Tensor], grads: &[&Tensor]) -> Result<()> {
        self.validate()?;
        check_pairs("adam", params, grads)?;
        let (step_size, bc2_sqrt) = self.bias_corrections(self.steps + 1);
        for (i, (p, g)) in params.iter().zip(grads).enumerate() {
            let m = self.exp_avg.get(gpu, "adam", i, p)?;
            let v = self.exp_avg_sq.get(gpu, "adam", i, p)?;
            let block = Params {
                n: p.numel() as u32,
                lr: step_size,
                weight_decay: self.weight_decay,
                beta1: self.beta1,
                beta2: self.beta2,
                eps: self.eps,
                bc2_sqrt,
                ..Params::default()
            };
            launch(gpu, "adam", &block, &[p, g, &m, &v])?;
        }
        self.steps += 1;
        Ok(())
    }

    fn lr(&self) -> f32 {
        self.lr
    }

    fn set_lr(&mut self, lr: f32) {
        self.lr = lr;
    }

    fn steps(&self) -> u64 {
        self.steps
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        self.exp_avg.named().chain(self.exp_avg_sq.named()).collect()
    }

    fn load_state(&mut self, gpu: &Gpu, state: &[(String, Tensor)], steps: u64) -> Result<()> {
        // "exp_avg" is a prefix of "exp_avg_sq"; Slots::load requires the '.' right after it.
        load_all("adam", gpu, &mut [&mut self.exp_avg, &mut self.exp_avg_sq], state)?;
        self.steps = steps;
        Ok(())
    }
}
