//! A drawable form of a cell graph for the GUI: node positions in `[0, 1]²` and the edges
//! between them, as plain data (the GUI draws it; nothing here depends on egui).
//!
//! Cell nodes sit left to right on the middle line (`y = 0.5`), evenly spaced over
//! `x ∈ [0.1, 0.9]`. A derived node sits below its input, shifted right by a quarter of the
//! node spacing (several derived nodes of one input stack downwards). An edge that skips
//! `s` cell nodes gets `bend = s` so the GUI can arc it around the nodes in between.

use super::graph::{CellGraph, TensorId, TensorKind};

/// Margin kept free on the left and right.
const MARGIN: f32 = 0.1;

/// A node's place in the drawing.
#[derive(Debug, Clone, PartialEq)]
pub struct NodePos {
    /// Index into [`CellGraph::nodes`].
    pub id: usize,
    /// Label to draw, e.g. `n0`.
    pub label: String,
    /// Horizontal position in `[0, 1]` (0 = left).
    pub x: f32,
    /// Vertical position in `[0, 1]` (0 = top).
    pub y: f32,
    /// Whether it is a cell node (else a derived value).
    pub cell_node: bool,
}

/// An edge to draw from `from` to `to` (node ids).
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeLine {
    /// Index into [`CellGraph::edges`].
    pub edge: usize,
    /// Source node id.
    pub from: usize,
    /// Destination node id.
    pub to: usize,
    /// How many cell nodes it passes over (0 for neighbours): how far to arc it.
    pub bend: f32,
    /// The candidates' names, for a tooltip.
    pub candidates: Vec<String>,
}

/// Positions and edges of a graph.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Layout {
    /// One entry per graph node, in node order.
    pub nodes: Vec<NodePos>,
    /// One entry per graph edge, in edge order.
    pub edges: Vec<EdgeLine>,
}

/// The cell-node index a node is drawn next to (itself, or a derived node's root input).
fn anchor(graph: &CellGraph, id: TensorId) -> usize {
    let mut cur = id;
    // Bounded walk, so a malformed cycle cannot hang the UI.
    for _ in 0..=graph.nodes.len() {
        match graph.node(cur).map(|n| n.kind) {
            Some(TensorKind::CellNode(i)) => return i,
            Some(TensorKind::Derived { input, .. }) => cur = input,
            None => break,
        }
    }
    0
}

/// The layout of `graph` (deterministic: it depends only on the graph).
pub fn layout(graph: &CellGraph) -> Layout {
    let cells = graph.num_cell_nodes().max(1);
    let step = if cells > 1 { (1.0 - 2.0 * MARGIN) / (cells - 1) as f32 } else { 0.0 };
    let cell_x = |i: usize| if cells > 1 { MARGIN + step * i as f32 } else { 0.5 };
    let mut below = vec![0usize; cells];
    let nodes = graph
        .nodes
        .iter()
        .enumerate()
        .map(|(id, node)| {
            let (x, y, cell_node) = match node.kind {
                TensorKind::CellNode(i) => (cell_x(i.min(cells - 1)), 0.5, true),
                TensorKind::Derived { .. } => {
                    let a = anchor(graph, TensorId(id)).min(cells - 1);
                    below[a] += 1;
                    let y = (0.5 + 0.15 * below[a] as f32).min(0.95);
                    ((cell_x(a) + step * 0.25).min(0.95), y, false)
                }
            };
            NodePos { id, label: node.label.clone(), x, y, cell_node }
        })
        .collect();
    let edges = graph
        .edges
        .iter()
        .enumerate()
        .map(|(edge, e)| {
            let (a, b) = (anchor(graph, e.from), anchor(graph, e.to));
            EdgeLine {
                edge,
                from: e.from.0,
                to: e.to.0,
                bend: b.saturating_sub(a).saturating_sub(1) as f32,
                candidates: e.candidates.iter().map(|c| c.name.clone()).collect(),
            }
        })
        .collect();
    Layout { nodes, edges }
}
