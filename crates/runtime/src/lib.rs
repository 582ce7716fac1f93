//! wedge's runtime: runs Wasm apps on wasmtime inside a sandbox built from a [`Policy`].
//!
//! The flow is the same for every caller (CLI, daemon, benchmarks):
//! 1. [`Engine::new`] picks a compiler tier and the engine settings;
//! 2. [`App::load`] reads a `.wasm` or `.cwasm`, detects module vs component, and
//!    compiles through the [`CodeCache`];
//! 3. [`Prepared::new`] links it against WASI once (missing imports fail here);
//! 4. [`Prepared::run`] gives each run a fresh store with the [`Policy`]'s grants and
//!    limits, and returns an [`Outcome`]; [`Prepared::run_controlled`] adds a
//!    [`Control`] to kill, pause and resume it from outside.
//!
//! [`HttpApp`] serves a `wasi:http/proxy` component instead, a fresh instance per
//! request. [`inspect()`] describes a Wasm file without running it.

mod app;
mod cache;
// The component tooling: a build machine's (`compiler` feature).
#[cfg(feature = "compiler")]
mod componentize;
mod control;
mod engine;
mod error;
mod files;
mod handler;
mod http;
mod idle_body;
mod inspect;
mod keyvalue;
mod known_files;
mod limits;
mod messaging;
mod nn;
mod outbound;
mod output;
mod panics;
mod policy;
mod providers;
mod run;
mod sandbox;
mod streaming;
mod wasi;

pub use app::{
    App, AppKind, BACKGROUND_NICE, BASELINE_FIRST_MIN, Tiering, baseline_takes, starts_on_baseline,
};
pub use cache::CodeCache;
#[cfg(feature = "compiler")]
pub use componentize::{componentize, needs_componentizing};
pub use control::Control;
pub use engine::{Engine, EngineKind, EngineOptions};
pub use error::RuntimeError;
pub use http::{
    DEFAULT_BODY_TIMEOUT, DEFAULT_REQUEST_TIMEOUT, GuestReport, HttpApp, HttpBody, HttpFailure,
    RequestLimits, host_response,
};
#[cfg(feature = "compiler")]
pub use inspect::validate;
pub use inspect::{AppInfo, Capability, inspect};
pub use keyvalue::{KeyValue, KvStore};
pub use known_files::FileStamp;
pub use messaging::{
    BusCounters, BusLimits, BusMessage, DEFAULT_BUS_BYTES, DEFAULT_QUEUE, DEFAULT_QUEUE_BYTES,
    Delivery, MAX_PAYLOAD, MessageBus, Messaging, Outlet, OutletWait, Overflow,
};
pub use nn::{GrantedModel, NnAccess, NnModel, NnModels};
pub use output::SharedOutput;
pub use policy::{DEFAULT_MEMORY, HostServices, Policy};
pub use run::{Outcome, Prepared, STOP_EXPORT, Stdio};
pub use streaming::{StreamingCompile, compile_ignores};
pub use wasmtime_wasi::cli::{IsTerminal, StdinStream, StdoutStream};
pub use wasmtime_wasi_nn::Tensor as NnTensor;
pub use wasmtime_wasi_nn::wit::TensorType as NnTensorType;
