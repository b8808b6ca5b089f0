//! Timing recorded work: GPU timestamps where the adapter has them (written between
//! commands in the same encoder), wall-clock time around a blocking wait otherwise.

use std::time::Instant;

use super::Gpu;
use crate::error::{Error, Result};

/// Which clock a measurement came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Clock {
    /// GPU timestamp queries.
    GpuTimestamps,
    /// CPU wall clock around submit + wait (includes submission overhead).
    WallClock,
}

/// Measures the GPU time of the work that `record` records.
pub struct Timer {
    query: Option<(wgpu::QuerySet, wgpu::Buffer, wgpu::Buffer)>,
}

impl Timer {
    /// A timer on `gpu`, using timestamps when the adapter supports them inside encoders.
    pub fn new(gpu: &Gpu) -> Timer {
        let query = gpu.has_timestamps().then(|| {
            let set = gpu.device().create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("wgnas timer"),
                ty: wgpu::QueryType::Timestamp,
                count: 2,
            });
            let resolve = gpu.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some("wgnas timer resolve"),
                size: 16,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let read = gpu.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some("wgnas timer read"),
                size: 16,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            (set, resolve, read)
        });
        Timer { query }
    }

    /// The clock this timer uses.
    pub fn clock(&self) -> Clock {
        if self.query.is_some() {
            Clock::GpuTimestamps
        } else {
            Clock::WallClock
        }
    }

    /// Runs `record` (which records GPU work), waits for it, and returns milliseconds.
    /// Work recorded before the call is flushed and waited for first, so it is not counted.
    pub fn time(&self, gpu: &Gpu, record: impl FnOnce() -> Result<()>) -> Result<f64> {
        gpu.wait()?;
        let Some((set, resolve, read)) = &self.query else {
            let t0 = Instant::now();
            record()?;
            gpu.wait()?;
            return Ok(t0.elapsed().as_secs_f64() * 1e3);
        };
        gpu.write_timestamp(set, 0);
        record()?;
        gpu.write_timestamp(set, 1);
        gpu.with_encoder(|enc| {
            enc.resolve_query_set(set, 0..2, resolve, 0);
            enc.copy_buffer_to_buffer(resolve, 0, read, 0, 16);
        });
        gpu.wait()?;
        let (tx, rx) = std::sync::mpsc::channel();
        read.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        gpu.device()
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu { context: "timer".into(), message: e.to_string() })?;
        let mapped = rx.recv().map_err(|e| Error::Gpu { context: "timer".into(), message: e.to_string() })?;
        mapped.map_err(|e| Error::Gpu { context: "timer".into(), message: e.to_string() })?;
        let ticks = {
            let view = read
                .get_mapped_range(..)
                .map_err(|e| Error::Gpu { context: "timer".into(), message: e.to_string() })?;
            let t: &[u64] = bytemuck::cast_slice(&view);
            t[1].saturating_sub(t[0])
        };
        read.unmap();
        Ok(ticks as f64 * gpu.queue().get_timestamp_period() as f64 / 1e6)
    }
}
