//! Block-wise distillation (DNA, DESIGN.md §5): student block `k` learns to map the
//! teacher's feature `k` to its feature `k + 1`.
//!
//! Per step: the teacher's forward pass in evaluation mode (constant weights, nothing
//! taped) gives both features; a path is sampled uniformly per layer; the block runs it
//! with BN in training mode; the loss is `mean((S − T)²)`; the path's weights take one
//! optimizer step with the cosine learning rate `η_t = η·(1 + cos(π·t/T))/2` over all the
//! block's steps. Each weight tensor has its own optimizer state and step count, and a
//! weight off the sampled path is not touched (as PyTorch's optimizers skip parameters
//! whose gradient is `None`). Nothing is read back inside a step: the epoch's loss sum
//! stays on the GPU, and every [`LOG_EVERY`]-th step's loss is read one step late.

use std::time::Instant;

use super::config::DnaConfig;
use super::events::DnaEvent;
use super::images::DnaData;
use super::teacher::{check_alignment, Teacher};
use crate::data::{Augment, Loader, LoaderConfig};
use crate::error::{Error, Result};
use crate::gpu::readback::PendingRead;
use crate::gpu::Gpu;
use crate::ops::optim::{Adam, Optimizer, Sgd};
use crate::ops::{eltwise, loss};
use crate::run::checkpoint::{read_safetensors, write_safetensors, NamedTensor};
use crate::run::events::StopSignal;
use crate::space::mbconv::{BnMode, MbBlockSupernet, MbSpace};
use crate::tensor::tape::{Tape, Var};
use crate::tensor::Tensor;
use crate::train::trainer::cosine_step_lr;
use crate::util::rng::Rng;

const WHAT: &str = "dna distill";
/// Steps between logged step losses.
pub const LOG_EVERY: usize = 20;

/// The seed of block `k`'s weights, path samples and data order (blocks are independent,
/// so a resumed run distils block `k` exactly as an uninterrupted one).
pub fn block_seed(seed: u64, k: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(k as u64 + 1)
}

/// A new optimizer of `cfg.distill` for one weight tensor.
fn optimizer(cfg: &DnaConfig) -> Box<dyn Optimizer> {
    let d = &cfg.distill;
    match d.optimizer.as_str() {
        "sgd" => Box::new(Sgd::new(d.lr as f32, 0.9, true, d.weight_decay as f32)),
        _ => Box::new(Adam::new(d.lr as f32, 0.9, 0.999, 1e-8, d.weight_decay as f32)),
    }
}

/// A logged step's loss on its way back.
struct InFlight {
    read: PendingRead,
    epoch: u64,
    step: usize,
    lr: f64,
}

