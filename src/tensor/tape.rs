//! The autodiff tape.
//!
//! Ops record a node only when one of their inputs is tracked; the node keeps
//! exactly the tensors its backward rule needs. `backward` drains the nodes in
//! reverse, so each node's saved activations are freed as soon as it has run, and
//! it skips every node that does not lie on a path from a requested parameter to
//! the loss (asking for α only skips the weight-gradient kernels, and vice versa).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::tensor::Tensor;

/// Identity of a tracked value on a tape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VarId(usize);

/// A value in a computation: a tensor and, when tracked, its identity on the tape.
#[derive(Debug, Clone)]
pub struct Var {
    /// The value.
    pub tensor: Tensor,
    /// `Some` when gradients can flow through this value.
    pub id: Option<VarId>,
}

impl Var {
    /// An untracked value (input data, labels, constants).
    pub fn constant(tensor: Tensor) -> Var {
        Var { tensor, id: None }
    }

    /// Whether gradients flow through this value.
    pub fn tracked(&self) -> bool {
        self.id.is_some()
    }

    /// The shape of the value.
    pub fn shape(&self) -> &[usize] {
        self.tensor.shape()
    }
}

/// The backward rule of one recorded op.
pub trait Backward: Send {
    /// Op name, for errors and debugging.
    fn name(&self) -> &'static str;

    /// Given `grad` = ∂L/∂output, returns one entry per input of the op: `Some(∂L/∂input)`
    /// where `needs[i]` is true, `None` elsewhere (no work is to be done for those).
    fn backward(&mut self, gpu: &Gpu, grad: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>>;

    /// Adds this op's input gradients to `acc`, the gradients gathered so far (one entry per
    /// input; `None` where none arrived yet). The default calls [`Backward::backward`] and adds.
    /// Ops that write only part of an input's gradient (a channel slice of a wide tensor)
    /// override it to write into the gathered tensor in place, when it is
    /// [unique](Tensor::is_unique), instead of materialising a mostly-zero tensor.
    fn backward_into(&mut self, gpu: &Gpu, grad: &Tensor, needs: &[bool], acc: &mut [Option<Tensor>]) -> Result<()> {
        let gin = self.backward(gpu, grad, needs)?;
        if gin.len() != acc.len() {
            return Err(Error::Autodiff(format!(
                "{} returned {} gradients for {} inputs",
                self.name(),
                gin.len(),
                acc.len()
            )));
        }
        for ((slot, gi), &need) in acc.iter_mut().zip(gin).zip(needs) {
            if let (Some(gi), true) = (gi, need) {
                *slot = Some(match slot.take() {
                    Some(prev) => crate::ops::eltwise::add(gpu, &prev, &gi)?,
                    None => gi,
                });
            }
        }
        Ok(())
    }
}

struct Node {
    inputs: Vec<Option<VarId>>,
    output: VarId,
    op: Box<dyn Backward>,
}

#[derive(Default)]
struct Inner {
    next: usize,
    nodes: Vec<Node>,
}

/// Records ops for one forward pass; `backward` consumes the recording.
pub struct Tape {
    gpu: Gpu,
    inner: RefCell<Inner>,
}

/// Gradients returned by [`Tape::backward`], looked up by the [`Var`] they belong to.
#[derive(Debug, Default)]
pub struct Gradients {
    map: HashMap<VarId, Tensor>,
}

impl Gradients {
    /// ∂L/∂v, or `None` when the loss does not depend on `v` or `v` was not requested.
    pub fn get(&self, v: &Var) -> Option<&Tensor> {
        v.id.and_then(|id| self.map.get(&id))
    }

    /// Like [`Gradients::get`] but removes the tensor from the set.
    pub fn take(&mut self, v: &Var) -> Option<Tensor> {
        v.id.and_then(|id| self.map.remove(&id))
    }
}

impl Tape {
    /// An empty tape on `gpu`.
    pub fn new(gpu: &Gpu) -> Tape {
        Tape { gpu: gpu.clone(), inner: RefCell::default() }
    }

