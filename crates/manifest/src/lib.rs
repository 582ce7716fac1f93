//! The `wedge.toml` application manifest and the grant grammar shared with the CLI.
//!
//! A manifest names an app's Wasm file and the capabilities and limits it needs. The
//! same [`Grants`] type carries what an operator passes as flags (`-v`, `-e`,
//! `--allow-net`, `-m` …), what an image requests and what the daemon's API is asked
//! for, so they merge with [`Grants::overlay`]: flags add to and override the manifest. Every value is checked while parsing, so an error carries the
//! line and column where it is.

mod error;
mod grants;
mod keyvalue;
mod manifest;
mod net;
mod nn;
mod origin;
mod topic;
mod units;
mod volume;

pub use error::ManifestError;
pub use grants::{
    DEFAULT_MAX_FILES, DEFAULT_MEMORY, EnvGrant, Grants, Limits, MessagingGrant, NetworkGrant,
};
pub use keyvalue::{ConfigValue, DEFAULT_MAX_BYTES, DEFAULT_MAX_KEYS, KeyValueGrant};
pub use manifest::{App, CURRENT_VERSION, Manifest};
pub use net::{HostPattern, NetRule, PortRange};
pub use nn::{DEFAULT_NN_CONTEXTS, MAX_NN_THREADS, NnBackend, NnGrant, NnModelSpec};
pub use origin::{HttpOrigin, default_port};
pub use topic::TopicFilter;
pub use units::{ByteSize, DurationSpec};
pub use volume::{VolumeMode, VolumeSpec};

/// Implements `Deserialize` (from a string) and `Serialize` (to its `Display` form) for a
/// type that is `FromStr<Err = ManifestError>` and `Display`, so serde errors keep the
/// TOML span and grant values read the same in flags and in manifests.
macro_rules! serde_via_str {
    ($ty:ty, $expecting:literal) => {
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)
                    .map_err(|_| serde::de::Error::custom(concat!("expected ", $expecting)))?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}
pub(crate) use serde_via_str;
