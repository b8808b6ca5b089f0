//! Checkpoints: named f32 tensors in a safetensors file plus a small JSON of counters.
//!
//! Layout (one folder per checkpoint, named by the global step):
//!
//! ```text
//! checkpoints/
//!   ckpt-000000001200/
//!     state.json            CheckpointState + the tensor file's name, size and FNV-1a hash
//!     tensors.safetensors   every tensor, F32, little-endian
//! ```
//!
//! A checkpoint is written into a temporary folder (`.ckpt-….tmp.<pid>.<n>`), each file
//! fsynced, then the folder is renamed into place in one step. So a crash can never pair
//! a new `state.json` with an old tensor file: a checkpoint folder is complete or absent.
//! The JSON also records the tensor file's size and hash, so a file damaged later
//! (truncated copy, bad disk) is detected on load, with an error naming the file.
//!
//! The API deals in plain [`NamedTensor`]s (name, shape, `Vec<f32>`), so it has no GPU
//! dependency; the caller reads tensors back before saving and uploads them after loading.
//! Suggested names: `w/<weight name>`, `alpha/<i>`, `buf/<buffer name>`,
//! `opt_w/<state name>` and `opt_alpha/<state name>` (optimizer states under PyTorch's names).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use super::config::fnv1a64;
use super::folder::{atomic_write, clean_stale_temps, io_err, is_temp_name, sync_dir, temp_path, write_synced};
use crate::{Error, Result};

/// The JSON file of a checkpoint.
pub const STATE_FILE: &str = "state.json";
/// The tensor file of a checkpoint.
pub const TENSOR_FILE: &str = "tensors.safetensors";
/// Prefix of checkpoint folder names.
const PREFIX: &str = "ckpt-";
/// The `format` field of `state.json`.
const FORMAT: &str = "wgnas-checkpoint";
/// The `version` field of `state.json`.
const VERSION: u32 = 1;

/// One tensor: name, shape and row-major f32 data.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    /// Unique name within its file.
    pub name: String,
    /// Shape (empty for a scalar).
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values.
    pub data: Vec<f32>,
}

impl NamedTensor {
    /// A tensor, checking that `data` fills `shape`.
    pub fn new(name: impl Into<String>, shape: &[usize], data: Vec<f32>) -> Result<Self> {
        let name = name.into();
        let numel: usize = shape.iter().product();
        if numel != data.len() {
            let msg = format!("tensor '{name}' has shape {shape:?} ({numel} values) but {} values", data.len());
            return Err(Error::shape("checkpoint", msg));
        }
        Ok(NamedTensor { name, shape: shape.to_vec(), data })
    }

    /// Whether `a` and `b` hold the same bits (NaN payloads included).
    pub fn bits_eq(&self, other: &NamedTensor) -> bool {
        self.name == other.name
            && self.shape == other.shape
            && self.data.len() == other.data.len()
            && self.data.iter().zip(&other.data).all(|(a, b)| a.to_bits() == b.to_bits())
    }
}

/// The counters of a checkpoint: where the run stands, its random states and the
/// strategy's own counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// The epoch in progress (0-based); after a finished epoch, the next one.
    pub epoch: u64,
    /// Steps completed within `epoch`.
    pub step: u64,
    /// Steps completed in the whole run.
    pub global_step: u64,
    /// Random generator states by name (see `util::rng::Rng::state`).
    #[serde(default)]
    pub rng: BTreeMap<String, u64>,
    /// Integer counters (optimizer step counts, early-stopping state, ...).
    #[serde(default)]
    pub counters: BTreeMap<String, u64>,
    /// Real counters (e.g. a best score); written so they read back bit-exact.
    #[serde(default)]
    pub values: BTreeMap<String, f64>,
    /// `SearchConfig::config_hash` of the run's config.
    #[serde(default)]
    pub config_hash: String,
}

/// What `state.json` holds: the state plus the identity of its tensor file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StateFile {
    format: String,
    version: u32,
    #[serde(flatten)]
    state: CheckpointState,
    tensor_file: String,
    tensor_bytes: u64,
    tensor_fnv1a64: String,
    created_unix: u64,
    wgnas_version: String,
}

/// A loaded checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// Its folder.
    pub dir: PathBuf,
    /// Counters and random states.
    pub state: CheckpointState,
    /// Every tensor, sorted by name.
    pub tensors: Vec<NamedTensor>,
}

impl Checkpoint {
    /// The tensor named `name`, or an error naming the checkpoint.
    pub fn tensor(&self, name: &str) -> Result<&NamedTensor> {
        self.tensors.iter().find(|t| t.name == name).ok_or_else(|| Error::Format {
            path: self.dir.join(TENSOR_FILE),
            message: format!("no tensor named '{name}'"),
        })
    }
}

