//! CIFAR-10 and CIFAR-100 in their *binary* layout: fixed-size records of label
//! byte(s) followed by 1024 R, 1024 G and 1024 B bytes of a 32×32 image.
//!
//! | variant   | files                                   | record                          |
//! |-----------|-----------------------------------------|---------------------------------|
//! | CIFAR-10  | `data_batch_{1..5}.bin`, `test_batch.bin` | label, 3072 pixels (3073 bytes) |
//! | CIFAR-100 | `train.bin`, `test.bin`                 | coarse, fine, 3072 pixels (3074 bytes) |
//!
//! CIFAR-100 uses the fine label (100 classes). Class names come from
//! `batches.meta.txt` / `fine_label_names.txt` beside the data when present.

use std::path::{Path, PathBuf};

use super::{file_name, format_err, numbered_classes, read_class_names, read_file, sorted_entries, Dataset, Part};
use crate::error::Result;

/// Bytes of one CIFAR image: 3 channels × 32 × 32.
const PIXELS: usize = 3 * 32 * 32;

/// CIFAR-10's class names, used when `batches.meta.txt` is absent.
pub const CIFAR10_CLASSES: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// Which CIFAR variant a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CifarKind {
    /// 10 classes, one label byte per record.
    Cifar10,
    /// 100 fine classes, a coarse and a fine label byte per record.
    Cifar100,
}

impl CifarKind {
    /// Label bytes before the pixels of each record.
    pub fn label_bytes(self) -> usize {
        match self {
            CifarKind::Cifar10 => 1,
            CifarKind::Cifar100 => 2,
        }
    }

    /// Bytes per record: label bytes + 3072.
    pub fn record_len(self) -> usize {
        self.label_bytes() + PIXELS
    }

    /// Number of classes of the label this reader uses.
    pub fn num_classes(self) -> usize {
        match self {
            CifarKind::Cifar10 => 10,
            CifarKind::Cifar100 => 100,
        }
    }

    /// The class-name file shipped beside the data.
    fn names_file(self) -> &'static str {
        match self {
            CifarKind::Cifar10 => "batches.meta.txt",
            CifarKind::Cifar100 => "fine_label_names.txt",
        }
    }

    /// The variant a file name belongs to, if it is one of the standard names.
    pub fn from_file_name(name: &str) -> Option<Self> {
        if name == "test_batch.bin" || batch_number(name).is_some() {
            Some(CifarKind::Cifar10)
        } else if name == "train.bin" || name == "test.bin" {
            Some(CifarKind::Cifar100)
        } else {
            None
        }
    }
}

/// `k` for a file named `data_batch_k.bin`.
fn batch_number(name: &str) -> Option<u32> {
    name.strip_prefix("data_batch_")?.strip_suffix(".bin")?.parse().ok()
}

/// Class names for files in `dir`: the names file when present, else the defaults.
fn class_names(dir: &Path, kind: CifarKind) -> Result<Vec<String>> {
    let names_path = dir.join(kind.names_file());
    if let Some(names) = read_class_names(&names_path)? {
        if names.len() != kind.num_classes() {
            let msg = format!("lists {} class names, {kind:?} has {}", names.len(), kind.num_classes());
            return Err(format_err(&names_path, msg));
        }
        return Ok(names);
    }
    Ok(match kind {
        CifarKind::Cifar10 => CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect(),
        CifarKind::Cifar100 => numbered_classes(100),
    })
}

/// The variant of a file: by its standard name, else by which record size divides
/// its length (a file neither divides is reported as a truncated CIFAR-10 file).
pub(super) fn kind_of(path: &Path) -> Result<CifarKind> {
    if let Some(kind) = CifarKind::from_file_name(file_name(path)) {
        return Ok(kind);
    }
    let len = std::fs::metadata(path).map_err(|source| crate::Error::Io { path: path.to_path_buf(), source })?.len();
    let fits = |k: CifarKind| len > 0 && len.is_multiple_of(k.record_len() as u64);
    match (fits(CifarKind::Cifar10), fits(CifarKind::Cifar100)) {
        (true, false) => Ok(CifarKind::Cifar10),
        (false, true) => Ok(CifarKind::Cifar100),
        (true, true) => Err(format_err(
            path,
            "cannot tell CIFAR-10 from CIFAR-100 by length; name it data_batch_N.bin / test_batch.bin (CIFAR-10) \
             or train.bin / test.bin (CIFAR-100)",
        )),
        (false, false) => Ok(CifarKind::Cifar10),
    }
}

/// Reads one CIFAR binary file of the given variant. Class names come from the
/// names file in the same directory when present.
pub fn read_cifar_file(path: &Path, kind: CifarKind) -> Result<Dataset> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let classes = class_names(dir, kind)?;
    let bytes = read_file(path)?;
    parse_records(&bytes, path, kind, classes)
}

