//! The `wedge.toml` schema (version 1) and its loader.

use crate::error::IoMessage;
use crate::{
    ConfigValue, EnvGrant, Grants, KeyValueGrant, Limits, ManifestError, MessagingGrant,
    NetworkGrant, NnBackend, NnGrant, NnModelSpec, VolumeMode, VolumeSpec,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The manifest schema version this build reads.
pub const CURRENT_VERSION: u32 = 1;

/// A validated `wedge.toml`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Manifest {
    /// Schema version (always [`CURRENT_VERSION`] once parsed).
    pub manifest_version: u32,
    /// The app itself.
    pub app: App,
    /// What the app asks for, as grants.
    pub grants: Grants,
}

/// The `[app]` table.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawApp")]
pub struct App {
    /// App name: lowercase letters, digits, `-`, `_` and `.`, starting with a letter or digit.
    pub name: String,
    /// Free-form version string.
    pub version: Option<String>,
    /// The `.wasm` (or `.cwasm`) file, relative to the manifest's folder.
    pub wasm: PathBuf,
    /// Arguments given to the guest before any from the command line.
    pub args: Vec<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApp {
    name: String,
    version: Option<String>,
    wasm: PathBuf,
    #[serde(default)]
    args: Vec<String>,
}

impl TryFrom<RawApp> for App {
    type Error = ManifestError;

    fn try_from(raw: RawApp) -> Result<Self, Self::Error> {
        let valid = raw
            .name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && raw.name.len() <= 128
            && raw
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
        if !valid {
            return Err(ManifestError::invalid(
                "app name",
                &raw.name,
                "use lowercase letters, digits, `-`, `_` and `.`, starting with a letter or digit",
            ));
        }
        if raw.wasm.as_os_str().is_empty() {
            return Err(ManifestError::invalid("wasm path", "", "must not be empty"));
        }
        Ok(App {
            name: raw.name,
            version: raw.version,
            wasm: raw.wasm,
            args: raw.args,
        })
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    manifest_version: u32,
    app: App,
    #[serde(default)]
    env: EnvTable,
    #[serde(default)]
    volumes: VolumeList,
    #[serde(default)]
    network: NetworkGrant,
    #[serde(default)]
    limits: Limits,
    keyvalue: Option<KeyValueGrant>,
    #[serde(default)]
    config: ConfigTable,
    #[serde(default)]
    messaging: MessagingGrant,
    #[serde(default)]
    nn: RawNn,
}

/// The `[nn]` table: `models = { NAME = "PATH" }` and the settings; names are checked
/// while parsing so errors point at the table.
#[derive(Default, serde::Deserialize)]
#[serde(try_from = "NnTable")]
struct RawNn(NnGrant);

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NnTable {
    #[serde(default)]
    models: BTreeMap<String, PathBuf>,
    #[serde(default)]
    allow_bytes: bool,
    threads: Option<u32>,
    max_contexts: Option<u32>,
    backend: Option<NnBackend>,
}

impl TryFrom<NnTable> for RawNn {
    type Error = ManifestError;

    fn try_from(table: NnTable) -> Result<Self, Self::Error> {
        let mut models = Vec::with_capacity(table.models.len());
        for (name, path) in table.models {
            NnModelSpec::validate_name(&name, &name)?;
            models.push(NnModelSpec { name, path });
        }
        Ok(RawNn(NnGrant {
            models,
            allow_bytes: table.allow_bytes,
            threads: table.threads,
            max_contexts: table.max_contexts,
            backend: table.backend,
        }))
    }
}

/// The `[config]` table: string keys and values, in key order.
#[derive(Default, serde::Deserialize)]
#[serde(from = "BTreeMap<String, String>")]
struct ConfigTable(Vec<ConfigValue>);

impl From<BTreeMap<String, String>> for ConfigTable {
    fn from(map: BTreeMap<String, String>) -> Self {
        ConfigTable(
            map.into_iter()
                .map(|(key, value)| ConfigValue { key, value })
                .collect(),
        )
    }
}

/// The `[env]` table; keys are checked while parsing so errors point at the table.
#[derive(Default, serde::Deserialize)]
#[serde(try_from = "BTreeMap<String, String>")]
struct EnvTable(Vec<EnvGrant>);

impl TryFrom<BTreeMap<String, String>> for EnvTable {
    type Error = ManifestError;