/// A checkpoint folder found on disk (not yet checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointEntry {
    /// Global step from the folder name.
    pub global_step: u64,
    /// The folder.
    pub dir: PathBuf,
}

/// The newest loadable checkpoint and the newer ones that failed to load.
#[derive(Debug)]
pub struct LatestCheckpoint {
    /// The newest checkpoint that loaded, if any.
    pub checkpoint: Option<Checkpoint>,
    /// Errors of newer checkpoints that were skipped (newest first).
    pub skipped: Vec<Error>,
}

/// The `checkpoints/` folder of a run: saves, lists, prunes and finds checkpoints.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    dir: PathBuf,
    keep: usize,
}

impl CheckpointStore {
    /// Opens (creating) `dir`, keeping the last `keep` checkpoints (at least 1); removes
    /// temporary folders left by interrupted saves.
    pub fn open(dir: &Path, keep: usize) -> Result<Self> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        clean_stale_temps(dir)?;
        Ok(CheckpointStore { dir: dir.to_path_buf(), keep: keep.max(1) })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Saves a checkpoint at `state.global_step` (replacing one at the same step), then
    /// deletes all but the newest `keep`. Returns the checkpoint's folder.
    pub fn save(&self, state: &CheckpointState, tensors: &[NamedTensor]) -> Result<PathBuf> {
        let bytes = encode(tensors)?;
        let file = StateFile {
            format: FORMAT.into(),
            version: VERSION,
            state: state.clone(),
            tensor_file: TENSOR_FILE.into(),
            tensor_bytes: bytes.len() as u64,
            tensor_fnv1a64: format!("{:016x}", fnv1a64(&bytes)),
            created_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            wgnas_version: env!("CARGO_PKG_VERSION").into(),
        };
        let json = serde_json::to_string_pretty(&file).map_err(|e| Error::invalid("checkpoint", e.to_string()))?;
        let target = self.dir.join(format!("{PREFIX}{:012}", state.global_step));
        self.write_folder(&target, &bytes, json.as_bytes())?;
        self.prune()?;
        Ok(target)
    }

    /// Writes both files into a temporary folder and renames it to `target`.
    fn write_folder(&self, target: &Path, tensors: &[u8], json: &[u8]) -> Result<()> {
        let tmp = temp_path(target);
        let written = fs::create_dir(&tmp)
            .map_err(io_err(&tmp))
            .and_then(|_| write_synced(&tmp.join(TENSOR_FILE), tensors))
            .and_then(|_| write_synced(&tmp.join(STATE_FILE), json))
            .and_then(|_| sync_dir(&tmp))
            .and_then(|_| replace_dir(&tmp, target));
        if written.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        written?;
        sync_dir(&self.dir)
    }

    /// The checkpoint folders, oldest first (by global step).
    pub fn list(&self) -> Result<Vec<CheckpointEntry>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_err(&self.dir))? {
            let entry = entry.map_err(io_err(&self.dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let step = name.strip_prefix(PREFIX).and_then(|s| s.parse::<u64>().ok());
            if let (Some(global_step), false) = (step, is_temp_name(&name)) {
                if entry.path().is_dir() {
                    out.push(CheckpointEntry { global_step, dir: entry.path() });
                }
            }
        }
        out.sort_by_key(|e| e.global_step);
        Ok(out)
    }

    /// Deletes all but the newest `keep` checkpoints.
    fn prune(&self) -> Result<()> {
        let all = self.list()?;
        let extra = all.len().saturating_sub(self.keep);
        for e in &all[..extra] {
            fs::remove_dir_all(&e.dir).map_err(io_err(&e.dir))?;
        }
        Ok(())
    }

    /// The newest checkpoint that loads, skipping (and reporting) damaged newer ones.
    pub fn latest_valid(&self) -> Result<LatestCheckpoint> {
        let mut skipped = Vec::new();
        for e in self.list()?.into_iter().rev() {
            match load_checkpoint(&e.dir) {
                Ok(c) => return Ok(LatestCheckpoint { checkpoint: Some(c), skipped }),
                Err(err) => {
                    log::warn!("skipping checkpoint {}: {err}", e.dir.display());
                    skipped.push(err);
                }
            }
        }
        Ok(LatestCheckpoint { checkpoint: None, skipped })
    }
}

/// Renames folder `from` to `to`; an existing `to` is moved aside first and deleted after.
fn replace_dir(from: &Path, to: &Path) -> Result<()> {
    if !to.exists() {
        return fs::rename(from, to).map_err(io_err(to));
    }
    let old = temp_path(to);
    fs::rename(to, &old).map_err(io_err(to))?;
    fs::rename(from, to).map_err(io_err(to))?;
    fs::remove_dir_all(&old).map_err(io_err(&old))
}

