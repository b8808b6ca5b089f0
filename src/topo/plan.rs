//! The execution plan: the steps a supernet runs for one cell, after the passes of a
//! [`Passes`] set have rewritten the [`CellGraph`] (DESIGN.md §4).
//!
//! The supernet executes the plan step by step; `wgnas topo --passes` prints it, and the cost
//! model counts its kernels and saved bytes. Steps are emitted source node by source node
//! ("push" order): once node j is complete, everything that reads it runs and adds into the
//! later nodes, so node j's shared modules are computed while it is hot and every node's
//! in-edges still add in α row order.
//!
//! Values are numbered: `ValueId(i)` for `i < nodes` is cell node i; the others are the
//! outputs of steps. A conv step stacks `parts` (candidate convs or merged kernels) along the
//! output channels; a mix term reads one part's channel slice of such a value.

use std::collections::BTreeMap;
use std::fmt;

use super::graph::{CellGraph, Module, TensorKind};
use super::passes::{Pass, Passes};
use crate::error::{Error, Result};

/// A value of the plan: a cell node or a step's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub usize);

impl fmt::Display for ValueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// One part of a conv step: `C` output channels computed with one kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvPart {
    /// The conv of candidate `cand` (α column `col`) on edge `edge`, with its bias.
    Candidate {
        /// Edge index (α row).
        edge: usize,
        /// Candidate index within the edge.
        cand: usize,
        /// Its α column.
        col: usize,
        /// Its kernel size.
        k: usize,
    },
    /// The merged kernel `Σ_m w̃_m·pad(K̂_m)` of edge `edge`'s conv group (no bias).
    Merged {
        /// Edge index (α row).
        edge: usize,
    },
}

/// Where a mix term's weight comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weights {
    /// `softmax(α[edge])`: columns are α's.
    Softmax,
    /// The nested weights `[R, K+1]` of the conv group (pass 5): column K is `W_S`, the group
    /// columns hold `w̃`, the others `w`.
    Nested,
}

/// One term of a mix: `weight(col) · slice(part) of value`, or `none` (no value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanTerm {
    /// The value and the part (channel slice) read; `None` for the zero op.
    pub source: Option<(ValueId, usize)>,
    /// The weight column.
    pub col: usize,
}

/// How an edge's output reaches its destination node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A new edge tensor, then added to the node (the node *is* it when first).
    Fresh,
    /// Written straight into the node's accumulator (pass 4).
    Accumulate,
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `out = ReLU(input)`.
    Relu {
        /// Input value.
        input: ValueId,
        /// Output value.
        out: ValueId,
    },
    /// `out = AvgPool3x3(input)` (stride 1, padding excluded from the divisor).
    Pool {
        /// Input value.
        input: ValueId,
        /// Output value.
        out: ValueId,
    },
    /// `out = BN(Conv_k(input, [parts stacked on output channels]))`, BN non-affine with
    /// batch statistics (per channel, so one wide BN equals one BN per part).
    ConvBn {
        /// Input value.
        input: ValueId,
        /// Kernel size (parts of smaller kernels are zero-padded merged kernels only).
        k: usize,
        /// The parts, `C` output channels each.
        parts: Vec<ConvPart>,
        /// Output value, `[N, parts·C, H, W]`.
        out: ValueId,
    },
    /// Edge `edge` mixes its terms into node `to`.
    Mix {
        /// Edge index (α row).
        edge: usize,
        /// Destination cell node.
        to: usize,
        /// Weight source.
        weights: Weights,
        /// The terms; `none` appears only in the plain (`off`) plan, as the zeros tensor.
        terms: Vec<PlanTerm>,
        /// How the result reaches the node.
        target: Target,
    },
    /// Edge `edge`'s skip and avg-pool candidates as one depthwise 3×3 (pass 6), into node `to`.
    SkipPool {
        /// Edge index (α row).
        edge: usize,
        /// Input value (the source node).
        input: ValueId,
        /// Destination cell node.
        to: usize,
        /// Weight column of skip, if the edge has it.
        skip: Option<usize>,
        /// Weight column of the avg pool, if the edge has it.
        pool: Option<usize>,
        /// Weight source.
        weights: Weights,
        /// How the result reaches the node.
        target: Target,
    },
    /// GDAS: only the sampled candidate `col` of edge `edge` runs; `value` is its output
    /// (`None` for `none`).
    Sampled {
        /// Edge index (α row).
        edge: usize,
        /// Destination cell node.
        to: usize,
        /// The sampled column.
        col: usize,
        /// The candidate's output value.
        value: Option<(ValueId, usize)>,
    },
}

