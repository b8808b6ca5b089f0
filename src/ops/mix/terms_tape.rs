//! Tape ops of the term mix ([`term_mix`]) and of the nested weights ([`nested_weights`]).
//!
//! The backward of [`term_mix`] writes each term's slice gradient straight into the
//! gradient gathered so far for that input ([`Backward::backward_into`]), so the three
//! edges that read slices of one wide conv output fill one gradient buffer between them.

use super::terms::{
    nested_weights_backward, nested_weights_forward, scatter_input_grads, term_mix_backward_weights, term_mix_into,
    Term,
};
use super::Weighting;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::ops::eltwise;
use crate::tensor::tape::{Backward, Tape, Var};
use crate::tensor::Tensor;

const OP: &str = "term_mix";

/// One term of [`term_mix`]: the channel slice `[channel_offset, channel_offset + C)` of `x`,
/// weighted by column `col` of the weights row.
#[derive(Debug, Clone, Copy)]
pub struct TermVar<'a> {
    /// The value the slice is taken from, `[N, Cx, H, W]`.
    pub x: &'a Var,
    /// First channel of the slice.
    pub channel_offset: usize,
    /// Column of the weights row that weighs this term.
    pub col: usize,
}

/// What the backward rule keeps of one term: the slice, and where its gradient goes.
struct SavedTerm {
    channel_offset: usize,
    col: usize,
    shape: Vec<usize>,
    /// The first input position holding the same Var: every term reading it writes there.
    dest: usize,
}

impl SavedTerm {
    fn term<'a>(&self, x: &'a Tensor) -> Term<'a> {
        Term { x, channel_offset: self.channel_offset, col: self.col }
    }
}

/// Backward of [`term_mix`]. Inputs on the tape: `[weights, acc (if any), x_0 .. x_{T-1}]`.
struct TermMixBackward {
    weighting: Weighting,
    weights: Tensor,
    row: usize,
    /// C: the channels of the output (and of every slice).
    channels: usize,
    has_acc: bool,
    terms: Vec<SavedTerm>,
    /// The term tensors, kept only when the weights are tracked (their gradient needs them).
    xs: Vec<Tensor>,
}

/// Adds `g` into a gathered gradient slot: in place when the gathered tensor is unique.
fn merge(gpu: &Gpu, slot: &mut Option<Tensor>, g: Tensor) -> Result<()> {
    *slot = Some(match slot.take() {
        None => g,
        Some(prev) if prev.is_unique() => {
            eltwise::axpy(gpu, &prev, 1.0, &g)?;
            prev
        }
        Some(prev) => eltwise::add(gpu, &prev, &g)?,
    });
    Ok(())
}

impl TermMixBackward {
    /// Position of `x_0` among the inputs.
    fn base(&self) -> usize {
        1 + usize::from(self.has_acc)
    }

    fn weight_grad(&self, gpu: &Gpu, grad: &Tensor) -> Result<Tensor> {
        if self.xs.len() != self.terms.len() {
            return Err(Error::Autodiff(format!("{OP}: weight gradient requested but the terms were not saved")));
        }
        let terms: Vec<Term> = self.terms.iter().zip(&self.xs).map(|(s, x)| s.term(x)).collect();
        term_mix_backward_weights(gpu, self.weighting, &self.weights, self.row, &terms, grad)
    }

    /// The buffer that receives the slices of one destination (its terms: `members`), and the term (if any)
    /// that overwrites it instead of accumulating (a whole-tensor term into a fresh buffer).
    fn destination(&self, gpu: &Gpu, gathered: Option<Tensor>, members: &[usize]) -> Result<(Tensor, Option<usize>)> {
        let shape = &self.terms[members[0]].shape;
        let whole = members.iter().copied().find(|&t| {
            let s = &self.terms[t];
            s.channel_offset == 0 && s.shape.get(1) == Some(&self.channels)
        });
        Ok(match gathered {
            // Nobody else sees this buffer: the slices go straight into it.
            Some(g) if g.is_unique() => (g.reshape(shape)?, None),
            // Shared with someone: accumulate into a private copy.
            Some(g) => (Tensor::pack(gpu, &[&g], "term mix input grad")?.reshape(shape)?, None),
            None if whole.is_some() => (Tensor::empty(gpu, shape, "term mix input grad")?, whole),
            None => (Tensor::zeros(gpu, shape, "term mix input grad")?, None),
        })
    }

    /// Writes every needed term's slice gradient into its destination slot of `acc`.
    fn input_grads(&self, gpu: &Gpu, grad: &Tensor, needs: &[bool], acc: &mut [Option<Tensor>]) -> Result<()> {
        let mut dests: Vec<usize> = Vec::new();
        for s in &self.terms {
            if needs[s.dest] && !dests.contains(&s.dest) {
                dests.push(s.dest);
            }
        }
        let mut bufs = Vec::with_capacity(dests.len());
        for &dest in &dests {
            let members: Vec<usize> = (0..self.terms.len()).filter(|&t| self.terms[t].dest == dest).collect();
            let (buf, plain) = self.destination(gpu, acc[dest].take(), &members)?;
            bufs.push((dest, buf, plain, members));
        }
        // Per destination the overwriting term first: later overlapping writes accumulate on it.
        let mut writes = Vec::with_capacity(self.terms.len());
        for (_, buf, plain, members) in &bufs {
            if let Some(t) = plain {
                writes.push((self.terms[*t].term(buf), false));
            }
            for &t in members.iter().filter(|&t| Some(*t) != *plain) {
                writes.push((self.terms[t].term(buf), true));
            }
        }
        scatter_input_grads(gpu, self.weighting, &self.weights, self.row, &writes, grad)?;
        for (dest, buf, _, _) in bufs {
            acc[dest] = Some(buf);
        }
        Ok(())
    }
}

