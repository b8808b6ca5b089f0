//! The wgnas desktop app (eframe + egui, wgpu renderer): set up a search, run it on a
//! worker thread, watch it live, browse past runs.
//!
//! ```text
//! run_app ──► WgnasApp (app) ─┬─ run-control bar: Start / Pause / Resume / Stop, progress, ETA, GPU
//!                             ├─ SetupPanel (setup): edits a SearchConfig, flags invalid fields
//!                             ├─ Session (session): run::worker::run_search on a thread → RunHistory
//!                             └─ central tabs: one function per view, all drawn from a RunHistory
//! ```
//!
//! The app never touches GPU buffers: the search owns its own device on the worker thread,
//! eframe owns the renderer's.

pub mod app;
/// A DNA run as the app shows it: config, progress log, ratings and result, read from its folder.
pub mod dna_history;
/// A DNA run on a worker thread: its events as a status line, its folder followed.
pub mod dna_session;
/// File exports of a run: genotype JSON, architecture string, `cell.dot`, α CSV, PNG.
pub mod export;
/// The runs browser: run folders under a root, opened and followed live.
pub mod runs;
pub mod session;
pub mod setup;
/// The live views of a run: plots, α heatmap, cell topology, benchmark.
pub mod views;

pub use app::{AppOptions, Tab, WgnasApp};
pub use session::{Session, SessionState};
pub use setup::{Problems, SetupPanel};

use crate::error::{Error, Result};

/// Whether a window can be opened: on Linux and the BSDs, a Wayland or X11 display must be named.
pub fn display_available() -> bool {
    if cfg!(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd", target_os = "netbsd")) {
        ["WAYLAND_DISPLAY", "DISPLAY"].iter().any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
    } else {
        true
    }
}

/// Opens the app window and runs it until it is closed.
pub fn run_app(options: AppOptions) -> Result<()> {
    if !display_available() {
        return Err(Error::invalid(
            "gui",
            "no display: neither WAYLAND_DISPLAY nor DISPLAY is set, so the app cannot open a window \
             (run it in a desktop session, or use `wgnas search` on the command line)",
        ));
    }
    let native = eframe::NativeOptions {
        renderer: eframe::Renderer::Wgpu,
        viewport: egui::ViewportBuilder::default().with_title("wgnas").with_inner_size([1280.0, 820.0]),
        ..Default::default()
    };
    eframe::run_native("wgnas", native, Box::new(move |_cc| Ok(Box::new(WgnasApp::new(options)))))
        .map_err(|e| Error::invalid("gui", format!("cannot open the app window: {e}")))
}
