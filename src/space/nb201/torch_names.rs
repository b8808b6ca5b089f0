//! Tensor names of the reference PyTorch search model, xautodl's `TinyNetworkDarts`
//! (cells `NAS201SearchCell`, reduction blocks `ResNetBasicblock`), so that supernet
//! weights move between wgnas and PyTorch under their state-dict names.
//! `docs/nb201-parameters.md` lists every name with its shape and layout.
//!
//! | module | state-dict prefix |
//! |---|---|
//! | stem conv / BN | `stem.0` / `stem.1` |
//! | conv of candidate `k` on edge `i←j` of search cell `c` | `cells.{c}.edges.{i}<-{j}.{k}.op.1` |
//! | reduction block `c`: conv / BN of branch a, b | `cells.{c}.conv_a.op.1` / `.op.2`, `cells.{c}.conv_b.op.1` / `.op.2` |
//! | reduction block `c`: shortcut conv | `cells.{c}.downsample.1` |
//! | head BN | `lastact.0` |
//! | classifier | `classifier` |
//! | α | `arch_parameters` |
//!
//! `cells` counts the search cells and the reduction blocks together (`3N + 2` modules),
//! and `k` is the op's position in the supernet's op list (the `ModuleList` order).

/// The name of α, `[6, K]`.
pub const ARCH_PARAMETERS: &str = "arch_parameters";
/// Prefix of the stem convolution.
pub const STEM_CONV: &str = "stem.0";
/// Prefix of the stem BatchNorm.
pub const STEM_BN: &str = "stem.1";
/// Prefix of the head BatchNorm (before the ReLU and the pooling).
pub const HEAD_BN: &str = "lastact.0";
/// Prefix of the final linear layer.
pub const CLASSIFIER: &str = "classifier";

/// How a tensor starts (PyTorch's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// `U(−1/√fan_in, 1/√fan_in)`: conv and linear weights and biases.
    Uniform {
        /// Inputs feeding one output: `C_in·kh·kw` for a conv, `in` for a linear layer.
        fan_in: usize,
    },
    /// All ones (BN γ, running variance).
    Ones,
    /// All zeros (BN β, running mean).
    Zeros,
}

/// One named tensor of the model: a trained weight or a BN running statistic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// PyTorch state-dict name.
    pub name: String,
    /// Shape (OIHW for convs, `[out, in]` for linear weights, `[C]` for BN vectors).
    pub shape: Vec<usize>,
    /// Initial values.
    pub init: Init,
}

impl TensorSpec {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// One of the two ReLU-Conv-BN branches of a reduction block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Branch {
    /// ReLU → Conv 3×3 stride 2 → BN.
    A,
    /// ReLU → Conv 3×3 → BN.
    B,
}

impl Branch {
    fn name(self) -> &'static str {
        match self {
            Branch::A => "conv_a",
            Branch::B => "conv_b",
        }
    }
}

/// `{prefix}.{field}`, e.g. `stem.1.running_mean`.
pub fn field(prefix: &str, field: &str) -> String {
    format!("{prefix}.{field}")
}

/// Prefix of the conv of candidate `col` on edge `to ← from` of module `cell`:
/// `cells.{cell}.edges.{to}<-{from}.{col}.op.1` (`ReLUConvBN.op` is ReLU, Conv, BN).
pub fn edge_conv(cell: usize, to: usize, from: usize, col: usize) -> String {
    format!("cells.{cell}.edges.{to}<-{from}.{col}.op.1")
}

/// Prefix of the conv of a reduction block's branch: `cells.{cell}.conv_{a,b}.op.1`.
pub fn block_conv(cell: usize, branch: Branch) -> String {
    format!("cells.{cell}.{}.op.1", branch.name())
}

/// Prefix of the BN of a reduction block's branch: `cells.{cell}.conv_{a,b}.op.2`.
pub fn block_bn(cell: usize, branch: Branch) -> String {
    format!("cells.{cell}.{}.op.2", branch.name())
}

/// Prefix of a reduction block's shortcut conv (after the 2×2 average pool, index 0):
/// `cells.{cell}.downsample.1`.
pub fn block_shortcut(cell: usize) -> String {
    format!("cells.{cell}.downsample.1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_state_dict() {
        assert_eq!(field(&edge_conv(0, 1, 0, 3), "weight"), "cells.0.edges.1<-0.3.op.1.weight");
        assert_eq!(field(&block_bn(5, Branch::B), "running_var"), "cells.5.conv_b.op.2.running_var");
        assert_eq!(field(&block_conv(11, Branch::A), "weight"), "cells.11.conv_a.op.1.weight");
        assert_eq!(field(&block_shortcut(5), "weight"), "cells.5.downsample.1.weight");
        assert_eq!(field(HEAD_BN, "bias"), "lastact.0.bias");
    }
}
