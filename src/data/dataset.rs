//! The in-memory dataset every reader returns, and its conversion to the
//! normalized f32 NCHW batches the engine trains on.

use crate::error::{Error, Result};

/// Images as u8 `[N, C, H, W]` (channel-planar, like CIFAR's binary records), with
/// one label per image. Pixels stay u8 in memory (4× smaller than f32) and are
/// normalized per batch, after augmentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    /// Pixels, `N · C · H · W` bytes, image after image, channel planes in order.
    pub images: Vec<u8>,
    /// Class index of each image, `< classes.len()`.
    pub labels: Vec<u32>,
    /// Class names; the index of a name is its label.
    pub classes: Vec<String>,
    /// Channels per image (1 = grayscale, 3 = RGB).
    pub channels: usize,
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
}

impl Dataset {
    /// Builds a dataset, checking that the pixel count matches the labels and shape,
    /// and that every label names a class.
    pub fn new(
        images: Vec<u8>,
        labels: Vec<u32>,
        classes: Vec<String>,
        [channels, height, width]: [usize; 3],
    ) -> Result<Self> {
        let d = Dataset { images, labels, classes, channels, height, width };
        d.check()?;
        Ok(d)
    }

    /// Checks the invariants [`Dataset::new`] establishes (the fields are public, so
    /// code that edits them can re-check): pixel count = labels × `C·H·W`, labels
    /// below the class count, no zero dimension.
    pub fn check(&self) -> Result<()> {
        const OP: &str = "dataset";
        let Dataset { images, labels, classes, channels, height, width } = self;
        if *channels == 0 || *height == 0 || *width == 0 {
            return Err(Error::shape(OP, format!("image shape {channels}x{height}x{width} has a zero dimension")));
        }
        let per_image = channels.checked_mul(*height).and_then(|p| p.checked_mul(*width));
        if per_image.and_then(|p| labels.len().checked_mul(p)) != Some(images.len()) {
            return Err(Error::shape(
                OP,
                format!(
                    "{} pixel bytes are not {} labels x {channels}x{height}x{width} images",
                    images.len(),
                    labels.len()
                ),
            ));
        }
        if let Some((i, &l)) = labels.iter().enumerate().find(|(_, &l)| l as usize >= classes.len()) {
            return Err(Error::invalid(
                OP,
                format!("label {l} of image {i} is not below the {} classes", classes.len()),
            ));
        }
        Ok(())
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the dataset holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes (= pixels × channels) in one image: `C · H · W`.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The `[C, H, W]` shape of one image.
    pub fn image_shape(&self) -> [usize; 3] {
        [self.channels, self.height, self.width]
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.classes.len()
    }

    /// The u8 pixels of image `i` (`[C, H, W]`). Panics if `i >= len()`, like slice indexing.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.images[i * n..(i + 1) * n]
    }

    /// How many images each class has.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        counts
    }

    /// Checks that every index is below `len()`; `what` names the index list in the error.
    pub fn check_indices(&self, indices: &[usize], what: &str) -> Result<()> {
        match indices.iter().find(|&&i| i >= self.len()) {
            Some(i) => {
                Err(Error::invalid("dataset", format!("{what} index {i} is out of range for {} images", self.len())))
            }
            None => Ok(()),
        }
    }

    /// A new dataset holding the images at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Result<Dataset> {
        self.check_indices(indices, "subset")?;
        let mut images = Vec::with_capacity(indices.len() * self.image_len());
        for &i in indices {
            images.extend_from_slice(self.image(i));
        }
        let labels = indices.iter().map(|&i| self.labels[i]).collect();
        Ok(Dataset { images, labels, classes: self.classes.clone(), ..*self })
    }

    /// Appends `other`'s images; shapes and class lists must agree.
    pub fn append(&mut self, other: Dataset) -> Result<()> {
        if other.image_shape() != self.image_shape() || other.classes != self.classes {
            return Err(Error::shape(
                "dataset",
                format!(
                    "cannot append {:?} images of {} classes to {:?} images of {} classes",
                    other.image_shape(),
                    other.num_classes(),
                    self.image_shape(),
                    self.num_classes()
                ),
            ));
        }
        self.images.extend_from_slice(&other.images);
        self.labels.extend_from_slice(&other.labels);
        Ok(())
    }

    /// The images at `indices` as normalized f32 `[B, C, H, W]`.
    pub fn batch_f32(&self, indices: &[usize], norm: &Normalization) -> Result<Vec<f32>> {
        self.check_indices(indices, "batch")?;
        norm.check_channels(self.channels)?;
        let mut out = vec![0.0; indices.len() * self.image_len()];
        for (dst, &i) in out.chunks_exact_mut(self.image_len()).zip(indices) {
            norm.apply(self.image(i), dst);
        }
        Ok(out)
    }

    /// Labels at `indices` as f32 class indices (the loss kernels' label format).
    pub fn labels_f32(&self, indices: &[usize]) -> Result<Vec<f32>> {
        self.check_indices(indices, "batch")?;
        Ok(indices.iter().map(|&i| self.labels[i] as f32).collect())
    }
}

/// Per-channel normalization `y = (x/255 − mean_c) / std_c`, with `mean` and `std`
/// in the [0, 1] pixel scale (CIFAR-10's training set: mean ≈ 0.491, 0.482, 0.447).
#[derive(Debug, Clone, PartialEq)]
pub struct Normalization {
    /// Channel means of `x/255`.
    pub mean: Vec<f32>,
    /// Channel standard deviations of `x/255` (never 0: a constant channel gets 1).
    pub std: Vec<f32>,
}

