//! The supernet's cells run through a TopoNAS execution plan ([`crate::topo::plan`]) when any
//! pass is on. The plain (`off`) cell in the parent module is the reference these steps are
//! tested against: exact pass sets must give the same logits, loss and gradients.

use super::{internal, Consts, Mixing, Nb201Supernet, Pass};
use crate::error::Result;
use crate::ops::conv::{self, Conv2dParams};
use crate::ops::mix::{self, gdas, TermVar, Weighting};
use crate::ops::norm::{self, BnConfig};
use crate::ops::pool::{self, Pool2d};
use crate::ops::{eltwise, reparam};
use crate::tensor::tape::Var;
use crate::topo::{CellPlan, ConvPart, Step, Target, ValueId, Weights};

/// Per-forward inputs of planned cells: the plan and, with pass 5, the nested weights.
pub(super) struct Planned<'a> {
    /// The steps of every cell of this forward pass.
    pub plan: &'a CellPlan,
    /// `[6, K+1]` nested weights (only when the plan merges convs).
    pub nested: Option<Var>,
    /// `softmax(α)` by rows, for skip-pool steps without nested weights (their kernel reads
    /// raw weights).
    pub probs: Option<Var>,
}

impl Nb201Supernet {
    /// One search cell executed step by step; returns the last cell node.
    pub(super) fn planned_cell(
        &self,
        p: &Pass,
        x: Var,
        convs: &[Vec<Option<usize>>],
        pl: &Planned,
        c: &Consts,
    ) -> Result<Var> {
        let plan = pl.plan;
        let mut vals: Vec<Option<Var>> = vec![None; plan.values];
        vals[0] = Some(x);
        let get = |vals: &[Option<Var>], v: ValueId| -> Result<Var> {
            vals.get(v.0).cloned().flatten().ok_or_else(|| internal("plan reads a value not yet computed"))
        };
        let t = p.tape;
        for step in &plan.steps {
            match step {
                Step::Relu { input, out } => vals[out.0] = Some(eltwise::relu(t, &get(&vals, *input)?)?),
                Step::Pool { input, out } => {
                    vals[out.0] = Some(pool::pool2d(t, &get(&vals, *input)?, &Pool2d::avg(3, 1, 1))?)
                }
                Step::ConvBn { input, k, parts, out } => {
                    let (w, b) = self.stacked_kernel(p, convs, parts, *k, pl)?;
                    let h = conv::conv2d(t, &get(&vals, *input)?, &w, b.as_ref(), &Conv2dParams::same(*k))?;
                    // The BN keeps its output x̂, which the mix keeps anyway: no extra tensor.
                    vals[out.0] = Some(norm::batch_norm_keep_output(t, &h, BnConfig::default())?);
                }
                Step::Mix { edge, to, weights, terms, target } => {
                    let (wv, weighting) = self.mix_weights(p, *weights, pl)?;
                    let channels = c.shape[1];
                    let xs: Vec<(Var, usize, usize)> = terms
                        .iter()
                        .map(|term| {
                            let (v, part) = term.source.ok_or_else(|| internal("a planned mix with a zero term"))?;
                            Ok((get(&vals, v)?, part * channels, term.col))
                        })
                        .collect::<Result<_>>()?;
                    let tv: Vec<TermVar> =
                        xs.iter().map(|(x, off, col)| TermVar { x, channel_offset: *off, col: *col }).collect();
                    vals[*to] = Some(match target {
                        Target::Accumulate => {
                            mix::term_mix(t, weighting, &wv, *edge, channels, vals[*to].as_ref(), &tv)?
                        }
                        Target::Fresh => {
                            let y = mix::term_mix(t, weighting, &wv, *edge, channels, None, &tv)?;
                            add_into(p, vals[*to].take(), y)?
                        }
                    });
                }
                Step::SkipPool { edge, input, to, skip, pool, weights, target } => {
                    let wv = match weights {
                        Weights::Nested => self.mix_weights(p, *weights, pl)?.0,
                        Weights::Softmax => pl.probs.clone().ok_or_else(|| internal("softmax(α) missing"))?,
                    };
                    let x = get(&vals, *input)?;
                    vals[*to] = Some(match target {
                        Target::Accumulate => {
                            reparam::skip_avgpool_acc(t, &wv, *edge, *skip, *pool, &x, vals[*to].as_ref())?
                        }
                        Target::Fresh => {
                            let y = reparam::skip_avgpool(t, &wv, *edge, *skip, *pool, &x)?;
                            add_into(p, vals[*to].take(), y)?
                        }
                    });
                }
                Step::Sampled { edge, to, col, value } => {
                    let Mixing::Gumbel { hardwts, .. } = p.mixing else {
                        return Err(internal("a sampled step outside Gumbel mode"));
                    };
                    let sel = match value {
                        Some((v, 0)) => Some(get(&vals, *v)?),
                        Some(_) => return Err(internal("a sampled path reads a channel slice")),
                        None => None,
                    };
                    let g = c.gdas.as_ref().ok_or_else(|| internal("Gumbel pass without GDAS constants"))?;
                    let y = gdas::gdas_edge_with(t, hardwts, *edge, *col, sel.as_ref(), g)?;
                    vals[*to] = Some(add_into(p, vals[*to].take(), y)?);
                }
            }
        }
        vals.get(plan.nodes - 1).cloned().flatten().ok_or_else(|| internal("cell output missing"))
    }

