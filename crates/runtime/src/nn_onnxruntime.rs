//! WASI-NN on onnxruntime (cargo feature `onnxruntime`): wasmtime-wasi-nn's ONNX backend,
//! on the `ort` crate with onnxruntime's shared library loaded at run time rather than
//! linked: from `ORT_DYLIB_PATH`, else `libonnxruntime.so` on the library path (the
//! PyPI wheel ships one in `onnxruntime/capi/`). Nothing is downloaded.
//!
//! The same grants apply as with tract: named models only, bytes only when granted,
//! the per-app cap on execution contexts. A model is one onnxruntime session shared by
//! every app granted it; its inferences take turns on it. wasmtime-wasi-nn's backend
//! converts f32 tensors only: other types are refused here with a WASI-NN error.

use crate::nn::{ContextLimit, ContextSlot, backend_error, caught};
use std::path::Path;
use std::sync::OnceLock;
use wasmtime_wasi_nn::backend::onnx::OnnxBackend;
use wasmtime_wasi_nn::backend::{
    BackendError, BackendExecutionContext, BackendGraph, BackendInner, Id, NamedTensor,
};
use wasmtime_wasi_nn::wit::{ExecutionTarget, TensorType};
use wasmtime_wasi_nn::{ExecutionContext, Graph, Tensor};

/// A model loaded into an onnxruntime session.
pub struct OrtModel {
    graph: Graph,
}

impl std::fmt::Debug for OrtModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrtModel").finish_non_exhaustive()
    }
}

impl OrtModel {
    /// Loads an ONNX model into a new session (CPU, all graph optimizations). The error
    /// is one line.
    pub fn from_bytes(bytes: &[u8]) -> Result<OrtModel, String> {
        library()?;
        let graph = caught(|| OnnxBackend::default().load(&[bytes], ExecutionTarget::Cpu))?
            .map_err(|e| e.to_string().replace('\n', " "))?;
        Ok(OrtModel { graph })
    }

    /// Reads and loads an ONNX file (see [`OrtModel::from_bytes`]).
    pub fn from_file(path: &Path) -> Result<OrtModel, String> {
        let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
        OrtModel::from_bytes(&bytes)
    }

    /// The model as one app sees it, its execution contexts counted against `limit`.
    pub(crate) fn graph(&self, limit: &ContextLimit) -> Graph {
        let graph: Box<dyn BackendGraph> = Box::new(LimitedGraph {
            inner: self.graph.clone(),
            limit: limit.clone(),
        });
        graph.into()
    }
}

/// Loads onnxruntime's library once per process, so that a missing or unusable one is
/// an error here rather than a panic inside `ort`, which loads the same path next.
fn library() -> Result<(), String> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let path =
                std::env::var_os("ORT_DYLIB_PATH").unwrap_or_else(|| "libonnxruntime.so".into());
            // SAFETY: loading onnxruntime runs only its own initializers, as `ort` does
            // when it loads the library itself.
            match unsafe { libloading::Library::new(&path) } {
                Ok(library) => {
                    // Kept loaded for the life of the process, as `ort` keeps it.
                    std::mem::forget(library);
                    Ok(())
                }
                Err(e) => Err(format!(
                    "cannot load onnxruntime from `{}`: {e} (set ORT_DYLIB_PATH to its \
                     libonnxruntime.so, e.g. the one in the PyPI wheel's onnxruntime/capi/)",
                    std::path::Path::new(&path).display()
                )),
            }
        })
        .clone()
}

/// A shared model whose contexts count against one app's limit.
struct LimitedGraph {
    inner: Graph,
    limit: ContextLimit,
}

impl BackendGraph for LimitedGraph {
    fn init_execution_context(&self) -> Result<ExecutionContext, BackendError> {
        let slot = self.limit.acquire()?;
        let inner = caught(|| self.inner.init_execution_context()).map_err(backend_error)??;
        let context: Box<dyn BackendExecutionContext> =
            Box::new(LimitedContext { inner, _slot: slot });
        Ok(context.into())
    }
}

/// An onnxruntime execution context holding one of its app's slots; a panic inside
/// `ort` becomes a WASI-NN error.
struct LimitedContext {
    inner: ExecutionContext,
    _slot: ContextSlot,
}

/// wasmtime-wasi-nn's ONNX backend converts f32 tensors only (and panics on others).
fn check_type(tensor: &Tensor) -> Result<(), BackendError> {
    if tensor.ty == TensorType::Fp32 {
        Ok(())
    } else {
        Err(backend_error(format!(
            "the onnxruntime backend takes f32 tensors only, not {:?} (the tract backend \
             takes more types)",
            tensor.ty
        )))
    }
}

impl BackendExecutionContext for LimitedContext {
    fn set_input(&mut self, id: Id, tensor: &Tensor) -> Result<(), BackendError> {
        check_type(tensor)?;
        caught(|| self.inner.set_input(id, tensor)).map_err(backend_error)?
    }

    fn get_output(&mut self, id: Id) -> Result<Tensor, BackendError> {
        caught(|| self.inner.get_output(id)).map_err(backend_error)?
    }

    fn compute(
        &mut self,
        inputs: Option<Vec<NamedTensor>>,
    ) -> Result<Option<Vec<NamedTensor>>, BackendError> {
        for input in inputs.iter().flatten() {
            check_type(&input.tensor)?;
        }
        // `ExecutionContext` has an inherent `compute` of the old ABI; this is the trait's.
        caught(|| BackendExecutionContext::compute(&mut *self.inner, inputs))
            .map_err(backend_error)?
    }
}
