//! WASI-NN on tract (pure Rust ONNX inference, no native library): a backend for
//! `wasmtime-wasi-nn`, serving both the preview 1 (`wasi_ephemeral_nn`) and the
//! component (`wasi:nn`) ABIs.
//!
//! An app reaches only the models its operator named (`--nn-model NAME=PATH`), loaded
//! and optimized once per process by [`NnModels`] and shared read-only by every
//! instance; loading a model from bytes the guest passes is refused unless granted
//! (`--nn-allow-bytes`). Each app may hold a bounded number of execution contexts.
//! Shape and type mismatches, and anything tract refuses, are WASI-NN errors in the
//! guest; a panic inside tract is caught and becomes one too. With the `onnxruntime`
//! cargo feature a grant may pick onnxruntime instead (`crate::nn_onnxruntime`).

use crate::RuntimeError;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::SystemTime;
use tract_onnx::prelude::{
    DatumType, Framework, InferenceModelExt, IntoTensor, TValue, Tensor as TractTensor, TypedModel,
    TypedRunnableModel,
};
use wasmtime_wasi_nn::backend::{
    BackendError, BackendExecutionContext, BackendFromDir, BackendGraph, BackendInner, Id,
    NamedTensor,
};
use wasmtime_wasi_nn::wit::{ExecutionTarget, GraphEncoding, TensorType};
use wasmtime_wasi_nn::{Backend, ExecutionContext, Graph, GraphRegistry, Registry, Tensor};
use wedge_manifest::NnBackend;

/// One input or output of a model: its name and, for inputs, what it accepts.
#[derive(Debug, Clone)]
struct Port {
    name: String,
    datum: DatumType,
    /// The dimensions, `None` where the model leaves one open (a batch size).
    dims: Vec<Option<usize>>,
}

/// A model loaded and optimized once, run by any number of execution contexts.
pub struct NnModel {
    plan: TypedRunnableModel<TypedModel>,
    inputs: Vec<Port>,
    outputs: Vec<String>,
}

impl std::fmt::Debug for NnModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NnModel")
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .finish_non_exhaustive()
    }
}

impl NnModel {
    /// Parses, optimizes and plans an ONNX model; `threads` above 1 gives its
    /// inferences a pool of that many threads. The error is one line.
    pub fn from_bytes(bytes: &[u8], threads: usize) -> Result<NnModel, String> {
        let line = |e: tract_onnx::prelude::TractError| format!("{e:#}").replace('\n', " ");
        caught(|| {
            let model = tract_onnx::onnx()
                .model_for_read(&mut &bytes[..])
                .map_err(line)?;
            let input_names: Vec<String> = model
                .input_outlets()
                .map_err(line)?
                .iter()
                .map(|o| model.node(o.node).name.clone())
                .collect();
            let outputs: Vec<String> = model
                .output_outlets()
                .map_err(line)?
                .iter()
                .map(|o| match model.outlet_label(*o) {
                    Some(label) => label.to_string(),
                    None => model.node(o.node).name.clone(),
                })
                .collect();
            let typed = model.into_optimized().map_err(line)?;
            let mut inputs = Vec::with_capacity(input_names.len());
            for (ix, name) in input_names.into_iter().enumerate() {
                let fact = typed.input_fact(ix).map_err(line)?;
                let dims = fact
                    .shape
                    .dims()
                    .iter()
                    .map(|d| d.as_i64().and_then(|n| usize::try_from(n).ok()))
                    .collect();
                inputs.push(Port {
                    name,
                    datum: fact.datum_type,
                    dims,
                });
            }
            let options = tract_onnx::prelude::PlanOptions {
                executor: (threads > 1)
                    .then(|| tract_linalg::multithread::Executor::multithread(threads)),
                ..Default::default()
            };
            let plan = typed.into_runnable_with_options(&options).map_err(line)?;
            Ok(NnModel {
                plan,
                inputs,
                outputs,
            })
        })?
    }

    /// Reads and loads an ONNX file (see [`NnModel::from_bytes`]).
    pub fn from_file(path: &Path, threads: usize) -> Result<NnModel, String> {
        let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
        NnModel::from_bytes(&bytes, threads)
    }

