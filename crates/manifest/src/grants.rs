//! What an app is granted: environment, volumes, network and limits.

use crate::{
    ByteSize, ConfigValue, DurationSpec, HttpOrigin, KeyValueGrant, ManifestError, NetRule,
    NnGrant, TopicFilter, VolumeSpec, serde_via_str,
};
use std::fmt;
use std::str::FromStr;

/// Capabilities and limits for one app, from a manifest, from flags, or both merged.
/// Secure by default: the empty value grants nothing.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Grants {
    /// Environment variables, in order; a later entry for the same key wins.
    pub env: Vec<EnvGrant>,
    /// Preopened directories.
    pub volumes: Vec<VolumeSpec>,
    /// Outbound TCP/UDP destinations.
    pub connect: Vec<NetRule>,
    /// Addresses the guest may bind and listen on.
    pub listen: Vec<NetRule>,
    /// Whether the guest may resolve DNS names.
    pub dns: bool,
    /// Origins the guest may send outbound HTTP requests to (`wasi:http`).
    pub http: Vec<HttpOrigin>,
    /// Key-value storage (`wasi:keyvalue`), when granted.
    pub keyvalue: Option<KeyValueGrant>,
    /// Runtime configuration (`wasi:config`), in order; a later entry for a key wins.
    pub config: Vec<ConfigValue>,
    /// Topics the app may publish to (`wedge:edge/messaging`).
    pub publish: Vec<TopicFilter>,
    /// Topic filters the app may subscribe with.
    pub subscribe: Vec<TopicFilter>,
    /// Machine-learning models (WASI-NN).
    pub nn: NnGrant,
    /// Hard limits.
    pub limits: Limits,
}

/// Linear memory cap when none is set: 512 MiB.
pub const DEFAULT_MEMORY: u64 = 512 << 20;

/// Hard limits; `None` means the runtime default (memory) or no limit (fuel, timeout).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Cap on each linear memory (and on the sum of all of them).
    pub memory: Option<ByteSize>,
    /// Instruction budget (wasmtime fuel units).
    pub fuel: Option<u64>,
    /// Wall-clock limit for the whole run (for an HTTP app, for each request).
    pub timeout: Option<DurationSpec>,
    /// Handles (files, directories, sockets) an instance may hold open at once;
    /// `None` means [`DEFAULT_MAX_FILES`].
    pub files: Option<u32>,
}

/// Handles an instance may hold open at once when neither the manifest nor the
/// operator sets a number.
pub const DEFAULT_MAX_FILES: u32 = 256;

/// `KEY=VALUE` sets a variable; `KEY` alone passes the host's value, if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvGrant {
    /// A variable with a value.
    Set(String, String),
    /// A variable taken from the host environment when the app starts.
    Inherit(String),
}

impl EnvGrant {
    /// The variable's name.
    pub fn key(&self) -> &str {
        match self {
            EnvGrant::Set(k, _) | EnvGrant::Inherit(k) => k,
        }
    }

    /// Checks a variable name: not empty, no `=` and no NUL.
    pub fn validate_key(key: &str, whole: &str) -> Result<(), ManifestError> {
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            return Err(ManifestError::invalid(
                "environment variable",
                whole,
                "expected KEY=VALUE or KEY",
            ));
        }
        Ok(())
    }
}

impl FromStr for EnvGrant {
    type Err = ManifestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('=') {
            Some((k, v)) => {
                Self::validate_key(k, s)?;
                if v.contains('\0') {
                    return Err(ManifestError::invalid(
                        "environment variable",
                        s,
                        "value contains NUL",
                    ));
                }
                Ok(EnvGrant::Set(k.to_string(), v.to_string()))
            }
            None => {
                Self::validate_key(s, s)?;
                Ok(EnvGrant::Inherit(s.to_string()))
            }
        }
    }
}

impl fmt::Display for EnvGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvGrant::Set(k, v) => write!(f, "{k}={v}"),
            EnvGrant::Inherit(k) => f.write_str(k),
        }
    }
}

serde_via_str!(EnvGrant, "`KEY=VALUE` or `KEY`");

impl Grants {
    /// Merges `over` on top of `self`: env and volumes with the same key or guest path
    /// are replaced, network grants are added, limits that `over` sets win.
    pub fn overlay(mut self, over: Grants) -> Grants {
        for e in over.env {
            self.env.retain(|old| old.key() != e.key());
            self.env.push(e);
        }
        for v in over.volumes {
            self.volumes.retain(|old| old.guest != v.guest);
            self.volumes.push(v);
        }
        self.connect.extend(over.connect);
        self.listen.extend(over.listen);
        self.dns |= over.dns;
        self.http.extend(over.http);
        self.keyvalue = match (self.keyvalue, over.keyvalue) {
            (Some(base), Some(over)) => Some(base.overlay(over)),
            (base, over) => over.or(base),
        };
        self.publish.extend(over.publish);
        self.subscribe.extend(over.subscribe);
        self.nn = self.nn.overlay(over.nn);
        for c in over.config {
            self.config.retain(|old| old.key != c.key);
            self.config.push(c);
        }
        self.limits = Limits {
            memory: over.limits.memory.or(self.limits.memory),
            fuel: over.limits.fuel.or(self.limits.fuel),
            timeout: over.limits.timeout.or(self.limits.timeout),
            files: over.limits.files.or(self.limits.files),
        };
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_manifest() {
        let manifest = Grants {
            env: vec!["A=1".parse().unwrap(), "B=2".parse().unwrap()],
            volumes: vec!["/a:/data".parse().unwrap()],
            connect: vec!["127.0.0.1:1".parse().unwrap()],
            limits: Limits {
                memory: Some(ByteSize(1 << 20)),
                fuel: Some(10),
                timeout: None,
                files: None,
            },
            ..Grants::default()
        };
        let flags = Grants {
            env: vec!["A=9".parse().unwrap()],
            volumes: vec!["/b:/data:rw".parse().unwrap()],
            connect: vec!["127.0.0.1:2".parse().unwrap()],
            dns: true,
            limits: Limits {
                memory: Some(ByteSize(2 << 20)),
                ..Limits::default()
            },
            ..Grants::default()
        };
        let merged = manifest.overlay(flags);
        let env: Vec<String> = merged.env.iter().map(ToString::to_string).collect();
        assert_eq!(env, ["B=2", "A=9"]);
        assert_eq!(merged.volumes.len(), 1);
        assert_eq!(merged.volumes[0].to_string(), "/b:/data:rw");
        assert_eq!(merged.connect.len(), 2);
        assert!(merged.dns);
        assert_eq!(
            merged.limits,
            Limits {
                memory: Some(ByteSize(2 << 20)),
                fuel: Some(10),
                timeout: None,
                files: None,
            }
        );
    }

    #[test]
    fn env_grants_parse() {
        assert_eq!(
            "K=v=w".parse::<EnvGrant>().unwrap(),
            EnvGrant::Set("K".into(), "v=w".into())
        );
        assert_eq!(
            "HOME".parse::<EnvGrant>().unwrap(),
            EnvGrant::Inherit("HOME".into())
        );
        assert!("=x".parse::<EnvGrant>().is_err());
        assert!("".parse::<EnvGrant>().is_err());
    }
}
