//! `Tensor`: f32, NCHW, contiguous, living in one pooled GPU buffer.
//!
//! A tensor is a shape plus a shared handle to its storage; clones share the buffer,
//! and the buffer goes back to the pool when the last clone is dropped.

pub mod tape;

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::gpu::readback::PendingRead;
use crate::gpu::{Gpu, Pool};

struct Storage {
    buffer: Option<wgpu::Buffer>,
    class: u64,
    pool: Arc<Pool>,
    name: String,
}

impl Drop for Storage {
    fn drop(&mut self) {
        if let Some(b) = self.buffer.take() {
            self.pool.give(self.class, b);
        }
    }
}

/// An f32 tensor on the GPU. Shapes are NCHW for images, `[out, in]` for linear
/// weights and OIHW for conv weights, as in PyTorch.
#[derive(Clone)]
pub struct Tensor {
    storage: Arc<Storage>,
    shape: Vec<usize>,
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor({} {:?})", self.storage.name, self.shape)
    }
}

/// Number of elements of `shape`.
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

impl Tensor {
    /// An uninitialised tensor: every kernel that produces one writes all its elements.
    pub fn empty(gpu: &Gpu, shape: &[usize], name: &str) -> Result<Tensor> {
        let bytes =
            shape.iter().try_fold(4u64, |acc, &d| acc.checked_mul(d as u64)).ok_or_else(|| Error::TooLarge {
                tensor: name.to_string(),
                bytes: u64::MAX,
                limit_name: "max_buffer_size",
                limit: gpu.limits().max_buffer_size,
            })?;
        let (buffer, class) = gpu.alloc_buffer(name, bytes.max(4))?;
        Ok(Tensor {
            storage: Arc::new(Storage {
                buffer: Some(buffer),
                class,
                pool: gpu.pool().clone(),
                name: name.to_string(),
            }),
            shape: shape.to_vec(),
        })
    }

    /// A tensor of zeros (cleared in the command stream, so ordered with other work).
    pub fn zeros(gpu: &Gpu, shape: &[usize], name: &str) -> Result<Tensor> {
        let t = Tensor::empty(gpu, shape, name)?;
        let bytes = t.byte_len().div_ceil(4) * 4;
        gpu.with_encoder(|enc| enc.clear_buffer(t.buffer(), 0, Some(bytes.max(4))));
        Ok(t)
    }

    /// Uploads `data` as a tensor of `shape`. The copy is recorded in the command stream,
    /// after any work recorded before it.
    pub fn from_slice(gpu: &Gpu, data: &[f32], shape: &[usize], name: &str) -> Result<Tensor> {
        if data.len() != numel(shape) {
            return Err(Error::shape(
                "upload",
                format!("tensor '{name}': {} values do not fill shape {shape:?}", data.len()),
            ));
        }
        let t = Tensor::empty(gpu, shape, name)?;
        if !data.is_empty() {
            use wgpu::util::DeviceExt;
            let staging = gpu.device().create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("wgnas upload"),
                contents: bytemuck::cast_slice(data),
                usage: wgpu::BufferUsages::COPY_SRC,
            });
            gpu.with_encoder(|enc| enc.copy_buffer_to_buffer(&staging, 0, t.buffer(), 0, t.byte_len()));
        }
        Ok(t)
    }

    /// A scalar tensor of shape `[1]`.
    pub fn scalar(gpu: &Gpu, v: f32, name: &str) -> Result<Tensor> {
        Tensor::from_slice(gpu, &[v], &[1], name)
    }

    /// Concatenates the (flattened) `parts` into one 1-D tensor with copies recorded in the
    /// command stream; used to read several logged values back with one transfer.
    pub fn pack(gpu: &Gpu, parts: &[&Tensor], name: &str) -> Result<Tensor> {
        let total: usize = parts.iter().map(|t| t.numel()).sum();
        let out = Tensor::empty(gpu, &[total], name)?;
        let mut offset = 0u64;
        for t in parts.iter().filter(|t| t.numel() > 0) {
            gpu.with_encoder(|enc| enc.copy_buffer_to_buffer(t.buffer(), 0, out.buffer(), offset, t.byte_len()));
            offset += t.byte_len();
        }
        Ok(out)
    }

    /// Copies the values to the CPU, blocking until the GPU has produced them.
    pub fn to_vec(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        PendingRead::start(gpu, self)?.wait(gpu)
    }

    /// Starts a non-blocking copy to the CPU (for logging one step late).
    pub fn read_async(&self, gpu: &Gpu) -> Result<PendingRead> {
        PendingRead::start(gpu, self)
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }

    /// Bytes of the values (not of the pooled buffer, which may be larger).
    pub fn byte_len(&self) -> u64 {
        self.numel() as u64 * 4
    }

    /// The name given at creation (used in errors).
    pub fn name(&self) -> &str {
        &self.storage.name
    }

    /// The underlying buffer.
    pub fn buffer(&self) -> &wgpu::Buffer {
        // The buffer is only taken in Drop, when no Tensor refers to the storage any more.
        self.storage.buffer.as_ref().expect("tensor storage is alive while a Tensor refers to it")
    }

    /// The same storage seen with another shape of equal element count.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        if numel(shape) != self.numel() {
            return Err(Error::shape(
                "reshape",
                format!("tensor '{}' {:?} cannot be viewed as {shape:?}", self.name(), self.shape),
            ));
        }
        Ok(Tensor { storage: self.storage.clone(), shape: shape.to_vec() })
    }

    /// Whether two tensors share one buffer.
    pub fn same_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.storage, &other.storage)
    }

    /// Whether this handle is the only one to its buffer, so writing into it in place
    /// cannot change a value anyone else holds.
    pub fn is_unique(&self) -> bool {
        Arc::strong_count(&self.storage) == 1
    }

    /// The 4 dimensions of an NCHW tensor, or a shape error naming `op`.
    pub fn dims4(&self, op: &'static str) -> Result<[usize; 4]> {
        match self.shape[..] {
            [n, c, h, w] => Ok([n, c, h, w]),
            _ => Err(Error::shape(op, format!("'{}' must be NCHW, got shape {:?}", self.name(), self.shape))),
        }
    }

    /// Fails unless `self` has exactly `shape`.
    pub fn expect_shape(&self, op: &'static str, shape: &[usize]) -> Result<()> {
        if self.shape != shape {
            return Err(Error::shape(op, format!("'{}' has shape {:?}, expected {shape:?}", self.name(), self.shape)));
        }
        Ok(())
    }
}
