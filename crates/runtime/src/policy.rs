//! The resolved policy: exactly what one run of an app may do.

use crate::RuntimeError;
use crate::keyvalue::{KeyValue, KvStore};
use crate::messaging::{MessageBus, Messaging};
use crate::nn::{NnAccess, NnModels};
use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::time::Duration;
use wedge_manifest::{
    DEFAULT_MAX_BYTES, DEFAULT_MAX_FILES, DEFAULT_MAX_KEYS, DEFAULT_NN_CONTEXTS, EnvGrant, Grants,
    HostPattern, HttpOrigin, KeyValueGrant, MAX_NN_THREADS, NetRule, VolumeMode,
};

/// Linear memory cap when neither the manifest nor the operator sets one.
pub const DEFAULT_MEMORY: u64 = wedge_manifest::DEFAULT_MEMORY;

/// Everything a run is granted, with names resolved and paths checked. Built from
/// [`Grants`] (manifest and flags merged); nothing else decides what a guest may do.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// `argv`, including the program name in `argv[0]`.
    pub args: Vec<String>,
    /// Environment variables, final values.
    pub env: Vec<(String, String)>,
    /// Preopened directories: canonical host path, guest path, mode.
    pub volumes: Vec<(PathBuf, String, VolumeMode)>,
    /// Outbound destinations (DNS names already resolved to addresses).
    pub connect: Vec<NetRule>,
    /// Addresses the guest may bind and listen on.
    pub listen: Vec<NetRule>,
    /// Whether the guest may resolve names.
    pub dns: bool,
    /// Origins the guest may send outbound HTTP requests to.
    pub http: Vec<HttpOrigin>,
    /// Key-value storage, when granted (see [`Policy::grant`]).
    pub keyvalue: Option<KeyValue>,
    /// Runtime config values (`wasi:config`).
    pub config: Vec<(String, String)>,
    /// Messaging, when any topic is granted (see [`Policy::grant`]).
    pub messaging: Option<Messaging>,
    /// WASI-NN models, when granted (see [`Policy::grant`]).
    pub nn: Option<NnAccess>,
    /// Linear memory cap in bytes.
    pub memory: u64,
    /// Fuel budget, if metered.
    pub fuel: Option<u64>,
    /// Wall-clock limit (for an HTTP app, per request).
    pub timeout: Option<Duration>,
    /// Handles (files, directories, sockets) an instance may hold open at once; see
    /// `files.rs` for how each kind of app counts them. 0 in `Policy::default()`.
    pub max_files: u32,
}

/// The host's shared services that grants draw on, each used only when a grant needs
/// it: `wedge run` opens its own, the daemon shares one of each between containers.
pub struct HostServices<'a> {
    /// Opens the key-value store (called only for a key-value grant, so runs without
    /// one create no store).
    pub keyvalue: &'a dyn Fn() -> Result<KvStore, RuntimeError>,
    /// The message bus (called only for a messaging grant).
    pub bus: &'a dyn Fn() -> MessageBus,
    /// The WASI-NN models loaded so far, shared between apps.
    pub nn_models: &'a NnModels,
}

impl Policy {
    /// Everything `grants` allow one run of an app with `args` (`argv[0]` first): the
    /// launch path of `wedge run`, `wedge serve` and the daemon alike. What
    /// [`Policy::resolve`] resolves, plus the grants that draw on `host`: key-value
    /// storage (in `kv_namespace` unless the grant names one), messaging and WASI-NN.
    pub fn grant(
        grants: &Grants,
        args: Vec<String>,
        kv_namespace: &str,
        host: &HostServices<'_>,
    ) -> Result<Policy, RuntimeError> {
        let mut policy = Policy::resolve(grants, args)?;
        policy.grant_keyvalue(grants, kv_namespace, host.keyvalue)?;
        policy.grant_messaging(grants, host.bus);
        policy.grant_nn(grants, host.nn_models)?;
        Ok(policy)
    }

