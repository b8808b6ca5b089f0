//! What a running search reports. The search worker sends [`RunEvent`]s to an
//! [`EventSink`]; the CLI's progress display, the metrics log and a GUI all consume the
//! same events, so anything one of them shows the others can show too.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::config::SearchConfig;
use super::metrics::{EpochRecord, StepRecord};

/// Why a run ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// All epochs ran.
    Completed,
    /// The strategy's early-stopping rule ended it.
    EarlyStopped,
    /// The user asked it to stop ([`StopSignal`]).
    Stopped,
}

/// The start of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunStart {
    /// The resolved config.
    pub config: Box<SearchConfig>,
    /// The adapter, as the engine describes it.
    pub device: String,
    /// The run folder.
    pub run_dir: PathBuf,
    /// Optimisation steps per epoch.
    pub steps_per_epoch: u64,
    /// The first epoch to run (0, or later when resuming).
    pub start_epoch: u64,
    /// Steps already completed (0, or the checkpoint's global step when resuming).
    pub start_global_step: u64,
}

/// The end of a run that did not fail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunEnd {
    /// Why it ended.
    pub reason: FinishReason,
    /// The final derived architecture.
    pub arch: String,
    /// Epochs completed.
    pub epochs: u64,
    /// Steps completed.
    pub global_step: u64,
    /// Wall time of this process's part of the run, in seconds.
    pub seconds: f64,
    /// The run folder.
    pub run_dir: PathBuf,
}

/// One thing that happened in a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", content = "data", rename_all = "snake_case")]
pub enum RunEvent {
    /// The run began (or resumed).
    Started(RunStart),
    /// A step was logged.
    Step(StepRecord),
    /// An epoch ended.
    Epoch(EpochRecord),
    /// A checkpoint was saved in this folder.
    Checkpoint(PathBuf),
    /// The run ended normally.
    Finished(RunEnd),
    /// The run stopped on an error (its message).
    Failed(String),
}

/// Something that consumes run events. Sinks must not fail the run: they handle their
/// own errors (a closed window, a broken pipe).
pub trait EventSink {
    /// Takes one event.
    fn event(&mut self, event: &RunEvent);
}

/// Collects events (for tests and replays).
impl EventSink for Vec<RunEvent> {
    fn event(&mut self, event: &RunEvent) {
        self.push(event.clone());
    }
}

/// Forwards events to another thread (a GUI). A closed receiver is ignored.
impl EventSink for Sender<RunEvent> {
    fn event(&mut self, event: &RunEvent) {
        let _ = self.send(event.clone());
    }
}

/// A closure as a sink.
pub struct FnSink<F: FnMut(&RunEvent)>(pub F);

impl<F: FnMut(&RunEvent)> EventSink for FnSink<F> {
    fn event(&mut self, event: &RunEvent) {
        (self.0)(event)
    }
}

/// Sends each event to several sinks in order.
#[derive(Default)]
pub struct Fanout {
    sinks: Vec<Box<dyn EventSink + Send>>,
}

impl Fanout {
    /// No sinks yet.
    pub fn new() -> Self {
        Fanout::default()
    }

    /// Adds a sink.
    pub fn with(mut self, sink: impl EventSink + Send + 'static) -> Self {
        self.sinks.push(Box::new(sink));
        self
    }
}

impl EventSink for Fanout {
    fn event(&mut self, event: &RunEvent) {
        for s in &mut self.sinks {
            s.event(event);
        }
    }
}

/// A stop request shared between a run and whoever may end it (Ctrl-C, a GUI button).
/// The worker checks it between steps and finishes with [`FinishReason::Stopped`].
#[derive(Debug, Clone, Default)]
pub struct StopSignal(Arc<AtomicBool>);

impl StopSignal {
    /// Not requested.
    pub fn new() -> Self {
        StopSignal::default()
    }

    /// Asks the run to stop.
    pub fn request(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether a stop was asked for.
    pub fn is_requested(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A pause request shared between a run and whoever may pause it (a GUI button). The worker
/// checks it between steps and, while it is set, waits (without using the GPU) until it is
/// cleared or a stop is requested.
#[derive(Debug, Clone, Default)]
pub struct PauseSignal(Arc<AtomicBool>);

impl PauseSignal {
    /// How often a paused run looks at its signals again.
    const POLL: Duration = Duration::from_millis(20);

    /// Not paused.
    pub fn new() -> Self {
        PauseSignal::default()
    }

    /// Asks the run to pause after its current step.
    pub fn pause(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Lets a paused run continue.
    pub fn resume(&self) {
        self.0.store(false, Ordering::Relaxed);
    }

    /// Whether a pause is asked for.
    pub fn is_paused(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Blocks while paused and no stop is requested; returns how long it waited.
    pub fn wait_while_paused(&self, stop: &StopSignal) -> Duration {
        let start = Instant::now();
        while self.is_paused() && !stop.is_requested() {
            std::thread::sleep(Self::POLL);
        }
        start.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_blocks_until_resumed_or_stopped() {
        let (pause, stop) = (PauseSignal::new(), StopSignal::new());
        assert!(pause.wait_while_paused(&stop) < Duration::from_millis(50), "not paused: no wait");
        pause.pause();
        let p = pause.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            p.resume();
        });
        assert!(pause.wait_while_paused(&stop) >= Duration::from_millis(90));
        t.join().unwrap();
        pause.pause();
        stop.request();
        assert!(pause.wait_while_paused(&stop) < Duration::from_millis(50), "a stop ends the pause");
        assert!(pause.is_paused());
    }
}
