//! What a DNA run reports while it works ([`DnaEvent`]), how it is started ([`DnaOptions`])
//! and how it ended ([`DnaOutcome`]). The CLI prints the events; the app's worker thread
//! forwards them to its window. Blocks are 1-based, epochs 0-based, as in `log.jsonl`.

use std::path::PathBuf;

use super::files::{Choice, DnaResult, Rating, TeacherInfo};
use crate::run::events::StopSignal;
use crate::train::TrainEvent;

/// How a DNA run is started.
#[derive(Debug, Clone, Default)]
pub struct DnaOptions {
    /// Continue the run in this folder: stages whose outputs exist are skipped.
    pub resume: Option<PathBuf>,
    /// Stop at the next step or path chunk when requested (resume later with `resume`).
    pub stop: StopSignal,
}

/// The stages of a DNA run, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DnaStage {
    /// Training (or loading) the NB201 teacher.
    Teacher,
    /// Block-wise distillation of the student.
    Distill,
    /// Rating every path of every block.
    Rate,
    /// The constrained search over the ratings.
    Search,
    /// Retraining the chosen architecture.
    Retrain,
    /// Training a random architecture within the budget (a baseline).
    Random,
}

impl DnaStage {
    /// Lower-case name (`teacher`, `distill`, `rate`, `search`, `retrain`, `random`).
    pub fn name(&self) -> &'static str {
        match self {
            DnaStage::Teacher => "teacher",
            DnaStage::Distill => "distill",
            DnaStage::Rate => "rate",
            DnaStage::Search => "search",
            DnaStage::Retrain => "retrain",
            DnaStage::Random => "random",
        }
    }
}

/// Progress of a DNA run.
#[derive(Debug, Clone)]
pub enum DnaEvent {
    /// The run folder is ready and the device open.
    Started {
        /// The run folder.
        run_dir: PathBuf,
        /// The adapter, in words.
        device: String,
        /// Whether an existing run is continued.
        resumed: bool,
        /// Student blocks B.
        blocks: usize,
        /// Paths of each block.
        paths: Vec<usize>,
    },
    /// A stage (of one block, where it has blocks) is skipped because its outputs exist.
    Skipped {
        /// The stage.
        stage: DnaStage,
        /// The block (1-based), for per-block stages.
        block: Option<usize>,
        /// The file or folder found.
        found: PathBuf,
    },
    /// An event of a `wgnas train` run inside the DNA run (teacher, retrain, random).
    Train {
        /// Which stage trains.
        stage: DnaStage,
        /// The trainer's event.
        event: TrainEvent,
    },
    /// The teacher is loaded.
    TeacherReady(TeacherInfo),
    /// A logged distillation step (its loss read back one step late).
    DistillStep {
        /// Block (1-based).
        block: usize,
        /// Student blocks B.
        blocks: usize,
        /// Epoch (0-based).
        epoch: u64,
        /// Step within the epoch (0-based).
        step: usize,
        /// Steps per epoch.
        steps: usize,
        /// MSE of the step's batch.
        loss: f64,
        /// Learning rate of the step.
        lr: f64,
    },
    /// A distillation epoch finished.
    DistillEpoch {
        /// Block (1-based).
        block: usize,
        /// Student blocks B.
        blocks: usize,
        /// Epoch (0-based).
        epoch: u64,
        /// Epochs per block.
        epochs: u64,
        /// Mean MSE of the epoch's steps.
        loss: f64,
        /// Wall time of the epoch.
        seconds: f64,
    },
    /// A chunk of paths of a block is rated.
    RatingProgress {
        /// Block (1-based).
        block: usize,
        /// Student blocks B.
        blocks: usize,
        /// Paths rated so far.
        done: usize,
        /// Paths of the block.
        total: usize,
        /// Paths per second so far.
        paths_per_second: f64,
    },
    /// Every path of a block is rated and `ratings_block{k}.csv` written.
    Rated {
        /// Block (1-based).
        block: usize,
        /// The best-scoring path.
        best: Rating,
        /// Paths rated.
        paths: usize,
        /// Wall time.
        seconds: f64,
    },
    /// The search finished and the result files are written.
    Searched {
        /// The best architecture, then the alternatives (whole-network params and MACs).
        choices: Vec<Choice>,
        /// Params and MACs of the fixed part (stem and head).
        fixed: (u64, u64),
        /// The budget's label (`params-120000`, `unlimited`, ...).
        label: String,
        /// `result_<label>.json`.
        path: PathBuf,
    },
    /// The run stopped early on request; resume it with `wgnas dna --resume`.
    Stopped {
        /// The stage it stopped in.
        stage: DnaStage,
    },
    /// The run finished.
    Finished(DnaResult),
}

/// How a DNA run ended.
#[derive(Debug, Clone)]
pub struct DnaOutcome {
    /// The run folder.
    pub run_dir: PathBuf,
    /// `Some` when the run finished (also in `result.json`); `None` when it was stopped.
    pub result: Option<DnaResult>,
    /// Wall time of each stage this session ran (skipped stages are absent).
    pub stage_seconds: Vec<(DnaStage, f64)>,
}
