//! The macro skeleton of the MobileNet-like space: stem, blocks of MBConv layers, head.

use super::arch::MbArch;
use crate::error::{Error, Result};

const OP: &str = "mbconv space";

/// Sizes of an mbconv network (and of its per-block supernets).
///
/// Block `b` has `layers[b]` layers: the first maps the previous width (the stem's for
/// block 0) to `widths[b]` with stride `strides[b]`, the others keep width and resolution.
#[derive(Debug, Clone, PartialEq)]
pub struct MbSpace {
    /// Channels of the input images.
    pub in_channels: usize,
    /// Height and width of the input images.
    pub input_size: usize,
    /// Number of classes.
    pub classes: usize,
    /// Output channels of the stem (Conv3×3 stride 1).
    pub stem: usize,
    /// Output channels of each block.
    pub widths: Vec<usize>,
    /// Stride of each block's first layer (1 or 2).
    pub strides: Vec<usize>,
    /// Layers of each block (2 to 4).
    pub layers: Vec<usize>,
    /// Channels of the head's 1×1 conv before pooling.
    pub head: usize,
    /// SE bottleneck ratio: an SE of a layer with input width `c` has `max(1, round(c·ratio))` units.
    pub se_ratio: f32,
}

impl MbSpace {
    /// The space aligned with an NB201 network of `channels` C: stem C, widths `[C, 2C, 4C]`,
    /// strides `[1, 2, 2]`, head 8C, SE ratio 0.25.
    ///
    /// Why: NB201's stages have C, 2C and 4C channels at S, S/2 and S/4 (its stem keeps S),
    /// so block k's output has exactly the shape of NB201 stage k's output (and the stem's that
    /// of NB201's stem). DNA distils student block k from teacher feature k to k + 1 and can
    /// compare them directly, with no projection layer to train. With fewer than 3 entries
    /// in `layers` the space keeps only the first stages (a student of NB201's first B stages).
    pub fn aligned_to_nb201(
        channels: usize,
        in_channels: usize,
        input_size: usize,
        classes: usize,
        layers: Vec<usize>,
    ) -> MbSpace {
        let c = channels;
        let blocks = layers.len().min(3);
        MbSpace {
            in_channels,
            input_size,
            classes,
            stem: c,
            widths: [c, 2 * c, 4 * c][..blocks].to_vec(),
            strides: [1, 2, 2][..blocks].to_vec(),
            layers,
            head: 8 * c,
            se_ratio: 0.25,
        }
    }

    /// Checks every field; the errors say what is wrong and what is expected.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("in_channels", self.in_channels),
            ("input_size", self.input_size),
            ("classes", self.classes),
            ("stem", self.stem),
            ("head", self.head),
        ];
        if let Some((what, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(Error::invalid(OP, format!("{what} must be at least 1, got 0")));
        }
        let b = self.widths.len();
        if b == 0 {
            return Err(Error::invalid(OP, "the space needs at least one block (widths is empty)"));
        }
        if self.strides.len() != b || self.layers.len() != b {
            return Err(Error::invalid(
                OP,
                format!(
                    "widths, strides and layers must have one entry per block; got {}, {} and {}",
                    b,
                    self.strides.len(),
                    self.layers.len()
                ),
            ));
        }
        if let Some(i) = self.widths.iter().position(|&w| w == 0) {
            return Err(Error::invalid(OP, format!("block {i} has width 0")));
        }
        if let Some(i) = self.strides.iter().position(|&s| s != 1 && s != 2) {
            return Err(Error::invalid(
                OP,
                format!("block {i} has stride {}; strides must be 1 or 2", self.strides[i]),
            ));
        }
        if let Some(i) = self.layers.iter().position(|l| !(2..=4).contains(l)) {
            return Err(Error::invalid(
                OP,
                format!("block {i} has {} layers; each block needs 2 to 4", self.layers[i]),
            ));
        }
        if !(self.se_ratio > 0.0 && self.se_ratio <= 1.0) {
            return Err(Error::invalid(OP, format!("se_ratio must lie in (0, 1], got {}", self.se_ratio)));
        }
        Ok(())
    }

    /// Number of blocks.
    pub fn blocks(&self) -> usize {
        self.widths.len()
    }

    /// Input channels of block `b`: the stem's for block 0, else block `b − 1`'s width.
    pub fn block_in(&self, b: usize) -> usize {
        if b == 0 {
            self.stem
        } else {
            self.widths[b - 1]
        }
    }

    /// Spatial size at block `b`'s input: the input size halved (rounding up, as a stride-2
    /// conv with padding k/2 does) once per stride-2 block before `b`.
    pub fn block_input_size(&self, b: usize) -> usize {
        self.strides[..b].iter().fold(self.input_size, |s, &st| s.div_ceil(st))
    }

    /// Spatial size after the last block.
    pub fn output_size(&self) -> usize {
        self.block_input_size(self.blocks())
    }

    /// Units of the SE of a layer with `c_in` input channels: `max(1, round(c_in·se_ratio))`.
    pub fn se_units(&self, c_in: usize) -> usize {
        ((c_in as f32 * self.se_ratio).round() as usize).max(1)
    }

    /// Fails unless `arch` is valid and has `layers[b]` layers in every block `b`.
    pub fn check_arch(&self, arch: &MbArch) -> Result<()> {
        arch.validate()?;
        if arch.layers() != self.layers {
            return Err(Error::invalid(
                OP,
                format!(
                    "architecture '{arch}' has {:?} layers per block, the space has {:?}",
                    arch.layers(),
                    self.layers
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_space_keeps_as_many_stages_as_blocks() {
        let two = MbSpace::aligned_to_nb201(4, 3, 8, 10, vec![2, 2]);
        assert_eq!((two.widths.clone(), two.strides.clone()), (vec![4, 8], vec![1, 2]));
        assert!(two.validate().is_ok());
        let three = MbSpace::aligned_to_nb201(4, 3, 8, 10, vec![2, 3, 4]);
        assert_eq!(three.widths, vec![4, 8, 16]);
        assert!(three.validate().is_ok());
        // NB201 has three stages: a fourth block has no teacher stage to align with.
        assert!(MbSpace::aligned_to_nb201(4, 3, 8, 10, vec![2; 4]).validate().is_err());
    }
}
