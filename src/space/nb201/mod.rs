//! The NAS-Bench-201 search space (DESIGN.md §3): a cell of 4 nodes where node
//! i = Σ_{j<i} op_{i←j}(node j), 6 edges, and 5 candidate ops per edge, giving
//! 5⁶ = 15,625 architectures.

/// Op vocabulary, edge order and the architecture string form.
pub mod genotype;

pub use genotype::{Nb201Arch, Nb201Op, ALPHA_LEN, EDGES, NUM_EDGES, NUM_NODES, NUM_OPS};

/// The training network of one architecture (xautodl `TinyNetwork`) as a [`crate::train::FixedNet`].
pub mod net;
mod skeleton;
/// The search network (xautodl `TinyNetworkDarts`) as a [`crate::search::SearchModel`].
pub mod supernet;
/// PyTorch state-dict names of the supernet's tensors.
pub mod torch_names;

pub use net::{Nb201Net, Nb201NetConfig};
pub use supernet::{Nb201Config, Nb201Supernet, GAIN_PREFIX};
