//! Describing a Wasm file without running it: kind, WASI version, imports grouped as
//! the capabilities they need, exports.

use crate::app::detect_kind;
use crate::{AppKind, RuntimeError};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::Path;
use wasmparser::{Parser, Payload};

/// What `wedge inspect` reports about a Wasm file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AppInfo {
    /// The file inspected.
    pub path: String,
    /// Hex sha256 of the file.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Module or component.
    pub kind: AppKind,
    /// `preview1`, `preview2`, or `none` when it imports no WASI at all.
    pub wasi: &'static str,
    /// Capabilities its imports ask for (what grants can make useful).
    pub capabilities: Vec<Capability>,
    /// Imports: `module::name` for modules, interface names for components.
    pub imports: Vec<String>,
    /// Exports, by name.
    pub exports: Vec<String>,
}

/// A capability a guest's imports reach for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    /// Arguments and environment variables.
    Environment,
    /// Standard input and output streams.
    Stdio,
    /// Files and directories (needs `-v`).
    Filesystem,
    /// Sockets (needs `--allow-net` / `--allow-listen`).
    Network,
    /// Name lookup (needs `--allow-dns`).
    Dns,
    /// Clocks and timers.
    Clocks,
    /// Random numbers.
    Random,
    /// Exiting with a status.
    Exit,
    /// HTTP (`wasi:http`), not provided by `wedge run`.
    Http,
    /// Key-value storage (`wasi:keyvalue`, needs `--kv`).
    Keyvalue,
    /// Runtime configuration (`wasi:config`).
    Config,
    /// Messaging (`wedge:edge/messaging`, needs `--allow-publish` / `--allow-subscribe`).
    Messaging,
    /// Machine-learning inference (WASI-NN, needs `--nn-model`).
    Nn,
    /// Imports wedge does not recognise as WASI.
    Other,
}

/// Checks that `bytes` (the file at `path`) is valid Wasm, module or component, with
/// every proposal wasmparser knows. A build machine's check (`compiler` feature): a
/// device runs code whose Wasm was validated when it was compiled.
#[cfg(feature = "compiler")]
pub fn validate(path: &Path, bytes: &[u8]) -> Result<(), RuntimeError> {
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(bytes)
        .map(drop)
        .map_err(|e| RuntimeError::InvalidWasm {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

/// Inspects the Wasm file at `path`. Malformed Wasm is an error, and so is invalid Wasm
/// where the build can [`validate`] (a device build reads the structure only).
pub fn inspect(path: &Path) -> Result<AppInfo, RuntimeError> {
    let bytes = std::fs::read(path).map_err(|source| RuntimeError::Read {
        path: path.to_path_buf(),
        error: source,
    })?;
    let kind = detect_kind(path, &bytes)?;
    let invalid = |e: wasmparser::BinaryReaderError| RuntimeError::InvalidWasm {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    #[cfg(feature = "compiler")]
    validate(path, &bytes)?;

    let mut imports = Vec::new();
    let mut exports = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(&bytes) {
        match payload.map_err(invalid)? {
            Payload::Version { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            // Only the outermost module or component's imports and exports describe the app.
            Payload::ImportSection(reader) if depth == 1 => {
                for import in reader.into_imports() {
                    let import = import.map_err(invalid)?;
                    imports.push(format!("{}::{}", import.module, import.name));
                }
            }
            Payload::ExportSection(reader) if depth == 1 => {
                for export in reader {
                    exports.push(export.map_err(invalid)?.name.to_string());
                }
            }
            Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader {
                    imports.push(import.map_err(invalid)?.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 1 => {
                for export in reader {
                    exports.push(export.map_err(invalid)?.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    let capabilities: BTreeSet<Capability> = imports.iter().map(|i| classify(kind, i)).collect();
    let wasi = match kind {
        AppKind::Module
            if imports
                .iter()
                .any(|i| i.starts_with("wasi_snapshot_preview1::")) =>
        {
            "preview1"
        }
        AppKind::Component if imports.iter().any(|i| i.starts_with("wasi:")) => "preview2",
        _ => "none",
    };
    Ok(AppInfo {
        path: path.display().to_string(),
        sha256: hex::encode(Sha256::digest(&bytes)),
        size: bytes.len() as u64,
        kind,
        wasi,
        capabilities: capabilities.into_iter().collect(),
        imports,
        exports,
    })
}

/// Maps one import to the capability it needs.
fn classify(kind: AppKind, import: &str) -> Capability {
    use Capability::*;
    // A component's interface, or one a core module imports through component-model
    // bindings (`wedge:edge/messaging@0.1.0::publish`), which wedge componentizes.
    let interface = import.split("::").next().unwrap_or(import);
    let interface = interface.split('@').next().unwrap_or(interface);
    if let Some(capability) = host_api(interface) {
        return capability;
    }
    match kind {
        AppKind::Module => {
            let Some(name) = import.strip_prefix("wasi_snapshot_preview1::") else {
                return Other;
            };
            match name {
                n if n.starts_with("args_") || n.starts_with("environ_") => Environment,
                n if n.starts_with("path_") => Filesystem,
                n if n.starts_with("fd_") => Stdio,
                n if n.starts_with("sock_") => Network,
                n if n.starts_with("clock_") || n == "poll_oneoff" || n == "sched_yield" => Clocks,
                "random_get" => Random,
                "proc_exit" | "proc_raise" => Exit,
                _ => Other,
            }
        }
        AppKind::Component => match interface {
            "wasi:cli/environment" => Environment,
            "wasi:cli/exit" => Exit,
            i if i.starts_with("wasi:cli/") || i.starts_with("wasi:io/") => Stdio,
            i if i.starts_with("wasi:filesystem/") => Filesystem,
            "wasi:sockets/ip-name-lookup" => Dns,
            i if i.starts_with("wasi:sockets/") => Network,
            i if i.starts_with("wasi:clocks/") => Clocks,
            i if i.starts_with("wasi:random/") => Random,
            i if i.starts_with("wasi:http/") => Http,
            _ => Other,
        },
    }
}

/// The capability of one of wedge's host APIs beyond WASI, by interface name.
fn host_api(interface: &str) -> Option<Capability> {
    match interface {
        i if i.starts_with("wasi:keyvalue/") => Some(Capability::Keyvalue),
        i if i.starts_with("wasi:config/") => Some(Capability::Config),
        i if i.starts_with("wedge:edge/") => Some(Capability::Messaging),
        i if i.starts_with("wasi:nn/") || i == "wasi_ephemeral_nn" => Some(Capability::Nn),
        _ => None,
    }
}
