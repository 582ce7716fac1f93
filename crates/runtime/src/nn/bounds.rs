//! Bounds on loading a model from a guest's bytes: what tract may allocate while it
//! parses, analyses and optimizes the model, checked before it allocates.
//!
//! A few bytes of ONNX can declare enormous tensors: an initializer whose `dims` do not
//! match its data (tract allocates the declared shape first), or a node tract folds into
//! a constant while it loads (`ConstantOfShape`, `Expand`, `Tile`, `Range`, `Resize`, or
//! any operator whose inputs are all constant). So:
//! 1. every tensor the protobuf declares (initializers, `Constant` values, in subgraphs
//!    too) counts against the budget before tract reads the model;
//! 2. every operator is wrapped ([`Bounded`]) so that the analysis evaluates it ahead of
//!    time only when its outputs' shapes are known and fit in what is left of the
//!    budget; an operator whose output size is unknown stays unevaluated;
//! 3. the typed model's tensors of known shape (the constants, and every intermediate
//!    value an inference would allocate) must each fit in the budget, and the
//!    constants together, before tract optimizes it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tract_onnx::pb::{GraphProto, TensorProto, tensor_proto::DataType};
use tract_onnx::tract_hir::internal::tract_data::TooEarly;
use tract_onnx::tract_hir::internal::tract_data::prelude::IntoArcTensor;
use tract_onnx::tract_hir::internal::{
    EvalOp, Factoid, InferenceFact, InferenceModel, InferenceModelPatch, InferenceNode,
    InferenceOp, IntoTValue, Op, OpState, OutletId, SessionState, TValue, TVec, TractResult,
    TypedModel, TypedOp, format_err,
};
use tract_onnx::tract_hir::ops::source::Source;
use tract_onnx::tract_hir::tract_core::ops::Validation;

/// Bytes a model loaded from a guest's bytes may make tract allocate, shared by the
/// evaluations of one load.
#[derive(Debug)]
pub(crate) struct Budget {
    max: usize,
    used: AtomicUsize,
}

impl Budget {
    pub(crate) fn new(max: usize) -> Arc<Budget> {
        Arc::new(Budget {
            max,
            used: AtomicUsize::new(0),
        })
    }

    /// Takes `bytes` from the budget, or says why not.
    fn take(&self, bytes: usize, what: &str) -> Result<(), String> {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let total = used.saturating_add(bytes);
            if total > self.max {
                return Err(too_large(what, bytes, self.max));
            }
            match self
                .used
                .compare_exchange(used, total, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(now) => used = now,
            }
        }
    }
}

/// The one-line refusal of a tensor too large for the budget.
fn too_large(what: &str, bytes: usize, max: usize) -> String {
    format!(
        "the model is too large: {what} needs {} bytes, over the limit of {max} bytes",
        if bytes == usize::MAX {
            "more than usize::MAX".to_string()
        } else {
            bytes.to_string()
        }
    )
}

/// Checks the tensors the protobuf declares, in the main graph and its subgraphs,
/// against `budget`, before tract allocates any of them.
pub(crate) fn check_declared(graph: &GraphProto, budget: &Budget) -> Result<(), String> {
    for tensor in &graph.initializer {
        budget.take(
            declared_bytes(tensor),
            &format!("initializer `{}`", tensor.name),
        )?;
    }
    for node in &graph.node {
        for attr in &node.attribute {
            for tensor in attr.t.iter().chain(&attr.tensors) {
                budget.take(
                    declared_bytes(tensor),
                    &format!("a constant of node `{}`", node.name),
                )?;
            }
            for sub in attr.g.iter().chain(&attr.graphs) {
                check_declared(sub, budget)?;
            }
        }
    }
    Ok(())
}

/// Bytes a protobuf tensor declares (its shape times its element size); `usize::MAX`
/// for a negative or overflowing shape.
fn declared_bytes(tensor: &TensorProto) -> usize {
    let element = match DataType::from_i32(tensor.data_type) {
        Some(DataType::Uint8 | DataType::Int8 | DataType::Bool) => 1,
        Some(DataType::Uint16 | DataType::Int16 | DataType::Float16 | DataType::Bfloat16) => 2,
        Some(DataType::Uint32 | DataType::Int32 | DataType::Float) => 4,
        _ => 8,
    };
    tensor
        .dims
        .iter()
        .try_fold(element, |n: usize, &d| {
            usize::try_from(d).ok().and_then(|d| n.checked_mul(d))
        })
        .unwrap_or(usize::MAX)
}

/// Bytes of a tensor of this fact, when its shape and type are known.
fn fact_bytes(fact: &InferenceFact) -> Option<usize> {
    let shape = fact.shape.as_concrete_finite().ok()??;
    let element = fact
        .datum_type
        .concretize()
        .map_or(8, |dt| dt.size_of().max(1));
    Some(
        shape
            .iter()
            .try_fold(element, |n, &d| n.checked_mul(d))
            .unwrap_or(usize::MAX),
    )
}

/// Wraps every operator of `model` but its inputs in [`Bounded`], drawing on `budget`.
pub(crate) fn bound(model: &mut InferenceModel, budget: &Arc<Budget>) {
    for node in model.nodes_mut() {
        if node.op.as_op().downcast_ref::<Source>().is_some() {
            continue;
        }
        let inner = std::mem::replace(
            &mut node.op,
            Box::new(tract_onnx::tract_hir::tract_core::ops::dummy::Dummy::new()),
        );
        node.op = Box::new(Bounded {
            inner,
            budget: budget.clone(),
        });
    }
}