/// The steps of one cell and the number of values they use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellPlan {
    /// The passes it was built with.
    pub passes: Passes,
    /// Number of cell nodes (values `0..nodes`).
    pub nodes: usize,
    /// Total number of values.
    pub values: usize,
    /// The steps, in execution order.
    pub steps: Vec<Step>,
    /// Whether any step uses the nested weights (computed once per forward pass).
    pub nested: bool,
    /// The α columns of the conv group merged by pass 5 (empty without it).
    pub group: Vec<usize>,
}

/// What one candidate's chain is, in the shapes the plan knows how to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Zero,
    Skip,
    Pool,
    /// ReLU → Conv k×k → non-affine BN.
    Conv(usize),
}

fn kind(modules: &[Module]) -> Result<Kind> {
    match modules {
        [Module::Zero] => Ok(Kind::Zero),
        [Module::Identity] => Ok(Kind::Skip),
        [Module::AvgPool3x3 { count_include_pad: false }] => Ok(Kind::Pool),
        [Module::Relu, Module::Conv { k, stride: 1, .. }, Module::BatchNorm { affine: false }] => Ok(Kind::Conv(*k)),
        other => {
            let chain: Vec<String> = other.iter().map(|m| m.to_string()).collect();
            Err(Error::invalid("topo plan", format!("no execution rule for the chain [{}]", chain.join(" → "))))
        }
    }
}

/// A term before its conv group has a value: (conv group, part) or a value, and the column.
type RawTerm = (Option<(usize, usize)>, Option<ValueId>, usize);

/// Who shares one ReLU (or pool) evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Scope {
    Node,
    Edge(usize),
    Candidate(usize, usize),
}

struct Builder {
    steps: Vec<Step>,
    values: usize,
    relus: BTreeMap<(usize, Scope), ValueId>,
    pools: BTreeMap<(usize, Scope), ValueId>,
}

impl Builder {
    fn fresh(&mut self) -> ValueId {
        self.values += 1;
        ValueId(self.values - 1)
    }

    fn relu(&mut self, src: usize, scope: Scope) -> ValueId {
        if let Some(&v) = self.relus.get(&(src, scope)) {
            return v;
        }
        let out = self.fresh();
        self.steps.push(Step::Relu { input: ValueId(src), out });
        self.relus.insert((src, scope), out);
        out
    }

    fn pool(&mut self, src: usize, scope: Scope) -> ValueId {
        if let Some(&v) = self.pools.get(&(src, scope)) {
            return v;
        }
        let out = self.fresh();
        self.steps.push(Step::Pool { input: ValueId(src), out });
        self.pools.insert((src, scope), out);
        out
    }
}

/// The α columns of the candidates of each kind, for edge `e` (every NB201 edge has the same).
fn columns(graph: &CellGraph, e: usize) -> Result<Vec<(usize, Kind)>> {
    graph.edges[e].candidates.iter().map(|c| Ok((c.column, kind(&c.modules)?))).collect()
}

fn cell_node(graph: &CellGraph, id: super::graph::TensorId) -> Result<usize> {
    match graph.node(id).map(|n| n.kind) {
        Some(TensorKind::CellNode(i)) => Ok(i),
        _ => Err(Error::invalid("topo plan", format!("edge endpoint {id} is not a cell node"))),
    }
}

