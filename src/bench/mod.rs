//! `wgnas bench`: measured figures from the project's own code, printed as a table or JSON.

pub mod kernels;
pub mod search_step;
pub mod simplify;

use crate::error::Result;
use crate::gpu::timer::{Clock, Timer};
use crate::gpu::Gpu;

/// Milliseconds per repetition of `record`, after `warmup` unmeasured repetitions
/// (the first dispatch of each pipeline pays for its compilation).
pub fn time_per_rep(
    gpu: &Gpu,
    timer: &Timer,
    warmup: usize,
    reps: usize,
    mut record: impl FnMut() -> Result<()>,
) -> Result<f64> {
    for _ in 0..warmup {
        record()?;
    }
    gpu.wait()?;
    let reps = reps.max(1);
    let ms = timer.time(gpu, || {
        for _ in 0..reps {
            record()?;
        }
        Ok(())
    })?;
    Ok(ms / reps as f64)
}

/// Name of a clock for reports.
pub fn clock_name(c: Clock) -> &'static str {
    match c {
        Clock::GpuTimestamps => "GPU timestamps",
        Clock::WallClock => "wall clock",
    }
}
