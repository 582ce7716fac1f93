//! What an image asks for. An image can only *request*: the operator decides what is
//! granted (`wedge run --grant-requested` grants the requested env and network; host
//! paths and host environment variables are never taken from an image). Its requested
//! limits only lower the operator's (or the defaults), unless `--grant-requested`.

use crate::ImageError;
use std::collections::BTreeMap;
use wedge_manifest::{
    ConfigValue, DEFAULT_NN_CONTEXTS, EnvGrant, Grants, KeyValueGrant, Limits, Manifest,
    MessagingGrant, NetworkGrant, NnBackend, NnGrant, VolumeMode,
};

/// Manifest annotation holding [`Requested`] as JSON.
pub const ANNOTATION: &str = "dev.wedge.requested";
/// Standard annotation for the app's name.
pub const TITLE: &str = "org.opencontainers.image.title";
/// Standard annotation for the app's version.
pub const VERSION: &str = "org.opencontainers.image.version";

/// The app's name, arguments and requested grants and limits, from its `wedge.toml`,
/// without host paths.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Requested {
    /// App name.
    pub name: String,
    /// App version.
    pub version: Option<String>,
    /// Arguments placed before the operator's.
    pub args: Vec<String>,
    /// Environment variables the app asks for.
    pub env: Vec<EnvGrant>,
    /// Guest paths the app expects a volume at, with the mode it needs.
    pub volumes: Vec<RequestedVolume>,
    /// Sockets, name lookups and outbound HTTP.
    pub network: NetworkGrant,
    /// Key-value storage.
    pub keyvalue: Option<KeyValueGrant>,
    /// Runtime configuration values (the app's defaults; they always apply).
    pub config: Vec<ConfigValue>,
    /// Message topics.
    pub messaging: MessagingGrant,
    /// WASI-NN: the models it loads by name and how it runs them.
    pub nn: RequestedNn,
    /// Limits the app declares; they may lower the operator's limits, never raise them
    /// (see [`Limits::lowered_by`]).
    pub limits: Limits,
}

/// What an app asks of WASI-NN. Model files are the operator's to grant
/// (`--nn-model NAME=PATH`), as volumes are: only the names travel in the image.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RequestedNn {
    /// Names of the models it loads with `load-by-name`.
    pub models: Vec<String>,
    /// Whether it loads models from bytes.
    pub allow_bytes: bool,
    /// Threads each inference may use.
    pub threads: Option<u32>,
    /// Execution contexts it holds at once, at most.
    pub max_contexts: Option<u32>,
    /// The engine it was built and tested with.
    pub backend: Option<NnBackend>,
}

/// A guest path an app wants a volume at.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RequestedVolume {
    /// Absolute guest path.
    pub guest: String,
    /// Mode it needs.
    pub mode: VolumeMode,
}

impl Requested {
    /// What a manifest requests (its volume host paths are dropped).
    pub fn from_manifest(m: &Manifest) -> Requested {
        let g = &m.grants;
        Requested {
            name: m.app.name.clone(),
            version: m.app.version.clone(),
            args: m.app.args.clone(),
            env: g.env.clone(),
            volumes: g
                .volumes
                .iter()
                .map(|v| RequestedVolume {
                    guest: v.guest.clone(),
                    mode: v.mode,
                })
                .collect(),
            network: g.network.clone(),
            keyvalue: g.keyvalue.clone(),
            config: g.config.clone(),
            messaging: g.messaging.clone(),
            nn: RequestedNn {
                models: g.nn.models.iter().map(|m| m.name.clone()).collect(),
                allow_bytes: g.nn.allow_bytes,
                threads: g.nn.threads,
                max_contexts: g.nn.max_contexts,
                backend: g.nn.backend,
            },
            limits: g.limits,
        }
    }

    /// The manifest annotations that carry this request.
    pub fn to_annotations(&self) -> Result<BTreeMap<String, String>, ImageError> {
        let mut a = BTreeMap::new();
        a.insert(
            ANNOTATION.to_string(),
            serde_json::to_string(self).map_err(|e| ImageError::invalid("request", e))?,
        );
        a.insert(TITLE.to_string(), self.name.clone());
        if let Some(v) = &self.version {
            a.insert(VERSION.to_string(), v.clone());
        }
        Ok(a)
    }

    /// Reads the request from manifest annotations; an image without one requests nothing.
    pub fn from_annotations(
        annotations: Option<&BTreeMap<String, String>>,
    ) -> Result<Requested, ImageError> {
        let Some(a) = annotations else {
            return Ok(Requested::default());
        };
        let mut requested = match a.get(ANNOTATION) {
            Some(json) => serde_json::from_str(json)
                .map_err(|e| ImageError::invalid("`dev.wedge.requested` annotation", e))?,
            None => Requested::default(),
        };
        if requested.name.is_empty()
            && let Some(title) = a.get(TITLE)
        {
            requested.name = title.clone();
        }
        Ok(requested)
    }

