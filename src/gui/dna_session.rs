//! One DNA run on a worker thread, as the app sees it: [`dna::run_dna`] (the CLI's pipeline)
//! sends its [`DnaEvent`]s through a channel and wakes the UI; the UI drains them each frame
//! into a status line and a progress fraction, and shows the run folder itself through a
//! followed [`super::dna_history::DnaHistory`] (the folder is the single source of truth, so a
//! live run and a replayed one look the same).

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;

use crate::dna::{self, DnaConfig, DnaEvent, DnaOptions};
use crate::error::{Error, Result};
use crate::run::events::StopSignal;
use crate::train::TrainEvent;

/// What the worker sends: the pipeline's events, then how it ended.
enum Msg {
    Event(Box<DnaEvent>),
    Ended(std::result::Result<PathBuf, String>),
}

/// A DNA run on a worker thread and what it has reported so far.
pub struct DnaSession {
    rx: Receiver<Msg>,
    stop: StopSignal,
    handle: Option<JoinHandle<()>>,
    /// The run folder, once the pipeline has made (or reopened) it.
    pub run_dir: Option<PathBuf>,
    /// The latest progress, in words.
    pub status: String,
    /// Progress of the current stage in [0, 1], when it has a count.
    pub fraction: Option<f32>,
    /// How it ended: `Ok` (finished or stopped) or the error; `None` while running.
    pub ended: Option<std::result::Result<(), String>>,
    /// Epochs of the training run in progress (teacher, retrain or random baseline).
    train_epochs: u64,
}

impl DnaSession {
    /// Starts `cfg` (or continues the run in `resume`) on a new worker thread; `repaint` is
    /// woken on each event.
    pub fn start(cfg: DnaConfig, resume: Option<PathBuf>, repaint: Option<egui::Context>) -> Result<DnaSession> {
        let (tx, rx) = mpsc::channel();
        let stop = StopSignal::new();
        let opts = DnaOptions { resume, stop: stop.clone() };
        let wake = move || {
            if let Some(ctx) = &repaint {
                ctx.request_repaint();
            }
        };
        let handle = std::thread::Builder::new()
            .name("wgnas-dna".into())
            .spawn(move || {
                let mut sink = |e: &DnaEvent| {
                    // A closed window drops the receiver; the run goes on to its end.
                    let _ = tx.send(Msg::Event(Box::new(e.clone())));
                    wake();
                };
                let out = dna::run_dna(cfg, &opts, &mut sink).map(|o| o.run_dir).map_err(|e| e.to_string());
                let _ = tx.send(Msg::Ended(out));
                wake();
            })
            .map_err(|e| Error::invalid("gui", format!("cannot start the DNA thread: {e}")))?;
        Ok(DnaSession {
            rx,
            stop,
            handle: Some(handle),
            run_dir: None,
            status: "starting…".into(),
            fraction: None,
            ended: None,
            train_epochs: 0,
        })
    }

    /// Applies every message that arrived since the last call; returns how many there were.
    /// A worker that died without reporting an end is recorded as a failure.
    pub fn poll(&mut self) -> usize {
        let mut n = 0;
        while let Ok(msg) = self.rx.try_recv() {
            n += 1;
            match msg {
                Msg::Event(e) => self.apply(&e),
                Msg::Ended(Ok(dir)) => {
                    self.run_dir = Some(dir);
                    self.fraction = None;
                    self.ended = Some(Ok(()));
                }
                Msg::Ended(Err(e)) => {
                    self.status = format!("failed: {e}");
                    self.ended = Some(Err(e));
                }
            }
        }
        let dead = self.handle.as_ref().is_some_and(JoinHandle::is_finished);
        if dead && self.ended.is_none() && self.rx.try_recv().is_err() {
            self.ended = Some(Err("the DNA worker thread ended without a result".into()));
            self.status = "failed: the DNA worker thread ended without a result".into();
        }
        if self.ended.is_some() {
            if let Some(h) = self.handle.take() {
                let _ = h.join();
            }
        }
        n
    }

    /// Asks the run to stop at its next step or path chunk (it can be resumed later).
    pub fn stop(&self) {
        self.stop.request();
    }

    /// Whether the worker is still running (a stop may be pending).
    pub fn is_active(&self) -> bool {
        self.ended.is_none()
    }

    /// Whether a stop was asked for.
    pub fn stopping(&self) -> bool {
        self.stop.is_requested() && self.is_active()
    }

    fn apply(&mut self, e: &DnaEvent) {
        match e {
            DnaEvent::Started { run_dir, resumed, blocks, .. } => {
                self.run_dir = Some(run_dir.clone());
                let verb = if *resumed { "resumed" } else { "started" };
                self.status = format!("{verb}: {blocks} student blocks");
            }
            DnaEvent::Skipped { stage, block, .. } => {
                let block = block.map(|b| format!(" block {b}")).unwrap_or_default();
                self.status = format!("{}{block}: already done", stage.name());
            }
            DnaEvent::Train { stage, event } => match event {
                TrainEvent::Started(s) => {
                    self.train_epochs = s.epochs;
                    self.status = format!("{}: training {} ({} params)", stage.name(), s.arch, s.params);
                    self.fraction = Some(0.0);
                }
                TrainEvent::Epoch(r) => {
                    let total = self.train_epochs.max(1);
                    self.status =
                        format!("{}: epoch {}/{total}, test accuracy {:.2} %", stage.name(), r.epoch + 1, r.test_acc);
                    self.fraction = Some((r.epoch + 1) as f32 / total as f32);
                }
                _ => {}
            },
            DnaEvent::TeacherReady(t) => {
                self.status = format!("teacher ready: test accuracy {:.2} %", t.test_acc);
                self.fraction = None;
            }
            DnaEvent::DistillStep { block, blocks, epoch, step, steps, loss, .. } => {
                self.status = format!("distilling block {block}/{blocks}, epoch {}: MSE {loss:.4}", epoch + 1);
                self.fraction = Some((*step + 1) as f32 / (*steps).max(1) as f32);
            }
            DnaEvent::DistillEpoch { block, blocks, epoch, epochs, loss, .. } => {
                self.status = format!("distilled block {block}/{blocks}, epoch {}/{epochs}: MSE {loss:.4}", epoch + 1);
            }
            DnaEvent::RatingProgress { block, blocks, done, total, paths_per_second } => {
                self.status =
                    format!("rating block {block}/{blocks}: {done}/{total} paths ({paths_per_second:.1} paths/s)");
                self.fraction = Some(*done as f32 / (*total).max(1) as f32);
            }
            DnaEvent::Rated { block, paths, .. } => {
                self.status = format!("rated block {block}: {paths} paths");
            }
            DnaEvent::Searched { choices, label, .. } => {
                let best = choices.first().map(|c| c.arch.as_str()).unwrap_or("-");
                self.status = format!("searched ({label}): best {best}");
                self.fraction = None;
            }
            DnaEvent::Stopped { stage } => {
                self.status = format!("stopped in stage {}: resume it to continue", stage.name());
            }
            DnaEvent::Finished(_) => {
                self.status = "finished".into();
                self.fraction = None;
            }
        }
    }
}