    /// Runs the model on `inputs` (in the model's input order).
    fn run(&self, inputs: Vec<TractTensor>) -> Result<Vec<TractTensor>, String> {
        let inputs = inputs.into_iter().map(TValue::from).collect();
        let outputs = caught(|| self.plan.run(inputs))?.map_err(|e| format!("{e:#}"))?;
        Ok(outputs.into_iter().map(|v| v.into_tensor()).collect())
    }

    /// Runs the model natively on WASI-NN tensors, one per input in the model's order,
    /// checked as a guest's are; the outputs in the model's order.
    pub fn infer(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, String> {
        if inputs.len() != self.inputs.len() {
            return Err(format!(
                "the model takes {} inputs, not {}",
                self.inputs.len(),
                inputs.len()
            ));
        }
        let inputs = inputs
            .iter()
            .enumerate()
            .map(|(ix, t)| self.input(ix, t))
            .collect::<Result<_, _>>()?;
        self.run(inputs)?.iter().map(to_guest).collect()
    }

    /// The model's input names, in order.
    pub fn input_names(&self) -> impl ExactSizeIterator<Item = &str> {
        self.inputs.iter().map(|p| p.name.as_str())
    }

    /// Checks a guest tensor against input `ix` and converts it.
    fn input(&self, ix: usize, tensor: &Tensor) -> Result<TractTensor, String> {
        let port = &self.inputs[ix];
        let datum = datum_type(tensor.ty)?;
        if datum != port.datum {
            return Err(format!(
                "input `{}` takes {:?} values, not {:?}",
                port.name, port.datum, tensor.ty
            ));
        }
        let dims: Vec<usize> = tensor.dimensions.iter().map(|&d| d as usize).collect();
        let fits = dims.len() == port.dims.len()
            && dims
                .iter()
                .zip(&port.dims)
                .all(|(got, want)| want.is_none_or(|w| w == *got));
        if !fits {
            let want: Vec<String> = port
                .dims
                .iter()
                .map(|d| d.map_or("?".into(), |n| n.to_string()))
                .collect();
            return Err(format!(
                "input `{}` takes shape [{}], not {dims:?}",
                port.name,
                want.join(", ")
            ));
        }
        let expected = dims
            .iter()
            .try_fold(datum.size_of(), |n, &d| n.checked_mul(d))
            .ok_or("the tensor is too large")?;
        if tensor.data.len() != expected {
            return Err(format!(
                "input `{}` of shape {dims:?} needs {expected} bytes of data, got {}",
                port.name,
                tensor.data.len()
            ));
        }
        // SAFETY: the data has exactly the length of the shape and type, and every bit
        // pattern is a valid value of the plain numeric types `datum_type` admits.
        unsafe { TractTensor::from_raw_dt(datum, &dims, &tensor.data) }.map_err(|e| e.to_string())
    }
}

/// Runs `f`, turning a panic (a bug in the engine on odd input) into an error.
pub(crate) fn caught<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .map_err(|_| "the inference engine failed on this model or input".to_string())
}

/// The tract type of a WASI-NN tensor type; tract has no bfloat16.
fn datum_type(ty: TensorType) -> Result<DatumType, String> {
    Ok(match ty {
        TensorType::Fp16 => DatumType::F16,
        TensorType::Fp32 => DatumType::F32,
        TensorType::Fp64 => DatumType::F64,
        TensorType::U8 => DatumType::U8,
        TensorType::I32 => DatumType::I32,
        TensorType::I64 => DatumType::I64,
        TensorType::Bf16 => return Err("bf16 tensors are not supported".into()),
    })
}

/// The WASI-NN type of a tract output, for the types WASI-NN has.
fn tensor_type(datum: DatumType) -> Result<TensorType, String> {
    Ok(match datum {
        DatumType::F16 => TensorType::Fp16,
        DatumType::F32 => TensorType::Fp32,
        DatumType::F64 => TensorType::Fp64,
        DatumType::U8 => TensorType::U8,
        DatumType::I32 => TensorType::I32,
        DatumType::I64 => TensorType::I64,
        other => {
            return Err(format!(
                "the model outputs {other:?}, which WASI-NN cannot carry"
            ));
        }
    })
}

