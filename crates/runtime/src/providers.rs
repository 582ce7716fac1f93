//! Host APIs beyond WASI, as capability providers: each has a policy section (a field
//! of [`Policy`]), a linker hook (`add_to_linker` or `add_to_module_linker` below) and
//! per-instance state (a part of [`Providers`], made on the instance's first call where
//! it costs anything). Adding one touches its own module and a line in each of those
//! places.
//!
//! - `wasi:keyvalue` ([`crate::keyvalue`]): granted with `--kv`; without a grant,
//!   `open` answers `access-denied`.
//! - `wasi:config` (wasmtime-wasi-config): the policy's config values; unset keys read
//!   as none.
//! - `wedge:edge/messaging` ([`crate::messaging`]): publish and subscribe per topic
//!   grant; without one, every call answers `permission-denied`.
//! - `wasi:nn` ([`crate::nn`], wasmtime-wasi-nn with a tract backend), and its preview 1
//!   ABI `wasi_ephemeral_nn` for core modules: the granted models by name; without a
//!   grant, none, and no loading from bytes.
//! - outbound `wasi:http` ([`crate::outbound`]), for HTTP apps: requests leave only for
//!   the origins granted with `--allow-http`.

use crate::Policy;
use crate::keyvalue::{KeyValue, KvView};
use crate::messaging::{Messaging, MsgView};
use crate::nn::NnAccess;
use crate::outbound::OutboundHooks;
use crate::sandbox::Sandbox;
use std::sync::Arc;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi_config::{WasiConfig, WasiConfigVariables};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView};
use wedge_manifest::HttpOrigin;

/// What the providers need, built once per policy and shared by the instances run
/// under it.
pub(crate) struct ProviderSetup {
    keyvalue: Option<KeyValue>,
    config: WasiConfigVariables,
    messaging: Option<Messaging>,
    nn: Option<NnAccess>,
    http: Arc<[HttpOrigin]>,
    memory: u64,
    timeout: Option<std::time::Duration>,
}

impl ProviderSetup {
    pub(crate) fn new(policy: &Policy) -> Arc<ProviderSetup> {
        Arc::new(ProviderSetup {
            keyvalue: policy.keyvalue.clone(),
            config: policy.config.iter().cloned().collect(),
            messaging: policy.messaging.clone(),
            nn: policy.nn.clone(),
            http: policy.http.clone().into(),
            memory: policy.memory,
            timeout: policy.timeout,
        })
    }
}

/// The providers' per-instance state, a part of a store's data.
pub(crate) struct Providers {
    setup: Arc<ProviderSetup>,
    /// Messaging subscriptions the instance holds.
    subscriptions: usize,
    /// WASI-NN state of a component, made on the instance's first call.
    nn: Option<wasmtime_wasi_nn::wit::WasiNnCtx>,
    /// WASI-NN state of a core module, made on the instance's first call.
    nn_module: Option<wasmtime_wasi_nn::witx::WasiNnCtx>,
    /// `wasi:http` state of an HTTP app, made on the instance's first call.
    http: Option<(WasiHttpCtx, OutboundHooks)>,
    /// What loading a model from bytes may cost, from the instance's start.
    nn_bounds: crate::nn::LoadBounds,
}

impl Providers {
    pub(crate) fn new(setup: Arc<ProviderSetup>) -> Providers {
        Providers {
            nn_bounds: crate::nn::LoadBounds::starting_now(setup.memory, setup.timeout),
            setup,
            subscriptions: 0,
            nn: None,
            nn_module: None,
            http: None,
        }
    }

    /// The `wasi:http` view of an HTTP app's instance whose resources live in `table`.
    pub(crate) fn http<'a>(&'a mut self, table: &'a mut ResourceTable) -> WasiHttpCtxView<'a> {
        let setup = &self.setup;
        let (ctx, hooks) = self.http.get_or_insert_with(|| {
            let hooks = OutboundHooks {
                allowed: setup.http.clone(),
            };
            (WasiHttpCtx::new(), hooks)
        });
        WasiHttpCtxView { ctx, table, hooks }
    }
}

/// Adds every provider's interfaces to a component linker.
pub(crate) fn add_to_linker(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    crate::keyvalue::add_to_linker(linker, keyvalue_view)?;
    wasmtime_wasi_config::add_to_linker(linker, config_view)?;
    crate::messaging::add_to_linker(linker, messaging_view)?;
    wasmtime_wasi_nn::wit::add_to_linker(linker, nn_view)?;
    Ok(())
}

/// Adds the providers core modules can import to a module linker (WASI-NN's preview 1
/// ABI; the others are component interfaces only).
pub(crate) fn add_to_module_linker(linker: &mut wasmtime::Linker<Sandbox>) -> wasmtime::Result<()> {
    wasmtime_wasi_nn::witx::add_to_linker(linker, nn_module_view)
}

fn keyvalue_view(state: &mut Sandbox) -> KvView<'_> {
    let (providers, table) = state.providers();
    KvView {
        access: providers.setup.keyvalue.as_ref(),
        table,
    }
}

fn config_view(state: &mut Sandbox) -> WasiConfig<'_> {
    WasiConfig::from(&state.providers().0.setup.config)
}

fn messaging_view(state: &mut Sandbox) -> MsgView<'_> {
    let (providers, table) = state.providers();
    MsgView {
        access: providers.setup.messaging.as_ref(),
        table,
        subscriptions: &mut providers.subscriptions,
    }
}

fn nn_view(state: &mut Sandbox) -> wasmtime_wasi_nn::wit::WasiNnView<'_> {
    let (providers, table) = state.providers();
    let (setup, bounds) = (&providers.setup, providers.nn_bounds);
    let ctx = providers
        .nn
        .get_or_insert_with(|| crate::nn::wit_ctx(setup.nn.as_ref(), bounds));
    wasmtime_wasi_nn::wit::WasiNnView::new(table, ctx)
}

fn nn_module_view(state: &mut Sandbox) -> &mut wasmtime_wasi_nn::witx::WasiNnCtx {
    let providers = state.providers().0;
    let (setup, bounds) = (&providers.setup, providers.nn_bounds);
    providers
        .nn_module
        .get_or_insert_with(|| crate::nn::witx_ctx(setup.nn.as_ref(), bounds))
}
