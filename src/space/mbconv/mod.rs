//! The MobileNet-like block space (ProxylessNAS / DNA style): a stem, blocks of MBConv
//! layers, and a head. Each layer chooses an inverted-residual MBConv with expansion 3 or 6
//! and depthwise kernel 3, 5 or 7 (with squeeze-and-excitation), or `skip` (not as a
//! block's first layer): 6 choices for a first layer and 7 for the others, so a block of L
//! layers has 6·7^(L−1) paths. `docs/mbconv.md` describes the space and its tensor names.

/// Op vocabulary and the architecture string.
pub mod arch;
/// One block of the space with every candidate: the per-block supernet DNA distils.
pub mod block;
/// The macro skeleton (widths, strides, layers per block).
pub mod config;
/// One layer: specs, counts, forward; BatchNorm modes.
pub mod layer;
/// A fixed network of the space ([`crate::train::model::FixedNet`]).
pub mod net;

pub use arch::{candidates, MbArch, MbOp};
pub use block::MbBlockSupernet;
pub use config::MbSpace;
pub use layer::{BnMode, MbLayer};
pub use net::MbNet;
