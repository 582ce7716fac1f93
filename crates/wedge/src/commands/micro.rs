//! `wedge micro bundle`: apps for microcontrollers. Each app (a core module file, a
//! `.cwasm` already compiled for wedge-micro, or an image) is compiled for `pulley32`
//! with wedge-micro's engine settings and written with its arguments, environment,
//! limits, messaging grants and digests into one bundle, which the device checks before it runs anything
//! (docs/micro.md).

use super::source::Source;
use crate::cli::MicroBundleArgs;
use anyhow::Context;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use wedge_manifest::{ByteSize, MessagingGrant};
use wedge_micro::bundle::{self, BundleApp};
use wedge_micro::messaging::Grants;

/// The `--file` of `wedge micro bundle`: the device's apps.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleFile {
    app: Vec<AppEntry>,
}

/// One `[[app]]` of a bundle file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AppEntry {
    /// A path (relative to the file's folder) or an image reference.
    source: String,
    name: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    memory: Option<ByteSize>,
    fuel: Option<u64>,
    #[serde(default)]
    restart: u32,
    /// `publish` and `subscribe` topic filters, as in a manifest's `[messaging]`.
    #[serde(default)]
    messaging: MessagingGrant,
}

/// An app ready for the bundle.
struct Prepared {
    name: String,
    code: Vec<u8>,
    args: Vec<String>,
    env: Vec<String>,
    memory: u32,
    fuel: u64,
    restarts: u32,
    grants: Grants,
}

/// Compiles the apps and writes the bundle atomically.
pub fn bundle(root: &Path, args: MicroBundleArgs) -> anyhow::Result<i32> {
    let entries = match &args.file {
        Some(file) => read_file(file)?,
        None => args
            .apps
            .iter()
            .map(|source| AppEntry {
                source: source.clone(),
                name: None,
                args: Vec::new(),
                env: BTreeMap::new(),
                memory: Some(args.memory),
                fuel: args.fuel,
                restart: args.restart,
                messaging: MessagingGrant {
                    publish: args.allow_publish.clone(),
                    subscribe: args.allow_subscribe.clone(),
                },
            })
            .collect(),
    };
    let mut apps: Vec<Prepared> = Vec::new();
    for entry in entries {
        let app = prepare(root, entry)?;
        if apps.iter().any(|other| other.name == app.name) {
            anyhow::bail!("two apps are named `{}`: give one a `name`", app.name);
        }
        apps.push(app);
    }
    let described: Vec<BundleApp<'_>> = apps
        .iter()
        .map(|app| BundleApp {
            name: &app.name,
            code: &app.code,
            args: &app.args,
            env: &app.env,
            memory: app.memory,
            fuel: app.fuel,
            restarts: app.restarts,
            grants: &app.grants,
        })
        .collect();
    let bytes = bundle::write(&described)?;
    super::file::write_atomically(&args.output, &bytes)?;
    eprintln!("wrote {} ({} bytes)", args.output.display(), bytes.len());
    for app in &apps {
        let fuel = match app.fuel {
            u64::MAX => "no fuel budget".to_string(),
            fuel => format!("fuel {fuel}"),
        };
        eprintln!(
            "  {}: {} bytes of pulley32 code, memory {}, {fuel}, {} restarts",
            app.name,
            app.code.len(),
            ByteSize(app.memory.into()),
            app.restarts
        );
    }
    Ok(0)
}

/// Reads a bundle file; relative sources are taken from its folder.
fn read_file(file: &Path) -> anyhow::Result<Vec<AppEntry>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read `{}`", file.display()))?;
    let parsed: BundleFile = toml::from_str(&text)
        .with_context(|| format!("`{}` is not a bundle file", file.display()))?;
    let dir = file.parent().unwrap_or(Path::new("."));
    Ok(parsed
        .app
        .into_iter()
        .map(|mut entry| {
            let relative = dir.join(&entry.source);
            if Path::new(&entry.source).is_relative() && relative.exists() {
                entry.source = relative.display().to_string();
            }
            entry
        })
        .collect())
}

/// Finds an app's code and compiles it for the device (a `.cwasm` is taken as it is:
/// the device refuses it unless it was compiled for wedge-micro's engine).
fn prepare(root: &Path, entry: AppEntry) -> anyhow::Result<Prepared> {
    let source = Source::open_or_image(&entry.source, root)?;
    let wasm_path: PathBuf = source.app.wasm.clone();
    let bytes = std::fs::read(&wasm_path)
        .with_context(|| format!("cannot read `{}`", wasm_path.display()))?;
    let code = if wasmtime_code(&bytes) {
        bytes
    } else {
        wedge_micro::settings::precompile(&bytes).map_err(|e| {
            anyhow::anyhow!("`{}`: cannot compile it for wedge-micro: {e}", entry.source)
        })?
    };
    let name = match entry.name {
        Some(name) => name,
        None => default_name(&entry.source, &source),
    };
    let memory = entry.memory.map_or(DEFAULT_MEMORY, |m| m.0);
    let memory = u32::try_from(memory)
        .with_context(|| format!("`{name}`: a memory cap of {memory} bytes is over 4 GiB"))?;
    Ok(Prepared {
        name,
        code,
        args: entry.args,
        env: entry.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        memory,
        fuel: entry.fuel.unwrap_or(u64::MAX),
        restarts: entry.restart,
        grants: Grants {
            publish: filters(&entry.messaging.publish),
            subscribe: filters(&entry.messaging.subscribe),
        },
    })
}

fn filters(filters: &[wedge_manifest::TopicFilter]) -> Vec<String> {
    filters.iter().map(|f| f.as_str().to_string()).collect()
}

/// The memory cap of an app whose entry gives none.
const DEFAULT_MEMORY: u64 = 128 * 1024;

/// Whether `bytes` is code compiled by wasmtime (an ELF file) rather than Wasm.
fn wasmtime_code(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x7fELF")
}

/// An app's name when its entry gives none: the last part of the image's repository,
/// or the file's stem.
fn default_name(arg: &str, source: &Source) -> String {
    let from_image = source.app.image.as_ref().and_then(|_| {
        let reference = wedge_image::parse_reference(arg).ok()?;
        reference
            .repository()
            .rsplit('/')
            .next()
            .map(str::to_string)
    });
    from_image.unwrap_or_else(|| {
        Path::new(arg)
            .file_stem()
            .map_or_else(|| arg.to_string(), |s| s.to_string_lossy().into_owned())
    })
}
