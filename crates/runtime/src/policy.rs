//! The resolved policy: exactly what one run of an app may do.

use crate::RuntimeError;
use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::time::Duration;
use wedge_manifest::{EnvGrant, Grants, HostPattern, HttpOrigin, NetRule, VolumeMode};

/// Linear memory cap when neither the manifest nor the operator sets one.
pub const DEFAULT_MEMORY: u64 = 512 << 20;

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
    /// Linear memory cap in bytes.
    pub memory: u64,
    /// Fuel budget, if metered.
    pub fuel: Option<u64>,
    /// Wall-clock limit (for an HTTP app, per request).
    pub timeout: Option<Duration>,
}

impl Policy {
    /// Resolves grants: `KEY` env entries take the host's value (or are dropped if the
    /// host has none), volume host paths must be existing directories, and DNS names in
    /// network grants are resolved now, by the host.
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
            connect: resolve_names(&grants.connect)?,
            listen: resolve_names(&grants.listen)?,
            dns: grants.dns,
            http: grants.http.clone(),
            memory: grants.limits.memory.map_or(DEFAULT_MEMORY, |m| m.0),
            fuel: grants.limits.fuel,
            timeout: grants.limits.timeout.map(|t| t.0),
        })
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
