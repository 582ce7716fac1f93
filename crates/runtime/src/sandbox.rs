//! The one sandbox every instance runs in, whatever it is (a core module, a command
//! component, a push handler's message, an HTTP request): a store whose data is a
//! [`Sandbox`] (the WASI context the policy grants, the memory limiter, the capability
//! providers' state), set up with the policy's fuel and an epoch callback that enforces
//! the wall-clock limit, pause and kill.

use crate::limits::MemoryLimiter;
use crate::providers::{ProviderSetup, Providers};
use crate::{Control, Engine, Policy, RuntimeError, Stdio};
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::ResourceTable;
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtxView, WasiHttpView};

/// The data of every store: what the instance may reach and what it has used.
pub(crate) struct Sandbox {
    wasi: Wasi,
    /// The memory cap, and whether the instance hit it.
    pub(crate) limiter: MemoryLimiter,
    providers: Providers,
}

/// The WASI context, by the ABI the app was built for.
enum Wasi {
    /// A core module's (preview 1), with how many files and directories it may hold
    /// open ([`crate::files::module_open_limit`]).
    Module { ctx: WasiP1Ctx, open_limit: usize },
    /// A component's (preview 2) and its resource table, capped at
    /// [`crate::files::component_table`].
    Component { ctx: WasiCtx, table: ResourceTable },
}

impl Sandbox {
    /// The sandbox of a core module under `policy`, its standard streams on `stdio`;
    /// the limiter reports the memory in use to `report` when there is one.
    pub(crate) fn module(
        policy: &Policy,
        stdio: Stdio,
        report: Option<&Control>,
        setup: Arc<ProviderSetup>,
    ) -> Result<Sandbox, RuntimeError> {
        let ctx = crate::wasi::builder(policy, stdio)?.build_p1();
        let open_limit = crate::files::module_open_limit(policy);
        Ok(Sandbox::with(
            Wasi::Module { ctx, open_limit },
            policy,
            report,
            setup,
        ))
    }

    /// The sandbox of a component under `policy`, as [`Sandbox::module`] for a module.
    pub(crate) fn component(
        policy: &Policy,
        stdio: Stdio,
        report: Option<&Control>,
        setup: Arc<ProviderSetup>,
    ) -> Result<Sandbox, RuntimeError> {
        let ctx = crate::wasi::builder(policy, stdio)?.build();
        let table = crate::files::component_table(policy);
        Ok(Sandbox::with(
            Wasi::Component { ctx, table },
            policy,
            report,
            setup,
        ))
    }

    fn with(
        wasi: Wasi,
        policy: &Policy,
        report: Option<&Control>,
        setup: Arc<ProviderSetup>,
    ) -> Sandbox {
        Sandbox {
            wasi,
            limiter: MemoryLimiter::new(policy, report.cloned()),
            providers: Providers::new(setup),
        }
    }

    /// A core module's preview 1 context and its open-file limit, for the module linker.
    ///
    /// # Panics
    /// On a component's sandbox: only [`Sandbox::module`] stores are linked as modules.
    pub(crate) fn module_wasi(&mut self) -> (&mut WasiP1Ctx, usize) {
        match &mut self.wasi {
            Wasi::Module { ctx, open_limit } => (ctx, *open_limit),
            Wasi::Component { .. } => unreachable!("a component's store runs no module"),
        }
    }

    /// The providers' state and the resource table their handles live in.
    pub(crate) fn providers(&mut self) -> (&mut Providers, &mut ResourceTable) {
        let table = match &mut self.wasi {
            Wasi::Module { ctx, .. } => ctx.ctx().table,
            Wasi::Component { table, .. } => table,
        };
        (&mut self.providers, table)
    }

    /// A store holding this sandbox under `policy`'s memory cap and fuel. At every
    /// epoch tick (when the engine's ticker runs: with a time limit or a `control`)
    /// guest code yields to the host; it is interrupted once `deadline` has passed or
    /// `control` is killed, and waits while `control` is paused.
    pub(crate) fn into_store(
        self,
        engine: &Engine,
        policy: &Policy,
        deadline: Option<Instant>,
        control: Option<&Control>,
    ) -> wasmtime::Result<Store<Sandbox>> {
        let mut store = Store::new(engine.wasmtime(), self);
        store.limiter(|s| &mut s.limiter as &mut dyn wasmtime::ResourceLimiter);
        if let Some(fuel) = policy.fuel {
            store.set_fuel(fuel)?;
        }
        let control = control.cloned();
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            let late = deadline.is_some_and(|at| Instant::now() >= at);
            let Some(control) = &control else {
                return Ok(if late {
                    UpdateDeadline::Interrupt
                } else {
                    UpdateDeadline::Yield(1)
                });
            };
            Ok(if late || control.is_killed() {
                UpdateDeadline::Interrupt
            } else if control.is_paused() {
                let control = control.clone();
                UpdateDeadline::YieldCustom(1, Box::pin(async move { control.runnable().await }))
            } else {
                UpdateDeadline::Yield(1)
            })
        });
        Ok(store)
    }
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        match &mut self.wasi {
            Wasi::Module { ctx, .. } => ctx.ctx(),
            Wasi::Component { ctx, table } => WasiCtxView { ctx, table },
        }
    }
}

/// `wasi:http`, for the HTTP server's linker: its state is made on first use, with the
/// policy's outbound allow-list ([`crate::outbound`]).
impl WasiHttpView for Sandbox {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        let (providers, table) = self.providers();
        providers.http(table)
    }
}
