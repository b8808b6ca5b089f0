//! The one error type of wgnas. Variants are grouped by kind, and each names the
//! op, tensor or file it concerns, so a message can be acted on without a debugger.

use std::path::PathBuf;

/// Every fallible wgnas operation returns this.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // ---- device -------------------------------------------------------------
    /// No adapter could be found at all.
    #[error(
        "no GPU adapter found{detail}.\n  wgnas needs a Vulkan, Metal or DX12 device. On a headless Linux \
         machine install the software Vulkan driver:\n    apt-get install mesa-vulkan-drivers libvulkan1\n  \
         Run `wgnas devices` to list what wgpu can see."
    )]
    NoAdapter {
        /// Extra context (backend or name filter that matched nothing).
        detail: String,
    },
    /// The device could not be created on the chosen adapter.
    #[error("could not open a device on adapter '{adapter}': {reason}")]
    DeviceRequest {
        /// Adapter name.
        adapter: String,
        /// wgpu's reason.
        reason: String,
    },
    /// A backend name given by the user is not one wgnas knows.
    #[error("unknown backend '{0}': use one of vulkan, metal, dx12, gl")]
    UnknownBackend(String),
    /// wgpu reported a validation or out-of-memory error.
    #[error("GPU error in {context}: {message}")]
    Gpu {
        /// What wgnas was doing.
        context: String,
        /// wgpu's message.
        message: String,
    },
    /// A buffer could not be mapped for reading.
    #[error("reading tensor '{tensor}' back from the GPU failed: {reason}")]
    Readback {
        /// Tensor name.
        tensor: String,
        /// wgpu's reason.
        reason: String,
    },

    // ---- memory ---------------------------------------------------------------
    /// A tensor is larger than the device allows for one buffer or binding.
    #[error(
        "tensor '{tensor}' needs {bytes} bytes, over this device's {limit_name} of {limit} bytes; \
         use a smaller batch size or fewer channels"
    )]
    TooLarge {
        /// Tensor name.
        tensor: String,
        /// Bytes requested.
        bytes: u64,
        /// Which limit was exceeded.
        limit_name: &'static str,
        /// The limit's value.
        limit: u64,
    },

    // ---- shapes ---------------------------------------------------------------
    /// Inputs of an op have shapes that do not fit together.
    #[error("{op}: {message}")]
    Shape {
        /// Op name.
        op: &'static str,
        /// What does not fit.
        message: String,
    },
    /// An op was asked for something it does not support.
    #[error("{op}: {message}")]
    Invalid {
        /// Op or component name.
        op: &'static str,
        /// What is wrong.
        message: String,
    },

    // ---- shaders -------------------------------------------------------------
    /// A WGSL source failed to parse or validate.
    #[error("shader '{shader}' is invalid: {message}")]
    Shader {
        /// Shader file name.
        shader: String,
        /// naga's message.
        message: String,
    },

    // ---- autodiff ------------------------------------------------------------
    /// Backward was asked for something the tape cannot give.
    #[error("autodiff: {0}")]
    Autodiff(String),

    // ---- files ---------------------------------------------------------------
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file exists but its contents are wrong.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

/// Result with the wgnas [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for a shape error of `op`.
    pub fn shape(op: &'static str, message: impl Into<String>) -> Self {
        Error::Shape { op, message: message.into() }
    }

    /// Shorthand for an invalid-argument error of `op`.
    pub fn invalid(op: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid { op, message: message.into() }
    }
}
