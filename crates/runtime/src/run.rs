//! Linking an app against WASI once, then running it in fresh stores.

use crate::app::Code;
use crate::error::one_line;
use crate::handler::PushHandlerPre;
use crate::panics;
use crate::providers::{self, ProviderSetup};
use crate::sandbox::Sandbox;
use crate::{App, AppKind, Control, Engine, Policy, RuntimeError};
use std::path::PathBuf;
use std::time::Duration;
use wasmtime::{InstancePre, Linker, Store, Trap, WasmBacktrace};
use wasmtime_wasi::I32Exit;
use wasmtime_wasi::cli::{StdinStream, StdoutStream};
use wasmtime_wasi::p2::bindings::CommandPre;

/// The function a core module may export (no parameters, no results) to be called
/// when its run is asked to stop ([`Control::request_stop`]).
pub const STOP_EXPORT: &str = "wedge_stop";

/// Where the guest's standard streams go.
pub enum Stdio {
    /// The host process's stdin, stdout and stderr.
    Inherit,
    /// Empty stdin; output discarded (benchmarks).
    Null,
    /// Streams of the caller's choosing (the daemon's log files and stop pipe).
    Streams {
        /// The guest's stdin.
        stdin: Box<dyn StdinStream + Sync>,
        /// The guest's stdout.
        stdout: Box<dyn StdoutStream + Sync>,
        /// The guest's stderr.
        stderr: Box<dyn StdoutStream + Sync>,
    },
}

/// How a run ended. Anything the guest did is an outcome; only host failures are errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The guest exited with this status (0 when `_start` or `run` returned normally).
    Exited(i32),
    /// The guest trapped.
    Trapped {
        /// The trap, e.g. `wasm trap: wasm \`unreachable\` instruction executed`.
        message: String,
        /// The Wasm backtrace, one frame per line, when there is one.
        backtrace: Option<String>,
        /// The memory cap, when a refused `memory.grow` preceded the trap.
        memory_limit: Option<u64>,
    },
    /// The wall-clock limit passed.
    TimedOut(Duration),
    /// The fuel budget ran out.
    OutOfFuel(u64),
    /// [`Control::kill`] ended it.
    Killed,
}

impl Outcome {
    /// The outcome as a process exit status, as docs/architecture.md documents them: the guest's
    /// own status (0–255; anything else is 1), 124 for a time or fuel limit, 134 for a
    /// trap, 137 for a kill (128 + SIGKILL, as Docker reports it).
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Exited(status) if (0..=255).contains(status) => *status,
            Outcome::Exited(_) => 1,
            Outcome::TimedOut(_) | Outcome::OutOfFuel(_) => 124,
            Outcome::Trapped { .. } => 134,
            Outcome::Killed => 137,
        }
    }

    /// What to tell the user when the run did not simply exit: `wedge: REASON`, then
    /// the trap's backtrace when there is one.
    pub fn diagnostic(&self) -> Option<String> {
        let mut text = format!("wedge: {}", self.reason()?);
        if let Outcome::Trapped {
            backtrace: Some(backtrace),
            ..
        } = self
        {
            text.push('\n');
            text.push_str(backtrace.trim_end());
        }
        Some(text)
    }

    /// What ended the run, on one line, or `None` for a normal exit.
    pub fn reason(&self) -> Option<String> {
        match self {
            Outcome::Exited(_) => None,
            Outcome::TimedOut(limit) => Some(format!(
                "time limit of {} exceeded",
                wedge_manifest::DurationSpec(*limit)
            )),
            Outcome::OutOfFuel(fuel) => Some(format!("fuel exhausted (budget {fuel})")),
            Outcome::Trapped {
                message,
                memory_limit: Some(limit),
                ..
            } => Some(format!(
                "guest trapped after reaching its memory limit of {}: {message}",
                wedge_manifest::ByteSize(*limit)
            )),
            Outcome::Trapped { message, .. } => Some(format!("guest trapped: {message}")),
            Outcome::Killed => Some("killed".into()),
        }
    }
}

/// How a core module is entered, following `wasmtime run`: a WASI command through
/// `_start`; a reactor through `_initialize`, then its default export `""`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ModuleEntry {
    /// Whether `_initialize` is called first.
    initialize: bool,
    /// The function that runs the program: `""` when exported, else `_start`.
    main: &'static str,
}