/// A tract output as a WASI-NN tensor.
fn to_guest(tensor: &TractTensor) -> Result<Tensor, String> {
    let ty = tensor_type(tensor.datum_type())?;
    let dimensions = tensor
        .shape()
        .iter()
        .map(|&d| u32::try_from(d).map_err(|_| "an output dimension is too large".to_string()))
        .collect::<Result<_, _>>()?;
    Ok(Tensor::new(dimensions, ty, tensor.as_bytes().to_vec()))
}

pub(crate) fn backend_error(message: impl Into<String>) -> BackendError {
    BackendError::BackendAccess(wasmtime::format_err!("{}", message.into()))
}

/// A granted model as its backend loaded it, shared by every app granted it.
#[derive(Debug, Clone)]
pub enum GrantedModel {
    /// Loaded by tract.
    Tract(Arc<NnModel>),
    /// Loaded by onnxruntime.
    #[cfg(feature = "onnxruntime")]
    Onnxruntime(Arc<crate::nn_onnxruntime::OrtModel>),
}

impl GrantedModel {
    /// Loads the model in `path` with `backend`.
    fn load(path: &Path, threads: usize, backend: NnBackend) -> Result<GrantedModel, String> {
        match backend {
            NnBackend::Tract => Ok(GrantedModel::Tract(Arc::new(NnModel::from_file(
                path, threads,
            )?))),
            #[cfg(feature = "onnxruntime")]
            NnBackend::Onnxruntime => Ok(GrantedModel::Onnxruntime(Arc::new(
                crate::nn_onnxruntime::OrtModel::from_file(path)?,
            ))),
            #[cfg(not(feature = "onnxruntime"))]
            NnBackend::Onnxruntime => Err(NO_ONNXRUNTIME.into()),
        }
    }

    /// The model as one app sees it, its execution contexts counted against `limit`.
    fn graph(&self, limit: &ContextLimit) -> Graph {
        match self {
            GrantedModel::Tract(model) => {
                let graph: Box<dyn BackendGraph> = Box::new(TractGraph {
                    model: model.clone(),
                    limit: limit.clone(),
                });
                graph.into()
            }
            #[cfg(feature = "onnxruntime")]
            GrantedModel::Onnxruntime(model) => model.graph(limit),
        }
    }

    fn downgrade(&self) -> WeakModel {
        match self {
            GrantedModel::Tract(m) => WeakModel::Tract(Arc::downgrade(m)),
            #[cfg(feature = "onnxruntime")]
            GrantedModel::Onnxruntime(m) => WeakModel::Onnxruntime(Arc::downgrade(m)),
        }
    }
}

/// Why `onnxruntime` cannot be picked in this build.
#[cfg(not(feature = "onnxruntime"))]
const NO_ONNXRUNTIME: &str =
    "this wedge was built without the onnxruntime backend (cargo feature `onnxruntime`)";

/// A loaded model, held without keeping it alive.
enum WeakModel {
    Tract(Weak<NnModel>),
    #[cfg(feature = "onnxruntime")]
    Onnxruntime(Weak<crate::nn_onnxruntime::OrtModel>),
}

impl WeakModel {
    fn upgrade(&self) -> Option<GrantedModel> {
        match self {
            WeakModel::Tract(m) => m.upgrade().map(GrantedModel::Tract),
            #[cfg(feature = "onnxruntime")]
            WeakModel::Onnxruntime(m) => m.upgrade().map(GrantedModel::Onnxruntime),
        }
    }
}

/// Models loaded in this process, each once per file version, thread count and
/// backend, shared by every app granted it; dropped when no policy holds it any more.
#[derive(Default, Clone)]
pub struct NnModels {
    loaded: Arc<Mutex<HashMap<ModelKey, WeakModel>>>,
}

/// A model file as it is now, and how it is run.
#[derive(Clone, PartialEq, Eq, Hash)]
struct ModelKey {
    path: PathBuf,
    len: u64,
    modified: Option<SystemTime>,
    threads: usize,
    backend: NnBackend,
}

