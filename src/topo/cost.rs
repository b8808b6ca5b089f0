//! The "off" cost model: what the plain supernet ([`crate::space::nb201::Nb201Supernet`]) records
//! for one cell today, counted from the graph so that rewritten graphs can be compared with it.
//!
//! # Forward kernels (one dispatch each, as the launchers record them)
//! | module / step | kernels | launcher |
//! |---|---|---|
//! | ReLU | 1 | `eltwise::relu` |
//! | Conv (any k, with or without bias) | 1 | `conv::conv2d` (`conv_fwd`) |
//! | BatchNorm, batch statistics | 3 | `norm::batch_norm`: `stats_partial`, `stats_finalize`, `norm_fwd` |
//! | AvgPool3x3 | 1 | `pool::pool2d` (`avg_fwd`) |
//! | Identity, Zero | 0 | the candidate is the input, or the per-stage zeros constant |
//! | mixed op of an edge with K candidates | ⌈K/8⌉ | `mix::mixed_op` (`mix_fwd`, 8 candidates per pass) |
//! | cell node with m in-edges | m − 1 | `eltwise::add_var` |
//!
//! Hand count for the full NB201 cell (5 ops): per edge 2 convs × (1 + 1 + 3) + 1 pool + 1 mix
//! = 12, so 6 edges give 72, plus 0 + 1 + 2 node sums = **75 kernels**.
//!
//! # Activations kept for backward
//! Each distinct tensor a backward record saves is counted once (the tape shares tensors):
//! ReLU saves its output; Conv saves its input when weights need gradients (that is the ReLU
//! output, already counted); BatchNorm saves its input and 2·C statistics; AvgPool saves only
//! a shape; the mixed op saves every candidate output when α needs gradients (skip_connect's
//! output is its source node, counted once however many edges read it). Not counted: weights
//! (they are not activations), and the `none` zeros tensor (one per stage, shared by all cells).
//! With e = N·C·H·W, the full NB201 cell keeps per edge 2 × (3e + 2C) + e (pool output), and the
//! source nodes n0, n1, n2 once each: **45e + 24C floats**.
//!
//! Backward kernels are not modelled: their count depends on the shape (split-K reductions).

use std::collections::HashMap;
use std::ops::AddAssign;

use super::graph::{CellGraph, Module, TensorId, TensorKind};
use crate::{Error, Result};

/// Component name in errors.
const OP: &str = "topo cost";

/// Shape `[N, C, H, W]` of the feature maps of one cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellShape {
    /// Batch size N.
    pub batch: usize,
    /// Channels C.
    pub channels: usize,
    /// Height H.
    pub height: usize,
    /// Width W.
    pub width: usize,
}

impl CellShape {
    /// Elements of one feature map, N·C·H·W.
    pub fn elems(&self) -> u64 {
        (self.batch * self.channels * self.height * self.width) as u64
    }
}

/// Which gradients the backward pass computes (a DARTS step needs both; a weight-only step
/// keeps fewer mixed-op inputs, an α-only step fewer conv inputs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grads {
    /// Gradients of the weights (conv inputs are kept).
    pub weights: bool,
    /// Gradients of α (the mixed ops keep their candidate outputs).
    pub alpha: bool,
}

impl Default for Grads {
    /// Both, as in a full search step.
    fn default() -> Self {
        Grads { weights: true, alpha: true }
    }
}

/// Forward kernels by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelCounts {
    /// ReLU dispatches.
    pub relu: u64,
    /// Convolution dispatches.
    pub conv: u64,
    /// BatchNorm dispatches (3 per BN).
    pub batch_norm: u64,
    /// Average-pool dispatches.
    pub avg_pool: u64,
    /// Mixed-op dispatches.
    pub mixed_op: u64,
    /// Node-sum (add) dispatches.
    pub node_sum: u64,
}

impl KernelCounts {
    /// All forward kernels.
    pub fn total(&self) -> u64 {
        self.relu + self.conv + self.batch_norm + self.avg_pool + self.mixed_op + self.node_sum
    }
}

/// The cost of one cell (or, summed, of many) under the model of the module docs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CellCost {
    /// Forward kernels.
    pub kernels: KernelCounts,
    /// Distinct feature maps kept for backward (statistics vectors not included).
    pub saved_maps: u64,
    /// f32 values kept for backward (feature maps and BN statistics).
    pub saved_floats: u64,
}

impl CellCost {
    /// Bytes kept for backward (`4 · saved_floats`).
    pub fn saved_bytes(&self) -> u64 {
        4 * self.saved_floats
    }

    /// `self` counted `n` times (n identical cells).
    pub fn times(&self, n: u64) -> CellCost {
        let k = &self.kernels;
        CellCost {
            kernels: KernelCounts {
                relu: k.relu * n,
                conv: k.conv * n,
                batch_norm: k.batch_norm * n,
                avg_pool: k.avg_pool * n,
                mixed_op: k.mixed_op * n,
                node_sum: k.node_sum * n,
            },
            saved_maps: self.saved_maps * n,
            saved_floats: self.saved_floats * n,
        }
    }
}

impl AddAssign for CellCost {
    fn add_assign(&mut self, o: CellCost) {
        let (k, ok) = (&mut self.kernels, o.kernels);
        k.relu += ok.relu;
        k.conv += ok.conv;
        k.batch_norm += ok.batch_norm;
        k.avg_pool += ok.avg_pool;
        k.mixed_op += ok.mixed_op;
        k.node_sum += ok.node_sum;
        self.saved_maps += o.saved_maps;
        self.saved_floats += o.saved_floats;
    }
}

