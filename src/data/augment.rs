//! Training-time augmentation on u8 images, before normalization (as torchvision's
//! `RandomCrop(32, padding=4)` + `RandomHorizontalFlip()` do on PIL images, so the
//! zero padding becomes `−mean/std` after normalization, exactly as there).

use crate::util::rng::Rng;

/// Random crop with zero padding, then a random horizontal flip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Augment {
    /// Zero padding on each side before the crop; 0 disables the crop.
    pub pad: usize,
    /// Mirror left-right with probability 1/2.
    pub flip: bool,
}

impl Default for Augment {
    /// The standard CIFAR recipe: pad 4, flip.
    fn default() -> Self {
        Augment { pad: 4, flip: true }
    }
}

impl Augment {
    /// No augmentation (evaluation).
    pub fn none() -> Self {
        Augment { pad: 0, flip: false }
    }

    /// True when [`Augment::apply`] copies the image unchanged.
    pub fn is_identity(&self) -> bool {
        self.pad == 0 && !self.flip
    }

    /// Writes an augmented copy of the `[C, H, W]` image `src` to `out` (same length).
    /// The crop offsets `dy, dx` are uniform in `0..=2·pad`, so
    /// `out[c, y, x] = src[c, y + dy − pad, x' + dx − pad]` (0 outside the image),
    /// with `x' = W − 1 − x` when flipped and `x' = x` otherwise. Draws from `rng`
    /// in a fixed order (dy, dx, flip), so a seeded `rng` gives the same result.
    pub fn apply(&self, src: &[u8], [c, h, w]: [usize; 3], rng: &mut Rng, out: &mut [u8]) {
        let span = 2 * self.pad + 1;
        let (dy, dx) = if self.pad > 0 { (rng.below(span), rng.below(span)) } else { (0, 0) };
        let flip = self.flip && rng.below(2) == 1;
        let pad = self.pad as isize;
        for ch in 0..c {
            let plane = &src[ch * h * w..(ch + 1) * h * w];
            let dst = &mut out[ch * h * w..(ch + 1) * h * w];
            for (y, row) in dst.chunks_exact_mut(w).enumerate() {
                let sy = y as isize + dy as isize - pad;
                if sy < 0 || sy >= h as isize {
                    row.fill(0);
                    continue;
                }
                let src_row = &plane[sy as usize * w..(sy as usize + 1) * w];
                for (x, px) in row.iter_mut().enumerate() {
                    let xx = if flip { w - 1 - x } else { x };
                    let sx = xx as isize + dx as isize - pad;
                    *px = if sx < 0 || sx >= w as isize { 0 } else { src_row[sx as usize] };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1x3x4 image with distinct pixels 1..=12.
    fn img() -> Vec<u8> {
        (1..=12).collect()
    }

    #[test]
    fn identity_and_flip() {
        let mut out = vec![0; 12];
        Augment::none().apply(&img(), [1, 3, 4], &mut Rng::new(0), &mut out);
        assert_eq!(out, img());
        // With pad 0 only the flip draw happens; find a seed that flips.
        let flip = Augment { pad: 0, flip: true };
        let seed = (0..100).find(|&s| Rng::new(s).below(2) == 1).unwrap();
        flip.apply(&img(), [1, 3, 4], &mut Rng::new(seed), &mut out);
        assert_eq!(out, vec![4, 3, 2, 1, 8, 7, 6, 5, 12, 11, 10, 9]);
    }

    #[test]
    fn crop_shifts_in_zeros_and_keeps_every_pixel_value() {
        let aug = Augment { pad: 1, flip: false };
        for seed in 0..20 {
            let mut r = Rng::new(seed);
            let (dy, dx) = (r.below(3) as isize - 1, r.below(3) as isize - 1);
            let mut out = vec![0; 12];
            aug.apply(&img(), [1, 3, 4], &mut Rng::new(seed), &mut out);
            for y in 0..3isize {
                for x in 0..4isize {
                    let (sy, sx) = (y + dy, x + dx);
                    let want =
                        if (0..3).contains(&sy) && (0..4).contains(&sx) { img()[(sy * 4 + sx) as usize] } else { 0 };
                    assert_eq!(out[(y * 4 + x) as usize], want, "seed {seed} at {y},{x}");
                }
            }
        }
    }
}
