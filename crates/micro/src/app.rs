//! One app: what it is ([`AppSpec`]), the state its host functions see ([`AppState`]),
//! and one run of it as a future that owns its store ([`launch`]), so that the
//! scheduler ([`crate::Runtime`]) can interleave apps on one core.

use crate::board::Board;
use crate::messaging::{Bus, Grants, Messaging};
use crate::wasi::Exit;
use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::AtomicBool;
use wasmtime::{Engine, InstancePre, Store, StoreLimits, StoreLimitsBuilder, Trap};

/// Fuel an app runs before it yields the core to the next app (about as many Wasm
/// instructions).
pub const FUEL_SLICE: u64 = 10_000;

/// One app to run.
#[derive(Clone, Debug)]
pub struct AppSpec {
    /// Its name, for messages.
    pub name: String,
    /// Code compiled on the host for this runtime ([`crate::settings::configure`]). It
    /// is used in place (no copy), so it lives as long as the program: flash, or a
    /// bundle in RAM.
    pub code: &'static [u8],
    /// Its arguments, the first being its name.
    pub args: Vec<String>,
    /// Its environment, `KEY=VALUE` each.
    pub env: Vec<String>,
    /// Bytes its linear memories and tables may take in all.
    pub memory: usize,
    /// Instructions it may run per run (wasmtime fuel units).
    pub fuel: u64,
    /// Whether it is started again when a run fails.
    pub restart: Restart,
    /// The topics it may publish to and subscribe to.
    pub grants: Grants,
}

/// When an app is started again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restart {
    /// Never: its first end is its last.
    Never,
    /// After a failed run (a trap, fuel run out, a nonzero exit), at most `max` times.
    OnFailure {
        /// Restarts allowed.
        max: u32,
    },
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `_start` returned (0) or the app called `proc_exit`.
    Exited(i32),
    /// The fuel budget ran out.
    OutOfFuel,
    /// The app trapped, or could not start (its initial memory over its cap).
    Failed(String),
    /// The app was stopped ([`crate::Runtime::stop`]).
    Stopped,
}

impl Outcome {
    /// Whether the run counts as failed (for [`Restart::OnFailure`]).
    pub fn failed(&self) -> bool {
        !matches!(self, Outcome::Exited(0) | Outcome::Stopped)
    }
}

impl core::fmt::Display for Outcome {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Outcome::Exited(code) => write!(f, "exited with {code}"),
            Outcome::OutOfFuel => f.write_str("ran out of fuel"),
            Outcome::Failed(why) => write!(f, "failed: {why}"),
            Outcome::Stopped => f.write_str("stopped"),
        }
    }
}

/// What a running app's host functions see.
pub struct AppState {
    pub(crate) board: &'static dyn Board,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<String>,
    /// Set while the app waits (sleeps) rather than runs: the scheduler idles the core
    /// when every app waits.
    pub(crate) waiting: Arc<AtomicBool>,
    pub(crate) messaging: Messaging,
    limits: StoreLimits,
}

/// A run in progress: polled by the scheduler until it gives its outcome.
pub type Run = Pin<Box<dyn Future<Output = Outcome>>>;

/// What a run shares with the rest of the device.
pub(crate) struct Device {
    pub(crate) board: &'static dyn Board,
    pub(crate) bus: Arc<Bus>,
}

/// Starts a run of `spec`, instantiated from `pre` in a store of its own (its memory cap,
/// its fuel budget, yielding every [`FUEL_SLICE`]; its subscriptions end with it).
pub(crate) fn launch(
    engine: &Engine,
    pre: &InstancePre<AppState>,
    spec: &AppSpec,
    device: &Device,
    waiting: Arc<AtomicBool>,
) -> Run {
    let state = AppState {
        board: device.board,
        args: spec.args.clone(),
        env: spec.env.clone(),
        waiting,
        messaging: Messaging::new(device.bus.clone(), spec.grants.clone()),
        limits: StoreLimitsBuilder::new()
            .memory_size(spec.memory)
            .table_elements(spec.memory / 8)
            .instances(1)
            .build(),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limits);
    let pre = pre.clone();
    let fuel = spec.fuel;
    Box::pin(async move {
        let run = async {
            store.set_fuel(fuel)?;
            store.fuel_async_yield_interval(Some(FUEL_SLICE))?;
            let instance = pre.instantiate_async(&mut store).await?;
            let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
            start.call_async(&mut store, ()).await
        };
        match run.await {
            Ok(()) => Outcome::Exited(0),
            Err(e) => match (e.downcast_ref::<Exit>(), e.downcast_ref::<Trap>()) {
                (Some(Exit(code)), _) => Outcome::Exited(*code),
                (_, Some(Trap::OutOfFuel)) => Outcome::OutOfFuel,
                (_, Some(trap)) => Outcome::Failed(trap.to_string()),
                // A host function's error under its backtrace: the cause is what
                // says what happened.
                _ => Outcome::Failed(e.root_cause().to_string()),
            },
        }
    })
}
