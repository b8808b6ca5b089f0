//! The GPU context: device and queue on the chosen adapter, the buffer pool, the
//! pipeline cache and the command recorder that batches a whole step into one submission.
//!
//! Every kernel launch goes through [`Gpu::dispatch`]: it fetches the cached pipeline,
//! appends the launch parameters to a per-submission uniform arena, binds the tensors
//! and records the dispatch. Nothing is submitted until [`Gpu::flush`] (or a readback,
//! which flushes), so a training step is one submission unless the arena fills up.

pub mod adapter;
pub mod pool;
pub mod readback;
pub mod shaders;
pub mod timer;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::tensor::Tensor;
pub use adapter::{AdapterChoice, AdapterReport};
pub use pool::{MemoryStats, Pool};

/// Bytes of the uniform arena that holds the parameters of the dispatches of one submission:
/// 16,384 launches at a 256-byte offset alignment, enough for a full-size DARTS step.
const ARENA_BYTES: u64 = 4 << 20;

/// A compiled pipeline and which group-0 bindings its entry point uses.
struct Pipeline {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
    used: Vec<u32>,
    writable: Vec<u32>,
}

/// Commands recorded but not yet submitted, and the parameter arena they read.
struct Recorder {
    encoder: Option<wgpu::CommandEncoder>,
    params: Vec<u8>,
    arena: wgpu::Buffer,
    dispatches: u64,
    submissions: u64,
}

/// Counters of recorded work, for benchmarks and the "kernels per step" metric.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WorkStats {
    /// Kernel dispatches recorded since the device was opened.
    pub dispatches: u64,
    /// Queue submissions since the device was opened.
    pub submissions: u64,
}

struct Inner {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    features: wgpu::Features,
    pool: Arc<Pool>,
    modules: Mutex<HashMap<&'static str, (wgpu::ShaderModule, shaders::Reflected)>>,
    pipelines: Mutex<HashMap<(String, String), Arc<Pipeline>>>,
    recorder: Mutex<Recorder>,
    /// First uncaptured wgpu error (validation, out of memory, device lost), reported at the next flush.
    error: Arc<Mutex<Option<String>>>,
}

/// Handle to the GPU; cheap to clone and shareable across threads.
#[derive(Clone)]
pub struct Gpu {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gpu({} / {:?})", self.inner.info.name, self.inner.info.backend)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock leaves plain data behind; keep going with it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Gpu {
    /// Opens the adapter picked by `choice` (see [`adapter::choose_adapter`]).
    pub fn new(choice: &AdapterChoice) -> Result<Gpu> {
        let adapter = adapter::choose_adapter(choice)?;
        Gpu::from_adapter(adapter)
    }

    /// Opens the default adapter, honouring `WGNAS_ADAPTER` and `WGNAS_BACKEND`.
    pub fn from_env() -> Result<Gpu> {
        Gpu::new(&AdapterChoice::from_env())
    }

