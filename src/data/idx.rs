//! IDX files (MNIST, Fashion-MNIST), raw or gzipped (told apart by the gzip magic
//! bytes `1f 8b`, not by the name).
//!
//! | offset | bytes | field                                              |
//! |--------|-------|----------------------------------------------------|
//! | 0      | 2     | zero                                               |
//! | 2      | 1     | element type (only `0x08`, unsigned byte, is read) |
//! | 3      | 1     | number of dimensions d (3 for images, 1 for labels)|
//! | 4      | 4·d   | dimension sizes, big-endian u32                    |
//! | 4+4·d  | Π dims| the elements                                       |
//!
//! Labels must be below the class count: the lines of `classes.txt` beside the
//! images file when present, else 10 (MNIST and Fashion-MNIST).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use super::FASHION_CLASSES;
use super::{file_name, format_err, numbered_classes, read_class_names, read_file, sorted_entries, Dataset, Part};
use crate::error::{Error, Result};

/// IDX element type code of unsigned bytes.
const U8_TYPE: u8 = 0x08;

/// The gzip magic bytes.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A decoded IDX file: its dimensions and its elements.
struct Idx {
    dims: Vec<usize>,
    data: Vec<u8>,
}

/// True when `bytes` start like a gzip stream.
fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// Reads exactly `buf.len()` header bytes, reporting a short file as truncated.
fn read_header(r: &mut impl Read, buf: &mut [u8], path: &Path) -> Result<()> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => format_err(path, "truncated: the file ends inside the IDX header"),
        _ => format_err(path, format!("cannot decompress: {e}")),
    })
}

/// Decodes an IDX file of `ndims` dimensions from its raw or gzipped bytes. The
/// payload size the header claims is checked against what the stream really holds;
/// memory grows only with bytes actually read, never with the claim.
fn decode(bytes: &[u8], path: &Path, ndims: usize) -> Result<Idx> {
    let mut reader: Box<dyn Read + '_> = if is_gzip(bytes) { Box::new(GzDecoder::new(bytes)) } else { Box::new(bytes) };
    let mut magic = [0u8; 4];
    read_header(&mut reader, &mut magic, path)?;
    if magic[0] != 0 || magic[1] != 0 {
        return Err(format_err(path, format!("not an IDX file: magic bytes {magic:02x?}")));
    }
    if magic[2] != U8_TYPE {
        return Err(format_err(
            path,
            format!("IDX element type 0x{:02x} is not supported (only unsigned bytes, 0x08)", magic[2]),
        ));
    }
    if magic[3] as usize != ndims {
        return Err(format_err(path, format!("expected a {ndims}-dimensional IDX file, the header says {}", magic[3])));
    }
    let mut raw_dims = vec![0u8; 4 * ndims];
    read_header(&mut reader, &mut raw_dims, path)?;
    let dims: Vec<usize> =
        raw_dims.chunks_exact(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize).collect();
    let claimed = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let claimed = claimed.ok_or_else(|| format_err(path, format!("dimensions {dims:?} overflow")))?;
    // Read at most one byte more than claimed: enough to see trailing garbage,
    // never more than the stream holds.
    let mut data = Vec::with_capacity(claimed.min(bytes.len().saturating_mul(4)));
    reader
        .take(claimed as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| format_err(path, format!("corrupt or truncated gzip stream: {e}")))?;
    if data.len() != claimed {
        let what = if data.len() < claimed { "truncated" } else { "too long" };
        return Err(format_err(
            path,
            format!(
                "{what}: the header claims dimensions {dims:?} ({claimed} bytes) but the data holds {}",
                data.len()
            ),
        ));
    }
    Ok(Idx { dims, data })
}

/// Class names for IDX files in `dir`: `classes.txt` when present; else the
/// Fashion-MNIST names when `hint` mentions "fashion", else "0".."9".
fn idx_classes(dir: &Path, hint: &Path) -> Result<Vec<String>> {
    if let Some(names) = read_class_names(&dir.join("classes.txt"))? {
        return Ok(names);
    }
    if hint.to_string_lossy().to_lowercase().contains("fashion") {
        return Ok(FASHION_CLASSES.iter().map(|s| s.to_string()).collect());
    }
    Ok(numbered_classes(10))
}