impl NnModels {
    /// The model in `path` loaded by `backend`, loaded now unless this process already
    /// holds it.
    pub fn get(
        &self,
        path: &Path,
        threads: usize,
        backend: NnBackend,
    ) -> Result<GrantedModel, RuntimeError> {
        let fail = |message: String| {
            RuntimeError::Grant(format!("cannot load model `{}`: {message}", path.display()))
        };
        let canonical = std::fs::canonicalize(path).map_err(|e| fail(e.to_string()))?;
        let meta = std::fs::metadata(&canonical).map_err(|e| fail(e.to_string()))?;
        let key = ModelKey {
            path: canonical.clone(),
            len: meta.len(),
            modified: meta.modified().ok(),
            threads,
            backend,
        };
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(model) = loaded.get(&key).and_then(WeakModel::upgrade) {
            return Ok(model);
        }
        let model = GrantedModel::load(&canonical, threads, backend).map_err(fail)?;
        loaded.retain(|_, m| m.upgrade().is_some());
        loaded.insert(key, model.downgrade());
        Ok(model)
    }
}

/// What one app may do with WASI-NN, a part of its [`crate::Policy`].
#[derive(Debug, Clone)]
pub struct NnAccess {
    /// The models it may load by name.
    pub models: Vec<(String, GrantedModel)>,
    /// Whether it may load models from bytes.
    pub allow_bytes: bool,
    /// The engine that loads models from bytes.
    pub backend: NnBackend,
    /// Threads for models it loads from bytes.
    pub threads: usize,
    /// Execution contexts it may hold at once.
    pub max_contexts: usize,
    /// Execution contexts it holds now, across its instances.
    pub(crate) contexts: Arc<AtomicUsize>,
}

