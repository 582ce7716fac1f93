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
//! cargo feature a grant may pick onnxruntime instead (`onnxruntime`). The execution
//! contexts, shape checks and limits are the same for both (`context`).

#[cfg(feature = "nn")]
mod bounds;
// What the backends share; a build without any (a device build) leaves parts unused.
#[cfg_attr(not(any(feature = "nn", feature = "onnxruntime")), allow(dead_code))]
mod context;
#[cfg(not(feature = "nn"))]
mod no_tract;
#[cfg(feature = "onnxruntime")]
mod onnxruntime;
#[cfg(feature = "nn")]
mod tract;

#[cfg(not(feature = "nn"))]
pub use no_tract::NnModel;
#[cfg(feature = "nn")]
pub use tract::NnModel;

use crate::RuntimeError;
use context::ContextLimit;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};
use wasmtime_wasi_nn::backend::{BackendError, BackendFromDir, BackendInner};
use wasmtime_wasi_nn::wit::{ExecutionTarget, GraphEncoding};
use wasmtime_wasi_nn::{Backend, Graph, GraphRegistry, Registry};
use wedge_manifest::NnBackend;

/// Runs `f`, turning a panic (a bug in the engine on odd input) into an error.
#[cfg_attr(not(any(feature = "nn", feature = "onnxruntime")), allow(dead_code))]
pub(crate) fn caught<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .map_err(|_| "the inference engine failed on this model or input".to_string())
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
    Onnxruntime(Arc<onnxruntime::OrtModel>),
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
                onnxruntime::OrtModel::from_file(path, threads)?,
            ))),
            #[cfg(not(feature = "onnxruntime"))]
            NnBackend::Onnxruntime => Err(NO_ONNXRUNTIME.into()),
        }
    }

    /// The model as one app sees it, its execution contexts counted against `limit`.
    fn graph(&self, limit: &ContextLimit) -> Graph {
        match self {
            GrantedModel::Tract(model) => context::graph(model.clone(), limit),
            #[cfg(feature = "onnxruntime")]
            GrantedModel::Onnxruntime(model) => context::graph(model.clone(), limit),
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
    Onnxruntime(Weak<onnxruntime::OrtModel>),
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
        // Read from `path` itself: a `/proc/self/fd/N` path is the file its caller
        // opened, wherever its name now leads.
        let model = GrantedModel::load(path, threads, backend).map_err(fail)?;
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
    /// Whether it may load models from bytes (always run by tract).
    pub allow_bytes: bool,
    /// Threads for models it loads from bytes.
    pub threads: usize,
    /// Execution contexts it may hold at once.
    pub max_contexts: usize,
    /// Execution contexts it holds now, across its instances.
    pub(crate) contexts: Arc<AtomicUsize>,
}

impl NnAccess {
    /// Access to `models`, holding no context yet.
    pub fn new(
        models: Vec<(String, GrantedModel)>,
        allow_bytes: bool,
        threads: usize,
        max_contexts: usize,
    ) -> NnAccess {
        NnAccess {
            models,
            allow_bytes,
            threads,
            max_contexts,
            contexts: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The backend and registry one instance gets: none of the models, and a backend
    /// that refuses bytes, without a grant.
    pub(crate) fn instance(
        access: Option<&NnAccess>,
        bounds: LoadBounds,
    ) -> (Vec<Backend>, Registry) {
        let Some(access) = access else {
            let backend = BytesLoader {
                allow_bytes: false,
                threads: 1,
                limit: ContextLimit::default(),
                bounds,
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
            threads: access.threads,
            limit,
            bounds,
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

/// What loading one model from a guest's bytes may cost the host: the instance's
/// memory limit, counted again for the model's tensors, and the instance's deadline.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoadBounds {
    /// Bytes of tensors the model may declare or make tract compute while loading.
    pub max_bytes: usize,
    /// When the instance's time limit passes, if it has one.
    pub deadline: Option<Instant>,
}

impl LoadBounds {
    /// The bounds of an instance starting now under a memory limit and a time limit.
    pub(crate) fn starting_now(memory: u64, timeout: Option<Duration>) -> LoadBounds {
        LoadBounds {
            max_bytes: usize::try_from(memory).unwrap_or(usize::MAX),
            deadline: timeout.and_then(|t| Instant::now().checked_add(t)),
        }
    }
}

/// The ONNX backend an instance sees: it loads models from the guest's bytes, when
/// granted, always with tract, within the instance's [`LoadBounds`].
struct BytesLoader {
    allow_bytes: bool,
    threads: usize,
    limit: ContextLimit,
    bounds: LoadBounds,
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
        // Always tract, whatever the grant's backend: a model the guest wrote could
        // point onnxruntime at files of the host (ONNX external data); tract reads
        // nothing but the bytes.
        let model = load_bounded(bytes, self.threads, self.bounds).map_err(backend_error)?;
        Ok(GrantedModel::Tract(Arc::new(model)).graph(&self.limit))
    }

    fn as_dir_loadable(&mut self) -> Option<&mut dyn BackendFromDir> {
        None
    }
}

/// Loads a model from a guest's bytes within `bounds`: on a thread of its own, so that
/// the instance's time limit ends the wait even while tract is busy (the guest gets an
/// error, then its deadline ends it; the abandoned load, bounded in memory, finishes
/// on its own and is dropped).
fn load_bounded(bytes: &[u8], threads: usize, bounds: LoadBounds) -> Result<NnModel, String> {
    let Some(deadline) = bounds.deadline else {
        return NnModel::from_untrusted_bytes(bytes, threads, bounds.max_bytes);
    };
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(LOAD_TIMED_OUT.into());
    }
    let bytes = bytes.to_vec();
    let (done, result) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("wedge-nn-load".into())
        .spawn(move || {
            let _ = done.send(NnModel::from_untrusted_bytes(
                &bytes,
                threads,
                bounds.max_bytes,
            ));
        })
        .map_err(|e| format!("cannot start a thread to load the model: {e}"))?;
    result
        .recv_timeout(left)
        .unwrap_or_else(|_| Err(LOAD_TIMED_OUT.into()))
}

/// Why a load from bytes was abandoned.
const LOAD_TIMED_OUT: &str = "loading the model did not finish within the time limit";

/// What `wasi_ephemeral_nn` (preview 1) and `wasi:nn` (components) need per instance.
pub(crate) fn witx_ctx(
    access: Option<&NnAccess>,
    bounds: LoadBounds,
) -> wasmtime_wasi_nn::witx::WasiNnCtx {
    let (backends, registry) = NnAccess::instance(access, bounds);
    wasmtime_wasi_nn::witx::WasiNnCtx::new(backends, registry)
}

/// The component ABI's context for one instance.
pub(crate) fn wit_ctx(
    access: Option<&NnAccess>,
    bounds: LoadBounds,
) -> wasmtime_wasi_nn::wit::WasiNnCtx {
    let (backends, registry) = NnAccess::instance(access, bounds);
    wasmtime_wasi_nn::wit::WasiNnCtx::new(backends, registry)
}