/// Loads and verifies the checkpoint in folder `dir`.
pub fn load_checkpoint(dir: &Path) -> Result<Checkpoint> {
    let state_path = dir.join(STATE_FILE);
    let text = fs::read_to_string(&state_path).map_err(io_err(&state_path))?;
    let bad_state = |message: String| Error::Format { path: state_path.clone(), message };
    let file: StateFile = serde_json::from_str(&text).map_err(|e| bad_state(format!("not a checkpoint state: {e}")))?;
    if file.format != FORMAT || file.version != VERSION {
        return Err(bad_state(format!(
            "format '{}' version {}; this wgnas reads '{FORMAT}' version {VERSION}",
            file.format, file.version
        )));
    }
    if file.tensor_file.contains(['/', '\\']) || file.tensor_file.is_empty() {
        return Err(bad_state(format!("tensor_file '{}' is not a plain file name", file.tensor_file)));
    }
    let tensor_path = dir.join(&file.tensor_file);
    let bytes = fs::read(&tensor_path).map_err(io_err(&tensor_path))?;
    let bad_tensors = |message: String| Error::Format { path: tensor_path.clone(), message };
    if bytes.len() as u64 != file.tensor_bytes {
        return Err(bad_tensors(format!(
            "{} bytes, but {STATE_FILE} says {} (truncated or replaced?)",
            bytes.len(),
            file.tensor_bytes
        )));
    }
    let hash = format!("{:016x}", fnv1a64(&bytes));
    if hash != file.tensor_fnv1a64 {
        return Err(bad_tensors(format!(
            "content hash {hash} differs from {} in {STATE_FILE}: the file is damaged",
            file.tensor_fnv1a64
        )));
    }
    let tensors = decode(&bytes, &tensor_path)?;
    Ok(Checkpoint { dir: dir.to_path_buf(), state: file.state, tensors })
}

/// The bytes of a safetensors file holding `tensors` as F32.
fn encode(tensors: &[NamedTensor]) -> Result<Vec<u8>> {
    let mut seen = std::collections::HashSet::new();
    for t in tensors {
        let numel: usize = t.shape.iter().product();
        if numel != t.data.len() {
            let msg =
                format!("tensor '{}' has shape {:?} ({numel} values) but {} values", t.name, t.shape, t.data.len());
            return Err(Error::shape("checkpoint", msg));
        }
        if !seen.insert(t.name.as_str()) {
            return Err(Error::invalid("checkpoint", format!("two tensors are named '{}'", t.name)));
        }
        if t.name == "__metadata__" {
            return Err(Error::invalid("checkpoint", "'__metadata__' is reserved by safetensors"));
        }
    }
    let raw: Vec<Vec<u8>> = tensors.iter().map(|t| t.data.iter().flat_map(|v| v.to_le_bytes()).collect()).collect();
    let views = tensors
        .iter()
        .zip(&raw)
        .map(|(t, bytes)| {
            safetensors::tensor::TensorView::new(Dtype::F32, t.shape.clone(), bytes)
                .map(|v| (t.name.clone(), v))
                .map_err(|e| Error::invalid("checkpoint", format!("tensor '{}': {e}", t.name)))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, None).map_err(|e| Error::invalid("checkpoint", e.to_string()))
}

/// The tensors of safetensors `bytes` (read from `path`), sorted by name; F32 only.
fn decode(bytes: &[u8], path: &Path) -> Result<Vec<NamedTensor>> {
    let bad = |message: String| Error::Format { path: path.to_path_buf(), message };
    let st = SafeTensors::deserialize(bytes).map_err(|e| bad(format!("not a valid safetensors file: {e:?}")))?;
    let mut out = Vec::with_capacity(st.len());
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(bad(format!(
                "tensor '{name}' has dtype {:?}; wgnas reads only F32 (convert it, e.g. with `.float()` in PyTorch)",
                view.dtype()
            )));
        }
        let data = view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        out.push(NamedTensor { name, shape: view.shape().to_vec(), data });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Reads any safetensors file (e.g. weights for `--init-from`); every tensor must be F32.
/// The tensors are sorted by name.
pub fn read_safetensors(path: &Path) -> Result<Vec<NamedTensor>> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    decode(&bytes, path)
}

/// Writes `tensors` as an F32 safetensors file at `path`, atomically (e.g. for exports).
pub fn write_safetensors(path: &Path, tensors: &[NamedTensor]) -> Result<()> {
    atomic_write(path, &encode(tensors)?)
}
