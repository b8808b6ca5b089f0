//! The bundled default dataset: a balanced Fashion-MNIST subset (2,000 training and
//! 500 test images, 28×28 grayscale, 10 classes), embedded in the binary so that a
//! search runs offline, from any directory, with no arguments.
//!
//! The files under `assets/fashion-mnist-mini/` were made by [`write_subset`] from
//! Debian's `dataset-fashion-mnist` package; to make them again:
//!
//! ```sh
//! apt-get install dataset-fashion-mnist
//! cargo test --lib data::bundled::tests::regenerate_assets -- --ignored
//! ```

use std::path::Path;

use super::{read_idx_dir, write_idx_gz, Dataset, Part};
use crate::error::{Error, Result};

/// The folder of the bundled files in the source tree (they are also embedded).
pub const BUNDLED_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/fashion-mnist-mini");

/// Where Debian's `dataset-fashion-mnist` package installs the full dataset.
pub const DEBIAN_FASHION_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Fashion-MNIST's class names, label order.
pub const FASHION_CLASSES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

/// Training images per class in the bundled subset.
pub const TRAIN_PER_CLASS: usize = 200;
/// Test images per class in the bundled subset.
pub const TEST_PER_CLASS: usize = 50;

/// The embedded files: (images, labels) of each part, with their names.
const TRAIN: [(&str, &[u8]); 2] = [
    ("train-images-idx3-ubyte.gz", include_bytes!("../../assets/fashion-mnist-mini/train-images-idx3-ubyte.gz")),
    ("train-labels-idx1-ubyte.gz", include_bytes!("../../assets/fashion-mnist-mini/train-labels-idx1-ubyte.gz")),
];
const TEST: [(&str, &[u8]); 2] = [
    ("t10k-images-idx3-ubyte.gz", include_bytes!("../../assets/fashion-mnist-mini/t10k-images-idx3-ubyte.gz")),
    ("t10k-labels-idx1-ubyte.gz", include_bytes!("../../assets/fashion-mnist-mini/t10k-labels-idx1-ubyte.gz")),
];

/// The bundled Fashion-MNIST subset: `Part::Train` gives 2,000 images (200 per
/// class), `Part::Test` 500 (50 per class), both `[1, 28, 28]`.
pub fn bundled(part: Part) -> Result<Dataset> {
    let [(im_name, im), (lb_name, lb)] = match part {
        Part::Train => TRAIN,
        Part::Test => TEST,
    };
    let dir = Path::new(BUNDLED_DIR);
    let classes = FASHION_CLASSES.iter().map(|s| s.to_string()).collect();
    super::parse_idx(im, &dir.join(im_name), lb, &dir.join(lb_name), classes)
}

/// Indices of the first `per_class` images of each class, in file order; errors
/// when a class has fewer.
pub fn balanced_first(labels: &[u32], num_classes: usize, per_class: usize) -> Result<Vec<usize>> {
    let mut taken = vec![0usize; num_classes];
    let mut picked = Vec::with_capacity(num_classes * per_class);
    for (i, &l) in labels.iter().enumerate() {
        let slot = taken
            .get_mut(l as usize)
            .ok_or_else(|| Error::invalid("balanced_first", format!("label {l} is not below {num_classes}")))?;
        if *slot < per_class {
            *slot += 1;
            picked.push(i);
        }
    }
    if let Some((c, &n)) = taken.iter().enumerate().find(|(_, &n)| n < per_class) {
        return Err(Error::invalid("balanced_first", format!("class {c} has only {n} images, {per_class} wanted")));
    }
    Ok(picked)
}

/// Writes the balanced subset of an IDX dataset in `src_dir` (train and t10k files)
/// to `dst_dir` as gzipped IDX files with the standard names: the first
/// `train_per_class` training and `test_per_class` test images of each class, in
/// their original order.
pub fn write_subset(src_dir: &Path, dst_dir: &Path, train_per_class: usize, test_per_class: usize) -> Result<()> {
    std::fs::create_dir_all(dst_dir).map_err(|source| Error::Io { path: dst_dir.to_path_buf(), source })?;
    for (part, prefix, per_class) in [(Part::Train, "train", train_per_class), (Part::Test, "t10k", test_per_class)] {
        let full = read_idx_dir(src_dir, part)?;
        let keep = balanced_first(&full.labels, full.num_classes(), per_class)?;
        let sub = full.subset(&keep)?;
        let labels: Vec<u8> = sub.labels.iter().map(|&l| l as u8).collect();
        let images_path = dst_dir.join(format!("{prefix}-images-idx3-ubyte.gz"));
        write_idx_gz(&images_path, &[sub.len(), sub.height, sub.width], &sub.images)?;
        write_idx_gz(&dst_dir.join(format!("{prefix}-labels-idx1-ubyte.gz")), &[sub.len()], &labels)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The full dataset's folder, or a failure that says how to get it.
    fn debian_dir() -> &'static Path {
        let dir = Path::new(DEBIAN_FASHION_DIR);
        assert!(
            dir.join("train-images-idx3-ubyte.gz").is_file(),
            "Fashion-MNIST is missing from {DEBIAN_FASHION_DIR}: install it with `apt-get install dataset-fashion-mnist`"
        );
        dir
    }

    /// Not a test: the documented command that writes the bundled files.
    #[test]
    #[ignore = "writes assets/fashion-mnist-mini; run by hand to regenerate the bundled subset"]
    fn regenerate_assets() {
        write_subset(debian_dir(), Path::new(BUNDLED_DIR), TRAIN_PER_CLASS, TEST_PER_CLASS).unwrap();
    }

    #[test]
    fn balanced_first_takes_the_first_of_each_class() {
        assert_eq!(balanced_first(&[1, 0, 1, 1, 0, 0], 2, 2).unwrap(), vec![0, 1, 2, 4]);
        assert!(balanced_first(&[1, 1, 0], 2, 2).is_err());
        assert!(balanced_first(&[3], 2, 1).is_err());
    }

    #[test]
    fn bundled_files_are_what_write_subset_makes() {
        let tmp = std::env::temp_dir().join(format!("wgnas-bundled-{}", std::process::id()));
        write_subset(debian_dir(), &tmp, TRAIN_PER_CLASS, TEST_PER_CLASS).unwrap();
        for part in [Part::Train, Part::Test] {
            let made = read_idx_dir(&tmp, part).unwrap();
            let shipped = bundled(part).unwrap();
            assert_eq!((made.images == shipped.images, &made.labels), (true, &shipped.labels), "{part:?}");
        }
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