impl ModuleEntry {
    /// The entry of a module, given which functions it exports; `None` when it has no
    /// function to run.
    pub(crate) fn of(exports_func: impl Fn(&str) -> bool) -> Option<ModuleEntry> {
        let main = ["", "_start"].into_iter().find(|name| exports_func(name))?;
        Some(ModuleEntry {
            initialize: exports_func("_initialize"),
            main,
        })
    }
}

enum Pre {
    Module(InstancePre<Sandbox>, ModuleEntry),
    Component(CommandPre<Sandbox>),
    Handler(PushHandlerPre<Sandbox>),
}

/// An app linked against WASI, ready to run any number of times, each run in its own
/// store and sandbox.
pub struct Prepared {
    engine: Engine,
    pre: Pre,
    path: PathBuf,
}

impl Prepared {
    /// Links the app: a core module against WASI preview 1, a component against the
    /// `wasi:cli/command` world of preview 2, or, when it exports `wedge:edge/handler`
    /// instead of `wasi:cli/run`, as a push handler (see [`Prepared::is_push_handler`]).
    /// A core module runs as `wasmtime run` runs it: `_initialize` first when it
    /// exports one (a reactor), then its default export `""` or else `_start`.
    /// Missing imports, a module with neither, or a component of another world fail
    /// here.
    pub fn new(app: &App) -> Result<Prepared, RuntimeError> {
        let wt = app.engine.wasmtime();
        let link = |e: wasmtime::Error| RuntimeError::Link {
            path: app.path.clone(),
            message: one_line(&e),
        };
        let pre = match &app.code {
            Code::Module(module) => {
                let exports_func = |name: &str| {
                    module
                        .exports()
                        .any(|e| e.name() == name && e.ty().func().is_some())
                };
                let Some(entry) = ModuleEntry::of(exports_func) else {
                    return Err(RuntimeError::Link {
                        path: app.path.clone(),
                        message: crate::app::NO_ENTRY_POINT.into(),
                    });
                };
                let mut linker: Linker<Sandbox> = Linker::new(wt);
                wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s| s.module_wasi().0)
                    .map_err(link)?;
                crate::files::cap_path_open(&mut linker).map_err(link)?;
                providers::add_to_module_linker(&mut linker).map_err(link)?;
                Pre::Module(linker.instantiate_pre(module).map_err(link)?, entry)
            }
            Code::Component(component) => {
                let mut linker = wasmtime::component::Linker::<Sandbox>::new(wt);
                wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(link)?;
                providers::add_to_linker(&mut linker).map_err(link)?;
                let pre = linker.instantiate_pre(component).map_err(link)?;
                match CommandPre::new(pre.clone()) {
                    Ok(command) => Pre::Component(command),
                    Err(not_command) => match PushHandlerPre::new(pre) {
                        Ok(handler) => Pre::Handler(handler),
                        Err(_) => {
                            return Err(RuntimeError::Link {
                                path: app.path.clone(),
                                message: format!(
                                    "component is not a `wasi:cli/command` (it must export \
                                     `wasi:cli/run`, or `wedge:edge/handler` for push \
                                     delivery): {}",
                                    one_line(&not_command)
                                ),
                            });
                        }
                    },
                }
            }
        };
        Ok(Prepared {
            engine: app.engine.clone(),
            pre,
            path: app.path.clone(),
        })
    }

    /// The kind of app this is.
    pub fn kind(&self) -> AppKind {
        match self.pre {
            Pre::Module(..) => AppKind::Module,
            Pre::Component(_) | Pre::Handler(_) => AppKind::Component,
        }
    }

    /// Whether the app is a push handler: a component exporting `wedge:edge/handler`
    /// rather than `wasi:cli/run`. Running it subscribes it to its `--allow-subscribe`
    /// filters and hands it each message in a fresh instance until it is stopped; the
    /// limits apply per message.
    pub fn is_push_handler(&self) -> bool {
        matches!(self.pre, Pre::Handler(_))
    }

    /// Runs the app once under `policy`, on the current tokio runtime.
    pub async fn run(&self, policy: &Policy, stdio: Stdio) -> Result<Outcome, RuntimeError> {
        self.execute(policy, stdio, Teardown::Drop, None).await
    }

    /// Like [`Prepared::run`], steered by `control`: guest code yields to the async
    /// runtime at every engine tick (a busy loop cannot starve other tasks), stops there
    /// when paused or killed, and a kill also ends a guest waiting in the host.
    pub async fn run_controlled(
        &self,
        policy: &Policy,
        stdio: Stdio,
        control: &Control,
    ) -> Result<Outcome, RuntimeError> {
        self.execute(policy, stdio, Teardown::Drop, Some(control))
            .await
    }

    /// Runs the app once on a new single-threaded tokio runtime, blocking the caller, for
    /// a process that exits when the guest is done (`wedge run`): the guest's store and
    /// the runtime are left for process exit to reclaim, which is cheaper than unmapping
    /// them one by one. Calling it repeatedly leaks; use [`Prepared::run`] for that.
    pub fn run_before_exit(&self, policy: &Policy, stdio: Stdio) -> Result<Outcome, RuntimeError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| RuntimeError::Host(format!("cannot start the async runtime: {e}")))?;
        let outcome = rt.block_on(self.execute(policy, stdio, Teardown::Leak, None));
        std::mem::forget(rt);
        outcome
    }

    async fn execute(
        &self,
        policy: &Policy,
        stdio: Stdio,
        teardown: Teardown,
        control: Option<&Control>,
    ) -> Result<Outcome, RuntimeError> {
        if policy.fuel.is_some() && !self.engine.options().fuel {
            return Err(RuntimeError::Engine(
                "a fuel limit needs an engine built with fuel metering".into(),
            ));
        }
        if policy.timeout.is_some() || control.is_some() {
            self.engine.ensure_ticker()?;
        }
        if let Pre::Handler(pre) = &self.pre {
            self.engine.ensure_ticker()?;
            let local = Control::new();
            let control = control.unwrap_or(&local);
            return crate::handler::serve(self, pre, policy, stdio, control).await;
        }
        let setup = ProviderSetup::new(policy);
        let sandbox = match &self.pre {
            Pre::Module(..) => Sandbox::module(policy, stdio, control, setup)?,
            Pre::Component(_) | Pre::Handler(_) => {
                Sandbox::component(policy, stdio, control, setup)?
            }
        };
        let mut store = self.store(sandbox, policy, control)?;
        let run = async {
            match &self.pre {
                Pre::Module(pre, entry) => {
                    let result = host_panics_as_traps(async {
                        let instance = pre
                            .instantiate_async(&mut store)
                            .await
                            .map_err(host_refusal)?;
                        if entry.initialize {
                            instance
                                .get_typed_func::<(), ()>(&mut store, "_initialize")?
                                .call_async(&mut store, ())
                                .await?;
                        }
                        let start = instance.get_typed_func::<(), ()>(&mut store, entry.main)?;
                        let stop = instance
                            .get_typed_func::<(), ()>(&mut store, crate::STOP_EXPORT)
                            .ok();
                        if let Some(c) = control {
                            c.entered();
                        }
                        let (Some(control), Some(stop)) = (control, stop) else {
                            return start.call_async(&mut store, ()).await;
                        };
                        let finished = {
                            let main = std::pin::pin!(start.call_async(&mut store, ()));
                            tokio::select! {
                                result = main => Some(result),
                                () = control.stop_requested() => None,
                            }
                        };
                        // Dropping `main` unwound the guest's stack; its instance and
                        // memory are intact for the stop function.
                        match finished {
                            Some(result) => result,
                            None => stop.call_async(&mut store, ()).await,
                        }
                    })
                    .await;
                    report_fuel(&store, policy, control);
                    outcome(result.map(|()| 0), policy, store.data().limiter.hit)
                }
                Pre::Component(pre) => {
                    let result = host_panics_as_traps(async {
                        let command = pre
                            .instantiate_async(&mut store)
                            .await
                            .map_err(host_refusal)?;
                        if let Some(c) = control {
                            c.entered();
                        }
                        let status = command.wasi_cli_run().call_run(&mut store).await?;
                        Ok(if status.is_ok() { 0 } else { 1 })
                    })
                    .await;
                    report_fuel(&store, policy, control);
                    let outcome = outcome(result, policy, store.data().limiter.hit);
                    teardown.apply(store);
                    outcome
                }
                Pre::Handler(_) => unreachable!("push handlers are served above"),
            }
        };
        // The epoch deadline stops guest code; these stop a guest blocked in the host.
        let run = async {
            match policy.timeout {
                Some(limit) => tokio::time::timeout(limit, run)
                    .await
                    .unwrap_or(Ok(Outcome::TimedOut(limit))),
                None => run.await,
            }
        };
        let Some(control) = control else {
            return run.await;
        };
        let outcome = tokio::select! {
            outcome = control.timed(run) => outcome,
            () = control.killed() => Ok(Outcome::Killed),
        };
        match outcome {
            Ok(Outcome::Trapped { .. } | Outcome::TimedOut(_)) if control.is_killed() => {
                Ok(Outcome::Killed)
            }
            other => other,
        }
    }

    /// A store for one instance of the app under `policy`'s limits (its time limit
    /// counted from now), steered by `control` when there is one.
    pub(crate) fn store(
        &self,
        sandbox: Sandbox,
        policy: &Policy,
        control: Option<&Control>,
    ) -> Result<Store<Sandbox>, RuntimeError> {
        let deadline = policy.timeout.map(|t| std::time::Instant::now() + t);
        sandbox
            .into_store(&self.engine, policy, deadline, control)
            .map_err(|e| RuntimeError::Host(one_line(&e)))
    }

    /// Where the app was loaded from.
    pub fn path(&self) -> &PathBuf {
        &self.path
    }
}