/// The plan of one cell of `graph` under `passes`. With `sampled` (GDAS: one column per edge)
/// only the sampled candidates run and only the sharing passes apply: there is nothing to merge
/// on a one-op path, and a sampled conv's output stays whole (not batched) for the GDAS edge op.
pub fn plan(graph: &CellGraph, passes: Passes, sampled: Option<&[usize]>) -> Result<CellPlan> {
    let nodes = graph.num_cell_nodes();
    if let Some(s) = sampled {
        if s.len() != graph.edges.len() {
            return Err(Error::shape(
                "topo plan",
                format!("{} sampled columns for {} edges", s.len(), graph.edges.len()),
            ));
        }
    }
    let mut b = Builder { steps: Vec::new(), values: nodes, relus: BTreeMap::new(), pools: BTreeMap::new() };
    let merge_convs = passes.has(Pass::MergeConvs) && sampled.is_none();
    let merge_linear = passes.has(Pass::MergeLinear) && sampled.is_none();
    // A sampled path is one op: its conv output must stay a whole tensor for the GDAS edge op.
    let batch = passes.has(Pass::BatchConvs) && sampled.is_none();
    let target = if passes.has(Pass::InplaceMix) { Target::Accumulate } else { Target::Fresh };
    let weights = if merge_convs { Weights::Nested } else { Weights::Softmax };
    let relu_scope = |e: usize, c: usize| {
        if passes.has(Pass::ShareRelu) {
            Scope::Node
        } else if passes.has(Pass::SharePrefix) {
            Scope::Edge(e)
        } else {
            Scope::Candidate(e, c)
        }
    };
    let pool_scope = |e: usize| if passes.has(Pass::ShareRelu) { Scope::Node } else { Scope::Edge(e) };
    let mut group: Vec<usize> = Vec::new();

    for src in 0..nodes {
        let out_edges: Vec<usize> =
            (0..graph.edges.len()).filter(|&e| cell_node(graph, graph.edges[e].from).ok() == Some(src)).collect();
        // Conv parts of every out-edge, grouped by (input value, kernel size); then one conv
        // step per group when batching, else per part.
        let mut convs: Vec<(ValueId, usize, Vec<ConvPart>)> = Vec::new();
        // Per edge: its terms, with conv terms as (group index, part index) filled in later.
        let mut edge_terms: Vec<(usize, Vec<RawTerm>, Option<Step>)> = Vec::new();
        for &e in &out_edges {
            let to = cell_node(graph, graph.edges[e].to)?;
            let cols = columns(graph, e)?;
            let mut terms = Vec::new();
            let mut skip_pool: Option<Step> = None;
            let conv_cols: Vec<(usize, usize, usize)> = cols
                .iter()
                .enumerate()
                .filter_map(|(c, &(col, k))| match k {
                    Kind::Conv(ks) => Some((c, col, ks)),
                    _ => None,
                })
                .collect();
            let chosen = sampled.map(|s| s[e]);
            let mut add_conv = |input: ValueId, part: ConvPart, k: usize| {
                let gi = match convs.iter().position(|(v, ks, _)| *v == input && *ks == k) {
                    Some(gi) if batch => gi,
                    _ => {
                        convs.push((input, k, Vec::new()));
                        convs.len() - 1
                    }
                };
                convs[gi].2.push(part);
                (gi, convs[gi].2.len() - 1)
            };
            if merge_convs && !conv_cols.is_empty() {
                group = conv_cols.iter().map(|&(_, col, _)| col).collect();
                let k = conv_cols.iter().map(|&(_, _, k)| k).max().unwrap_or(1);
                let input = b.relu(src, relu_scope(e, conv_cols[0].0));
                let slot = add_conv(input, ConvPart::Merged { edge: e }, k);
                terms.push((Some(slot), None, cols.len()));
            }
            let has = |kind: Kind| cols.iter().find(|&&(_, k)| k == kind).map(|&(col, _)| col);
            if merge_linear && (has(Kind::Skip).is_some() || has(Kind::Pool).is_some()) {
                skip_pool = Some(Step::SkipPool {
                    edge: e,
                    input: ValueId(src),
                    to,
                    skip: has(Kind::Skip),
                    pool: has(Kind::Pool),
                    weights,
                    target,
                });
            }
            for (c, &(col, k)) in cols.iter().enumerate() {
                if chosen.is_some_and(|s| s != col) {
                    continue;
                }
                match k {
                    Kind::Zero if passes.is_off() || chosen.is_some() => terms.push((None, None, col)),
                    Kind::Zero => {}
                    Kind::Skip if skip_pool.is_none() => terms.push((None, Some(ValueId(src)), col)),
                    Kind::Pool if skip_pool.is_none() => {
                        let v = b.pool(src, pool_scope(e));
                        terms.push((None, Some(v), col));
                    }
                    Kind::Skip | Kind::Pool => {}
                    Kind::Conv(_) if merge_convs => {}
                    Kind::Conv(ks) => {
                        let input = b.relu(src, relu_scope(e, c));
                        let slot = add_conv(input, ConvPart::Candidate { edge: e, cand: c, col, k: ks }, ks);
                        terms.push((Some(slot), None, col));
                    }
                }
            }
            edge_terms.push((e, terms, skip_pool));
        }
        let mut conv_values = Vec::with_capacity(convs.len());
        for (input, k, parts) in convs {
            let out = b.fresh();
            b.steps.push(Step::ConvBn { input, k, parts, out });
            conv_values.push(out);
        }
        for (e, terms, skip_pool) in edge_terms {
            let to = cell_node(graph, graph.edges[e].to)?;
            let resolve = |(slot, value, col): RawTerm| PlanTerm {
                source: match (slot, value) {
                    (Some((gi, part)), _) => Some((conv_values[gi], part)),
                    (None, Some(v)) => Some((v, 0)),
                    (None, None) => None,
                },
                col,
            };
            let terms: Vec<PlanTerm> = terms.into_iter().map(resolve).collect();
            if let Some(s) = sampled {
                let value = terms.first().and_then(|t| t.source);
                b.steps.push(Step::Sampled { edge: e, to, col: s[e], value });
                continue;
            }
            if let Some(sp) = skip_pool {
                b.steps.push(sp);
            }
            if !terms.is_empty() {
                b.steps.push(Step::Mix { edge: e, to, weights, terms, target });
            }
        }
    }
    Ok(CellPlan { passes, nodes, values: b.values, nested: merge_convs && !group.is_empty(), group, steps: b.steps })
}