    /// The grants a run gets from the image: its limits within the defaults
    /// ([`Limits::lowered_by`]), config values and a WASI-NN context cap below the
    /// default always (they only restrict); its env values, network, key-value,
    /// messaging, model-bytes, inference-thread and backend requests only when the
    /// operator passes `--grant-requested`; never volumes, model files, or a bare `KEY`
    /// env request (it would name a variable of the host's, or the daemon's,
    /// environment: the operator's `-e KEY` passes one).
    pub fn grants(&self, grant_requested: bool) -> Grants {
        let mut grants = Grants {
            limits: Limits::default().lowered_by(self.limits, grant_requested),
            config: self.config.clone(),
            nn: NnGrant {
                max_contexts: self
                    .nn
                    .max_contexts
                    .filter(|&n| grant_requested || n <= DEFAULT_NN_CONTEXTS),
                ..NnGrant::default()
            },
            ..Grants::default()
        };
        if grant_requested {
            grants.env = self
                .env
                .iter()
                .filter(|e| matches!(e, EnvGrant::Set(..)))
                .cloned()
                .collect();
            grants.network = self.network.clone();
            // Storage, but never a namespace the image names: sharing another app's
            // data takes the operator's `--kv-namespace`.
            grants.keyvalue = self.keyvalue.clone().map(|kv| KeyValueGrant {
                namespace: None,
                ..kv
            });
            grants.messaging = self.messaging.clone();
            grants.nn.allow_bytes = self.nn.allow_bytes;
            grants.nn.threads = self.nn.threads;
            grants.nn.backend = self.nn.backend;
        }
        grants
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wedge_manifest::{ByteSize, DEFAULT_MEMORY};

    fn manifest() -> Manifest {
        Manifest::parse(
            "manifest_version = 1\n[app]\nname = \"logger\"\nversion = \"1.2.0\"\nwasm = \"x.wasm\"\n\
             [env]\nLOG = \"debug\"\n[[volumes]]\nhost = \"/srv/secret\"\nguest = \"/data\"\nmode = \"rw\"\n\
             [network]\nconnect = [\"127.0.0.1:1883\"]\n[limits]\nmemory = \"16MiB\"\n\
             [nn]\nmodels = { mnist = \"/srv/models/mnist.onnx\" }\nallow_bytes = true\nmax_contexts = 2\nthreads = 64\n",
            "t",
        )
        .unwrap()
    }

    #[test]
    fn requests_round_trip_through_annotations_without_host_paths() {
        let r = Requested::from_manifest(&manifest());
        let a = r.to_annotations().unwrap();
        for host_path in ["/srv/secret", "/srv/models"] {
            assert!(
                !a[ANNOTATION].contains(host_path),
                "host path leaked: {}",
                a[ANNOTATION]
            );
        }
        assert_eq!(r.nn.models, ["mnist"]);
        assert_eq!(a[TITLE], "logger");
        assert_eq!(Requested::from_annotations(Some(&a)).unwrap(), r);
        assert_eq!(
            Requested::from_annotations(None).unwrap(),
            Requested::default()
        );
    }

    #[test]
    fn only_limits_apply_unless_requested_grants_are_granted() {
        let r = Requested::from_manifest(&manifest());
        let g = r.grants(false);
        assert!(g.env.is_empty() && g.network.connect.is_empty() && g.volumes.is_empty());
        assert_eq!(g.limits, r.limits);
        assert!(!g.nn.allow_bytes && g.nn.models.is_empty());
        assert_eq!(g.nn.max_contexts, Some(2), "a lower cap only restricts");
        assert_eq!(g.nn.threads, None, "threads are the operator's to give");
        let mut greedy = r.clone();
        greedy.nn.max_contexts = Some(u32::MAX);
        assert_eq!(greedy.grants(false).nn.max_contexts, None);
        let g = r.grants(true);
        assert_eq!(g.env.len(), 1);
        assert_eq!(g.network.connect.len(), 1);
        assert!(
            g.volumes.is_empty(),
            "volumes always need the operator's -v"
        );
        assert!(g.nn.allow_bytes);
        assert_eq!(g.nn.threads, Some(64));
        assert!(
            g.nn.models.is_empty(),
            "model files always need the operator's --nn-model"
        );
    }

    #[test]
    fn requested_limits_only_lower_unless_granted() {
        let mib = |n: u64| Some(ByteSize(n << 20));
        let mut r = Requested::default();
        r.limits.memory = mib(4096);
        r.limits.fuel = Some(10);
        let none = Limits::default();
        let l = none.lowered_by(r.limits, false);
        assert_eq!(
            l.memory,
            Some(ByteSize(DEFAULT_MEMORY)),
            "no raise past the default"
        );
        assert_eq!(
            l.fuel,
            Some(10),
            "fuel has no default: the request restricts"
        );
        assert_eq!(none.lowered_by(r.limits, true).memory, mib(4096));
        let operator = Limits {
            memory: mib(32),
            fuel: Some(5),
            ..Limits::default()
        };
        for grant in [false, true] {
            let l = operator.lowered_by(r.limits, grant);
            assert_eq!(
                (l.memory, l.fuel),
                (mib(32), Some(5)),
                "the operator's hold"
            );
        }
        r.limits.memory = mib(16);
        assert_eq!(
            operator.lowered_by(r.limits, false).memory,
            mib(16),
            "lowered"
        );
        assert_eq!(r.grants(false).limits.memory, mib(16));
    }

    #[test]
    fn a_bare_env_request_is_never_granted() {
        let r = Requested {
            env: vec![
                "AWS_SECRET_ACCESS_KEY".parse().unwrap(),
                "A=1".parse().unwrap(),
            ],
            ..Requested::default()
        };
        assert_eq!(
            r.grants(true).env,
            vec![EnvGrant::Set("A".into(), "1".into())]
        );
    }
}
