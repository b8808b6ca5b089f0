//! What a training run reports: the records of `metrics.jsonl` (one JSON object per
//! logged step or finished epoch, tagged by `kind`) and the events a front-end receives.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A logged training step (the values of that one batch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainStep {
    /// Epoch, 0-based.
    pub epoch: u64,
    /// Step within the epoch, 0-based.
    pub step: u64,
    /// Steps completed in the run, this one included.
    pub global_step: u64,
    /// Mean cross-entropy of the batch.
    pub loss: f64,
    /// Accuracy on the batch, percent.
    pub acc: f64,
    /// Learning rate of the step.
    pub lr: f64,
    /// Mean wall time per step since the previous logged step, milliseconds.
    pub step_ms: f64,
}

/// A finished epoch: training means and the test-split evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainEpoch {
    /// Epoch, 0-based.
    pub epoch: u64,
    /// Steps completed in the run at the end of the epoch.
    pub global_step: u64,
    /// Mean of the batch losses of the epoch.
    pub train_loss: f64,
    /// Training accuracy over the epoch (augmented images, changing weights), percent.
    pub train_acc: f64,
    /// Mean cross-entropy on the test split (evaluation mode).
    pub test_loss: f64,
    /// Accuracy on the test split, percent.
    pub test_acc: f64,
    /// Wall time of the epoch's training steps and evaluation, seconds.
    pub epoch_seconds: f64,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
}

/// One line of a training run's `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TrainRecord {
    /// A logged step.
    Step(TrainStep),
    /// An epoch summary.
    Epoch(TrainEpoch),
}

impl TrainRecord {
    /// The record's `global_step`.
    pub fn global_step(&self) -> u64 {
        match self {
            TrainRecord::Step(s) => s.global_step,
            TrainRecord::Epoch(e) => e.global_step,
        }
    }
}

/// `result.json`: what a finished run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainResult {
    /// Search space of the architecture.
    pub space: String,
    /// The architecture string.
    pub arch: String,
    /// Trained parameters.
    pub params: usize,
    /// Multiply-accumulates per image.
    pub flops: u64,
    /// Epochs trained.
    pub epochs: u64,
    /// Steps trained.
    pub global_step: u64,
    /// Test accuracy after the last epoch, percent.
    pub test_acc: f64,
    /// Test loss after the last epoch.
    pub test_loss: f64,
    /// Best test accuracy of any epoch, percent.
    pub best_test_acc: f64,
    /// Training wall time, seconds (summed over resumed sessions).
    pub seconds: f64,
}

/// How a run began.
#[derive(Debug, Clone)]
pub struct TrainStart {
    /// The run folder.
    pub run_dir: PathBuf,
    /// The adapter, in words.
    pub device: String,
    /// Search space and architecture.
    pub space: String,
    /// The architecture string.
    pub arch: String,
    /// Trained parameters.
    pub params: usize,
    /// Multiply-accumulates per image.
    pub flops: u64,
    /// Epochs of the whole run.
    pub epochs: u64,
    /// Steps per epoch.
    pub steps_per_epoch: u64,
    /// Epoch the run starts (or resumes) at.
    pub start_epoch: u64,
    /// Steps already done (resume).
    pub start_global_step: u64,
    /// Training and test images.
    pub images: (usize, usize),
}

/// What a training run tells its front-end.
#[derive(Debug, Clone)]
pub enum TrainEvent {
    /// The run is set up and about to train.
    Started(TrainStart),
    /// A logged step.
    Step(TrainStep),
    /// A finished epoch.
    Epoch(TrainEpoch),
    /// A checkpoint was written to this folder.
    Checkpoint(PathBuf),
    /// The run stopped early (stop signal or step limit) after checkpointing at this step.
    Stopped {
        /// Steps completed.
        global_step: u64,
    },
    /// The run finished and wrote `result.json`.
    Finished(TrainResult),
}
