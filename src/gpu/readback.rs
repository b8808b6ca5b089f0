//! Reading tensors back to the CPU: blocking ([`Tensor::to_vec`]) for tests and
//! tools, and one step late ([`PendingRead`]) for logged values, so a training loop
//! never waits on the GPU just to print a loss.

use std::sync::{Arc, Mutex};

use super::Gpu;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

type Slot = Arc<Mutex<Option<std::result::Result<(), String>>>>;

/// A copy of a tensor on its way to the CPU. Poll it with [`PendingRead::try_take`]
/// (never blocks) or finish it with [`PendingRead::wait`].
pub struct PendingRead {
    staging: wgpu::Buffer,
    len: usize,
    name: String,
    done: Slot,
}

impl PendingRead {
    /// Records the copy and submits the pending work; the map request is issued at once.
    pub fn start(gpu: &Gpu, t: &Tensor) -> Result<PendingRead> {
        let bytes = t.byte_len().max(4);
        let staging = gpu.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgnas readback"),
            size: bytes,
            // MAP_READ may only pair with COPY_DST.
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        gpu.with_encoder(|enc| enc.copy_buffer_to_buffer(t.buffer(), 0, &staging, 0, bytes));
        gpu.flush()?;
        let done: Slot = Arc::default();
        let slot = done.clone();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            if let Ok(mut s) = slot.lock() {
                *s = Some(r.map_err(|e| e.to_string()));
            }
        });
        Ok(PendingRead { staging, len: t.numel(), name: t.name().to_string(), done })
    }

    fn finished(&self) -> Option<std::result::Result<(), String>> {
        self.done.lock().ok().and_then(|s| s.clone())
    }

    fn read(self) -> Result<Vec<f32>> {
        if let Some(Err(reason)) = self.finished() {
            return Err(Error::Readback { tensor: self.name, reason });
        }
        let out = {
            let view = self
                .staging
                .get_mapped_range(..)
                .map_err(|e| Error::Readback { tensor: self.name.clone(), reason: e.to_string() })?;
            let all: &[f32] = bytemuck::cast_slice(&view);
            all[..self.len].to_vec()
            // The view must be dropped before unmap.
        };
        self.staging.unmap();
        Ok(out)
    }

    /// The values if the GPU has finished the copy; `Ok(Err(self))` if not yet.
    pub fn try_take(self, gpu: &Gpu) -> Result<std::result::Result<Vec<f32>, PendingRead>> {
        let _ = gpu.device().poll(wgpu::PollType::Poll);
        gpu.check("readback")?;
        match self.finished() {
            Some(_) => self.read().map(Ok),
            None => Ok(Err(self)),
        }
    }

    /// Blocks until the values are on the CPU.
    pub fn wait(self, gpu: &Gpu) -> Result<Vec<f32>> {
        while self.finished().is_none() {
            gpu.device()
                .poll(wgpu::PollType::wait_indefinitely())
                .map_err(|e| Error::Readback { tensor: self.name.clone(), reason: e.to_string() })?;
        }
        gpu.check("readback")?;
        self.read()
    }
}
