//! The DNA teacher: an NB201 network trained by `wgnas train`, either an existing run
//! (`teacher.run`) or one trained here into `<dna>/teacher/`, and its stage features.
//!
//! The teacher always runs in evaluation mode (BN running statistics) with constant
//! weights, so its forward passes record nothing on the tape and keep no activations.

use std::path::{Path, PathBuf};

use super::config::DnaConfig;
use super::events::{DnaEvent, DnaStage};
use super::files::{DnaFolder, DnaLog, DnaRecord, TeacherInfo};
use super::images::{data_section, DnaData};
use crate::data::Normalization;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::run::events::StopSignal;
use crate::space::mbconv::MbSpace;
use crate::tensor::tape::{Tape, Var};
use crate::tensor::Tensor;
use crate::train::folder::TrainFolder;
use crate::train::{load_trained, run_train, FixedNet, TrainConfig, TrainData, TrainEvent, TrainOptions};

const WHAT: &str = "dna teacher";

/// A loaded teacher.
pub struct Teacher {
    /// The network (NB201).
    pub net: Box<dyn FixedNet>,
    /// Its `train.toml`.
    pub cfg: TrainConfig,
    /// Arch, test accuracy, size and run folder.
    pub info: TeacherInfo,
    /// Constant tape values of its weights.
    consts: Vec<Var>,
}

/// The `wgnas train` config of a teacher trained here into `dir`.
pub fn teacher_train_config(cfg: &DnaConfig, dir: &Path) -> TrainConfig {
    let mut t = TrainConfig::default();
    t.net.space = "nb201".into();
    t.net.arch = cfg.teacher.arch.clone();
    (t.net.channels, t.net.cells) = (cfg.teacher.channels, cfg.teacher.cells);
    t.data = data_section(cfg);
    t.data.batch_size = cfg.teacher.batch_size;
    (t.optim.epochs, t.optim.lr) = (cfg.teacher.epochs, cfg.teacher.lr);
    t.run.seed = cfg.run.seed;
    t.run.out_dir = dir.to_path_buf();
    t.device = cfg.device.clone();
    t
}

/// Trains the teacher into `<dna>/teacher/` unless `teacher.run` names one or it is done
/// (a killed teacher run is resumed). Returns the teacher's run folder, or `None` when stopped.
pub fn ensure_teacher(
    cfg: &DnaConfig,
    folder: &DnaFolder,
    log: &mut DnaLog,
    stop: &StopSignal,
    sink: &mut dyn FnMut(&DnaEvent),
) -> Result<Option<PathBuf>> {
    if !cfg.teacher.run.as_os_str().is_empty() {
        return Ok(Some(cfg.teacher.run.clone()));
    }
    let dir = folder.teacher_dir();
    let done = dir.join(crate::train::folder::RESULT_FILE);
    if done.is_file() {
        sink(&DnaEvent::Skipped { stage: DnaStage::Teacher, block: None, found: done });
        return Ok(Some(dir));
    }
    let started = dir.join(crate::train::folder::CONFIG_FILE).is_file();
    let opts = TrainOptions { resume: started.then(|| dir.clone()), stop: stop.clone(), max_steps: 0 };
    let mut log_err = None;
    let out = run_train(teacher_train_config(cfg, &dir), &opts, &mut |e: &TrainEvent| {
        if let TrainEvent::Epoch(r) = e {
            let rec = DnaRecord::TeacherEpoch { epoch: r.epoch, train_loss: r.train_loss, test_acc: r.test_acc };
            if let Err(err) = log.append(&rec) {
                log_err.get_or_insert(err);
            }
        }
        sink(&DnaEvent::Train { stage: DnaStage::Teacher, event: e.clone() });
    })?;
    if let Some(e) = log_err {
        return Err(e);
    }
    Ok(out.result.map(|_| dir))
}

