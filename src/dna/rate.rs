//! Rating every path of a distilled block (DNA, DESIGN.md §5).
//!
//! The teacher's features of a fixed recalibration batch and of the held-out batches are
//! computed once and stay on the GPU, with `1/std(T)` of each held-out target. For each
//! path: its BN statistics are reset and then set from the recalibration batch
//! ([`BnMode::Recalibrate`]); on each of the `E` held-out batches the block runs in
//! [`BnMode::Eval`] and `mean|S − T| / std(T) / E` is added to the path's slot of a `[paths]`
//! GPU buffer, so a path's score is the mean over the held-out batches (lower is better).
//! Work is submitted every `rating.paths_per_submit` paths; the buffer is read back once
//! per chunk, one chunk late, so the GPU works on chunk i + 1 while chunk i is reported.

use std::time::Instant;

use super::config::DnaConfig;
use super::events::DnaEvent;
use super::files::Rating;
use super::images::DnaData;
use super::teacher::{check_alignment, Teacher};
use crate::error::{Error, Result};
use crate::gpu::readback::PendingRead;
use crate::gpu::Gpu;
use crate::ops::reduce;
use crate::run::events::StopSignal;
use crate::space::mbconv::{BnMode, MbBlockSupernet, MbOp, MbSpace};
use crate::tensor::tape::{Tape, Var};
use crate::tensor::Tensor;

const WHAT: &str = "dna rating";

/// The teacher's features a block is rated against, kept on the GPU.
pub struct RatingSet {
    /// Teacher feature `k` of the recalibration batch.
    recal: Tensor,
    /// Per held-out batch: teacher features `k` and `k + 1`, and `1/std` of the latter.
    held_out: Vec<(Tensor, Tensor, f32)>,
}

impl RatingSet {
    /// Computes the features of block `k`'s inputs and targets once. The `std(T)` values
    /// are read back here, once per block, to become scale factors of the score kernel.
    pub fn new(
        gpu: &Gpu,
        cfg: &DnaConfig,
        space: &MbSpace,
        k: usize,
        teacher: &Teacher,
        data: &DnaData,
    ) -> Result<Self> {
        let recal_idx = data.recal_indices(cfg.rating.recal_batch, cfg.run.seed);
        let (recal, _) = teacher.feature_pair(gpu, &data.upload(gpu, &recal_idx)?, k)?;
        let mut held_out = Vec::new();
        let mut stds = Vec::new();
        for idx in data.held_out_batches(cfg.rating.eval_batches) {
            let (input, target) = teacher.feature_pair(gpu, &data.upload(gpu, &idx)?, k)?;
            check_alignment(space, k, input.shape(), target.shape())?;
            stds.push(reduce::std(gpu, &target)?);
            held_out.push((input, target, 0.0));
        }
        for ((_, _, inv), s) in held_out.iter_mut().zip(&stds) {
            let std = s.to_vec(gpu)?.first().copied().unwrap_or(0.0);
            if !(std.is_finite() && std > 0.0) {
                let msg = format!(
                    "teacher feature {} has standard deviation {std} on a held-out batch: the teacher's stage {} \
                     output is constant, so no path can be rated against it (is the teacher trained?)",
                    k + 1,
                    k + 1
                );
                return Err(Error::invalid(WHAT, msg));
            }
            *inv = 1.0 / std;
        }
        Ok(RatingSet { recal, held_out })
    }
}

/// The path's name in the ratings file and architecture strings: its ops joined by `,`.
pub fn path_name(path: &[MbOp]) -> String {
    path.iter().map(MbOp::name).collect::<Vec<_>>().join(",")
}

/// Records the scoring of path `p` (index `i`) into `scores[i]`.
fn record_path(
    gpu: &Gpu,
    sup: &MbBlockSupernet,
    set: &RatingSet,
    w: &[Var],
    p: &[MbOp],
    i: usize,
    scores: &Tensor,
) -> Result<()> {
    sup.reset_stats(gpu, p)?;
    let tape = Tape::new(gpu);
    sup.forward(&tape, &Var::constant(set.recal.clone()), w, p, BnMode::Recalibrate)?;
    let e = set.held_out.len() as f32;
    for (input, target, inv_std) in &set.held_out {
        let s = sup.forward(&tape, &Var::constant(input.clone()), w, p, BnMode::Eval)?;
        reduce::accumulate_score(gpu, &s.tensor, target, inv_std / e, scores, i)?;
    }
    Ok(())
}

/// Rates every path of `sup` (block `k`, 0-based) in canonical order; `None` when `stop` was
/// requested. Deterministic: the same block and data give bit-identical scores.
pub fn rate_block(
    gpu: &Gpu,
    cfg: &DnaConfig,
    sup: &MbBlockSupernet,
    blocks: usize,
    set: &RatingSet,
    stop: &StopSignal,
    sink: &mut dyn FnMut(&DnaEvent),
) -> Result<Option<Vec<Rating>>> {
    let paths = sup.paths();
    let total = paths.len();
    let block = sup.block() + 1;
    let scores = Tensor::zeros(gpu, &[total], "path scores")?;
    let w: Vec<Var> = sup.weights().iter().cloned().map(Var::constant).collect();
    let started = Instant::now();
    let per = cfg.rating.paths_per_submit.max(1);
    let mut pending: Option<(PendingRead, usize)> = None;
    let mut last = Vec::new();
    for (c, chunk) in paths.chunks(per).enumerate() {
        for (j, p) in chunk.iter().enumerate() {
            record_path(gpu, sup, set, &w, p, c * per + j, &scores)?;
        }
        // Starting the read submits this chunk; the previous chunk's read is finished by now
        // or soon, while the GPU works on this one.
        let read = PendingRead::start(gpu, &scores)?;
        if let Some((prev, done)) = pending.replace((read, c * per + chunk.len())) {
            prev.wait(gpu)?;
            report(sink, block, blocks, done, total, started);
        }
        if stop.is_requested() {
            return Ok(None);
        }
    }
    if let Some((read, done)) = pending.take() {
        last = read.wait(gpu)?;
        report(sink, block, blocks, done, total, started);
    }
    paths
        .iter()
        .zip(&last)
        .map(|(p, &score)| {
            Ok(Rating {
                path: path_name(p),
                score: score as f64,
                params: sup.path_params(p)? as u64,
                flops: sup.path_macs(p)?,
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

fn report(sink: &mut dyn FnMut(&DnaEvent), block: usize, blocks: usize, done: usize, total: usize, t0: Instant) {
    let paths_per_second = done as f64 / t0.elapsed().as_secs_f64().max(1e-9);
    sink(&DnaEvent::RatingProgress { block, blocks, done, total, paths_per_second });
}
