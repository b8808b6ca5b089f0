//! Adapter discovery and choice: which GPU wgnas runs on, and what it can do.

use crate::error::{Error, Result};

/// How the user narrows the adapter choice (`--adapter`, `--backend`).
#[derive(Debug, Clone, Default)]
pub struct AdapterChoice {
    /// Case-insensitive substring of the adapter name (`--adapter` or `WGNAS_ADAPTER`).
    pub name: Option<String>,
    /// Backend name: vulkan, metal, dx12 or gl (`--backend`).
    pub backend: Option<String>,
}

impl AdapterChoice {
    /// The choice from the environment alone (`WGNAS_ADAPTER`, `WGNAS_BACKEND`).
    pub fn from_env() -> Self {
        AdapterChoice {
            name: std::env::var("WGNAS_ADAPTER").ok().filter(|s| !s.is_empty()),
            backend: std::env::var("WGNAS_BACKEND").ok().filter(|s| !s.is_empty()),
        }
    }
}

/// Parses a backend name into wgpu's backend set.
pub fn parse_backend(name: &str) -> Result<wgpu::Backends> {
    match name.to_ascii_lowercase().as_str() {
        "vulkan" | "vk" => Ok(wgpu::Backends::VULKAN),
        "metal" | "mtl" => Ok(wgpu::Backends::METAL),
        "dx12" | "d3d12" => Ok(wgpu::Backends::DX12),
        "gl" | "gles" | "opengl" => Ok(wgpu::Backends::GL),
        _ => Err(Error::UnknownBackend(name.to_string())),
    }
}

/// What `wgnas devices` prints for one adapter.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AdapterReport {
    /// Adapter name.
    pub name: String,
    /// Backend (Vulkan, Metal, ...).
    pub backend: String,
    /// Discrete, integrated, CPU, ...
    pub device_type: String,
    /// Driver name and version.
    pub driver: String,
    /// Largest single buffer.
    pub max_buffer_size: u64,
    /// Largest storage binding.
    pub max_storage_buffer_binding_size: u64,
    /// Storage buffers per shader stage.
    pub max_storage_buffers_per_shader_stage: u32,
    /// Workgroup invocations.
    pub max_compute_invocations_per_workgroup: u32,
    /// Workgroup shared memory.
    pub max_compute_workgroup_storage_size: u32,
    /// Dispatch size per dimension.
    pub max_compute_workgroups_per_dimension: u32,
    /// Whether GPU timestamps can be taken.
    pub timestamps: bool,
    /// Whether subgroup operations exist.
    pub subgroups: bool,
    /// Whether f16 in shaders exists.
    pub shader_f16: bool,
}

impl AdapterReport {
    /// Builds the report from a wgpu adapter.
    pub fn of(adapter: &wgpu::Adapter) -> Self {
        let info = adapter.get_info();
        let l = adapter.limits();
        let f = adapter.features();
        AdapterReport {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: format!("{} {}", info.driver, info.driver_info).trim().to_string(),
            max_buffer_size: l.max_buffer_size,
            max_storage_buffer_binding_size: l.max_storage_buffer_binding_size,
            max_storage_buffers_per_shader_stage: l.max_storage_buffers_per_shader_stage,
            max_compute_invocations_per_workgroup: l.max_compute_invocations_per_workgroup,
            max_compute_workgroup_storage_size: l.max_compute_workgroup_storage_size,
            max_compute_workgroups_per_dimension: l.max_compute_workgroups_per_dimension,
            timestamps: f.contains(wgpu::Features::TIMESTAMP_QUERY),
            subgroups: f.contains(wgpu::Features::SUBGROUP),
            shader_f16: f.contains(wgpu::Features::SHADER_F16),
        }
    }
}

impl std::fmt::Display for AdapterReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} ({}, {})", self.name, self.backend, self.device_type)?;
        writeln!(f, "  driver:                    {}", self.driver)?;
        writeln!(f, "  max buffer:                {} MiB", self.max_buffer_size >> 20)?;
        writeln!(f, "  max storage binding:       {} MiB", self.max_storage_buffer_binding_size >> 20)?;
        writeln!(f, "  storage buffers / stage:   {}", self.max_storage_buffers_per_shader_stage)?;
        writeln!(f, "  invocations / workgroup:   {}", self.max_compute_invocations_per_workgroup)?;
        writeln!(f, "  workgroup memory:          {} KiB", self.max_compute_workgroup_storage_size >> 10)?;
        writeln!(f, "  workgroups / dimension:    {}", self.max_compute_workgroups_per_dimension)?;
        write!(
            f,
            "  timestamps: {}   subgroups: {}   shader-f16: {}",
            yes(self.timestamps),
            yes(self.subgroups),
            yes(self.shader_f16)
        )
    }
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// A wgpu instance over the backends the user allows (all, unless `--backend`).
pub fn instance(choice: &AdapterChoice) -> Result<wgpu::Instance> {
    // `_from_env` honours WGPU_BACKEND and friends; an explicit --backend wins over it.
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    if let Some(b) = &choice.backend {
        desc.backends = parse_backend(b)?;
    }
    Ok(wgpu::Instance::new(desc))
}

/// Every adapter wgpu can see with this choice's backends, best first.
pub fn list_adapters(choice: &AdapterChoice) -> Result<Vec<wgpu::Adapter>> {
    let inst = instance(choice)?;
    let backends = match &choice.backend {
        Some(b) => parse_backend(b)?,
        None => wgpu::Backends::all(),
    };
    let mut adapters = pollster::block_on(inst.enumerate_adapters(backends));
    adapters.sort_by_key(rank);
    Ok(adapters)
}

/// Lower is better: discrete, integrated, virtual, CPU; Vulkan/Metal/DX12 before GL.
fn rank(a: &wgpu::Adapter) -> (u8, u8) {
    let info = a.get_info();
    let ty = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    };
    // GL lacks storage-buffer headroom and subgroups, so it comes last within a type.
    let backend = if info.backend == wgpu::Backend::Gl { 1 } else { 0 };
    (ty, backend)
}

/// Picks the adapter: a name match if one was asked for, else the best by [`rank`].
pub fn choose_adapter(choice: &AdapterChoice) -> Result<wgpu::Adapter> {
    let adapters = list_adapters(choice)?;
    let detail = match (&choice.name, &choice.backend) {
        (Some(n), Some(b)) => format!(" matching '{n}' on backend {b}"),
        (Some(n), None) => format!(" matching '{n}'"),
        (None, Some(b)) => format!(" on backend {b}"),
        (None, None) => String::new(),
    };
    let found = match &choice.name {
        Some(n) => {
            let n = n.to_lowercase();
            adapters.into_iter().find(|a| a.get_info().name.to_lowercase().contains(&n))
        }
        None => adapters.into_iter().next(),
    };
    found.ok_or(Error::NoAdapter { detail })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names_parse_and_unknown_is_an_error() {
        assert_eq!(parse_backend("Vulkan").unwrap(), wgpu::Backends::VULKAN);
        assert_eq!(parse_backend("gl").unwrap(), wgpu::Backends::GL);
        let e = parse_backend("cuda").unwrap_err().to_string();
        assert!(e.contains("cuda") && e.contains("vulkan"), "{e}");
    }

    #[test]
    fn no_adapter_error_says_how_to_install_one() {
        let e = Error::NoAdapter { detail: String::new() }.to_string();
        assert!(e.contains("apt-get install mesa-vulkan-drivers"), "{e}");
    }
}
