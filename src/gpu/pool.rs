//! Buffer pool keyed by size class, with live and peak byte accounting.
//!
//! Reuse is stream-ordered: a buffer freed after its last recorded use may be handed
//! out again for work recorded later in the same encoder, because one queue runs
//! the commands in recording order and wgpu inserts the barriers. That is why the
//! pool never needs to wait for the GPU, and why uploads go through the encoder
//! (a `queue.write_buffer` would jump ahead of recorded work).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Usage flags of every pooled tensor buffer.
pub const TENSOR_USAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_SRC).union(wgpu::BufferUsages::COPY_DST);

/// Rounds a byte count up to its size class: 256-byte steps up to 4 KiB, then
/// eight classes per power of two (at most 12.5% waste).
pub fn size_class(bytes: u64) -> u64 {
    let bytes = bytes.max(4);
    if bytes <= 4096 {
        return bytes.div_ceil(256) * 256;
    }
    let top = 63 - bytes.leading_zeros() as u64; // 2^top <= bytes
    let step = 1u64 << (top - 3);
    bytes.div_ceil(step) * step
}

/// Memory counters of a pool, all in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct MemoryStats {
    /// Bytes held by live tensors.
    pub live: u64,
    /// Highest `live` since the last peak reset.
    pub peak: u64,
    /// Bytes the pool holds for reuse (not live).
    pub cached: u64,
}

/// Shared pool state; tensors hold an `Arc` to it so they can give buffers back on drop.
#[derive(Debug, Default)]
pub struct Pool {
    free: Mutex<HashMap<u64, Vec<wgpu::Buffer>>>,
    live: AtomicU64,
    peak: AtomicU64,
    cached: AtomicU64,
}

impl Pool {
    /// Takes a buffer of `class` bytes from the free list, or creates one.
    pub(crate) fn take(self: &Arc<Self>, device: &wgpu::Device, class: u64) -> wgpu::Buffer {
        let reused = self.free.lock().ok().and_then(|mut f| f.get_mut(&class).and_then(|v| v.pop()));
        let buffer = match reused {
            Some(b) => {
                self.cached.fetch_sub(class, Ordering::Relaxed);
                b
            }
            None => device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("wgnas tensor"),
                size: class,
                usage: TENSOR_USAGE,
                mapped_at_creation: false,
            }),
        };
        let live = self.live.fetch_add(class, Ordering::Relaxed) + class;
        self.peak.fetch_max(live, Ordering::Relaxed);
        buffer
    }

    /// Returns a buffer to its free list.
    pub(crate) fn give(&self, class: u64, buffer: wgpu::Buffer) {
        self.live.fetch_sub(class, Ordering::Relaxed);
        self.cached.fetch_add(class, Ordering::Relaxed);
        if let Ok(mut f) = self.free.lock() {
            f.entry(class).or_default().push(buffer);
        }
    }

    /// Current counters.
    pub fn stats(&self) -> MemoryStats {
        MemoryStats {
            live: self.live.load(Ordering::Relaxed),
            peak: self.peak.load(Ordering::Relaxed),
            cached: self.cached.load(Ordering::Relaxed),
        }
    }

    /// Starts a new peak window at the current live size (for per-step peaks).
    pub fn reset_peak(&self) {
        self.peak.store(self.live.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// Frees every cached buffer (live tensors are untouched).
    pub fn trim(&self) {
        if let Ok(mut f) = self.free.lock() {
            f.clear();
        }
        self.cached.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_classes_cover_request_with_bounded_waste() {
        for bytes in [1u64, 4, 255, 256, 257, 4096, 4097, 10_000, 1 << 20, (1 << 20) + 1, 123_456_789] {
            let c = size_class(bytes);
            assert!(c >= bytes, "{bytes} -> {c}");
            assert!(c as f64 <= (bytes.max(256) as f64) * 1.125 + 256.0, "{bytes} -> {c}");
            assert_eq!(c % 4, 0);
        }
        assert_eq!(size_class(4097), size_class(4500));
    }
}
