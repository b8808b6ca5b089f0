//! The images of a DNA run: the dataset's training part (after `data.limit`) split into
//! distillation images and the last `data.held_out` images, which only rate paths; the
//! test part evaluates the teacher and the retrained networks.

use std::sync::Arc;

use super::config::DnaConfig;
use crate::data::{Dataset, Normalization};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::tensor::Tensor;
use crate::train::config::DataSection;
use crate::train::TrainData;
use crate::util::rng::Rng;

const WHAT: &str = "dna data";
/// Mixed into the seed for the choice of the recalibration batch.
const RECAL_STREAM: u64 = 0x5245_4341_4c00_0000;

/// The split images (see the module docs).
pub struct DnaData {
    /// The training part, `data.limit` applied.
    pub train: Arc<Dataset>,
    /// Indices of `train` the student is distilled on.
    pub distill: Vec<usize>,
    /// Indices of `train` kept out of distillation, for rating (the last `data.held_out`).
    pub held_out: Vec<usize>,
    /// The normalisation the teacher was trained with (set once the teacher is known).
    pub norm: Normalization,
    /// Classes (the larger of both parts' counts, as `wgnas train` has it).
    pub classes: usize,
}

impl DnaData {
    /// Loads `cfg.data` and splits it; checks that the batches the config asks for fit.
    pub fn load(cfg: &DnaConfig) -> Result<DnaData> {
        let section = data_section(cfg);
        let td = TrainData::load(&section)?;
        let n = td.train.len();
        let h = cfg.data.held_out;
        if h >= n {
            let msg = format!("data.held_out = {h} leaves none of the {n} training images for distillation");
            return Err(Error::invalid(WHAT, msg));
        }
        let distill: Vec<usize> = (0..n - h).collect();
        let mut problems = Vec::new();
        if distill.len() < cfg.distill.batch_size {
            problems.push(format!(
                "{} distillation images make no batch of distill.batch_size = {}",
                distill.len(),
                cfg.distill.batch_size
            ));
        }
        if cfg.rating.recal_batch > distill.len() {
            problems.push(format!(
                "rating.recal_batch = {} exceeds the {} distillation images",
                cfg.rating.recal_batch,
                distill.len()
            ));
        }
        if cfg.rating.recal_batch < 2 {
            problems.push("rating.recal_batch must be at least 2 (BN needs a batch variance)".into());
        }
        if cfg.rating.eval_batches > h {
            problems.push(format!(
                "rating.eval_batches = {} exceeds data.held_out = {h}: each held-out batch needs an image",
                cfg.rating.eval_batches
            ));
        }
        if !problems.is_empty() {
            return Err(Error::invalid(WHAT, problems.join("; ")));
        }
        let classes = td.classes();
        Ok(DnaData { train: td.train, distill, held_out: (n - h..n).collect(), norm: td.norm, classes })
    }

    /// `[channels, height, width]` of the images.
    pub fn image_shape(&self) -> [usize; 3] {
        self.train.image_shape()
    }

    /// The fixed recalibration batch: `n` distillation images chosen by `seed`.
    pub fn recal_indices(&self, n: usize, seed: u64) -> Vec<usize> {
        let mut idx = self.distill.clone();
        Rng::new(seed ^ RECAL_STREAM).shuffle(&mut idx);
        idx.truncate(n);
        idx
    }

    /// The held-out images in `batches` consecutive batches of (nearly) equal size.
    pub fn held_out_batches(&self, batches: usize) -> Vec<Vec<usize>> {
        let (h, b) = (self.held_out.len(), batches.max(1));
        (0..b).map(|i| self.held_out[i * h / b..(i + 1) * h / b].to_vec()).filter(|v| !v.is_empty()).collect()
    }

    /// Uploads the normalised images at `indices` as `[n, c, h, w]`.
    pub fn upload(&self, gpu: &Gpu, indices: &[usize]) -> Result<Tensor> {
        let [c, h, w] = self.image_shape();
        Tensor::from_slice(gpu, &self.train.batch_f32(indices, &self.norm)?, &[indices.len(), c, h, w], "dna images")
    }
}

/// The `[data]` section of the `wgnas train` runs a DNA run starts (teacher, retrain).
pub fn data_section(cfg: &DnaConfig) -> DataSection {
    DataSection {
        dataset: cfg.data.dataset.clone(),
        limit: cfg.data.limit,
        augment: cfg.distill.augment,
        ..DataSection::default()
    }
}