/// Checks the typed model before tract optimizes it: every tensor of known shape must
/// fit in `max` bytes, and its constants together too; an operator whose inputs are
/// all constant (which optimization would fold) must have outputs of known shape.
pub(crate) fn check_typed(model: &TypedModel, max: usize) -> Result<(), String> {
    let mut constants = 0usize;
    for node in model.nodes() {
        let inputs_constant = !node.inputs.is_empty()
            && node.inputs.iter().all(|i| {
                model
                    .outlet_fact(*i)
                    .map(|f| f.konst.is_some())
                    .unwrap_or(false)
            });
        for (ix, output) in node.outputs.iter().enumerate() {
            let fact = &output.fact;
            let what = || format!("value `{}` (output {ix})", node.name);
            let Some(shape) = fact.shape.as_concrete() else {
                if inputs_constant {
                    return Err(format!(
                        "the model is too large: {} has constant inputs but a size known \
                         only once computed",
                        what()
                    ));
                }
                continue;
            };
            let bytes = shape
                .iter()
                .try_fold(fact.datum_type.size_of().max(1), |n, &d| n.checked_mul(d))
                .unwrap_or(usize::MAX);
            if bytes > max {
                return Err(too_large(&what(), bytes, max));
            }
            if fact.konst.is_some() {
                constants = constants.saturating_add(bytes);
                if constants > max {
                    return Err(too_large("its constants", constants, max));
                }
            }
        }
    }
    Ok(())
}

/// An inference operator that tract's analysis may evaluate ahead of time (constant
/// folding) only within a [`Budget`]: when its inputs are all known, its outputs'
/// shapes must be known too and fit in what is left, or it is left unevaluated.
#[derive(Debug, Clone)]
struct Bounded {
    inner: Box<dyn InferenceOp>,
    budget: Arc<Budget>,
}

impl Op for Bounded {
    fn name(&self) -> Cow<'_, str> {
        self.inner.name()
    }

    fn validation(&self) -> Validation {
        self.inner.validation()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        self.inner.info()
    }

    fn as_typed(&self) -> Option<&dyn TypedOp> {
        self.inner.as_typed()
    }
}

impl EvalOp for Bounded {
    fn is_stateless(&self) -> bool {
        self.inner.is_stateless()
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        self.inner.eval(inputs)
    }

    fn eval_with_session(
        &self,
        session: &SessionState,
        inputs: TVec<TValue>,
    ) -> TractResult<TVec<TValue>> {
        self.inner.eval_with_session(session, inputs)
    }

    fn state(
        &self,
        session: &mut SessionState,
        node_id: usize,
    ) -> TractResult<Option<Box<dyn OpState>>> {
        self.inner.state(session, node_id)
    }
}

impl InferenceOp for Bounded {
    fn infer(
        &mut self,
        inputs: TVec<&InferenceFact>,
        outputs: TVec<&InferenceFact>,
        observed: TVec<&InferenceFact>,
    ) -> TractResult<(
        TVec<InferenceFact>,
        TVec<InferenceFact>,
        TVec<InferenceFact>,
    )> {
        let (inputs, outputs, observed) = self.inner.infer_facts(inputs, outputs, observed)?;
        if !self.inner.is_stateless() || !inputs.iter().all(|i| i.value.is_concrete()) {
            return Ok((inputs, outputs, observed));
        }
        let mut bytes = 0usize;
        for fact in &outputs {
            match fact_bytes(fact) {
                Some(n) => bytes = bytes.saturating_add(n),
                // Not knowing how much it would make, leave it to run time.
                None => return Ok((inputs, outputs, observed)),
            }
        }
        self.budget
            .take(bytes, &format!("folding `{}`", self.inner.name()))
            .map_err(|e| format_err!("{e}"))?;
        let values = inputs
            .iter()
            .map(|i| i.value.concretize().map(|t| t.into_tvalue()))
            .collect::<Option<TVec<_>>>()
            .expect("all inputs are concrete");
        match self
            .inner
            .eval_with_session(&SessionState::default(), values)
        {
            Ok(values) => {
                let outputs: TVec<InferenceFact> = values
                    .into_iter()
                    .map(|t| t.into_arc_tensor().into())
                    .collect();
                Ok((inputs, outputs, observed))
            }
            Err(e) if e.root_cause().downcast_ref::<TooEarly>().is_some() => {
                Ok((inputs, outputs, observed))
            }
            Err(e) => Err(e.context("Eager eval during inference")),
        }
    }

    fn infer_facts(
        &mut self,
        inputs: TVec<&InferenceFact>,
        outputs: TVec<&InferenceFact>,
        observed: TVec<&InferenceFact>,
    ) -> TractResult<(
        TVec<InferenceFact>,
        TVec<InferenceFact>,
        TVec<InferenceFact>,
    )> {
        self.inner.infer_facts(inputs, outputs, observed)
    }

    fn observe_outlets(
        &self,
        model: &InferenceModel,
        node: &InferenceNode,
    ) -> TractResult<Vec<OutletId>> {
        self.inner.observe_outlets(model, node)
    }

    fn incorporate(
        &self,
        model: &InferenceModel,
        node: &InferenceNode,
    ) -> TractResult<Option<InferenceModelPatch>> {
        self.inner.incorporate(model, node)
    }

    fn nboutputs(&self) -> TractResult<usize> {
        self.inner.nboutputs()
    }

    // The wrapped operator, so that tract's checks of an operator's type still see it.
    fn as_op(&self) -> &dyn Op {
        self.inner.as_op()
    }

    fn as_op_mut(&mut self) -> &mut dyn Op {
        self.inner.as_op_mut()
    }

    fn to_typed(
        &self,
        source: &InferenceModel,
        node: &InferenceNode,
        target: &mut TypedModel,
        mapping: &HashMap<OutletId, OutletId>,
    ) -> TractResult<TVec<OutletId>> {
        self.inner.to_typed(source, node, target, mapping)
    }
}
