//! `open`: reads a dataset from a path, telling its format from the path itself.
//!
//! | path                                                   | format                |
//! |--------------------------------------------------------|-----------------------|
//! | file `*.bin`                                           | CIFAR-10 / CIFAR-100  |
//! | file `*-images-idx3-ubyte[.gz]`                        | IDX (labels beside it)|
//! | dir with `data_batch_*.bin` / `test_batch.bin`         | CIFAR-10              |
//! | dir with `train.bin` / `test.bin`                      | CIFAR-100             |
//! | dir with `*-images-idx3-ubyte[.gz]`                    | IDX                   |
//! | dir with class subfolders (or `train/`, `test/` of them)| image folder         |

use std::path::{Path, PathBuf};

use super::cifar::{kind_of, read_cifar, CifarKind};
use super::folder::{class_dirs, read_image_folder};
use super::idx::{is_images_name, labels_for, read_idx, read_idx_dir};
use super::{file_name, format_err, sorted_entries, Dataset};
use crate::error::{Error, Result};

/// Which part of a dataset to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The training images (searches split these into train and validation).
    Train,
    /// The held-out test images.
    Test,
}

/// A dataset format that [`open`] can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CIFAR binary records.
    Cifar(CifarKind),
    /// IDX files (MNIST, Fashion-MNIST).
    Idx,
    /// One subfolder of PNG/JPEG images per class.
    ImageFolder,
}

/// Tells the format of a file or directory, without reading the data.
pub fn detect(path: &Path) -> Result<Format> {
    let meta = std::fs::metadata(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    if meta.is_dir() {
        return detect_dir(path);
    }
    let name = file_name(path);
    if is_images_name(name) {
        Ok(Format::Idx)
    } else if name.ends_with(".bin") {
        Ok(Format::Cifar(kind_of(path)?))
    } else {
        Err(format_err(
            path,
            "cannot tell the format: expected a CIFAR *.bin file, an IDX *-images-idx3-ubyte[.gz] file, or a directory",
        ))
    }
}

/// Format of a directory, from the names of its entries.
fn detect_dir(dir: &Path) -> Result<Format> {
    let entries = sorted_entries(dir)?;
    let names: Vec<&str> = entries.iter().map(|p| file_name(p)).collect();
    if let Some(kind) = names.iter().find_map(|n| CifarKind::from_file_name(n)) {
        return Ok(Format::Cifar(kind));
    }
    if names.iter().any(|n| is_images_name(n)) {
        return Ok(Format::Idx);
    }
    if !class_dirs(dir)?.is_empty() {
        return Ok(Format::ImageFolder);
    }
    Err(format_err(
        dir,
        "found no dataset here: expected CIFAR batches (*.bin), IDX files (*-images-idx3-ubyte[.gz]) \
         or one subfolder of images per class",
    ))
}

/// The root of an image folder for `part`: `dir/train` and `dir/test` (or `dir/val`)
/// when `dir/train` holds class subfolders, else `dir` itself for the train part.
fn image_folder_root(dir: &Path, part: Part) -> Result<PathBuf> {
    let train = dir.join("train");
    let split_layout = train.is_dir() && !class_dirs(&train)?.is_empty();
    match (split_layout, part) {
        (true, Part::Train) => Ok(train),
        (true, Part::Test) => ["test", "val"]
            .iter()
            .map(|n| dir.join(n))
            .find(|p| p.is_dir())
            .ok_or_else(|| format_err(dir, "has train/ but no test/ or val/ folder for the test part")),
        (false, Part::Train) => Ok(dir.to_path_buf()),
        (false, Part::Test) => {
            Err(format_err(dir, "an image folder without train/ and test/ subfolders has no test part"))
        }
    }
}

/// Reads `part` of the dataset at `path`. A file is read as it is, whatever `part`.
pub fn open_part(path: &Path, part: Part) -> Result<Dataset> {
    let is_dir = path.is_dir();
    match (detect(path)?, is_dir) {
        (Format::Cifar(_), _) => read_cifar(path, part),
        (Format::Idx, false) => read_idx(path, &labels_for(path)?),
        (Format::Idx, true) => read_idx_dir(path, part),
        (Format::ImageFolder, _) => read_image_folder(&image_folder_root(path, part)?),
    }
}

/// Reads the training part of the dataset at `path` (see [`open_part`]).
pub fn open(path: &Path) -> Result<Dataset> {
    open_part(path, Part::Train)
}