impl fmt::Display for ConvPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ConvPart::Candidate { edge, col, k, .. } => write!(f, "e{edge}:conv{k}x{k}[col {col}]"),
            ConvPart::Merged { edge } => write!(f, "e{edge}:merged"),
        }
    }
}

impl fmt::Display for Step {
    /// One line per step, e.g. `v7 = BN(Conv3x3(v4; e0:conv3x3[col 3], e1:conv3x3[col 3]))`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let node = |i: usize| format!("n{i}");
        let term = |t: &PlanTerm| match t.source {
            None => format!("w{}·0", t.col),
            Some((v, 0)) if !matches!(self, Step::Sampled { .. }) => format!("w{}·{v}", t.col),
            Some((v, p)) => format!("w{}·{v}[{p}]", t.col),
        };
        match self {
            Step::Relu { input, out } => write!(f, "{out} = ReLU({input})"),
            Step::Pool { input, out } => write!(f, "{out} = AvgPool3x3({input})"),
            Step::ConvBn { input, k, parts, out } => {
                let ps: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
                write!(f, "{out} = BN(Conv{k}x{k}({input}; {}))", ps.join(", "))
            }
            Step::Mix { edge, to, weights, terms, target } => {
                let ts: Vec<String> = terms.iter().map(term).collect();
                let op = if *target == Target::Accumulate { "+=" } else { "⊕" };
                let w = if *weights == Weights::Nested { " (nested w)" } else { "" };
                write!(f, "{} {op} e{edge}: {}{w}", node(*to), ts.join(" + "))
            }
            Step::SkipPool { edge, input, to, skip, pool, target, .. } => {
                let op = if *target == Target::Accumulate { "+=" } else { "⊕" };
                let a = skip.map_or("0".to_string(), |c| format!("w{c}"));
                let bb = pool.map_or("0".to_string(), |c| format!("w{c}"));
                write!(f, "{} {op} e{edge}: DWConv3x3({input}; a={a}, b={bb})", node(*to))
            }
            Step::Sampled { edge, to, col, value } => match value {
                Some((v, p)) => write!(f, "{} ⊕ e{edge}: h{col}·{v}[{p}] (sampled)", node(*to)),
                None => write!(f, "{} ⊕ e{edge}: none (sampled)", node(*to)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::nb201::Nb201Config;

    fn graph() -> CellGraph {
        CellGraph::nb201(&Nb201Config::default()).unwrap()
    }

    fn count(p: &CellPlan, f: impl Fn(&Step) -> bool) -> usize {
        p.steps.iter().filter(|s| f(s)).count()
    }

    #[test]
    fn off_runs_every_candidate_separately() {
        let p = plan(&graph(), Passes::OFF, None).unwrap();
        assert_eq!(count(&p, |s| matches!(s, Step::Relu { .. })), 12);
        assert_eq!(count(&p, |s| matches!(s, Step::ConvBn { .. })), 12);
        assert_eq!(count(&p, |s| matches!(s, Step::Pool { .. })), 6);
        let mixes = count(&p, |s| matches!(s, Step::Mix { terms, target: Target::Fresh, .. } if terms.len() == 5));
        assert_eq!(mixes, 6);
    }

    #[test]
    fn exact_shares_and_batches() {
        let p = plan(&graph(), Passes::EXACT, None).unwrap();
        // One ReLU and one pool per source node; one wide conv per (node, kernel size).
        assert_eq!(count(&p, |s| matches!(s, Step::Relu { .. })), 3);
        assert_eq!(count(&p, |s| matches!(s, Step::Pool { .. })), 3);
        assert_eq!(count(&p, |s| matches!(s, Step::ConvBn { .. })), 6);
        let wide = count(&p, |s| matches!(s, Step::ConvBn { parts, .. } if parts.len() == 3));
        assert_eq!(wide, 2, "node 0 has three out-edges");
        // `none` does no work: 4 terms per edge, written into the node.
        let mixes = count(&p, |s| matches!(s, Step::Mix { terms, target: Target::Accumulate, .. } if terms.len() == 4));
        assert_eq!(mixes, 6);
    }

    #[test]
    fn each_exact_pass_alone_changes_only_its_part() {
        let g = graph();
        let relus = |p: Passes| count(&plan(&g, p, None).unwrap(), |s| matches!(s, Step::Relu { .. }));
        assert_eq!(relus(Passes::of(&[Pass::SharePrefix])), 6);
        assert_eq!(relus(Passes::of(&[Pass::ShareRelu])), 3);
        let convs = |p: Passes| count(&plan(&g, p, None).unwrap(), |s| matches!(s, Step::ConvBn { .. }));
        // Batching needs one input shared by same-size convs: per-candidate or per-edge ReLUs
        // (an edge's two convs differ in size) leave nothing to batch.
        assert_eq!(convs(Passes::of(&[Pass::BatchConvs])), 12);
        assert_eq!(convs(Passes::of(&[Pass::BatchConvs, Pass::SharePrefix])), 12);
        assert_eq!(convs(Passes::of(&[Pass::BatchConvs, Pass::ShareRelu])), 6);
    }

    #[test]
    fn full_merges_convs_and_linear_ops() {
        let p = plan(&graph(), Passes::FULL, None).unwrap();
        assert!(p.nested);
        assert_eq!(p.group, vec![2, 3]);
        assert_eq!(count(&p, |s| matches!(s, Step::ConvBn { k: 3, .. })), 3, "one wide merged conv per node");
        assert_eq!(count(&p, |s| matches!(s, Step::SkipPool { .. })), 6);
        assert_eq!(count(&p, |s| matches!(s, Step::Pool { .. })), 0);
        let mixes = count(&p, |s| matches!(s, Step::Mix { terms, .. } if terms.len() == 1 && terms[0].col == 5));
        assert_eq!(mixes, 6);
    }

    #[test]
    fn sampled_paths_only() {
        let p = plan(&graph(), Passes::FULL, Some(&[3, 2, 0, 1, 4, 3])).unwrap();
        assert!(!p.nested);
        assert_eq!(count(&p, |s| matches!(s, Step::Sampled { .. })), 6);
        // Convs sampled on edges 1←0 (3×3), 2←0 (1×1) and 3←2 (3×3): node 0's two share a ReLU.
        assert_eq!(count(&p, |s| matches!(s, Step::Relu { .. })), 2);
        assert_eq!(count(&p, |s| matches!(s, Step::ConvBn { .. })), 3);
        assert_eq!(count(&p, |s| matches!(s, Step::Pool { .. })), 1);
    }
}