/// Runs a guest call, turning a panic in a host function it reaches into an error the
/// run ends with (a trap), so a hostile guest cannot take the host down:
/// wasmtime-wasi-nn's preview 1 glue panics on pointers outside the guest's memory.
/// Such a panic is reported by the trap, not printed by the panic hook.
pub(crate) async fn host_panics_as_traps<T>(
    call: impl Future<Output = wasmtime::Result<T>>,
) -> wasmtime::Result<T> {
    panics::quiet_caught();
    let mut call = std::pin::pin!(call);
    std::future::poll_fn(|cx| {
        let poll = panics::in_guest_call(|| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call.as_mut().poll(cx)))
        });
        match poll {
            Ok(poll) => poll,
            Err(payload) => {
                let what = panics::message(&*payload).unwrap_or_default();
                std::task::Poll::Ready(Err(wasmtime::format_err!(
                    "a host function failed on the arguments the guest passed ({what})"
                )))
            }
        }
    })
    .await
}

/// Tells a managed run's [`Control`] how much fuel the guest used.
fn report_fuel<T>(store: &Store<T>, policy: &Policy, control: Option<&Control>) {
    if let (Some(control), Some(budget)) = (control, policy.fuel) {
        control.set_fuel_used(budget - store.get_fuel().unwrap_or(0).min(budget));
    }
}