    /// Resolves the grants that need no host service: `KEY` env entries take the host's
    /// value (or are dropped if the host has none), volume host paths must be existing
    /// directories, and DNS names in network grants are resolved now, by the host.
    /// Key-value, messaging and WASI-NN grants are left out ([`Policy::grant`] adds them).
    pub fn resolve(grants: &Grants, args: Vec<String>) -> Result<Policy, RuntimeError> {
        let env = grants
            .env
            .iter()
            .filter_map(|e| match e {
                EnvGrant::Set(k, v) => Some((k.clone(), v.clone())),
                EnvGrant::Inherit(k) => std::env::var(k).ok().map(|v| (k.clone(), v)),
            })
            .collect();
        let mut volumes = Vec::with_capacity(grants.volumes.len());
        for v in &grants.volumes {
            let host = v.host.canonicalize().map_err(|e| {
                RuntimeError::Grant(format!(
                    "invalid volume `{v}`: host path `{}`: {e}",
                    v.host.display()
                ))
            })?;
            if !host.is_dir() {
                return Err(RuntimeError::Grant(format!(
                    "invalid volume `{v}`: `{}` is not a directory",
                    v.host.display()
                )));
            }
            volumes.push((host, v.guest.clone(), v.mode));
        }
        Ok(Policy {
            args,
            env,
            volumes,
            connect: resolve_names(&grants.network.connect)?,
            listen: resolve_names(&grants.network.listen)?,
            dns: grants.network.dns,
            http: grants.network.http.clone(),
            keyvalue: None,
            messaging: None,
            nn: None,
            config: grants
                .config
                .iter()
                .map(|c| (c.key.clone(), c.value.clone()))
                .collect(),
            memory: grants.limits.memory.map_or(DEFAULT_MEMORY, |m| m.0),
            fuel: grants.limits.fuel,
            timeout: grants.limits.timeout.map(|t| t.0),
            max_files: grants.limits.files.unwrap_or(DEFAULT_MAX_FILES),
        })
    }
}

impl Policy {
    /// Grants key-value access when `grants` asks for it: the namespace (default
    /// `default_namespace`, one the app cannot choose) and quota of `grants.keyvalue`, on the store `open`
    /// returns (called only then, so runs without the grant create no store).
    fn grant_keyvalue(
        &mut self,
        grants: &Grants,
        default_namespace: &str,
        open: &dyn Fn() -> Result<KvStore, RuntimeError>,
    ) -> Result<(), RuntimeError> {
        let Some(kv) = &grants.keyvalue else {
            return Ok(());
        };
        let namespace = kv
            .namespace
            .clone()
            .unwrap_or_else(|| default_namespace.to_string());
        KeyValueGrant::validate_namespace(&namespace)
            .map_err(|e| RuntimeError::Grant(e.to_string()))?;
        self.keyvalue = Some(KeyValue {
            store: open()?,
            namespace,
            max_keys: kv.max_keys.unwrap_or(DEFAULT_MAX_KEYS),
            max_bytes: kv.max_bytes.map_or(DEFAULT_MAX_BYTES, |b| b.0),
        });
        Ok(())
    }
}

impl Policy {
    /// Grants messaging on `bus` when `grants` names any topic to publish to or
    /// subscribe to.
    fn grant_messaging(&mut self, grants: &Grants, bus: &dyn Fn() -> MessageBus) {
        if grants.messaging.publish.is_empty() && grants.messaging.subscribe.is_empty() {
            return;
        }
        self.messaging = Some(Messaging {
            bus: bus(),
            publish: grants.messaging.publish.clone(),
            subscribe: grants.messaging.subscribe.clone(),
        });
    }
}

impl Policy {
    /// Grants WASI-NN when `grants` names a model or allows loading bytes: each named
    /// model is loaded (or taken from `models`, which shares them between apps) now, so
    /// a missing or malformed model file fails here, before the app runs.
    fn grant_nn(&mut self, grants: &Grants, models: &NnModels) -> Result<(), RuntimeError> {
        let nn = &grants.nn;
        if !nn.is_granted() {
            return Ok(());
        }
        let threads = nn.threads.unwrap_or(1).clamp(1, MAX_NN_THREADS) as usize;
        let backend = nn.backend.unwrap_or_default();
        let mut loaded = Vec::with_capacity(nn.models.len());
        for spec in &nn.models {
            let model = models
                .get(&spec.path, threads, backend)
                .map_err(|e| RuntimeError::Grant(format!("model `{}`: {e}", spec.name)))?;
            loaded.push((spec.name.clone(), model));
        }
        let max_contexts = nn.max_contexts.unwrap_or(DEFAULT_NN_CONTEXTS) as usize;
        self.nn = Some(NnAccess::new(loaded, nn.allow_bytes, threads, max_contexts));
        Ok(())
    }
}

/// Replaces each rule naming a DNS name by one rule per address the name resolves to.
fn resolve_names(rules: &[NetRule]) -> Result<Vec<NetRule>, RuntimeError> {
    let mut out = Vec::with_capacity(rules.len());
    for rule in rules {
        let HostPattern::Name(name) = &rule.host else {
            out.push(rule.clone());
            continue;
        };
        let addrs = (name.as_str(), 0).to_socket_addrs().map_err(|e| {
            RuntimeError::Grant(format!(
                "cannot resolve `{name}` in network grant `{rule}`: {e}"
            ))
        })?;
        out.extend(addrs.map(|a| rule.with_host(HostPattern::Net(a.ip().into()))));
    }
    Ok(out)
}