    /// The weights tensor a mix or skip-pool step reads, and how its row turns into weights.
    fn mix_weights(&self, p: &Pass, weights: Weights, pl: &Planned) -> Result<(Var, Weighting)> {
        match (weights, &p.mixing) {
            (Weights::Softmax, Mixing::Softmax(alpha)) => Ok(((*alpha).clone(), Weighting::Softmax)),
            (Weights::Nested, Mixing::Softmax(_)) => {
                let n = pl.nested.clone().ok_or_else(|| internal("nested weights missing"))?;
                Ok((n, Weighting::Raw))
            }
            _ => Err(internal("a mix step in Gumbel mode")),
        }
    }

    /// The kernel (and bias) of a conv step: one part as it is, several stacked on the output
    /// channels (pass 3). A merged part is `Σ_m w̃_m·pad(knorm(K_m))` (pass 5, no bias: the
    /// shared BN that follows removes any per-channel constant).
    fn stacked_kernel(
        &self,
        p: &Pass,
        convs: &[Vec<Option<usize>>],
        parts: &[ConvPart],
        k: usize,
        pl: &Planned,
    ) -> Result<(Var, Option<Var>)> {
        let t = p.tape;
        let mut ws: Vec<Var> = Vec::with_capacity(parts.len());
        let mut bs: Vec<Var> = Vec::with_capacity(parts.len());
        for part in parts {
            match *part {
                ConvPart::Candidate { edge, col, .. } => {
                    let i = convs.get(edge).and_then(|e| e.get(col).copied().flatten());
                    let i = i.ok_or_else(|| internal("conv part without weights"))?;
                    ws.push(p.w[i].clone());
                    bs.push(p.w[i + 1].clone());
                }
                ConvPart::Merged { edge } => {
                    let nested = pl.nested.as_ref().ok_or_else(|| internal("merged conv without nested weights"))?;
                    let mut normed = Vec::with_capacity(pl.plan.group.len());
                    for &col in &pl.plan.group {
                        let i = convs.get(edge).and_then(|e| e.get(col).copied().flatten());
                        let i = i.ok_or_else(|| internal("merged conv member without weights"))?;
                        let gain = self.gains.get(&i).map(|&g| &p.w[g]);
                        normed.push(reparam::kernel_norm(t, &p.w[i], gain)?);
                    }
                    let refs: Vec<&Var> = normed.iter().collect();
                    ws.push(reparam::merge_kernels(t, nested, edge, &pl.plan.group, &refs, k)?);
                }
            }
        }
        let bias = |bs: &[Var]| -> Result<Option<Var>> {
            match bs {
                [] => Ok(None),
                [b] => Ok(Some(b.clone())),
                many => Ok(Some(eltwise::concat0(t, &many.iter().collect::<Vec<_>>())?)),
            }
        };
        if !bs.is_empty() && bs.len() != ws.len() {
            return Err(internal("a conv step mixes merged and plain parts"));
        }
        match ws.as_slice() {
            [w] => Ok((w.clone(), bias(&bs)?)),
            many => Ok((eltwise::concat0(t, &many.iter().collect::<Vec<_>>())?, bias(&bs)?)),
        }
    }
}

/// `node + y`, or `y` itself for a node's first edge.
fn add_into(p: &Pass, node: Option<Var>, y: Var) -> Result<Var> {
    match node {
        None => Ok(y),
        Some(acc) => eltwise::add_var(p.tape, &acc, &y),
    }
}