    fn try_from(map: BTreeMap<String, String>) -> Result<Self, Self::Error> {
        let mut env = Vec::with_capacity(map.len());
        for (key, value) in map {
            EnvGrant::validate_key(&key, &key)?;
            env.push(EnvGrant::Set(key, value));
        }
        Ok(EnvTable(env))
    }
}

/// The `[[volumes]]` array; guest paths are checked and must be unique.
#[derive(Default, serde::Deserialize)]
#[serde(try_from = "Vec<RawVolume>")]
struct VolumeList(Vec<VolumeSpec>);

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVolume {
    host: PathBuf,
    guest: String,
    #[serde(default)]
    mode: VolumeMode,
}

impl TryFrom<Vec<RawVolume>> for VolumeList {
    type Error = ManifestError;

    fn try_from(raw: Vec<RawVolume>) -> Result<Self, Self::Error> {
        let mut volumes: Vec<VolumeSpec> = Vec::with_capacity(raw.len());
        for v in raw {
            let spec = VolumeSpec {
                host: v.host,
                guest: v.guest,
                mode: v.mode,
            };
            VolumeSpec::validate_guest(&spec.guest, &spec.to_string())?;
            if volumes.iter().any(|old| old.guest == spec.guest) {
                return Err(ManifestError::invalid(
                    "volume",
                    &spec.to_string(),
                    "guest path is listed twice",
                ));
            }
            volumes.push(spec);
        }
        Ok(VolumeList(volumes))
    }
}

impl Manifest {
    /// Parses and validates manifest text; `origin` names it in error messages.
    pub fn parse(text: &str, origin: &str) -> Result<Manifest, ManifestError> {
        let raw: RawManifest = toml::from_str(text).map_err(|e| syntax_error(text, origin, &e))?;
        if raw.manifest_version != CURRENT_VERSION {
            let line = text
                .lines()
                .position(|l| l.trim_start().starts_with("manifest_version"))
                .unwrap_or(0)
                + 1;
            return Err(ManifestError::Syntax {
                path: origin.to_string(),
                line,
                column: 1,
                message: format!(
                    "unsupported manifest_version `{}` (this wedge reads version {CURRENT_VERSION})",
                    raw.manifest_version
                ),
            });
        }
        let grants = Grants {
            env: raw.env.0,
            volumes: raw.volumes.0,
            network: raw.network,
            keyvalue: raw.keyvalue,
            config: raw.config.0,
            messaging: raw.messaging,
            nn: raw.nn.0,
            limits: raw.limits,
        };
        Ok(Manifest {
            manifest_version: raw.manifest_version,
            app: raw.app,
            grants,
        })
    }

    /// Reads a manifest file and resolves its relative paths (the Wasm file, volume
    /// host paths and model files) against the manifest's folder.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|e| ManifestError::Read {
            path: path.display().to_string(),
            source: IoMessage(e.to_string()),
        })?;
        let mut manifest = Manifest::parse(&text, &path.display().to_string())?;
        let dir = path.parent().unwrap_or(Path::new("."));
        manifest.app.wasm = dir.join(&manifest.app.wasm);
        for v in &mut manifest.grants.volumes {
            v.host = dir.join(&v.host);
        }
        for m in &mut manifest.grants.nn.models {
            m.path = dir.join(&m.path);
        }
        Ok(manifest)
    }
}

/// Turns a TOML error into a one-line `origin:line:column: message`.
fn syntax_error(text: &str, origin: &str, err: &toml::de::Error) -> ManifestError {
    let offset = err.span().map_or(0, |s| s.start).min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let message = err.message().trim().replace('\n', " ");
    ManifestError::Syntax {
        path: origin.to_string(),
        line,
        column,
        message,
    }
}
