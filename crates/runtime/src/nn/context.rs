//! What every WASI-NN backend of wedge shares: a model's inputs as [`Port`]s checked
//! against a guest's tensors, the per-app cap on execution contexts, and the graph and
//! execution context that wasmtime-wasi-nn drives, generic over the engine ([`Runner`])
//! that runs the model.

use super::backend_error;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use wasmtime_wasi_nn::backend::{
    BackendError, BackendExecutionContext, BackendGraph, Id, NamedTensor,
};
use wasmtime_wasi_nn::wit::TensorType;
use wasmtime_wasi_nn::{ExecutionContext, Graph, Tensor};

/// One input of a model: its name and what it accepts.
#[derive(Debug, Clone)]
pub(crate) struct Port {
    pub name: String,
    pub ty: TensorType,
    /// The dimensions, `None` where the model leaves one open (a batch size).
    pub dims: Vec<Option<usize>>,
}

impl Port {
    /// Checks a guest's tensor against this input: its type, its shape and the length
    /// of its data. Returns its dimensions.
    pub fn check(&self, tensor: &Tensor) -> Result<Vec<usize>, String> {
        if tensor.ty != self.ty {
            return Err(format!(
                "input `{}` takes {:?} values, not {:?}",
                self.name, self.ty, tensor.ty
            ));
        }
        let dims: Vec<usize> = tensor.dimensions.iter().map(|&d| d as usize).collect();
        let fits = dims.len() == self.dims.len()
            && dims
                .iter()
                .zip(&self.dims)
                .all(|(got, want)| want.is_none_or(|w| w == *got));
        if !fits {
            let want: Vec<String> = self
                .dims
                .iter()
                .map(|d| d.map_or("?".into(), |n| n.to_string()))
                .collect();
            return Err(format!(
                "input `{}` takes shape [{}], not {dims:?}",
                self.name,
                want.join(", ")
            ));
        }
        let expected = dims
            .iter()
            .try_fold(element_size(tensor.ty), |n, &d| n.checked_mul(d))
            .ok_or("the tensor is too large")?;
        if tensor.data.len() != expected {
            return Err(format!(
                "input `{}` of shape {dims:?} needs {expected} bytes of data, got {}",
                self.name,
                tensor.data.len()
            ));
        }
        Ok(dims)
    }
}

/// Bytes per element of a WASI-NN tensor type.
fn element_size(ty: TensorType) -> usize {
    match ty {
        TensorType::U8 => 1,
        TensorType::Fp16 | TensorType::Bf16 => 2,
        TensorType::Fp32 | TensorType::I32 => 4,
        TensorType::Fp64 | TensorType::I64 => 8,
    }
}

/// A loaded model as an execution context needs it, whatever engine runs it.
pub(crate) trait Runner: Send + Sync + 'static {
    /// A guest's tensor, checked and ready to run.
    type Input: Clone + Send + Sync + 'static;
    /// The model's inputs, in order.
    fn inputs(&self) -> &[Port];
    /// The model's output names, in order.
    fn outputs(&self) -> &[String];
    /// Checks and converts a guest's tensor for input `ix`.
    fn prepare(&self, ix: usize, tensor: &Tensor) -> Result<Self::Input, String>;
    /// Runs the model on one prepared tensor per input; the outputs in order.
    fn run(&self, inputs: Vec<Self::Input>) -> Result<Vec<Tensor>, String>;
}

/// An app's execution contexts: how many it holds and may hold.
#[derive(Clone, Default)]
pub(crate) struct ContextLimit {
    pub live: Arc<AtomicUsize>,
    pub max: usize,
}

impl ContextLimit {
    /// Takes a slot, or says why not.
    fn acquire(&self) -> Result<ContextSlot, BackendError> {
        let taken = self
            .live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            });
        match taken {
            Ok(_) => Ok(ContextSlot(self.live.clone())),
            Err(_) => Err(backend_error(format!(
                "too many execution contexts (this app may hold {})",
                self.max
            ))),
        }
    }
}

