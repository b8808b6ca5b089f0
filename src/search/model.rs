//! The contract between search strategies and supernets.
//!
//! A strategy never dispatches kernels itself: it asks the model to record a forward
//! pass on a tape (with the weights and α given as tape variables, so it can choose
//! which of them are tracked, or substitute unrolled weights), computes losses with the
//! loss ops, asks the tape for gradients, and updates parameters through the optimizers.

use crate::error::Result;
use crate::tensor::tape::{Tape, Var};
use crate::tensor::Tensor;

/// How the architecture parameters weight the candidate ops of each edge.
#[derive(Debug, Clone)]
pub enum ArchMode {
    /// `w = softmax(α_edge)`; every candidate runs (DARTS, MiLeNAS, β-DARTS).
    Softmax,
    /// GDAS: one op per edge runs. `hardwts` is a `[E, K]` tape value whose forward value
    /// is one-hot at `index[e]` and whose gradient flows to α through the Gumbel softmax
    /// (straight-through); only candidate `index[e]` of edge `e` is evaluated.
    Gumbel {
        /// Straight-through weights, `[E, K]` (one set of α: E edges × K ops).
        hardwts: Var,
        /// The sampled op of each edge (column index into the model's op list).
        index: Vec<usize>,
    },
}

/// A weight-sharing supernet that strategies can search.
pub trait SearchModel {
    /// Short name of the search space, e.g. `nb201`.
    fn space(&self) -> &'static str;

    /// The network weights (trained on the train split), in a fixed order.
    fn weights(&self) -> &[Tensor];

    /// Names of the weights, in the order of [`SearchModel::weights`].
    fn weight_names(&self) -> &[String];

    /// The architecture parameters: NB201 has one tensor `[6, K]`.
    fn alphas(&self) -> &[Tensor];

    /// Candidate op names (the columns of each α tensor), in order.
    fn op_names(&self) -> Vec<&'static str>;

    /// Records the forward pass of a batch `x` (NCHW) and returns the logits `[N, classes]`.
    /// `w` and `a` are tape values for [`SearchModel::weights`] and [`SearchModel::alphas`]
    /// (tracked or constant, original or substituted tensors of the same shapes).
    /// In training mode, BatchNorm layers with running statistics update them.
    fn forward(&self, tape: &Tape, x: &Tensor, w: &[Var], a: &[Var], mode: &ArchMode, training: bool) -> Result<Var>;

    /// Buffers that are state but not trained (BatchNorm running statistics), with names,
    /// for checkpoints.
    fn buffers(&self) -> Vec<(String, Tensor)>;
}