impl Backward for TermMixBackward {
    fn name(&self) -> &'static str {
        OP
    }

    fn backward(&mut self, gpu: &Gpu, grad: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let mut acc = vec![None; needs.len()];
        self.backward_into(gpu, grad, needs, &mut acc)?;
        Ok(acc)
    }

    fn backward_into(&mut self, gpu: &Gpu, grad: &Tensor, needs: &[bool], acc: &mut [Option<Tensor>]) -> Result<()> {
        let inputs = self.base() + self.terms.len();
        if needs.len() != inputs || acc.len() != inputs {
            return Err(Error::Autodiff(format!(
                "{OP}: {} needs / {} slots for {inputs} inputs",
                needs.len(),
                acc.len()
            )));
        }
        if needs[0] {
            let dw = self.weight_grad(gpu, grad)?;
            merge(gpu, &mut acc[0], dw)?;
        }
        if self.has_acc && needs[1] {
            // d acc = dy: the accumulator passes the gradient through unchanged.
            merge(gpu, &mut acc[1], grad.clone())?;
        }
        self.input_grads(gpu, grad, needs, acc)
    }
}

/// Tape op: `out = acc + Σ_t w(col_t) · slice_t(x_t)`, `w = softmax(weights[row])` or the raw
/// row. With `acc` the sum is written INTO acc's buffer (the returned Var shares acc's tensor;
/// whoever saved acc's value for a backward sees the sum); without, a new `[N, channels, H, W]`
/// tensor is made (N, H, W from the first term). At most 8 terms.
/// Gradients: `d acc = dy`; `slice_t(dx_t) += w(col_t) dy`; weights as [`term_mix_backward_weights`].
pub fn term_mix(
    tape: &Tape,
    weighting: Weighting,
    weights: &Var,
    row: usize,
    channels: usize,
    acc: Option<&Var>,
    terms: &[TermVar],
) -> Result<Var> {
    let gpu = tape.gpu();
    let ts: Vec<Term> =
        terms.iter().map(|t| Term { x: &t.x.tensor, channel_offset: t.channel_offset, col: t.col }).collect();
    let out = match acc {
        Some(a) => {
            let [_, c, _, _] = a.tensor.dims4(OP)?;
            if c != channels {
                return Err(Error::shape(OP, format!("{channels} channels but acc {:?} has {c}", a.shape())));
            }
            term_mix_into(gpu, weighting, &weights.tensor, row, &ts, &a.tensor, true)?;
            a.tensor.clone()
        }
        None => {
            let first = terms.first().ok_or_else(|| Error::invalid(OP, "needs at least one term"))?;
            let [n, _, h, w] = first.x.tensor.dims4(OP)?;
            let out = Tensor::empty(gpu, &[n, channels, h, w], "term mix out")?;
            term_mix_into(gpu, weighting, &weights.tensor, row, &ts, &out, false)?;
            out
        }
    };
    let mut inputs: Vec<&Var> = vec![weights];
    inputs.extend(acc);
    let base = inputs.len();
    inputs.extend(terms.iter().map(|t| t.x));
    let saved: Vec<SavedTerm> = terms
        .iter()
        .enumerate()
        .map(|(t, tv)| {
            let pos = base + t;
            let dest = tv.x.id.and_then(|id| inputs.iter().position(|v| v.id == Some(id))).unwrap_or(pos);
            SavedTerm { channel_offset: tv.channel_offset, col: tv.col, shape: tv.x.shape().to_vec(), dest }
        })
        .collect();
    Ok(tape.record(&inputs, out, || {
        let xs = if weights.tracked() { terms.iter().map(|t| t.x.tensor.clone()).collect() } else { Vec::new() };
        Box::new(TermMixBackward {
            weighting,
            weights: weights.tensor.clone(),
            row,
            channels,
            has_acc: acc.is_some(),
            terms: saved,
            xs,
        })
    }))
}

/// Backward of [`nested_weights`]: α and the group are all it needs.
struct NestedBackward {
    alpha: Tensor,
    group: Vec<usize>,
}

impl Backward for NestedBackward {
    fn name(&self) -> &'static str {
        "nested_weights"
    }

    fn backward(&mut self, gpu: &Gpu, grad: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        if !needs.first().copied().unwrap_or(false) {
            return Ok(vec![None]);
        }
        Ok(vec![Some(nested_weights_backward(gpu, &self.alpha, &self.group, grad)?)])
    }
}

/// Tape op of [`nested_weights_forward`]: `[R, K + 1]` nested softmax weights of group `S`.
pub fn nested_weights(tape: &Tape, alpha: &Var, group: &[usize]) -> Result<Var> {
    let out = nested_weights_forward(tape.gpu(), &alpha.tensor, group)?;
    Ok(tape.record(&[alpha], out, || Box::new(NestedBackward { alpha: alpha.tensor.clone(), group: group.to_vec() })))
}