/// A held execution-context slot, given back on drop.
struct ContextSlot(Arc<AtomicUsize>);

impl Drop for ContextSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A shared model as one app sees it: its contexts count against the app's limit.
pub(crate) fn graph<R: Runner>(model: Arc<R>, limit: &ContextLimit) -> Graph {
    let graph: Box<dyn BackendGraph> = Box::new(ModelGraph {
        model,
        limit: limit.clone(),
    });
    graph.into()
}

struct ModelGraph<R> {
    model: Arc<R>,
    limit: ContextLimit,
}

impl<R: Runner> BackendGraph for ModelGraph<R> {
    fn init_execution_context(&self) -> Result<ExecutionContext, BackendError> {
        let slot = self.limit.acquire()?;
        let context: Box<dyn BackendExecutionContext> = Box::new(ModelContext {
            inputs: vec![None; self.model.inputs().len()],
            outputs: Vec::new(),
            model: self.model.clone(),
            _slot: slot,
        });
        Ok(context.into())
    }
}

/// One execution context: inputs set so far and the last outputs.
struct ModelContext<R: Runner> {
    model: Arc<R>,
    inputs: Vec<Option<R::Input>>,
    outputs: Vec<Tensor>,
    _slot: ContextSlot,
}

impl<R: Runner> ModelContext<R> {
    /// The position of an input or output named or numbered by `id` in `names`.
    fn find<'a>(
        id: &Id,
        mut names: impl ExactSizeIterator<Item = &'a str>,
        what: &str,
    ) -> Result<usize, BackendError> {
        let count = names.len();
        match id {
            Id::Index(i) if (*i as usize) < count => Ok(*i as usize),
            Id::Index(i) => Err(backend_error(format!(
                "no {what} {i}: the model has {count}"
            ))),
            Id::Name(n) => names
                .position(|name| name == n)
                .ok_or_else(|| backend_error(format!("the model has no {what} named `{n}`"))),
        }
    }

    fn run(&mut self) -> Result<(), BackendError> {
        let mut inputs = Vec::with_capacity(self.inputs.len());
        for (slot, port) in self.inputs.iter().zip(self.model.inputs()) {
            match slot {
                Some(t) => inputs.push(t.clone()),
                None => {
                    return Err(backend_error(format!("input `{}` is not set", port.name)));
                }
            }
        }
        self.outputs = self.model.run(inputs).map_err(backend_error)?;
        Ok(())
    }
}

impl<R: Runner> BackendExecutionContext for ModelContext<R> {
    fn set_input(&mut self, id: Id, tensor: &Tensor) -> Result<(), BackendError> {
        let names = self.model.inputs().iter().map(|p| p.name.as_str());
        let ix = Self::find(&id, names, "input")?;
        self.inputs[ix] = Some(self.model.prepare(ix, tensor).map_err(backend_error)?);
        Ok(())
    }

    fn get_output(&mut self, id: Id) -> Result<Tensor, BackendError> {
        if self.outputs.is_empty() {
            return Err(backend_error("no outputs yet: call `compute` first"));
        }
        let names = self.model.outputs().iter().map(String::as_str);
        let ix = Self::find(&id, names, "output")?;
        Ok(self.outputs[ix].clone())
    }

    fn compute(
        &mut self,
        inputs: Option<Vec<NamedTensor>>,
    ) -> Result<Option<Vec<NamedTensor>>, BackendError> {
        let Some(named) = inputs else {
            self.run()?;
            return Ok(None);
        };
        self.inputs.iter_mut().for_each(|slot| *slot = None);
        for input in named {
            self.set_input(Id::Name(input.name), &input.tensor)?;
        }
        self.run()?;
        let out = self
            .model
            .outputs()
            .iter()
            .zip(&self.outputs)
            .map(|(name, tensor)| NamedTensor {
                name: name.clone(),
                tensor: tensor.clone(),
            })
            .collect();
        Ok(Some(out))
    }
}
