//! What an app is granted: environment, volumes, network and limits.

use crate::{
    ByteSize, ConfigValue, DurationSpec, HttpOrigin, KeyValueGrant, ManifestError, NetRule,
    NnGrant, TopicFilter, VolumeSpec, serde_via_str,
};
use std::fmt;
use std::str::FromStr;

/// Capabilities and limits for one app, from a manifest, from flags, from an image's
/// requests or from the daemon's API, merged with [`Grants::overlay`]. Secure by
/// default: the empty value grants nothing.
///
/// Its JSON form (the daemon API's `grants`) writes each value in the flags' grammar:
/// `{"env": ["KEY=VALUE"], "volumes": ["/srv/data:/data:rw"], "network": {"connect":
/// ["127.0.0.1:8080"]}, "limits": {"memory": "16MiB"}}`; every field may be left out.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Grants {
    /// Environment variables, in order; a later entry for the same key wins.
    pub env: Vec<EnvGrant>,
    /// Preopened directories.
    pub volumes: Vec<VolumeSpec>,
    /// Sockets, name lookups and outbound HTTP.
    pub network: NetworkGrant,
    /// Key-value storage (`wasi:keyvalue`), when granted.
    pub keyvalue: Option<KeyValueGrant>,
    /// Runtime configuration (`wasi:config`), in order; a later entry for a key wins.
    pub config: Vec<ConfigValue>,
    /// Message topics (`wedge:edge/messaging`).
    pub messaging: MessagingGrant,
    /// Machine-learning models (WASI-NN).
    pub nn: NnGrant,
    /// Hard limits.
    pub limits: Limits,
}

/// The network an app may reach: the `[network]` table, the `--allow-net`,
/// `--allow-listen`, `--allow-dns` and `--allow-outbound` flags.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkGrant {
    /// Outbound TCP/UDP destinations.
    pub connect: Vec<NetRule>,
    /// Addresses the guest may bind and listen on.
    pub listen: Vec<NetRule>,
    /// Whether the guest may resolve DNS names.
    pub dns: bool,
    /// Origins the guest may send outbound HTTP requests to (`wasi:http`).
    pub http: Vec<HttpOrigin>,
}

impl NetworkGrant {
    /// Both grants' rules; DNS when either allows it.
    pub fn overlay(mut self, over: NetworkGrant) -> NetworkGrant {
        self.connect.extend(over.connect);
        self.listen.extend(over.listen);
        self.dns |= over.dns;
        self.http.extend(over.http);
        self
    }
}

/// The message topics an app may use: the `[messaging]` table, the `--allow-publish`
/// and `--allow-subscribe` flags.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MessagingGrant {
    /// Topic filters covering what the app may publish to.
    pub publish: Vec<TopicFilter>,
    /// Topic filters covering what the app may subscribe to.
    pub subscribe: Vec<TopicFilter>,
}

impl MessagingGrant {
    /// Both grants' filters.
    pub fn overlay(mut self, over: MessagingGrant) -> MessagingGrant {
        self.publish.extend(over.publish);
        self.subscribe.extend(over.subscribe);
        self
    }
}

/// Linear memory cap when none is set: 512 MiB.
pub const DEFAULT_MEMORY: u64 = 512 << 20;

/// Hard limits; `None` means the runtime default (memory) or no limit (fuel, timeout).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct Limits {
    /// Cap on each linear memory (and on the sum of all of them).
    #[cfg_attr(
        feature = "clap",
        arg(
            short = 'm',
            long = "memory",
            value_name = "SIZE",
            help = "Linear memory cap, e.g. `32MiB` [default: 512MiB]"
        )
    )]
    pub memory: Option<ByteSize>,
    /// Instruction budget (wasmtime fuel units).
    #[cfg_attr(
        feature = "clap",
        arg(
            long,
            value_name = "N",
            help = "Instruction budget in fuel units; exhausting it ends the app (exit 124)"
        )
    )]
    pub fuel: Option<u64>,
    /// Wall-clock limit for the whole run (for an HTTP app, for each request).
    #[cfg_attr(
        feature = "clap",
        arg(
            long,
            value_name = "DURATION",
            help = "Wall-clock limit, e.g. `2s` or `500ms`; passing it ends the app (exit \
                    124); for an HTTP app, the limit of each request (504)"
        )
    )]
    pub timeout: Option<DurationSpec>,
    /// Handles (files, directories, sockets) an instance may hold open at once;
    /// `None` means [`DEFAULT_MAX_FILES`].
    #[cfg_attr(
        feature = "clap",
        arg(
            long = "max-files",
            value_name = "N",
            help = "Files, directories and sockets the app may hold open at once; past \
                    it, opening fails in the app (`EMFILE`) [default: 256]"
        )
    )]
    pub files: Option<u32>,
}

