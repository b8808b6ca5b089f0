//! The op vocabulary of the MobileNet-like space and its architecture string.
//!
//! An architecture lists, block by block, the op of every layer. The string form joins a
//! block's layers with `,` and the blocks with `|`:
//! `mb6_k3,mb3_k5|mb6_k7,skip|mb3_k3,mb3_k3`.

use std::fmt;

use crate::error::{Error, Result};

const OP: &str = "mbconv arch";

/// One layer's choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MbOp {
    /// Inverted residual: 1×1 expand (×`expand`) → depthwise `kernel`×`kernel` → SE → 1×1 project.
    MbConv {
        /// Expansion ratio of the hidden width: 3 or 6.
        expand: usize,
        /// Depthwise kernel size: 3, 5 or 7.
        kernel: usize,
    },
    /// The identity (only where the layer keeps resolution and width).
    Skip,
}

/// Expansion ratios of the space, in canonical order.
pub const EXPANDS: [usize; 2] = [3, 6];
/// Depthwise kernel sizes of the space, in canonical order.
pub const KERNELS: [usize; 3] = [3, 5, 7];

impl MbOp {
    /// The op's name: `mb{expand}_k{kernel}` or `skip`.
    pub fn name(&self) -> String {
        match self {
            MbOp::MbConv { expand, kernel } => format!("mb{expand}_k{kernel}"),
            MbOp::Skip => "skip".to_string(),
        }
    }

    /// Parses an op name; the error lists the valid names.
    pub fn parse(s: &str) -> Result<MbOp> {
        candidates(false)
            .into_iter()
            .find(|op| op.name() == s.trim())
            .ok_or_else(|| Error::invalid(OP, format!("unknown op '{}'; valid ops are {}", s.trim(), valid_names())))
    }
}

impl fmt::Display for MbOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// The candidates of one layer in the fixed canonical order: the six MBConvs (expand 3 then
/// 6, kernels 3, 5, 7 within each), then `skip` unless the layer is its block's first (the
/// first layer changes width or resolution, so the identity does not fit there).
pub fn candidates(first_layer: bool) -> Vec<MbOp> {
    let mut ops: Vec<MbOp> =
        EXPANDS.iter().flat_map(|&expand| KERNELS.iter().map(move |&kernel| MbOp::MbConv { expand, kernel })).collect();
    if !first_layer {
        ops.push(MbOp::Skip);
    }
    ops
}

/// The valid op names, comma-separated, for error messages.
pub fn valid_names() -> String {
    candidates(false).iter().map(MbOp::name).collect::<Vec<_>>().join(", ")
}

/// A discrete architecture: `blocks[b][l]` is the op of layer `l` of block `b`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MbArch {
    /// Ops per block, per layer.
    pub blocks: Vec<Vec<MbOp>>,
}

impl MbArch {
    /// Parses `op,op|op,op|…`; every block needs at least one layer and may not start with `skip`.
    pub fn parse(s: &str) -> Result<MbArch> {
        if s.trim().is_empty() {
            return Err(Error::invalid(OP, "empty architecture; expected e.g. mb6_k3,mb3_k5|mb6_k7,skip"));
        }
        let blocks = s
            .split('|')
            .map(|block| block.split(',').map(MbOp::parse).collect::<Result<Vec<_>>>())
            .collect::<Result<Vec<_>>>()?;
        let arch = MbArch { blocks };
        arch.validate()?;
        Ok(arch)
    }

    /// Checks that no block is empty or starts with `skip`.
    pub fn validate(&self) -> Result<()> {
        if self.blocks.is_empty() {
            return Err(Error::invalid(OP, "an architecture needs at least one block"));
        }
        for (b, ops) in self.blocks.iter().enumerate() {
            match ops.first() {
                None => return Err(Error::invalid(OP, format!("block {b} has no layers"))),
                Some(MbOp::Skip) => {
                    return Err(Error::invalid(
                        OP,
                        format!(
                            "block {b} starts with skip, but a block's first layer changes width or resolution; \
                             use one of {}",
                            candidates(true).iter().map(MbOp::name).collect::<Vec<_>>().join(", ")
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Layers per block.
    pub fn layers(&self) -> Vec<usize> {
        self.blocks.iter().map(Vec::len).collect()
    }
}

impl fmt::Display for MbArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let blocks: Vec<String> =
            self.blocks.iter().map(|ops| ops.iter().map(MbOp::name).collect::<Vec<_>>().join(",")).collect();
        f.write_str(&blocks.join("|"))
    }
}

impl std::str::FromStr for MbArch {
    type Err = Error;
    fn from_str(s: &str) -> Result<MbArch> {
        MbArch::parse(s)
    }
}