    /// The GPU the tape records for.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    fn fresh(&self) -> VarId {
        let mut i = self.inner.borrow_mut();
        i.next += 1;
        VarId(i.next)
    }

    /// A tracked leaf (a parameter): gradients can be requested for it.
    pub fn leaf(&self, tensor: &Tensor) -> Var {
        Var { tensor: tensor.clone(), id: Some(self.fresh()) }
    }

    /// Number of recorded nodes.
    pub fn len(&self) -> usize {
        self.inner.borrow().nodes.len()
    }

    /// Whether nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Wraps `output` of an op on `inputs`. The backward rule is built (and its tensors
    /// saved) only when some input is tracked.
    pub fn record(&self, inputs: &[&Var], output: Tensor, make: impl FnOnce() -> Box<dyn Backward>) -> Var {
        if !inputs.iter().any(|v| v.tracked()) {
            return Var::constant(output);
        }
        let id = self.fresh();
        let node = Node { inputs: inputs.iter().map(|v| v.id).collect(), output: id, op: make() };
        self.inner.borrow_mut().nodes.push(node);
        Var { tensor: output, id: Some(id) }
    }

    /// Back-propagates from the scalar `loss` and returns ∂loss/∂v for each `v` in `wrt`.
    /// Consumes the recording: the tape is empty afterwards.
    pub fn backward(&self, loss: &Var, wrt: &[&Var]) -> Result<Gradients> {
        if loss.tensor.numel() != 1 {
            return Err(Error::Autodiff(format!(
                "backward needs a scalar loss, got '{}' of shape {:?}",
                loss.tensor.name(),
                loss.shape()
            )));
        }
        let seed = Tensor::from_slice(&self.gpu, &[1.0], loss.shape(), "grad seed")?;
        self.backward_with(loss, seed, wrt)
    }

    /// Back-propagates a given ∂L/∂`out` (of `out`'s shape) to `wrt`.
    pub fn backward_with(&self, out: &Var, grad_out: Tensor, wrt: &[&Var]) -> Result<Gradients> {
        let out_id = out.id.ok_or_else(|| Error::Autodiff("backward from an untracked value".into()))?;
        let nodes = std::mem::take(&mut self.inner.borrow_mut().nodes);

        // Forward reachability from the requested leaves: only these values need gradients.
        let mut reach: HashSet<VarId> = wrt.iter().filter_map(|v| v.id).collect();
        let wanted = reach.clone();
        for n in &nodes {
            if n.inputs.iter().any(|i| i.is_some_and(|i| reach.contains(&i))) {
                reach.insert(n.output);
            }
        }

        let mut grads: HashMap<VarId, Tensor> = HashMap::new();
        if reach.contains(&out_id) {
            grads.insert(out_id, grad_out);
        }
        // Reverse order; each node (and the activations it saved) is dropped once run.
        for mut n in nodes.into_iter().rev() {
            let Some(g) = grads.remove(&n.output) else {
                continue;
            };
            let needs: Vec<bool> = n.inputs.iter().map(|i| i.is_some_and(|i| reach.contains(&i))).collect();
            if !needs.iter().any(|&b| b) {
                continue;
            }
            // Hand each input's gathered gradient to the op (an input listed twice gets it once).
            let mut acc: Vec<Option<Tensor>> = Vec::with_capacity(n.inputs.len());
            for (i, input) in n.inputs.iter().enumerate() {
                let first = input.is_some_and(|id| !n.inputs[..i].contains(&Some(id)));
                acc.push(if first && needs[i] { input.and_then(|id| grads.remove(&id)) } else { None });
            }
            n.op.backward_into(&self.gpu, &g, &needs, &mut acc)?;
            drop(g);
            for ((input, need), gi) in n.inputs.iter().zip(&needs).zip(acc) {
                let (Some(id), true, Some(gi)) = (input, need, gi) else {
                    continue;
                };
                let sum = match grads.remove(id) {
                    Some(prev) => crate::ops::eltwise::add(&self.gpu, &prev, &gi)?,
                    None => gi,
                };
                grads.insert(*id, sum);
            }
        }
        grads.retain(|id, _| wanted.contains(id));
        Ok(Gradients { map: grads })
    }
}