/// Distils block `k` (0-based) of `space` from `teacher`; returns the trained block
/// supernet, or `None` when `stop` was requested (nothing is saved then).
#[allow(clippy::too_many_arguments)]
pub fn distill_block(
    gpu: &Gpu,
    cfg: &DnaConfig,
    space: &MbSpace,
    k: usize,
    teacher: &Teacher,
    data: &DnaData,
    stop: &StopSignal,
    sink: &mut dyn FnMut(&DnaEvent),
) -> Result<Option<MbBlockSupernet>> {
    let d = &cfg.distill;
    let seed = block_seed(cfg.run.seed, k);
    let sup = MbBlockSupernet::new(gpu, space, k, seed)?;
    let mut opts: Vec<Box<dyn Optimizer>> = sup.weights().iter().map(|_| optimizer(cfg)).collect();
    let mut lc = LoaderConfig::new(d.batch_size, data.norm.clone(), seed);
    // Full batches only: every step's BN statistics are over the same number of images.
    lc.drop_last = true;
    lc.augment = if d.augment { Augment::default() } else { Augment::none() };
    let mut loader = Loader::new(data.train.clone(), data.distill.clone(), lc)?;
    let steps = loader.steps_per_epoch();
    let total = d.epochs * steps as u64;
    let mut rng = Rng::new(seed);
    let epoch_sum = Tensor::zeros(gpu, &[1], "distill epoch loss")?;
    let (blocks, mut t) = (space.blocks(), 0u64);
    for epoch in 0..d.epochs {
        let started = Instant::now();
        let mut in_flight: Option<InFlight> = None;
        for step in 0..steps {
            let batch = loader.next_batch()?;
            let x = Tensor::from_slice(gpu, &batch.images, &batch.shape, "distill images")?;
            let (input, target) = teacher.feature_pair(gpu, &x, k)?;
            if t == 0 {
                check_alignment(space, k, input.shape(), target.shape())?;
            }
            let lr = cosine_step_lr(d.lr, 0.0, t, total);
            let path = sup.sample_path(&mut rng);
            let tape = Tape::new(gpu);
            let w: Vec<Var> = sup.weights().iter().map(|p| tape.leaf(p)).collect();
            let out = sup.forward(&tape, &Var::constant(input), &w, &path, BnMode::Train)?;
            let l = loss::mse(&tape, &out, &Var::constant(target))?;
            drop(out);
            let mut g = tape.backward(&l, &w.iter().collect::<Vec<_>>())?;
            for ((v, p), opt) in w.iter().zip(sup.weights()).zip(opts.iter_mut()) {
                if let Some(grad) = g.take(v) {
                    opt.set_lr(lr);
                    opt.step(gpu, &[p], &[&grad])?;
                }
            }
            eltwise::axpy(gpu, &epoch_sum, 1.0, &l.tensor)?;
            t += 1;
            if step % LOG_EVERY == LOG_EVERY - 1 {
                // Starting the read submits this step; the previous logged one is long done.
                let now = InFlight { read: PendingRead::start(gpu, &l.tensor)?, epoch, step, lr: lr as f64 };
                if let Some(prev) = in_flight.replace(now) {
                    report_step(gpu, prev, k, blocks, steps, sink)?;
                }
            } else {
                gpu.flush()?;
            }
            if stop.is_requested() {
                return Ok(None);
            }
        }
        if let Some(prev) = in_flight.take() {
            report_step(gpu, prev, k, blocks, steps, sink)?;
        }
        // The epoch's one blocking readback: its mean loss, for the log.
        let sum = epoch_sum.to_vec(gpu)?;
        eltwise::zero(gpu, &epoch_sum)?;
        let loss = sum.first().copied().unwrap_or(f32::NAN) as f64 / steps as f64;
        let seconds = started.elapsed().as_secs_f64();
        sink(&DnaEvent::DistillEpoch { block: k + 1, blocks, epoch, epochs: d.epochs, loss, seconds });
    }
    Ok(Some(sup))
}

/// Waits for a logged step's loss (later steps are queued behind it) and reports it.
fn report_step(
    gpu: &Gpu,
    f: InFlight,
    k: usize,
    blocks: usize,
    steps: usize,
    sink: &mut dyn FnMut(&DnaEvent),
) -> Result<()> {
    let v = f.read.wait(gpu)?;
    let loss = v.first().copied().unwrap_or(f32::NAN) as f64;
    sink(&DnaEvent::DistillStep { block: k + 1, blocks, epoch: f.epoch, step: f.step, steps, loss, lr: f.lr });
    Ok(())
}

/// Writes every tensor of a distilled block (weights and BN statistics of every candidate,
/// under the supernet's names `blocks.{b}.{l}.{op}.{tensor}`) to a safetensors file.
pub fn save_block(gpu: &Gpu, sup: &MbBlockSupernet, path: &std::path::Path) -> Result<()> {
    let mut named: Vec<(String, Tensor)> =
        sup.weight_names().iter().cloned().zip(sup.weights().iter().cloned()).collect();
    named.extend(sup.buffers());
    let tensors = named
        .iter()
        .map(|(n, t)| NamedTensor::new(n.clone(), t.shape(), t.to_vec(gpu)?))
        .collect::<Result<Vec<_>>>()?;
    write_safetensors(path, &tensors)
}

/// Rebuilds block `k` of `space` from a file written by [`save_block`]; every tensor of the
/// block must be there.
pub fn load_block(gpu: &Gpu, space: &MbSpace, k: usize, path: &std::path::Path) -> Result<MbBlockSupernet> {
    let mut sup = MbBlockSupernet::new(gpu, space, k, 0)?;
    let tensors = read_safetensors(path)?;
    for t in &tensors {
        sup.load(gpu, &t.name, &t.data)?;
    }
    let expected = sup.weights().len() + sup.buffers().len();
    if tensors.len() != expected {
        return Err(Error::invalid(
            WHAT,
            format!(
                "{} holds {} tensors but block {} of the student has {expected}: was it written with other \
                 student settings?",
                path.display(),
                tensors.len(),
                k + 1
            ),
        ));
    }
    Ok(sup)
}
