//! Host APIs beyond WASI that components may import, as capability providers: each has
//! a policy section (a field of [`Policy`]), a linker hook (`add_to_linker` below) and
//! per-instance state (a part of [`Providers`]). Adding one touches its own module and
//! a line in each of those three places.
//!
//! - `wasi:keyvalue` ([`crate::keyvalue`]): granted with `--kv`; without a grant,
//!   `open` answers `access-denied`.
//! - `wasi:config` (wasmtime-wasi-config): the policy's config values; unset keys read
//!   as none.
//! - `wedge:edge/messaging` ([`crate::messaging`]): publish and subscribe per topic
//!   grant; without one, every call answers `permission-denied`.
//! - `wasi:nn` ([`crate::nn`], wasmtime-wasi-nn with a tract backend): the granted
//!   models by name; without a grant, none, and no loading from bytes.

use crate::Policy;
use crate::keyvalue::{KeyValue, KvView};
use crate::messaging::{Messaging, MsgView};
use crate::nn::NnAccess;
use std::sync::Arc;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi_config::{WasiConfig, WasiConfigVariables};

/// What the providers need, built once per policy and shared by the instances run
/// under it.
pub(crate) struct ProviderSetup {
    keyvalue: Option<KeyValue>,
    config: WasiConfigVariables,
    messaging: Option<Messaging>,
    nn: Option<NnAccess>,
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
    /// WASI-NN state, made on the instance's first call.
    nn: Option<wasmtime_wasi_nn::wit::WasiNnCtx>,
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
        }
    }
}

/// Store data that holds [`Providers`] next to its resource table.
pub(crate) trait HasProviders: Send + 'static {
    fn providers(&mut self) -> (&mut Providers, &mut ResourceTable);
}

/// Adds every provider's interfaces to a component linker.
pub(crate) fn add_to_linker<T: HasProviders>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    crate::keyvalue::add_to_linker(linker, keyvalue_view::<T>)?;
    wasmtime_wasi_config::add_to_linker(linker, config_view::<T>)?;
    crate::messaging::add_to_linker(linker, messaging_view::<T>)?;
    wasmtime_wasi_nn::wit::add_to_linker(linker, nn_view::<T>)?;
    Ok(())
}

fn keyvalue_view<T: HasProviders>(state: &mut T) -> KvView<'_> {
    let (providers, table) = state.providers();
    KvView {
        access: providers.setup.keyvalue.as_ref(),
        table,
    }
}

fn config_view<T: HasProviders>(state: &mut T) -> WasiConfig<'_> {
    WasiConfig::from(&state.providers().0.setup.config)
}

fn messaging_view<T: HasProviders>(state: &mut T) -> MsgView<'_> {
    let (providers, table) = state.providers();
    MsgView {
        access: providers.setup.messaging.as_ref(),
        table,
        subscriptions: &mut providers.subscriptions,
    }
}

fn nn_view<T: HasProviders>(state: &mut T) -> wasmtime_wasi_nn::wit::WasiNnView<'_> {
    let (providers, table) = state.providers();
    let (setup, bounds) = (&providers.setup, providers.nn_bounds);
    let ctx = providers
        .nn
        .get_or_insert_with(|| crate::nn::wit_ctx(setup.nn.as_ref(), bounds));
    wasmtime_wasi_nn::wit::WasiNnView::new(table, ctx)
}