impl Teacher {
    /// Loads the finished teacher run at `dir` and checks it can teach `cfg`'s student on
    /// `data`: an NB201 network of `teacher.channels` on images of the data's shape.
    pub fn load(gpu: &Gpu, dir: &Path, cfg: &DnaConfig, data: &DnaData) -> Result<Teacher> {
        let result = TrainFolder::open(dir)?.read_result().map_err(|e| {
            Error::invalid(
                WHAT,
                format!(
                    "{}: the teacher run has not finished ({e}); finish it with `wgnas train --resume {}`",
                    dir.display(),
                    dir.display()
                ),
            )
        })?;
        let (tcfg, net) = load_trained(gpu, dir)?;
        let n = &tcfg.net;
        if n.space != "nb201" {
            let msg = format!("{}: the teacher must be an nb201 network, this one is {}", dir.display(), n.space);
            return Err(Error::invalid(WHAT, msg));
        }
        if n.channels != cfg.teacher.channels {
            return Err(Error::invalid(
                WHAT,
                format!(
                    "{} has C = {} but teacher.channels = {}: the student's widths (C, 2C, 4C) are aligned with \
                     the teacher's stages and no projection is learned; set teacher.channels = {}",
                    dir.display(),
                    n.channels,
                    cfg.teacher.channels,
                    n.channels
                ),
            ));
        }
        let [c, h, _] = data.image_shape();
        if (n.in_channels, n.input_size, n.classes) != (c, h, data.classes) {
            return Err(Error::invalid(
                WHAT,
                format!(
                    "{} was trained on {}-channel {}x{} images with {} classes, but data.dataset has {c}-channel \
                     {h}x{h} images with {} classes",
                    dir.display(),
                    n.in_channels,
                    n.input_size,
                    n.input_size,
                    n.classes,
                    data.classes
                ),
            ));
        }
        let info = TeacherInfo {
            arch: net.arch(),
            test_acc: result.test_acc,
            params: net.param_count() as u64,
            flops: net.flops(),
            run_dir: dir.to_path_buf(),
        };
        let consts = net.weights().iter().cloned().map(Var::constant).collect();
        Ok(Teacher { net, cfg: tcfg, info, consts })
    }

    /// The normalisation the teacher was trained with: that of its own training images.
    pub fn normalization(&self, cfg: &DnaConfig, data: &DnaData) -> Result<Normalization> {
        let d = &self.cfg.data;
        if d.dataset == cfg.data.dataset && d.limit == cfg.data.limit {
            return Ok(data.norm.clone());
        }
        Ok(TrainData::load(d)?.norm)
    }

    /// Channels C of the teacher's first stage.
    pub fn channels(&self) -> usize {
        self.cfg.net.channels
    }

    /// The teacher's features `k` and `k + 1` of the image batch `x` (eval mode, nothing taped).
    pub fn feature_pair(&self, gpu: &Gpu, x: &Tensor, k: usize) -> Result<(Tensor, Tensor)> {
        let tape = Tape::new(gpu);
        let out = self.net.forward(&tape, x, &self.consts, false)?;
        let mut f = out.features;
        if f.len() < k + 2 {
            let msg = format!("the teacher has {} stage features; student block {} needs {}", f.len(), k + 1, k + 2);
            return Err(Error::invalid(WHAT, msg));
        }
        let target = f.swap_remove(k + 1).tensor;
        Ok((f.swap_remove(k).tensor, target))
    }
}

/// The student space aligned with `teacher`: stem C, blocks C, 2C, 4C (the first B).
pub fn student_space(cfg: &DnaConfig, teacher: &Teacher, data: &DnaData) -> Result<MbSpace> {
    let [c, h, _] = data.image_shape();
    let mut space = MbSpace::aligned_to_nb201(teacher.channels(), c, h, data.classes, cfg.student.layers.clone());
    space.se_ratio = cfg.student.se_ratio as f32;
    space.validate()?;
    Ok(space)
}

/// Fails unless student block `k` of `space` maps the shape of teacher feature `k` to that of
/// feature `k + 1` (no projection is learned, so the widths and resolutions must agree).
pub fn check_alignment(space: &MbSpace, k: usize, input: &[usize], target: &[usize]) -> Result<()> {
    let n = input.first().copied().unwrap_or(0);
    let (si, so) = (space.block_input_size(k), space.block_input_size(k + 1));
    let want_in = [n, space.block_in(k), si, si];
    let want_out = [n, space.widths[k], so, so];
    if input != want_in || target != want_out {
        return Err(Error::invalid(
            WHAT,
            format!(
                "student block {} maps {want_in:?} to {want_out:?}, but the teacher's features {k} and {} are \
                 {input:?} and {target:?}: the student must match the teacher's stage widths and resolutions \
                 (projections between different widths are not supported)",
                k + 1,
                k + 1
            ),
        ));
    }
    Ok(())
}