    /// Opens a device on `adapter` with the adapter's own limits.
    pub fn from_adapter(adapter: wgpu::Adapter) -> Result<Gpu> {
        let info = adapter.get_info();
        let limits = adapter.limits();
        let wanted = wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS;
        let features = adapter.features() & wanted;
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("wgnas"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| Error::DeviceRequest { adapter: info.name.clone(), reason: e.to_string() })?;

        let error: Arc<Mutex<Option<String>>> = Arc::default();
        let sink = error.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut slot = lock(&sink);
            if slot.is_none() {
                *slot = Some(e.to_string());
            }
        }));
        let lost = error.clone();
        device.set_device_lost_callback(move |reason, msg| {
            let mut slot = lock(&lost);
            if slot.is_none() {
                *slot = Some(format!("device lost ({reason:?}): {msg}"));
            }
        });

        let arena = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgnas params arena"),
            size: ARENA_BYTES,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Ok(Gpu {
            inner: Arc::new(Inner {
                device,
                queue,
                info,
                limits,
                features,
                pool: Arc::new(Pool::default()),
                modules: Mutex::default(),
                pipelines: Mutex::default(),
                recorder: Mutex::new(Recorder {
                    encoder: None,
                    params: Vec::new(),
                    arena,
                    dispatches: 0,
                    submissions: 0,
                }),
                error,
            }),
        })
    }

    /// The wgpu device.
    pub fn device(&self) -> &wgpu::Device {
        &self.inner.device
    }

    /// The wgpu queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.inner.queue
    }

    /// Adapter name, backend and driver.
    pub fn info(&self) -> &wgpu::AdapterInfo {
        &self.inner.info
    }

    /// The limits the device was opened with (the adapter's own).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.inner.limits
    }

    /// Whether GPU timestamps can be written between commands.
    pub fn has_timestamps(&self) -> bool {
        self.inner.features.contains(wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS)
    }

    /// The buffer pool.
    pub fn pool(&self) -> &Arc<Pool> {
        &self.inner.pool
    }

    /// Live, peak and cached bytes of the pool.
    pub fn memory(&self) -> MemoryStats {
        self.inner.pool.stats()
    }

    /// Dispatches and submissions so far.
    pub fn work(&self) -> WorkStats {
        let r = lock(&self.inner.recorder);
        WorkStats { dispatches: r.dispatches, submissions: r.submissions }
    }

    /// One-line description: adapter name and backend.
    pub fn describe(&self) -> String {
        format!("{} ({:?}, {:?})", self.inner.info.name, self.inner.info.backend, self.inner.info.device_type)
    }

    /// Fails with the first wgpu error seen since the last check, if any.
    pub fn check(&self, context: &str) -> Result<()> {
        match lock(&self.inner.error).take() {
            Some(message) => Err(Error::Gpu { context: context.to_string(), message }),
            None => Ok(()),
        }
    }

    /// Checks `bytes` against the device's buffer and binding limits.
    pub fn check_size(&self, name: &str, bytes: u64) -> Result<()> {
        let l = &self.inner.limits;
        if bytes > l.max_buffer_size {
            return Err(Error::TooLarge {
                tensor: name.to_string(),
                bytes,
                limit_name: "max_buffer_size",
                limit: l.max_buffer_size,
            });
        }
        let binding = l.max_storage_buffer_binding_size;
        if bytes > binding {
            return Err(Error::TooLarge {
                tensor: name.to_string(),
                bytes,
                limit_name: "max_storage_buffer_binding_size",
                limit: binding,
            });
        }
        Ok(())
    }

    /// A pooled buffer of at least `bytes` bytes, after the limit check. Contents are undefined.
    pub(crate) fn alloc_buffer(&self, name: &str, bytes: u64) -> Result<(wgpu::Buffer, u64)> {
        self.check_size(name, bytes)?;
        let class = pool::size_class(bytes);
        // A class may round past the limit although the request fits: fall back to the exact size.
        let class = if self.check_size(name, class).is_ok() { class } else { bytes.div_ceil(4) * 4 };
        Ok((self.inner.pool.take(&self.inner.device, class), class))
    }

    /// Runs `f` with the open command encoder, creating one if needed.
    pub(crate) fn with_encoder<R>(&self, f: impl FnOnce(&mut wgpu::CommandEncoder) -> R) -> R {
        let mut r = lock(&self.inner.recorder);
        let enc = r.encoder.get_or_insert_with(|| {
            self.inner.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("wgnas step") })
        });
        f(enc)
    }

    /// Submits everything recorded so far (one queue submission) and reports wgpu errors.
    pub fn flush(&self) -> Result<()> {
        let mut r = lock(&self.inner.recorder);
        self.flush_locked(&mut r);
        drop(r);
        self.check("flush")
    }

    fn flush_locked(&self, r: &mut Recorder) {
        if let Some(enc) = r.encoder.take() {
            if !r.params.is_empty() {
                self.inner.queue.write_buffer(&r.arena, 0, &r.params);
                r.params.clear();
            }
            self.inner.queue.submit(Some(enc.finish()));
            r.submissions += 1;
        }
    }

    /// Blocks until the GPU has finished all submitted work.
    pub fn wait(&self) -> Result<()> {
        self.flush()?;
        self.inner
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu { context: "wait".into(), message: e.to_string() })?;
        self.check("wait")
    }

    fn module(&self, family: &'static str) -> Result<()> {
        let mut modules = lock(&self.inner.modules);
        if modules.contains_key(family) {
            return Ok(());
        }
        let src = shaders::source(family)?;
        let reflected = shaders::reflect(family, src)?;
        let module = self.inner.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(family),
            source: wgpu::ShaderSource::Wgsl(src.into()),
        });
        modules.insert(family, (module, reflected));
        Ok(())
    }

    fn pipeline(&self, family: &'static str, entry: &str, constants: &[(&str, f64)]) -> Result<Arc<Pipeline>> {
        let key_entry = if constants.is_empty() {
            entry.to_string()
        } else {
            let c: Vec<String> = constants.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{entry}[{}]", c.join(","))
        };
        let key = (family.to_string(), key_entry);
        if let Some(p) = lock(&self.inner.pipelines).get(&key) {
            return Ok(p.clone());
        }
        self.module(family)?;
        let modules = lock(&self.inner.modules);
        let (module, reflected) = &modules[family];
        let used =
            reflected.entry_points.iter().find(|(n, _)| n == entry).map(|(_, u)| u.clone()).ok_or_else(|| {
                Error::Shader { shader: family.to_string(), message: format!("no entry point '{entry}'") }
            })?;
        let pipeline = self.inner.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: None,
            module,
            entry_point: Some(entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants,
                // Kernels initialise their own shared memory; zeroing it costs a barrier per launch.
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        let layout = pipeline.get_bind_group_layout(0);
        let writable = reflected.writable.iter().copied().filter(|b| used.contains(b)).collect();
        let p = Arc::new(Pipeline { pipeline, layout, used, writable });
        lock(&self.inner.pipelines).insert(key, p.clone());
        Ok(p)
    }

    /// Number of pipelines compiled so far (each is created once and cached).
    pub fn pipelines_compiled(&self) -> usize {
        lock(&self.inner.pipelines).len()
    }

    /// Records one kernel launch. Binding 0 is `params` (a uniform); binding `i + 1` is
    /// `tensors[i]` (storage). Bindings the entry point does not use are skipped.
    pub fn dispatch<P: bytemuck::Pod>(
        &self,
        family: &'static str,
        entry: &str,
        params: &P,
        tensors: &[&Tensor],
        groups: [u32; 3],
    ) -> Result<()> {
        self.dispatch_with(family, entry, &[], params, tensors, groups)
    }

    /// [`Gpu::dispatch`] with pipeline-overridable constants (tile sizes, workgroup sizes).
    pub fn dispatch_with<P: bytemuck::Pod>(
        &self,
        family: &'static str,
        entry: &str,
        constants: &[(&str, f64)],
        params: &P,
        tensors: &[&Tensor],
        groups: [u32; 3],
    ) -> Result<()> {
        let max = self.inner.limits.max_compute_workgroups_per_dimension;
        if groups.iter().any(|&g| g > max) {
            return Err(Error::invalid(
                "dispatch",
                format!("{family}::{entry}: grid {groups:?} exceeds {max} workgroups per dimension"),
            ));
        }
        if groups.contains(&0) {
            return Ok(());
        }
        let pipe = self.pipeline(family, entry, constants)?;
        check_aliasing(family, entry, &pipe, tensors)?;
        let bytes = bytemuck::bytes_of(params);
        let align = self.inner.limits.min_uniform_buffer_offset_alignment.max(16) as usize;
        let padded = bytes.len().div_ceil(16).max(1) * 16;

        let mut r = lock(&self.inner.recorder);
        if r.params.len() + padded > ARENA_BYTES as usize {
            self.flush_locked(&mut r);
        }
        let offset = r.params.len();
        r.params.extend_from_slice(bytes);
        r.params.resize(offset + padded, 0);
        let next = (offset + padded).div_ceil(align) * align;
        r.params.resize(next, 0);

        let mut entries = Vec::with_capacity(pipe.used.len());
        for &b in &pipe.used {
            let resource = if b == 0 {
                wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &r.arena,
                    offset: offset as u64,
                    size: wgpu::BufferSize::new(padded as u64),
                })
            } else {
                let t = tensors.get(b as usize - 1).ok_or_else(|| {
                    Error::invalid(
                        "dispatch",
                        format!("{family}::{entry} uses binding {b} but got {} tensors", tensors.len()),
                    )
                })?;
                wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: t.buffer(),
                    offset: 0,
                    size: wgpu::BufferSize::new(t.byte_len().max(4)),
                })
            };
            entries.push(wgpu::BindGroupEntry { binding: b, resource });
        }
        let bind = self.inner.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipe.layout,
            entries: &entries,
        });
        let device = &self.inner.device;
        let enc = r.encoder.get_or_insert_with(|| {
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("wgnas step") })
        });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
            pass.set_pipeline(&pipe.pipeline);
            pass.set_bind_group(0, &bind, &[]);
            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        }
        r.dispatches += 1;
        Ok(())
    }

    /// A grid of `n` workgroups laid out within the per-dimension limit. Kernels
    /// linearise it as `wid.x + wid.y * nwg.x` and guard against the overshoot.
    pub fn grid(&self, n: u64) -> [u32; 3] {
        let max = self.inner.limits.max_compute_workgroups_per_dimension.max(1) as u64;
        if n <= max {
            [n as u32, 1, 1]
        } else {
            let y = n.div_ceil(max);
            let x = n.div_ceil(y);
            [x as u32, y as u32, 1]
        }
    }

    /// Records a GPU timestamp into `set[index]`, where the adapter supports it.
    pub fn write_timestamp(&self, set: &wgpu::QuerySet, index: u32) {
        if self.has_timestamps() {
            self.with_encoder(|enc| enc.write_timestamp(set, index));
        }
    }
}

/// A buffer written by a dispatch may not also be bound read-only in it: wgpu treats
/// read-write storage as an exclusive usage. (Two writable bindings of one buffer are
/// allowed; in-place kernels declare a single read-write binding instead.)
fn check_aliasing(family: &str, entry: &str, pipe: &Pipeline, tensors: &[&Tensor]) -> Result<()> {
    for &w in &pipe.writable {
        let Some(out) = tensors.get(w as usize - 1) else { continue };
        for &b in pipe.used.iter().filter(|&&b| b != 0 && !pipe.writable.contains(&b)) {
            if tensors.get(b as usize - 1).is_some_and(|t| t.same_storage(out)) {
                return Err(Error::invalid(
                    "dispatch",
                    format!("{family}::{entry}: tensor '{}' is both written and bound again as an input", out.name()),
                ));
            }
        }
    }
    Ok(())
}
