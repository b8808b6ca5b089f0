//! Image folders: `root/<class>/<image>.png|jpg|jpeg`, one subfolder per class.
//! Classes are the subfolder names in sorted order (so label k is the k-th name),
//! and images within a class are read in sorted file-name order.
//!
//! All images must have the same size. The dataset is grayscale (1 channel) only
//! if every image is; otherwise every image is converted to RGB (alpha dropped).

use std::path::{Path, PathBuf};

use image::DynamicImage;

use super::{file_name, format_err, sorted_entries, Dataset};
use crate::error::{Error, Result};

/// True for the file extensions this reader decodes.
fn is_image_file(path: &Path) -> bool {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    path.is_file() && matches!(ext.as_deref(), Some("png" | "jpg" | "jpeg"))
}

/// Class subfolders of `root` (hidden ones skipped), sorted by name.
pub(super) fn class_dirs(root: &Path) -> Result<Vec<PathBuf>> {
    Ok(sorted_entries(root)?.into_iter().filter(|p| p.is_dir() && !file_name(p).starts_with('.')).collect())
}

/// Decodes one image file, errors naming it.
fn decode(path: &Path) -> Result<DynamicImage> {
    let reader = image::ImageReader::open(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let reader = reader.with_guessed_format().map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    reader.decode().map_err(|e| format_err(path, format!("cannot decode image: {e}")))
}

/// Pixels accumulated so far, grayscale until the first color image arrives.
struct Planes {
    channels: usize,
    plane: usize,
    images: Vec<u8>,
}

impl Planes {
    /// Turns every stored grayscale image into 3 equal planes.
    fn widen_to_rgb(&mut self) {
        let mut rgb = Vec::with_capacity(self.images.len() * 3);
        for img in self.images.chunks_exact(self.plane) {
            for _ in 0..3 {
                rgb.extend_from_slice(img);
            }
        }
        self.images = rgb;
        self.channels = 3;
    }

    /// Appends `img` as `[C, H, W]` in the current channel count.
    fn push(&mut self, img: &DynamicImage) {
        if self.channels == 1 {
            self.images.extend_from_slice(img.to_luma8().as_raw());
            return;
        }
        let rgb = img.to_rgb8();
        let hwc = rgb.as_raw();
        // Interleaved RGB → channel planes.
        for c in 0..3 {
            self.images.extend(hwc.iter().skip(c).step_by(3));
        }
    }
}

/// Reads an image folder (see the module docs).
pub fn read_image_folder(root: &Path) -> Result<Dataset> {
    let dirs = class_dirs(root)?;
    if dirs.is_empty() {
        return Err(format_err(root, "no class subfolders: expected root/<class>/<image>.png|jpg"));
    }
    let mut first: Option<(PathBuf, u32, u32)> = None;
    let mut planes = Planes { channels: 1, plane: 0, images: Vec::new() };
    let mut labels = Vec::new();
    for (label, dir) in dirs.iter().enumerate() {
        let files: Vec<PathBuf> = sorted_entries(dir)?.into_iter().filter(|p| is_image_file(p)).collect();
        if files.is_empty() {
            return Err(format_err(dir, "class folder holds no PNG or JPEG image"));
        }
        for file in files {
            let img = decode(&file)?;
            let (w, h) = (img.width(), img.height());
            match &first {
                None => {
                    planes.plane = (w as usize) * (h as usize);
                    first = Some((file.clone(), w, h));
                }
                Some((f, fw, fh)) if (*fw, *fh) != (w, h) => {
                    let msg = format!("is {w}x{h} but {} is {fw}x{fh}: all images must have one size", f.display());
                    return Err(format_err(&file, msg));
                }
                Some(_) => {}
            }
            if planes.channels == 1 && img.color().has_color() {
                planes.widen_to_rgb();
            }
            planes.push(&img);
            labels.push(label as u32);
        }
    }
    let (_, w, h) = first.ok_or_else(|| format_err(root, "no images"))?;
    let classes = dirs.iter().map(|d| file_name(d).to_string()).collect();
    Dataset::new(planes.images, labels, classes, [planes.channels, h as usize, w as usize])
        .map_err(|e| format_err(root, e.to_string()))
}