/// Identity of a tensor while counting, so a tensor saved by several records counts once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Node(TensorId),
    /// Output of module `pos` of candidate `cand` on edge `edge`.
    Out {
        edge: usize,
        cand: usize,
        pos: usize,
    },
    /// The statistics of the n-th BatchNorm (never shared).
    Stats(usize),
    /// The per-stage `none` constant (not counted).
    Zeros,
}

/// A value flowing through a chain: its identity and spatial size.
#[derive(Debug, Clone, Copy)]
struct Value {
    key: Key,
    h: usize,
    w: usize,
}

/// Accumulates kernels and saved tensors.
struct Counter {
    shape: CellShape,
    grads: Grads,
    kernels: KernelCounts,
    /// Saved tensor → (floats, is a feature map).
    saved: HashMap<Key, (u64, bool)>,
    /// BatchNorms counted so far (names their statistics).
    bns: usize,
}

impl Counter {
    fn elems(&self, v: Value) -> u64 {
        (self.shape.batch * self.shape.channels * v.h * v.w) as u64
    }

    fn save(&mut self, v: Value) {
        if v.key != Key::Zeros {
            let n = self.elems(v);
            self.saved.insert(v.key, (n, true));
        }
    }

    /// Counts module `m` applied to `x`, whose output is named `out`; returns the output.
    fn module(&mut self, m: Module, x: Value, out: Key) -> Result<Value> {
        let y = Value { key: out, ..x };
        Ok(match m {
            Module::Relu => {
                self.kernels.relu += 1;
                self.save(y);
                y
            }
            Module::Conv { k, stride, .. } => {
                if k == 0 || stride == 0 {
                    return Err(Error::invalid(OP, format!("{m}: kernel size and stride must be at least 1")));
                }
                self.kernels.conv += 1;
                if self.grads.weights {
                    self.save(x);
                }
                Value { h: x.h.div_ceil(stride), w: x.w.div_ceil(stride), ..y }
            }
            Module::BatchNorm { .. } => {
                self.kernels.batch_norm += 3;
                self.save(x);
                self.saved.insert(Key::Stats(self.bns), (2 * self.shape.channels as u64, false));
                self.bns += 1;
                y
            }
            Module::AvgPool3x3 { .. } => {
                self.kernels.avg_pool += 1;
                y
            }
            Module::Identity => x,
            Module::Zero => Value { key: Key::Zeros, ..x },
        })
    }

    fn finish(self) -> CellCost {
        let saved_maps = self.saved.values().filter(|(_, map)| *map).count() as u64;
        let saved_floats = self.saved.values().map(|(n, _)| n).sum();
        CellCost { kernels: self.kernels, saved_maps, saved_floats }
    }
}

fn check_shape(shape: &CellShape) -> Result<()> {
    let dims = [shape.batch, shape.channels, shape.height, shape.width];
    if dims.contains(&0) {
        return Err(Error::invalid(OP, format!("cell shape {dims:?} has a zero dimension")));
    }
    Ok(())
}

/// The value of node `id`; a derived node is counted here, so call this once per node.
fn node_value(graph: &CellGraph, c: &mut Counter, id: TensorId, shape: &CellShape) -> Result<Value> {
    let node = graph.node(id).ok_or_else(|| Error::invalid(OP, format!("edge reads missing node {id}")))?;
    let v = Value { key: Key::Node(id), h: shape.height, w: shape.width };
    if let TensorKind::Derived { input, module } = node.kind {
        // Derived nodes are parameter-free stride-1 modules: they keep their input's shape.
        return c.module(module, Value { key: Key::Node(input), ..v }, Key::Node(id));
    }
    Ok(v)
}

/// The cost of one forward (and the activations its backward keeps) of the cell `graph` at `shape`.
pub fn cell_cost(graph: &CellGraph, shape: &CellShape, grads: Grads) -> Result<CellCost> {
    check_shape(shape)?;
    let mut c = Counter { shape: *shape, grads, kernels: KernelCounts::default(), saved: HashMap::new(), bns: 0 };
    let mut seen_sources: Vec<TensorId> = Vec::new();
    for (e, edge) in graph.edges.iter().enumerate() {
        if graph.node(edge.to).is_none() {
            return Err(Error::invalid(OP, format!("edge {e} adds into missing node {}", edge.to)));
        }
        let src = if seen_sources.contains(&edge.from) {
            Value { key: Key::Node(edge.from), h: shape.height, w: shape.width }
        } else {
            seen_sources.push(edge.from);
            node_value(graph, &mut c, edge.from, shape)?
        };
        let mut outs = Vec::with_capacity(edge.candidates.len());
        for (ci, cand) in edge.candidates.iter().enumerate() {
            let mut v = src;
            for (pos, &m) in cand.modules.iter().enumerate() {
                v = c.module(m, v, Key::Out { edge: e, cand: ci, pos })?;
            }
            outs.push(v);
        }
        c.kernels.mixed_op += edge.candidates.len().div_ceil(8) as u64;
        if grads.alpha {
            outs.into_iter().for_each(|v| c.save(v));
        }
    }
    for (i, _) in graph.nodes.iter().enumerate() {
        let m = graph.in_edges(TensorId(i)).len() as u64;
        c.kernels.node_sum += m.saturating_sub(1);
    }
    Ok(c.finish())
}

/// The cost of all search cells of the network at batch size `batch`: `cells_per_stage` cells at
/// each of the three stages `(C, S), (2C, S/2), (4C, S/4)`. Stem, reduction blocks and head are
/// not included.
pub fn network_cost(graph: &CellGraph, batch: usize, grads: Grads) -> Result<CellCost> {
    let mut total = CellCost::default();
    for s in 0..3 {
        let size = graph.input_size >> s;
        let shape = CellShape { batch, channels: graph.channels << s, height: size, width: size };
        total += cell_cost(graph, &shape, grads)?.times(graph.cells_per_stage as u64);
    }
    Ok(total)
}
