//! One search running on a worker thread, as the app sees it: the worker sends
//! [`RunEvent`]s through a channel (and wakes the UI), the UI drains them each frame into a
//! [`RunHistory`] and controls the run with [`StopSignal`] and [`PauseSignal`]. The search
//! itself is the CLI's: [`worker::run_search`].

use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::run::config::SearchConfig;
use crate::run::events::{EventSink, PauseSignal, RunEvent, StopSignal};
use crate::run::worker::{self, SearchOptions};
use crate::run::{RunHistory, StepRecord};

/// Logged steps the ETA's step time is averaged over.
const ETA_WINDOW: usize = 5;

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// The worker is searching (or still starting).
    Running,
    /// The worker waits between two steps.
    Paused,
    /// A stop was asked for; the worker is checkpointing.
    Stopping,
    /// The run ended (finished, stopped or failed).
    Ended,
}

/// Sends events into the channel and asks the UI for a repaint, so it sees them at once.
struct UiSink {
    tx: Sender<RunEvent>,
    repaint: Option<egui::Context>,
}

impl EventSink for UiSink {
    fn event(&mut self, event: &RunEvent) {
        self.tx.event(event);
        if let Some(ctx) = &self.repaint {
            ctx.request_repaint();
        }
    }
}

/// A search on a worker thread and what it has reported so far.
pub struct Session {
    /// Everything the run reported (drained by [`Session::poll`]).
    pub history: RunHistory,
    rx: Receiver<RunEvent>,
    stop: StopSignal,
    pause: PauseSignal,
    handle: Option<JoinHandle<()>>,
    started_at: Instant,
}

impl Session {
    /// Starts `cfg` on a new worker thread; `repaint` (the UI's context) is woken on each event.
    pub fn start(cfg: SearchConfig, repaint: Option<egui::Context>) -> Result<Session> {
        Self::start_with(cfg, SearchOptions::default(), repaint)
    }

    /// Starts `cfg` with `opts` (their stop and pause signals become the session's).
    pub fn start_with(cfg: SearchConfig, opts: SearchOptions, repaint: Option<egui::Context>) -> Result<Session> {
        let (tx, rx) = mpsc::channel();
        let (stop, pause) = (opts.stop.clone(), opts.pause.clone());
        let mut sink = UiSink { tx, repaint };
        let handle = std::thread::Builder::new()
            .name("wgnas-search".into())
            .spawn(move || {
                // The outcome also arrives as events (Finished, or Failed with the error).
                let _ = worker::run_search(cfg, &opts, &mut sink);
            })
            .map_err(|e| Error::invalid("gui", format!("cannot start the search thread: {e}")))?;
        Ok(Session { history: RunHistory::new(), rx, stop, pause, handle: Some(handle), started_at: Instant::now() })
    }

    /// Applies every event that arrived since the last call; returns how many there were.
    /// A worker that died without reporting an end is recorded as a failure.
    pub fn poll(&mut self) -> usize {
        let mut n = 0;
        while let Ok(e) = self.rx.try_recv() {
            self.history.apply(&e);
            n += 1;
        }
        if self.handle.as_ref().is_some_and(|h| h.is_finished()) {
            if let Some(h) = self.handle.take() {
                let panicked = h.join().is_err();
                // Events sent just before the thread ended are still in the channel.
                while let Ok(e) = self.rx.try_recv() {
                    self.history.apply(&e);
                    n += 1;
                }
                if self.history.end.is_none() && self.history.failure.is_none() {
                    let why = if panicked { "the search thread panicked" } else { "the search thread ended silently" };
                    self.history.failure = Some(why.into());
                }
            }
        }
        n
    }

    /// Where the run stands.
    pub fn state(&self) -> SessionState {
        if self.history.end.is_some() || self.history.failure.is_some() || self.handle.is_none() {
            SessionState::Ended
        } else if self.stop.is_requested() {
            SessionState::Stopping
        } else if self.pause.is_paused() {
            SessionState::Paused
        } else {
            SessionState::Running
        }
    }

    /// Whether the worker is still running (maybe paused or stopping).
    pub fn is_active(&self) -> bool {
        self.state() != SessionState::Ended
    }

