//! The key-value and runtime-config grants.

use crate::{ByteSize, ManifestError, serde_via_str};
use std::fmt;
use std::str::FromStr;

/// Keys an app may store when no quota is given.
pub const DEFAULT_MAX_KEYS: u64 = 10_000;
/// Bytes (keys plus values) an app may store when no quota is given.
pub const DEFAULT_MAX_BYTES: u64 = 16 << 20;

/// Access to `wasi:keyvalue`: a namespace of the host's store, with a quota. Fields left
/// out take defaults: a namespace the app cannot choose (from its file's canonical path or
/// its image's repository), [`DEFAULT_MAX_KEYS`], [`DEFAULT_MAX_BYTES`].
/// The namespace is checked ([`KeyValueGrant::validate_namespace`]) while parsing.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "KeyValueFields")]
pub struct KeyValueGrant {
    /// Namespace of the app's data; apps with the same namespace share it.
    pub namespace: Option<String>,
    /// Most keys stored at once.
    pub max_keys: Option<u64>,
    /// Most bytes (keys plus values) stored at once.
    pub max_bytes: Option<ByteSize>,
}

/// A [`KeyValueGrant`] as written, before its namespace is checked.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyValueFields {
    namespace: Option<String>,
    max_keys: Option<u64>,
    max_bytes: Option<ByteSize>,
}

impl TryFrom<KeyValueFields> for KeyValueGrant {
    type Error = ManifestError;

    fn try_from(f: KeyValueFields) -> Result<Self, Self::Error> {
        if let Some(ns) = &f.namespace {
            KeyValueGrant::validate_namespace(ns)?;
        }
        Ok(KeyValueGrant {
            namespace: f.namespace,
            max_keys: f.max_keys,
            max_bytes: f.max_bytes,
        })
    }
}

impl KeyValueGrant {
    /// `over`'s fields where it sets them, else `self`'s.
    pub fn overlay(self, over: KeyValueGrant) -> KeyValueGrant {
        KeyValueGrant {
            namespace: over.namespace.or(self.namespace),
            max_keys: over.max_keys.or(self.max_keys),
            max_bytes: over.max_bytes.or(self.max_bytes),
        }
    }

    /// Checks a namespace name: 1 to 128 letters, digits, `-`, `_` and `.`.
    pub fn validate_namespace(ns: &str) -> Result<(), ManifestError> {
        let ok = !ns.is_empty()
            && ns.len() <= 128
            && ns
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if ok {
            Ok(())
        } else {
            Err(ManifestError::invalid(
                "key-value namespace",
                ns,
                "use 1 to 128 letters, digits, `-`, `_` and `.`",
            ))
        }
    }
}

/// One runtime-config value (`wasi:config`), `KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigValue {
    /// The key, as the app asks for it.
    pub key: String,
    /// Its value.
    pub value: String,
}

impl FromStr for ConfigValue {
    type Err = ManifestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok(ConfigValue {
                key: k.to_string(),
                value: v.to_string(),
            }),
            _ => Err(ManifestError::invalid(
                "config value",
                s,
                "expected KEY=VALUE",
            )),
        }
    }
}

impl fmt::Display for ConfigValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

serde_via_str!(ConfigValue, "`KEY=VALUE`");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_manifest_field_by_field() {
        let manifest = KeyValueGrant {
            namespace: Some("a".into()),
            max_keys: Some(10),
            max_bytes: None,
        };
        let flags = KeyValueGrant {
            max_keys: Some(20),
            ..KeyValueGrant::default()
        };
        let merged = manifest.overlay(flags);
        assert_eq!(merged.namespace.as_deref(), Some("a"));
        assert_eq!(merged.max_keys, Some(20));
    }

    #[test]
    fn namespaces_and_config_values_are_checked() {
        assert!(KeyValueGrant::validate_namespace("sensor-1.data_x").is_ok());
        for bad in ["", "a/b", "a b", &"x".repeat(129)] {
            assert!(KeyValueGrant::validate_namespace(bad).is_err(), "{bad}");
        }
        let v: ConfigValue = "greeting=hi=there".parse().unwrap();
        assert_eq!((v.key.as_str(), v.value.as_str()), ("greeting", "hi=there"));
        assert!("=x".parse::<ConfigValue>().is_err());
        assert!("novalue".parse::<ConfigValue>().is_err());
    }
}