/// What happens to a store once its run is over.
#[derive(Clone, Copy)]
enum Teardown {
    /// Free it now (a long-lived process).
    Drop,
    /// Leave it to process exit.
    Leak,
}

impl Teardown {
    fn apply<T>(self, store: Store<T>) {
        match self {
            Teardown::Drop => drop(store),
            Teardown::Leak => std::mem::forget(store),
        }
    }
}

/// Why the host could not instantiate the app (not a trap of the guest's own, such as
/// one in its start function): the instance pool is full, memory cannot be mapped.
#[derive(Debug)]
pub(crate) struct HostRefusal(String);

impl std::fmt::Display for HostRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HostRefusal {}

/// Marks an instantiation error that is not a trap as the host's refusal.
pub(crate) fn host_refusal(err: wasmtime::Error) -> wasmtime::Error {
    if err.downcast_ref::<Trap>().is_some() {
        err
    } else {
        HostRefusal(one_line(&err)).into()
    }
}

/// Sorts a finished run into an [`Outcome`]; the host refusing to instantiate the app
/// is an error, not an outcome.
fn outcome(
    result: wasmtime::Result<i32>,
    policy: &Policy,
    memory_hit: bool,
) -> Result<Outcome, RuntimeError> {
    let err = match result {
        Ok(status) => return Ok(Outcome::Exited(status)),
        Err(err) => err,
    };
    if let Some(refusal) = err.downcast_ref::<HostRefusal>() {
        return Err(RuntimeError::Host(format!(
            "cannot instantiate the app: {refusal}"
        )));
    }
    Ok(classify(err, policy, memory_hit))
}

/// Sorts a guest's failure into an [`Outcome`].
pub(crate) fn classify(err: wasmtime::Error, policy: &Policy, memory_hit: bool) -> Outcome {
    if let Some(exit) = err.downcast_ref::<I32Exit>() {
        return Outcome::Exited(exit.0);
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => return Outcome::OutOfFuel(policy.fuel.unwrap_or(0)),
        Some(Trap::Interrupt) => return Outcome::TimedOut(policy.timeout.unwrap_or_default()),
        _ => {}
    }
    let backtrace = err
        .downcast_ref::<WasmBacktrace>()
        .map(|bt| bt.to_string())
        .filter(|s| !s.trim().is_empty());
    let message = match err.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => one_line(&err),
    };
    Outcome::Trapped {
        message,
        backtrace,
        memory_limit: memory_hit.then_some(policy.memory),
    }
}