/// Decodes an images IDX (`[N, H, W]`) and a labels IDX (`[N]`) from bytes, given
/// their paths for error messages, with `classes` as the class names (labels must
/// be below their count).
pub fn parse_idx(
    images: &[u8],
    images_path: &Path,
    labels: &[u8],
    labels_path: &Path,
    classes: Vec<String>,
) -> Result<Dataset> {
    let im = decode(images, images_path, 3)?;
    let lb = decode(labels, labels_path, 1)?;
    let (n, h, w) = (im.dims[0], im.dims[1], im.dims[2]);
    if n == 0 || h == 0 || w == 0 {
        return Err(format_err(images_path, format!("holds no images (dimensions {:?})", im.dims)));
    }
    if lb.dims[0] != n {
        return Err(format_err(
            labels_path,
            format!("holds {} labels but {} holds {n} images", lb.dims[0], images_path.display()),
        ));
    }
    if let Some((i, &l)) = lb.data.iter().enumerate().find(|(_, &l)| l as usize >= classes.len()) {
        return Err(format_err(
            labels_path,
            format!("label {l} of record {i} is not below the {} classes", classes.len()),
        ));
    }
    let labels = lb.data.iter().map(|&l| l as u32).collect();
    Dataset::new(im.data, labels, classes, [1, h, w]).map_err(|e| format_err(images_path, e.to_string()))
}

/// Reads an images IDX file and its labels IDX file (each raw or gzipped).
pub fn read_idx(images_path: &Path, labels_path: &Path) -> Result<Dataset> {
    let images = read_file(images_path)?;
    let labels = read_file(labels_path)?;
    let dir = images_path.parent().unwrap_or(Path::new("."));
    let classes = idx_classes(dir, images_path)?;
    parse_idx(&images, images_path, &labels, labels_path, classes)
}

/// The labels file that goes with an images file: `X-images-idx3-ubyte[.gz]` →
/// `X-labels-idx1-ubyte`, with or without `.gz`, whichever exists.
pub(super) fn labels_for(images_path: &Path) -> Result<PathBuf> {
    let name = file_name(images_path);
    let stem = name.strip_suffix(".gz").unwrap_or(name);
    let Some(prefix) = stem.strip_suffix("images-idx3-ubyte") else {
        return Err(format_err(images_path, "an IDX images file must be named *-images-idx3-ubyte[.gz]"));
    };
    let base = format!("{prefix}labels-idx1-ubyte");
    let dir = images_path.parent().unwrap_or(Path::new("."));
    [format!("{base}.gz"), base.clone()]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
        .ok_or_else(|| format_err(images_path, format!("no labels file {base}[.gz] beside it")))
}

/// True for a file name of an IDX images file.
pub(super) fn is_images_name(name: &str) -> bool {
    name.contains("images-idx3-ubyte")
}

/// Reads the `part` of an IDX directory: the one images file whose name contains
/// "train" (train) or "t10k" / "test" (test), with its labels file.
pub fn read_idx_dir(dir: &Path, part: Part) -> Result<Dataset> {
    let wanted = |name: &str| match part {
        Part::Train => name.contains("train"),
        Part::Test => name.contains("t10k") || name.contains("test"),
    };
    let candidates: Vec<PathBuf> =
        sorted_entries(dir)?.into_iter().filter(|p| is_images_name(file_name(p)) && wanted(file_name(p))).collect();
    match candidates.as_slice() {
        [one] => read_idx(one, &labels_for(one)?),
        [] => Err(format_err(dir, format!("no *-images-idx3-ubyte[.gz] file for the {part:?} part"))),
        many => Err(format_err(
            dir,
            format!(
                "several images files for the {part:?} part: {:?}",
                many.iter().map(|p| file_name(p)).collect::<Vec<_>>()
            ),
        )),
    }
}