/// Handles an instance may hold open at once when neither the manifest nor the
/// operator sets a number.
pub const DEFAULT_MAX_FILES: u32 = 256;

impl Limits {
    /// `over`'s limits where it sets them, else `self`'s.
    pub fn overlay(self, over: Limits) -> Limits {
        Limits {
            memory: over.memory.or(self.memory),
            fuel: over.fuel.or(self.fuel),
            timeout: over.timeout.or(self.timeout),
            files: over.files.or(self.files),
        }
    }

    /// The limits a run of an image gets under these, the operator's (given by flags or
    /// the API; unset ones are the defaults: [`DEFAULT_MEMORY`] of memory and
    /// [`DEFAULT_MAX_FILES`] open handles, no fuel or time limit), when the image
    /// declares `requested`. A requested limit may lower a limit, never raise one; with
    /// `grant_requested`, a requested limit replaces a *default* (so an image may ask for
    /// more memory than the default), but still not a limit the operator set.
    pub fn lowered_by(self, requested: Limits, grant_requested: bool) -> Limits {
        fn lower<T: Ord>(
            operator: Option<T>,
            requested: Option<T>,
            default: Option<T>,
            grant: bool,
        ) -> Option<T> {
            match (operator, requested) {
                (Some(o), Some(r)) => Some(o.min(r)),
                (o, None) => o,
                (None, Some(r)) if grant => Some(r),
                (None, Some(r)) => Some(match default {
                    Some(d) => r.min(d),
                    None => r,
                }),
            }
        }
        let grant = grant_requested;
        Limits {
            memory: lower(
                self.memory,
                requested.memory,
                Some(ByteSize(DEFAULT_MEMORY)),
                grant,
            ),
            fuel: lower(self.fuel, requested.fuel, None, grant),
            timeout: lower(self.timeout, requested.timeout, None, grant),
            files: lower(self.files, requested.files, Some(DEFAULT_MAX_FILES), grant),
        }
    }
}

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
        self.network = self.network.overlay(over.network);
        self.keyvalue = match (self.keyvalue, over.keyvalue) {
            (Some(base), Some(over)) => Some(base.overlay(over)),
            (base, over) => over.or(base),
        };
        self.messaging = self.messaging.overlay(over.messaging);
        self.nn = self.nn.overlay(over.nn);
        for c in over.config {
            self.config.retain(|old| old.key != c.key);
            self.config.push(c);
        }
        self.limits = self.limits.overlay(over.limits);
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
            network: NetworkGrant {
                connect: vec!["127.0.0.1:1".parse().unwrap()],
                ..NetworkGrant::default()
            },
            limits: Limits {
                memory: Some(ByteSize(1 << 20)),
                fuel: Some(10),
                ..Limits::default()
            },
            ..Grants::default()
        };
        let flags = Grants {
            env: vec!["A=9".parse().unwrap()],
            volumes: vec!["/b:/data:rw".parse().unwrap()],
            network: NetworkGrant {
                connect: vec!["127.0.0.1:2".parse().unwrap()],
                dns: true,
                ..NetworkGrant::default()
            },
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
        assert_eq!(merged.network.connect.len(), 2);
        assert!(merged.network.dns);
        assert_eq!(
            merged.limits,
            Limits {
                memory: Some(ByteSize(2 << 20)),
                fuel: Some(10),
                ..Limits::default()
            }
        );
    }

    #[test]
    fn the_json_form_uses_the_flags_grammar_and_refuses_unknown_fields() {
        let grants: Grants = serde_json::from_str(
            r#"{"env": ["A=1"], "volumes": ["/srv:/data:rw"],
                "network": {"connect": ["127.0.0.1:80"], "dns": true},
                "messaging": {"publish": ["a/#"]},
                "nn": {"models": ["m=/srv/m.onnx"]}, "limits": {"memory": "16MiB"}}"#,
        )
        .unwrap();
        assert_eq!(grants.volumes[0].to_string(), "/srv:/data:rw");
        assert!(grants.network.dns);
        assert_eq!(grants.messaging.publish[0].to_string(), "a/#");
        assert_eq!(grants.limits.memory, Some(ByteSize(16 << 20)));
        let again: Grants = serde_json::from_str(&serde_json::to_string(&grants).unwrap()).unwrap();
        assert_eq!(again, grants);
        for bad in [
            r#"{"allow_net": ["127.0.0.1:80"]}"#,
            r#"{"network": {"connect": ["nowhere"]}}"#,
            r#"{"limits": {"memory": "lots"}}"#,
            r#"{"keyvalue": {"namespace": "a b"}}"#,
        ] {
            assert!(serde_json::from_str::<Grants>(bad).is_err(), "{bad}");
        }
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