    /// Pauses the run after its current step.
    pub fn pause(&self) {
        self.pause.pause();
    }

    /// Resumes a paused run.
    pub fn resume(&self) {
        self.pause.resume();
    }

    /// Asks the run to stop (it checkpoints first); also ends a pause.
    pub fn stop(&self) {
        self.stop.request();
    }

    /// Time since the session started.
    pub fn elapsed(&self) -> Duration {
        self.started_at.elapsed()
    }

    /// Estimated time left: steps left × the mean step time of the last logged steps.
    pub fn eta(&self) -> Option<Duration> {
        eta(&self.history)
    }
}

impl Drop for Session {
    /// A closed app stops its search (the worker checkpoints and ends on its own).
    fn drop(&mut self) {
        self.stop.request();
    }
}

/// Estimated time left in `h`: (total − done steps) × mean `step_ms` of the last
/// [`ETA_WINDOW`] logged steps. `None` before the first logged step or the start event.
pub fn eta(h: &RunHistory) -> Option<Duration> {
    let (done, total) = h.progress()?;
    let recent: Vec<&StepRecord> = h.steps.iter().rev().take(ETA_WINDOW).collect();
    if recent.is_empty() {
        return None;
    }
    let ms = recent.iter().map(|s| s.step_ms).sum::<f64>() / recent.len() as f64;
    let secs = (total.saturating_sub(done) as f64 * ms / 1e3).max(0.0);
    secs.is_finite().then(|| Duration::from_secs_f64(secs))
}

/// GPU memory from the logged steps: (the newest step's peak, the peak over the run), in bytes.
pub fn gpu_memory(h: &RunHistory) -> Option<(u64, u64)> {
    let live = h.steps.last()?.peak_gpu_bytes;
    let peak = h.steps.iter().map(|s| s.peak_gpu_bytes).max().unwrap_or(live);
    Some((live, peak))
}

/// `d` as `1h02m`, `3m05s` or `12s`.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, (s / 60) % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m{sec:02}s"),
        (h, m, _) => format!("{h}h{m:02}m"),
    }
}

/// Bytes as MiB with one decimal.
pub fn format_mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::events::RunStart;

    fn step(global_step: u64, step_ms: f64, peak: u64) -> StepRecord {
        StepRecord {
            epoch: 0,
            step: global_step,
            global_step,
            train_loss: 0.0,
            train_acc: 0.0,
            val_loss: None,
            val_acc: None,
            lr_w: 0.0,
            lr_alpha: 0.0,
            step_ms,
            peak_gpu_bytes: peak,
            alpha_softmax: Vec::new(),
            extra: Default::default(),
        }
    }

    #[test]
    fn eta_is_steps_left_times_recent_step_time() {
        let mut h = RunHistory::new();
        assert_eq!(eta(&h), None);
        let mut cfg = SearchConfig::default();
        cfg.run.epochs = 2;
        h.apply(&RunEvent::Started(RunStart {
            config: Box::new(cfg),
            device: "test".into(),
            run_dir: "r".into(),
            steps_per_epoch: 10,
            start_epoch: 0,
            start_global_step: 0,
        }));
        assert_eq!(eta(&h), None, "no step time yet");
        // Old slow steps fall out of the window: mean of the last 5 = 100 ms.
        for (i, ms) in [900.0, 100.0, 100.0, 100.0, 100.0, 100.0].into_iter().enumerate() {
            h.apply(&RunEvent::Step(step(i as u64 + 1, ms, 10 * (i as u64 + 1))));
        }
        // 20 − 6 = 14 steps left × 0.1 s.
        assert_eq!(eta(&h), Some(Duration::from_secs_f64(1.4)));
        assert_eq!(gpu_memory(&h), Some((60, 60)));
    }

    #[test]
    fn durations_and_sizes_read_well() {
        assert_eq!(format_duration(Duration::from_secs(12)), "12s");
        assert_eq!(format_duration(Duration::from_secs(185)), "3m05s");
        assert_eq!(format_duration(Duration::from_secs(3720)), "1h02m");
        assert_eq!(format_mib(3 * 1024 * 1024 / 2), "1.5 MiB");
    }
}