/// Writes a gzipped u8 IDX file with `dims`. The gzip header carries no name and
/// time stamp, so the same data always gives the same bytes.
pub fn write_idx_gz(path: &Path, dims: &[usize], data: &[u8]) -> Result<()> {
    let io = |source| Error::Io { path: path.to_path_buf(), source };
    if dims.iter().product::<usize>() != data.len() || dims.len() > 255 {
        return Err(Error::shape("write_idx_gz", format!("dimensions {dims:?} do not fit {} bytes", data.len())));
    }
    let mut header = vec![0, 0, U8_TYPE, dims.len() as u8];
    for &d in dims {
        let d = u32::try_from(d).map_err(|_| Error::shape("write_idx_gz", format!("dimension {d} over u32")))?;
        header.extend_from_slice(&d.to_be_bytes());
    }
    let file = std::fs::File::create(path).map_err(io)?;
    let mut gz = flate2::GzBuilder::new().mtime(0).write(file, flate2::Compression::best());
    gz.write_all(&header).map_err(io)?;
    gz.write_all(data).map_err(io)?;
    gz.finish().map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn raw_and_gzip_decode_alike() {
        let images = idx(&[2, 2, 3], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        let labels = idx(&[2], &[4, 9]);
        let (ip, lp) = (Path::new("i"), Path::new("l"));
        let a = parse_idx(&images, ip, &labels, lp, numbered_classes(10)).unwrap();
        let b = parse_idx(&gz(&images), ip, &gz(&labels), lp, numbered_classes(10)).unwrap();
        assert_eq!(a, b);
        assert_eq!((a.len(), a.image_shape(), a.labels.clone(), a.image(1)[0]), (2, [1, 2, 3], vec![4, 9], 7));
    }

    #[test]
    fn huge_claims_are_errors_not_allocations() {
        // 2^31 images of 28x28 claimed, 10 bytes held.
        let images = idx(&[1 << 31, 28, 28], &[0; 10]);
        let labels = idx(&[1], &[0]);
        for im in [images.clone(), gz(&images)] {
            let e = parse_idx(&im, Path::new("big-images"), &labels, Path::new("l"), numbered_classes(10));
            let msg = e.unwrap_err().to_string();
            assert!(msg.contains("big-images") && msg.contains("truncated"), "{msg}");
        }
        let overflow = idx(&[u32::MAX, u32::MAX, u32::MAX], &[]);
        assert!(parse_idx(&overflow, Path::new("o"), &labels, Path::new("l"), numbered_classes(10)).is_err());
    }

    #[test]
    fn header_checks() {
        let labels = idx(&[1], &[0]);
        let ok = idx(&[1, 1, 1], &[0]);
        let cases: Vec<Vec<u8>> = vec![
            vec![0, 0, 8],                                              // short header
            vec![1, 0, 8, 3, 0, 0, 0, 1],                               // bad magic
            vec![0, 0, 0x0d, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0], // f64 elements
            idx(&[1, 1], &[0]),                                         // wrong dimension count
            [ok.clone(), vec![7]].concat(),                             // trailing byte
            gz(&ok)[..10].to_vec(),                                     // broken gzip
        ];
        for (k, im) in cases.iter().enumerate() {
            let r = parse_idx(im, Path::new("case"), &labels, Path::new("l"), numbered_classes(10));
            assert!(r.is_err(), "case {k} was accepted");
        }
        let wrong_count = idx(&[2], &[0, 0]);
        assert!(parse_idx(&ok, Path::new("i"), &wrong_count, Path::new("l"), numbered_classes(10)).is_err());
        let bad_label = idx(&[1], &[10]);
        let msg = parse_idx(&ok, Path::new("i"), &bad_label, Path::new("lab"), numbered_classes(10)).unwrap_err();
        assert!(msg.to_string().contains("lab"), "{msg}");
    }
}