impl Normalization {
    /// Mean and population standard deviation of each channel over the images at
    /// `indices` (the training images only, so no validation statistics leak in):
    /// `mean_c = Σx/(255·n)`, `std_c = sqrt(Σx²/(255²·n) − mean_c²)` with n the pixel
    /// count of channel c. Sums are exact u64, so the order of images does not matter.
    pub fn from_indices(data: &Dataset, indices: &[usize]) -> Result<Self> {
        data.check_indices(indices, "normalization")?;
        if indices.is_empty() {
            return Err(Error::invalid("normalization", "no images to compute channel statistics from"));
        }
        let plane = data.height * data.width;
        let mut sum = vec![0u64; data.channels];
        let mut sum_sq = vec![0u64; data.channels];
        for &i in indices {
            for (c, px) in data.image(i).chunks_exact(plane).enumerate() {
                sum[c] += px.iter().map(|&x| x as u64).sum::<u64>();
                sum_sq[c] += px.iter().map(|&x| (x as u64) * (x as u64)).sum::<u64>();
            }
        }
        let n = (indices.len() * plane) as f64;
        let mean: Vec<f64> = sum.iter().map(|&s| s as f64 / (255.0 * n)).collect();
        let std = sum_sq
            .iter()
            .zip(&mean)
            .map(|(&s2, m)| {
                let var = (s2 as f64 / (255.0 * 255.0 * n) - m * m).max(0.0);
                if var > 0.0 {
                    var.sqrt() as f32
                } else {
                    1.0
                }
            })
            .collect();
        Ok(Normalization { mean: mean.iter().map(|&m| m as f32).collect(), std })
    }

    /// Statistics over the whole dataset.
    pub fn from_dataset(data: &Dataset) -> Result<Self> {
        let all: Vec<usize> = (0..data.len()).collect();
        Self::from_indices(data, &all)
    }

    /// No normalization beyond `x/255` (mean 0, std 1 per channel).
    pub fn unit(channels: usize) -> Self {
        Normalization { mean: vec![0.0; channels], std: vec![1.0; channels] }
    }

    /// Number of channels this normalization is for.
    pub fn channels(&self) -> usize {
        self.mean.len()
    }

    /// Errors unless this normalization has `channels` channels.
    pub fn check_channels(&self, channels: usize) -> Result<()> {
        if self.mean.len() != channels || self.std.len() != channels {
            return Err(Error::shape(
                "normalization",
                format!("{} means / {} stds for {channels}-channel images", self.mean.len(), self.std.len()),
            ));
        }
        Ok(())
    }

    /// Normalizes one `[C, H, W]` u8 image into `out` (same length). The channel
    /// count comes from `self`; callers check it with [`Normalization::check_channels`].
    pub fn apply(&self, pixels: &[u8], out: &mut [f32]) {
        let plane = pixels.len() / self.channels().max(1);
        if plane == 0 {
            return;
        }
        for (c, (src, dst)) in pixels.chunks_exact(plane).zip(out.chunks_exact_mut(plane)).enumerate() {
            // (x/255 − m)/s folded into one multiply-add per pixel.
            let scale = 1.0 / (255.0 * self.std[c]);
            let bias = -self.mean[c] / self.std[c];
            for (y, &x) in dst.iter_mut().zip(src) {
                *y = x as f32 * scale + bias;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Dataset {
        // 3 images of 2x1x2: channel 0 holds 0/255 pairs, channel 1 is constant.
        let images = vec![0, 255, 7, 7, 255, 0, 7, 7, 0, 255, 7, 7];
        Dataset::new(images, vec![0, 1, 1], vec!["a".into(), "b".into()], [2, 1, 2]).unwrap()
    }

    #[test]
    fn new_rejects_bad_sizes_and_labels() {
        assert!(Dataset::new(vec![0; 5], vec![0], vec!["a".into()], [1, 2, 2]).is_err());
        assert!(Dataset::new(vec![0; 4], vec![1], vec!["a".into()], [1, 2, 2]).is_err());
        assert!(Dataset::new(vec![], vec![], vec![], [0, 2, 2]).is_err());
    }

    #[test]
    fn statistics_and_normalization() {
        let d = tiny();
        let norm = Normalization::from_dataset(&d).unwrap();
        // Channel 0 is half 0, half 1: mean 0.5, std 0.5. Channel 1 is constant: std falls back to 1.
        assert!((norm.mean[0] - 0.5).abs() < 1e-6 && (norm.std[0] - 0.5).abs() < 1e-6);
        assert!((norm.mean[1] - 7.0 / 255.0).abs() < 1e-6 && norm.std[1] == 1.0);
        let b = d.batch_f32(&[1], &norm).unwrap();
        let want = [1.0, -1.0, 0.0, 0.0];
        for (y, w) in b.iter().zip(want) {
            assert!((y - w).abs() < 1e-6, "{b:?}");
        }
        assert_eq!(d.labels_f32(&[2, 0]).unwrap(), vec![1.0, 0.0]);
        assert!(d.batch_f32(&[3], &norm).is_err());
        assert!(d.batch_f32(&[0], &Normalization::unit(3)).is_err());
    }

    #[test]
    fn subset_and_append() {
        let d = tiny();
        let s = d.subset(&[2, 0]).unwrap();
        assert_eq!(s.labels, vec![1, 0]);
        assert_eq!(s.image(1), d.image(0));
        let mut t = s.clone();
        t.append(s).unwrap();
        assert_eq!(t.len(), 4);
        assert_eq!(d.class_counts(), vec![1, 2]);
        assert!(d.subset(&[9]).is_err());
    }
}