/// Decodes whole records, checking the length first so that nothing is allocated
/// for records the file does not hold.
fn parse_records(bytes: &[u8], path: &Path, kind: CifarKind, classes: Vec<String>) -> Result<Dataset> {
    let rec = kind.record_len();
    if !bytes.len().is_multiple_of(rec) {
        return Err(format_err(
            path,
            format!("truncated: {} bytes is not a whole number of {rec}-byte records", bytes.len()),
        ));
    }
    if bytes.is_empty() {
        return Err(format_err(path, "holds no records"));
    }
    let n = bytes.len() / rec;
    let mut images = Vec::with_capacity(n * PIXELS);
    let mut labels = Vec::with_capacity(n);
    for (i, record) in bytes.chunks_exact(rec).enumerate() {
        // CIFAR-100 records are (coarse, fine, pixels): the last label byte is the one we use.
        let label = record[kind.label_bytes() - 1];
        if label as usize >= kind.num_classes() {
            return Err(format_err(
                path,
                format!("record {i} has label {label}, but {kind:?} has {} classes", kind.num_classes()),
            ));
        }
        labels.push(label as u32);
        images.extend_from_slice(&record[kind.label_bytes()..]);
    }
    Dataset::new(images, labels, classes, [3, 32, 32]).map_err(|e| format_err(path, e.to_string()))
}

/// The files of `part` in a CIFAR directory, in batch order.
fn part_files(dir: &Path, part: Part) -> Result<(CifarKind, Vec<PathBuf>)> {
    let entries = sorted_entries(dir)?;
    let named = |n: &str| entries.iter().find(|p| file_name(p) == n).cloned();
    let mut batches: Vec<(u32, PathBuf)> =
        entries.iter().filter_map(|p| batch_number(file_name(p)).map(|k| (k, p.clone()))).collect();
    batches.sort();
    let cifar10 = !batches.is_empty() || named("test_batch.bin").is_some();
    let (kind, files): (CifarKind, Vec<PathBuf>) = match (cifar10, part) {
        (true, Part::Train) => (CifarKind::Cifar10, batches.into_iter().map(|(_, p)| p).collect()),
        (true, Part::Test) => (CifarKind::Cifar10, named("test_batch.bin").into_iter().collect()),
        (false, Part::Train) => (CifarKind::Cifar100, named("train.bin").into_iter().collect()),
        (false, Part::Test) => (CifarKind::Cifar100, named("test.bin").into_iter().collect()),
    };
    if files.is_empty() {
        let want = match (kind, part) {
            (CifarKind::Cifar10, Part::Train) => "data_batch_*.bin",
            (CifarKind::Cifar10, Part::Test) => "test_batch.bin",
            (CifarKind::Cifar100, Part::Train) => "train.bin",
            (CifarKind::Cifar100, Part::Test) => "test.bin",
        };
        return Err(format_err(dir, format!("no {want} here for the {part:?} part")));
    }
    Ok((kind, files))
}

/// Reads CIFAR from a file or a directory. A file is read as it is (`part` is
/// ignored). A directory gives all its batches of `part`: CIFAR-10's
/// `data_batch_*.bin` in batch order (train) or `test_batch.bin` (test), or
/// CIFAR-100's `train.bin` / `test.bin`.
pub fn read_cifar(path: &Path, part: Part) -> Result<Dataset> {
    if !path.is_dir() {
        return read_cifar_file(path, kind_of(path)?);
    }
    let (kind, files) = part_files(path, part)?;
    let mut all: Option<Dataset> = None;
    for file in &files {
        let d = read_cifar_file(file, kind)?;
        match all.as_mut() {
            None => all = Some(d),
            Some(a) => a.append(d).map_err(|e| format_err(file, e.to_string()))?,
        }
    }
    all.ok_or_else(|| format_err(path, "no CIFAR batches"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: CifarKind, label: u8, fill: u8) -> Vec<u8> {
        let mut r = vec![fill; kind.record_len()];
        r[..kind.label_bytes()].fill(label);
        r
    }

    #[test]
    fn parses_both_variants() {
        let names = numbered_classes(10);
        let bytes = [record(CifarKind::Cifar10, 3, 9), record(CifarKind::Cifar10, 7, 1)].concat();
        let d = parse_records(&bytes, Path::new("x.bin"), CifarKind::Cifar10, names).unwrap();
        assert_eq!((d.len(), d.labels.clone(), d.image(1)[0]), (2, vec![3, 7], 1));
        let mut r = record(CifarKind::Cifar100, 0, 4);
        r[0] = 19; // coarse
        r[1] = 88; // fine
        let d = parse_records(&r, Path::new("train.bin"), CifarKind::Cifar100, numbered_classes(100)).unwrap();
        assert_eq!((d.labels[0], d.image(0).len()), (88, 3072));
    }

    #[test]
    fn rejects_truncation_and_bad_labels() {
        let bytes = record(CifarKind::Cifar10, 3, 9);
        let e = parse_records(&bytes[..100], Path::new("a.bin"), CifarKind::Cifar10, numbered_classes(10));
        let msg = e.unwrap_err().to_string();
        assert!(msg.contains("a.bin") && msg.contains("3073-byte records"), "{msg}");
        let bad = record(CifarKind::Cifar10, 10, 0);
        assert!(parse_records(&bad, Path::new("b.bin"), CifarKind::Cifar10, numbered_classes(10)).is_err());
        assert!(parse_records(&[], Path::new("c.bin"), CifarKind::Cifar10, numbered_classes(10)).is_err());
    }

    #[test]
    fn names_standard_files() {
        assert_eq!(CifarKind::from_file_name("data_batch_3.bin"), Some(CifarKind::Cifar10));
        assert_eq!(CifarKind::from_file_name("test.bin"), Some(CifarKind::Cifar100));
        assert_eq!(CifarKind::from_file_name("other.bin"), None);
    }
}