impl NnAccess {
    /// Access to `models`, holding no context yet; models loaded from bytes go to
    /// `backend`.
    pub fn new(
        models: Vec<(String, GrantedModel)>,
        allow_bytes: bool,
        backend: NnBackend,
        threads: usize,
        max_contexts: usize,
    ) -> NnAccess {
        NnAccess {
            models,
            allow_bytes,
            backend,
            threads,
            max_contexts,
            contexts: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The backend and registry one instance gets: none of the models, and a backend
    /// that refuses bytes, without a grant.
    pub(crate) fn instance(access: Option<&NnAccess>) -> (Vec<Backend>, Registry) {
        let Some(access) = access else {
            let backend = BytesLoader {
                allow_bytes: false,
                backend: NnBackend::Tract,
                threads: 1,
                limit: ContextLimit::default(),
            };
            return (
                vec![Backend::from(backend)],
                Registry::from(NamedModels::default()),
            );
        };
        let limit = ContextLimit {
            live: access.contexts.clone(),
            max: access.max_contexts,
        };
        let models = access
            .models
            .iter()
            .map(|(name, model)| (name.clone(), model.graph(&limit)))
            .collect();
        let backend = BytesLoader {
            allow_bytes: access.allow_bytes,
            backend: access.backend,
            threads: access.threads,
            limit,
        };
        (
            vec![Backend::from(backend)],
            Registry::from(NamedModels(models)),
        )
    }
}

/// The models an instance may load by name.
#[derive(Default)]
struct NamedModels(HashMap<String, Graph>);

impl GraphRegistry for NamedModels {
    fn get(&self, name: &str) -> Option<&Graph> {
        self.0.get(name)
    }
    fn get_mut(&mut self, name: &str) -> Option<&mut Graph> {
        self.0.get_mut(name)
    }
}

/// An app's execution contexts: how many it holds and may hold.
#[derive(Clone, Default)]
pub(crate) struct ContextLimit {
    live: Arc<AtomicUsize>,
    max: usize,
}

impl ContextLimit {
    /// Takes a slot, or says why not.
    pub(crate) fn acquire(&self) -> Result<ContextSlot, BackendError> {
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
pub(crate) struct ContextSlot(Arc<AtomicUsize>);

impl Drop for ContextSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The ONNX backend an instance sees: it loads models from the guest's bytes, when
/// granted, with the grant's engine.
struct BytesLoader {
    allow_bytes: bool,
    backend: NnBackend,
    threads: usize,
    limit: ContextLimit,
}

impl BackendInner for BytesLoader {
    fn encoding(&self) -> GraphEncoding {
        GraphEncoding::Onnx
    }

    fn load(
        &mut self,
        builders: &[&[u8]],
        _target: ExecutionTarget,
    ) -> Result<Graph, BackendError> {
        if !self.allow_bytes {
            return Err(backend_error(
                "loading a model from bytes is not granted (`--nn-allow-bytes`); load a \
                 named model",
            ));
        }
        let [bytes] = builders else {
            return Err(BackendError::InvalidNumberOfBuilders(1, builders.len()));
        };
        let model = match self.backend {
            NnBackend::Tract => GrantedModel::Tract(Arc::new(
                NnModel::from_bytes(bytes, self.threads).map_err(backend_error)?,
            )),
            #[cfg(feature = "onnxruntime")]
            NnBackend::Onnxruntime => GrantedModel::Onnxruntime(Arc::new(
                crate::nn_onnxruntime::OrtModel::from_bytes(bytes).map_err(backend_error)?,
            )),
            #[cfg(not(feature = "onnxruntime"))]
            NnBackend::Onnxruntime => return Err(backend_error(NO_ONNXRUNTIME)),
        };
        Ok(model.graph(&self.limit))
    }

    fn as_dir_loadable(&mut self) -> Option<&mut dyn BackendFromDir> {
        None
    }
}

/// A model as one app sees it.
struct TractGraph {
    model: Arc<NnModel>,
    limit: ContextLimit,
}

impl BackendGraph for TractGraph {
    fn init_execution_context(&self) -> Result<ExecutionContext, BackendError> {
        let slot = self.limit.acquire()?;
        let context: Box<dyn BackendExecutionContext> = Box::new(TractContext {
            inputs: vec![None; self.model.inputs.len()],
            outputs: Vec::new(),
            model: self.model.clone(),
            _slot: slot,
        });
        Ok(context.into())
    }
}

/// One execution context: inputs set so far and the last outputs.
struct TractContext {
    model: Arc<NnModel>,
    inputs: Vec<Option<TractTensor>>,
    outputs: Vec<TractTensor>,
    _slot: ContextSlot,
}

impl TractContext {
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
        for (slot, port) in self.inputs.iter().zip(&self.model.inputs) {
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

impl BackendExecutionContext for TractContext {
    fn set_input(&mut self, id: Id, tensor: &Tensor) -> Result<(), BackendError> {
        let ix = Self::find(&id, self.model.input_names(), "input")?;
        self.inputs[ix] = Some(self.model.input(ix, tensor).map_err(backend_error)?);
        Ok(())
    }

    fn get_output(&mut self, id: Id) -> Result<Tensor, BackendError> {
        if self.outputs.is_empty() {
            return Err(backend_error("no outputs yet: call `compute` first"));
        }
        let names = self.model.outputs.iter().map(String::as_str);
        let ix = Self::find(&id, names, "output")?;
        to_guest(&self.outputs[ix]).map_err(backend_error)
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
        let mut out = Vec::with_capacity(self.outputs.len());
        for (name, tensor) in self.model.outputs.iter().zip(&self.outputs) {
            out.push(NamedTensor {
                name: name.clone(),
                tensor: to_guest(tensor).map_err(backend_error)?,
            });
        }
        Ok(Some(out))
    }
}

/// What `wasi_ephemeral_nn` (preview 1) and `wasi:nn` (components) need per instance.
pub(crate) fn witx_ctx(access: Option<&NnAccess>) -> wasmtime_wasi_nn::witx::WasiNnCtx {
    let (backends, registry) = NnAccess::instance(access);
    wasmtime_wasi_nn::witx::WasiNnCtx::new(backends, registry)
}

/// The component ABI's context for one instance.
pub(crate) fn wit_ctx(access: Option<&NnAccess>) -> wasmtime_wasi_nn::wit::WasiNnCtx {
    let (backends, registry) = NnAccess::instance(access);
    wasmtime_wasi_nn::wit::WasiNnCtx::new(backends, registry)
}
