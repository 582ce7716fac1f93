//! Loading an app: detect module vs component, compile (through the cache) or
//! deserialize a `.cwasm`.

use crate::error::one_line;
use crate::known_files::{FileStamp, Known};
use crate::{CodeCache, Engine, EngineKind, EngineOptions, RuntimeError};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use wasmtime::component::Component;
use wasmtime::{Module, Precompiled};

/// What kind of Wasm an app is, which decides the WASI version it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AppKind {
    /// A core module, run as a WASI preview 1 command (`_start`).
    Module,
    /// A component, run in the `wasi:cli/command` world of WASI preview 2.
    Component,
}

/// How a load that finds no code in the cache compiles an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tiering {
    /// With the engine asked for.
    #[default]
    Off,
    /// A big app (at least [`BASELINE_FIRST_MIN`] bytes of Wasm) on Cranelift is
    /// compiled in memory with the baseline compiler (Winch) instead, many times faster,
    /// so that its first run starts at once; the app says so ([`App::tier_up_pending`])
    /// and the caller has the Cranelift code made for the cache, where later loads find
    /// it ([`App::open`] with [`Tiering::Off`] makes it). Winch's code is not cached: it
    /// is only for the runs before Cranelift's is there. Where Winch cannot compile the
    /// app (exceptions, some SIMD; or on a CPU it does not support), Cranelift does, as
    /// with `Off`.
    BaselineFirst,
}

/// The nice value of the compiles that make Cranelift's code in the background (`wedge
/// tier-up`, the daemon's compile threads): the lowest priority, so that they take only
/// the CPU that runs leave, above all a first run's own compile on the baseline compiler.
pub const BACKGROUND_NICE: i32 = 19;

/// The least Wasm, in bytes, that [`Tiering::BaselineFirst`] compiles with the baseline
/// compiler: below it Cranelift takes well under a second.
pub const BASELINE_FIRST_MIN: usize = 1 << 20;

/// Compiled code, ready to link.
#[derive(Clone)]
pub(crate) enum Code {
    Module(Module),
    Component(Component),
}

/// A loaded, compiled app.
#[derive(Clone)]
pub struct App {
    pub(crate) engine: Engine,
    pub(crate) code: Code,
    /// Where the app was loaded from.
    pub path: PathBuf,
    /// Module or component.
    pub kind: AppKind,
    /// Hex sha256 of the file's bytes.
    pub sha256: String,
    /// Compiled by the baseline compiler for a first run ([`Tiering::BaselineFirst`]).
    pub(crate) tier_up: bool,
}

impl App {
    /// Builds the engine for `options` and loads `path` into it. A `.cwasm` compiled for
    /// Pulley that does not load into the requested engine is retried on a Pulley
    /// engine, so `wedge compile --target pulley64` output runs without extra flags; an
    /// app the code generator crashes on ([`RuntimeError::CompilerBug`]) runs on Pulley
    /// too (see [`App::engine`] for the engine that loaded it).
    pub fn open(
        options: EngineOptions,
        path: &Path,
        cache: Option<&CodeCache>,
        tiering: Tiering,
    ) -> Result<App, RuntimeError> {
        let engine = Engine::new(options.clone())?;
        let load = |engine: &Engine| Self::load_file(engine, path, cache, tiering);
        match load(&engine) {
            Err(RuntimeError::CompilerBug { .. }) if options.kind != EngineKind::Pulley => {
                load(&options.on_pulley()?)
            }
            Err(RuntimeError::Precompiled { .. }) if options.kind != EngineKind::Pulley => {
                load(&options.on_pulley()?).or_else(|_| load(&engine))
            }
            other => other,
        }
    }

    /// [`App::open_content_addressed`] on an engine built for `options`; an app the code
    /// generator crashes on runs on Pulley, as with [`App::open`].
    pub fn open_layer(
        options: EngineOptions,
        path: &Path,
        sha256: &str,
        cache: Option<&CodeCache>,
        tiering: Tiering,
    ) -> Result<App, RuntimeError> {
        let open = |engine: &Engine| {
            Self::open_content_addressed_with(engine, path, sha256, cache, tiering)
        };
        match open(&Engine::new(options.clone())?) {
            Err(RuntimeError::CompilerBug { .. }) if options.kind != EngineKind::Pulley => {
                open(&options.on_pulley()?)
            }
            other => other,
        }
    }

    /// Loads `path`: Wasm bytes are compiled (or taken from `cache`), a `.cwasm` made by
    /// `wedge compile` is deserialized. A `.cwasm` is native code: only run ones you trust.
    pub fn load(
        engine: &Engine,
        path: &Path,
        cache: Option<&CodeCache>,
    ) -> Result<App, RuntimeError> {
        Self::load_with(engine, path, cache, Tiering::Off)
    }

    /// [`App::load`], compiling as `tiering` says.
    pub fn load_with(
        engine: &Engine,
        path: &Path,
        cache: Option<&CodeCache>,
        tiering: Tiering,
    ) -> Result<App, RuntimeError> {
        Self::load_file(engine, path, cache, tiering)
    }

    /// Loads the file at `path` as [`App::from_bytes`] does, without reading it when
    /// `cache` remembers it unchanged ([`crate::known_files`]) and holds its code.
    fn load_file(
        engine: &Engine,
        path: &Path,
        cache: Option<&CodeCache>,
        tiering: Tiering,
    ) -> Result<App, RuntimeError> {
        let Some(cache) = cache else {
            return Self::from_bytes_tiered(engine, path, &read(path)?, None, tiering);
        };
        let stamp = FileStamp::of(path).ok();
        if let Some(known) = stamp.as_ref().and_then(|stamp| cache.known(path, stamp))
            && let Some((engine, code)) = cached_code(engine, cache, known.kind, &known.sha256)
        {
            return Ok(App {
                engine,
                code,
                path: path.to_path_buf(),
                kind: known.kind,
                sha256: known.sha256,
                tier_up: false,
            });
        }
        let bytes = read(path)?;
        let app = Self::from_bytes_tiered(engine, path, &bytes, Some(cache), tiering)?;
        if let Some(stamp) = stamp
            && wasmtime::Engine::detect_precompiled(&bytes).is_none()
        {
            let known = Known {
                kind: app.kind,
                sha256: app.sha256.clone(),
            };
            cache.remember(path, &stamp, &known);
        }
        Ok(app)
    }

    /// Loads a file from a content-addressed store, whose content should have the hex
    /// sha256 `sha256`. When `cache` holds its code, only the file's 8-byte header is
    /// read; otherwise the bytes are read, checked against `sha256` (a mismatch is
    /// [`RuntimeError::DigestMismatch`]) and compiled into the cache.
    pub fn open_content_addressed(
        engine: &Engine,
        path: &Path,
        sha256: &str,
        cache: Option<&CodeCache>,
    ) -> Result<App, RuntimeError> {
        Self::open_content_addressed_with(engine, path, sha256, cache, Tiering::Off)
    }

    /// [`App::open_content_addressed`], compiling as `tiering` says.
    pub fn open_content_addressed_with(
        engine: &Engine,
        path: &Path,
        sha256: &str,
        cache: Option<&CodeCache>,
        tiering: Tiering,
    ) -> Result<App, RuntimeError> {
        let read_error = |error| RuntimeError::Read {
            path: path.to_path_buf(),
            error,
        };
        let kind = kind_of_file(path)?;
        let code = match cache.and_then(|c| load_cached(engine, c, kind, sha256)) {
            Some(code) => code,
            None => {
                let bytes = std::fs::read(path).map_err(read_error)?;
                if hex::encode(Sha256::digest(&bytes)) != sha256 {
                    return Err(RuntimeError::DigestMismatch {
                        path: path.to_path_buf(),
                        expected: sha256.to_string(),
                    });
                }
                return Self::compile_checked(engine, path, &bytes, sha256, cache, None, tiering);
            }
        };
        Ok(App {
            engine: engine.clone(),
            code,
            path: path.to_path_buf(),
            kind,
            sha256: sha256.to_string(),
            tier_up: false,
        })
    }

    /// Compiles Wasm `bytes` from a content-addressed store that the caller has just
    /// checked against their hex sha256 `sha256` (a layer verified by a pull), into
    /// `cache` under that digest, without hashing them again; `path` names them in
    /// messages. Code already in `cache` is reused.
    pub fn compile_verified(
        engine: &Engine,
        path: &Path,
        bytes: &[u8],
        sha256: &str,
        cache: Option<&CodeCache>,
    ) -> Result<App, RuntimeError> {
        Self::compile_checked(engine, path, bytes, sha256, cache, None, Tiering::Off)
    }

    /// [`App::compile_verified`], taking the compiled payload from `precompiled` when
    /// the caller already has it for exactly these bytes (a streaming compile's).
    pub(crate) fn compile_checked(
        engine: &Engine,
        path: &Path,
        bytes: &[u8],
        sha256: &str,
        cache: Option<&CodeCache>,
        precompiled: Option<Vec<u8>>,
        tiering: Tiering,
    ) -> Result<App, RuntimeError> {
        let kind = detect_kind(path, bytes)?;
        let source = Source {
            path,
            kind,
            bytes,
            sha256,
        };
        let compiled = compile_cached(engine, &source, cache, precompiled, tiering)?;
        Ok(App {
            engine: compiled.engine,
            code: compiled.code,
            path: path.to_path_buf(),
            kind,
            sha256: sha256.to_string(),
            tier_up: compiled.tier_up,
        })
    }

    /// Like [`App::load`], from bytes already in memory; `path` names them in messages.
    /// A core module importing wedge's host interfaces is turned into a component first
    /// ([`crate::componentize()`]); a build without a compiler could not compile the
    /// result, so it says that instead.
    pub fn from_bytes(
        engine: &Engine,
        path: &Path,
        bytes: &[u8],
        cache: Option<&CodeCache>,
    ) -> Result<App, RuntimeError> {
        Self::from_bytes_tiered(engine, path, bytes, cache, Tiering::Off)
    }

    /// [`App::from_bytes`], compiling as `tiering` says.
    fn from_bytes_tiered(
        engine: &Engine,
        path: &Path,
        bytes: &[u8],
        cache: Option<&CodeCache>,
        tiering: Tiering,
    ) -> Result<App, RuntimeError> {
        #[cfg(feature = "compiler")]
        let componentized;
        #[cfg(feature = "compiler")]
        let bytes = if crate::needs_componentizing(bytes) {
            componentized =
                crate::componentize(bytes).map_err(|message| RuntimeError::InvalidWasm {
                    path: path.to_path_buf(),
                    message: format!("cannot make a component of this module: {message}"),
                })?;
            &componentized[..]
        } else {
            bytes
        };
        let sha256 = hex::encode(Sha256::digest(bytes));
        if let Some(precompiled) = wasmtime::Engine::detect_precompiled(bytes) {
            let kind = match precompiled {
                Precompiled::Module => AppKind::Module,
                Precompiled::Component => AppKind::Component,
            };
            // A `.cwasm` with epoch checks (`wedge compile` makes them) also runs where
            // none are needed.
            let (engine, code) = match deserialize(engine, kind, bytes) {
                Err(_) if !engine.options().epochs => {
                    let checked = engine.with_epochs()?;
                    let code = deserialize(&checked, kind, bytes);
                    (checked, code)
                }
                loaded => (engine.clone(), loaded),
            };
            let code = code.map_err(|e| RuntimeError::Precompiled {
                path: path.to_path_buf(),
                message: one_line(&e),
            })?;
            return Ok(App {
                engine,
                code,
                path: path.to_path_buf(),
                kind,
                sha256,
                tier_up: false,
            });
        }
        let kind = detect_kind(path, bytes)?;
        if kind == AppKind::Module && !module_has_entry(bytes) {
            return Err(RuntimeError::Link {
                path: path.to_path_buf(),
                message: NO_ENTRY_POINT.into(),
            });
        }
        Self::compile_checked(engine, path, bytes, &sha256, cache, None, tiering)
    }

    /// The engine the app was compiled for.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Whether the app's code comes from the baseline compiler for a first run
    /// ([`Tiering::BaselineFirst`]) and the cache still lacks its Cranelift code.
    pub fn tier_up_pending(&self) -> bool {
        self.tier_up
    }

    /// Whether the app is a `wasi:http/proxy` component: it exports
    /// `wasi:http/incoming-handler` (and is served with [`crate::HttpApp`], not run).
    pub fn serves_http(&self) -> bool {
        let Code::Component(component) = &self.code else {
            return false;
        };
        component
            .component_type()
            .exports(self.engine.wasmtime())
            .any(|(name, _)| name.starts_with("wasi:http/incoming-handler@"))
    }
}

/// Why a core module without an entry point cannot run.
pub(crate) const NO_ENTRY_POINT: &str = "module exports no entry point: neither `_start` (a WASI \
     command) nor a default export `\"\"` (a reactor, run after its `_initialize`)";

/// Whether a core module's export section names a function to run (see
/// [`crate::run::ModuleEntry`]), read without compiling: the section precedes the code.
/// Bytes that do not parse say yes, for the compiler to report what is wrong with them.
fn module_has_entry(bytes: &[u8]) -> bool {
    use wasmparser::{ExternalKind, Payload};
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload {
            Ok(Payload::ExportSection(exports)) => {
                let mut names = Vec::new();
                for export in exports {
                    let Ok(export) = export else { return true };
                    if export.kind == ExternalKind::Func {
                        names.push(export.name);
                    }
                }
                return crate::run::ModuleEntry::of(|name| names.contains(&name)).is_some();
            }
            Ok(Payload::CodeSectionStart { .. } | Payload::End(_)) => return false,
            Ok(_) => {}
            Err(_) => return true,
        }
    }
    true
}

/// Tells a core module from a component by the file's 8-byte header, reading no more.
fn kind_of_file(path: &Path) -> Result<AppKind, RuntimeError> {
    let read_error = |error| RuntimeError::Read {
        path: path.to_path_buf(),
        error,
    };
    let mut header = [0u8; 8];
    std::io::Read::read_exact(
        &mut std::fs::File::open(path).map_err(read_error)?,
        &mut header,
    )
    .map_err(read_error)?;
    detect_kind(path, &header)
}

/// Tells a core module from a component by the header; anything else is not Wasm.
pub(crate) fn detect_kind(path: &Path, bytes: &[u8]) -> Result<AppKind, RuntimeError> {
    if wasmparser::Parser::is_core_wasm(bytes) {
        Ok(AppKind::Module)
    } else if wasmparser::Parser::is_component(bytes) {
        Ok(AppKind::Component)
    } else if bytes.starts_with(b"\0asm") {
        let message = if bytes.len() < 8 {
            "truncated header"
        } else {
            "unsupported binary version or layer"
        };
        Err(RuntimeError::InvalidWasm {
            path: path.to_path_buf(),
            message: message.into(),
        })
    } else {
        Err(RuntimeError::NotWasm {
            path: path.to_path_buf(),
        })
    }
}

/// Wasm to compile: its bytes, what they are, their hex sha256, where they came from.
struct Source<'a> {
    path: &'a Path,
    kind: AppKind,
    bytes: &'a [u8],
    sha256: &'a str,
}

/// Code and the engine it was compiled for.
struct Compiled {
    engine: Engine,
    code: Code,
    /// By the baseline compiler, in place of the engine asked for.
    tier_up: bool,
}

/// The code for `source`: from `cache` when it holds it, else `precompiled` (the payload
/// for exactly these bytes, if the caller has it) or a fresh compile (the baseline
/// compiler's first, if `tiering` says so), then written to `cache`.
fn compile_cached(
    engine: &Engine,
    source: &Source<'_>,
    cache: Option<&CodeCache>,
    precompiled: Option<Vec<u8>>,
    tiering: Tiering,
) -> Result<Compiled, RuntimeError> {
    let done = |engine: &Engine, code: Code, tier_up: bool| Compiled {
        engine: engine.clone(),
        code,
        tier_up,
    };
    if let Some((engine, code)) =
        cache.and_then(|c| cached_code(engine, c, source.kind, source.sha256))
    {
        return Ok(done(&engine, code, false));
    }
    if precompiled.is_none()
        && let Some(baseline) = baseline_first(engine, source, cache, tiering)
    {
        // Winch refuses some Wasm Cranelift takes (exceptions, some SIMD): then Cranelift.
        match compile_in_memory(&baseline, source) {
            Ok(code) => return Ok(done(&baseline, code, true)),
            Err(RuntimeError::InvalidWasm { .. } | RuntimeError::CompilerBug { .. }) => {}
            Err(other) => return Err(other),
        }
    }
    let code = compile_into(engine, source, cache, precompiled)?;
    Ok(done(engine, code, false))
}

/// The code for the Wasm with hex sha256 `sha256` from `cache`, and the engine it is
/// for: `engine`, or, for an engine without epoch checks, code with them (a pull's, an
/// image's precompiled code), which serves it too.
fn cached_code(
    engine: &Engine,
    cache: &CodeCache,
    kind: AppKind,
    sha256: &str,
) -> Option<(Engine, Code)> {
    if let Some(code) = load_cached(engine, cache, kind, sha256) {
        return Some((engine.clone(), code));
    }
    if engine.options().epochs {
        return None;
    }
    let checked = engine.with_epochs().ok()?;
    let code = load_cached(&checked, cache, kind, sha256)?;
    Some((checked, code))
}

/// The baseline engine to compile `source` with first, when `tiering` asks for that and
/// it is worth it: a big app, for Cranelift on this host, with a cache to keep the
/// Cranelift code in later.
fn baseline_first(
    engine: &Engine,
    source: &Source<'_>,
    cache: Option<&CodeCache>,
    tiering: Tiering,
) -> Option<Engine> {
    let options = engine.options();
    let wanted = tiering == Tiering::BaselineFirst
        && cache.is_some()
        && starts_on_baseline(options, source.bytes.len());
    if !wanted {
        return None;
    }
    baseline_engine(options)
}

/// The baseline compiler's engine standing in for one with `options`. No instance pool:
/// only a first run's instances run its code, and a second pool would reserve as much
/// address space as the engine's own.
fn baseline_engine(options: &EngineOptions) -> Option<Engine> {
    Engine::new(EngineOptions {
        kind: EngineKind::Winch,
        pooling: None,
        ..options.clone()
    })
    .ok()
}

/// Whether the first run of `wasm` on an engine with `options` would start on the
/// baseline compiler's code: a big app ([`starts_on_baseline`]) that the baseline
/// compiler takes. Winch refuses some Wasm Cranelift takes (exceptions, some SIMD): a
/// core module is validated with Winch's features (a fraction of a compile); a
/// component is taken to pass, and its compile says.
pub fn baseline_takes(options: &EngineOptions, wasm: &[u8]) -> bool {
    if !starts_on_baseline(options, wasm.len()) {
        return false;
    }
    if wasmparser::Parser::is_component(wasm) {
        return true;
    }
    baseline_engine(options).is_some_and(|engine| Module::validate(engine.wasmtime(), wasm).is_ok())
}

/// Whether [`Tiering::BaselineFirst`] compiles `wasm_len` bytes of Wasm for an engine
/// with `options` with the baseline compiler first (where it can): a big app, for
/// Cranelift on this host, which Winch has a backend for.
pub fn starts_on_baseline(options: &EngineOptions, wasm_len: usize) -> bool {
    options.kind == EngineKind::Cranelift
        && options.target.is_none()
        && wasm_len >= BASELINE_FIRST_MIN
        && cfg!(all(
            feature = "compiler",
            any(target_arch = "x86_64", target_arch = "aarch64")
        ))
}

/// Compiles `source` for `engine` straight into memory (nothing serialized or kept).
fn compile_in_memory(engine: &Engine, source: &Source<'_>) -> Result<Code, RuntimeError> {
    #[cfg(not(feature = "compiler"))]
    {
        Err(RuntimeError::NoCompiler {
            path: source.path.to_path_buf(),
            target: engine.compile_target(),
        })
    }
    #[cfg(feature = "compiler")]
    {
        let wt = engine.wasmtime();
        guarded(source.path, || match source.kind {
            AppKind::Module => Module::from_binary(wt, source.bytes).map(Code::Module),
            AppKind::Component => Component::from_binary(wt, source.bytes).map(Code::Component),
        })
    }
}

/// Compiles `source` for `engine` (or takes `precompiled`), keeps the code in `cache`
/// and loads it.
fn compile_into(
    engine: &Engine,
    source: &Source<'_>,
    cache: Option<&CodeCache>,
    precompiled: Option<Vec<u8>>,
) -> Result<Code, RuntimeError> {
    let serialized = match precompiled {
        Some(serialized) => serialized,
        None => precompile_kind(engine, source.path, source.kind, source.bytes)?,
    };
    if let Some(cache) = cache {
        // A cache that cannot be written (read-only root) only costs a recompile next time.
        let _ = cache.write(
            &cache.entry_path(&engine.compatibility_hash(), source.sha256),
            &serialized,
        );
    }
    deserialize(engine, source.kind, &serialized).map_err(|e| RuntimeError::InvalidWasm {
        path: source.path.to_path_buf(),
        message: one_line(&e),
    })
}

/// The bytes of the file at `path`.
fn read(path: &Path) -> Result<Vec<u8>, RuntimeError> {
    std::fs::read(path).map_err(|error| RuntimeError::Read {
        path: path.to_path_buf(),
        error,
    })
}

/// The code for the Wasm with hex sha256 `sha256` from `cache`, if it holds a usable
/// entry; a stale one (other wasmtime or settings) is removed.
fn load_cached(engine: &Engine, cache: &CodeCache, kind: AppKind, sha256: &str) -> Option<Code> {
    let entry = cache.entry_path(&engine.compatibility_hash(), sha256);
    let file = cache.open_verified(&entry)?;
    match deserialize_entry(engine, kind, file, &entry) {
        Ok(code) => Some(code),
        Err(_) => {
            cache.remove(&entry);
            None
        }
    }
}

fn deserialize(engine: &Engine, kind: AppKind, bytes: &[u8]) -> wasmtime::Result<Code> {
    let wt = engine.wasmtime();
    // SAFETY: the bytes are either produced by this engine just now, read back from
    // the code cache after its checksum matched what this process family wrote, or a
    // `.cwasm` the operator chose to run (documented as trusted native code). wasmtime
    // still checks the header, version and settings before using them.
    unsafe {
        Ok(match kind {
            AppKind::Module => Code::Module(Module::deserialize(wt, bytes)?),
            AppKind::Component => Code::Component(Component::deserialize(wt, bytes)?),
        })
    }
}

/// Maps a verified cache entry into the engine without copying it.
fn deserialize_entry(
    engine: &Engine,
    kind: AppKind,
    file: std::fs::File,
    path: &Path,
) -> wasmtime::Result<Code> {
    let wt = engine.wasmtime();
    // SAFETY: the entry was written by this cache and its checksum verified through
    // this same open file; entries are only ever replaced by rename, never rewritten.
    unsafe {
        Ok(match kind {
            AppKind::Module => Code::Module(Module::deserialize_open_file(wt, file)?),
            AppKind::Component => Code::Component(Component::deserialize_file(wt, path)?),
        })
    }
}

/// Compiles Wasm bytes of a known kind to a `.cwasm` payload for `engine`.
fn precompile_kind(
    engine: &Engine,
    path: &Path,
    kind: AppKind,
    bytes: &[u8],
) -> Result<Vec<u8>, RuntimeError> {
    #[cfg(not(feature = "compiler"))]
    {
        let _ = (kind, bytes);
        Err(RuntimeError::NoCompiler {
            path: path.to_path_buf(),
            target: engine.compile_target(),
        })
    }
    #[cfg(feature = "compiler")]
    compile(engine, path, kind, bytes)
}

/// [`precompile_kind`] in a wedge with the compilers.
#[cfg(feature = "compiler")]
fn compile(
    engine: &Engine,
    path: &Path,
    kind: AppKind,
    bytes: &[u8],
) -> Result<Vec<u8>, RuntimeError> {
    let wt = engine.wasmtime();
    guarded(path, || match kind {
        AppKind::Module => wt.precompile_module(bytes),
        AppKind::Component => wt.precompile_component(bytes),
    })
}

/// Runs a compile of the Wasm at `path`: its error is [`RuntimeError::InvalidWasm`], and
/// a crash of the code generator on valid Wasm (wasmtime #13959 on riscv64) is
/// [`RuntimeError::CompilerBug`], never a crash of wedge.
#[cfg(feature = "compiler")]
fn guarded<T>(
    path: &Path,
    compile: impl FnOnce() -> wasmtime::Result<T>,
) -> Result<T, RuntimeError> {
    crate::panics::quiet_caught();
    let compiled =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(compile)).map_err(|payload| {
            RuntimeError::CompilerBug {
                path: path.to_path_buf(),
                message: crate::panics::message(&*payload).unwrap_or_else(|| "it panicked".into()),
            }
        })?;
    compiled.map_err(|e| RuntimeError::InvalidWasm {
        path: path.to_path_buf(),
        message: one_line(&e),
    })
}

impl Engine {
    /// Keeps `code`, compiled elsewhere for this engine's [`Engine::code_target`] and
    /// [`Engine::code_settings`] (precompiled code from an image), in `cache` as the
    /// code of the Wasm at `wasm`, whose hex sha256 is `wasm_sha256`, so that loading
    /// that Wasm compiles nothing. Nothing is kept unless wasmtime accepts the code for
    /// this engine first (its version, settings and the CPU features it needs) and it
    /// is the same kind of Wasm (module or component): otherwise
    /// [`RuntimeError::Precompiled`]. The code is native code, trusted by the caller.
    pub fn install_precompiled(
        &self,
        cache: &CodeCache,
        wasm: &Path,
        wasm_sha256: &str,
        code: &[u8],
    ) -> Result<(), RuntimeError> {
        let refused = |message: String| RuntimeError::Precompiled {
            path: wasm.to_path_buf(),
            message,
        };
        let kind = match wasmtime::Engine::detect_precompiled(code) {
            Some(Precompiled::Module) => AppKind::Module,
            Some(Precompiled::Component) => AppKind::Component,
            None => return Err(refused("the precompiled code is not wasmtime code".into())),
        };
        if kind != kind_of_file(wasm)? {
            let what = match kind {
                AppKind::Module => "core module",
                AppKind::Component => "component",
            };
            return Err(refused(format!(
                "the precompiled code is for a {what}, and this Wasm is not one"
            )));
        }
        // The check of version, settings and CPU features happens here, before the
        // code is kept; nothing in it runs.
        deserialize(self, kind, code).map_err(|e| refused(one_line(&e)))?;
        cache
            .write(
                &cache.entry_path(&self.compatibility_hash(), wasm_sha256),
                code,
            )
            .map_err(|error| RuntimeError::Host(format!("cannot keep precompiled code: {error}")))
    }

    /// Compiles the Wasm file at `path` into `.cwasm` bytes for this engine's target.
    pub fn precompile_file(&self, path: &Path) -> Result<Vec<u8>, RuntimeError> {
        let bytes = std::fs::read(path).map_err(|source| RuntimeError::Read {
            path: path.to_path_buf(),
            error: source,
        })?;
        precompile_kind(self, path, detect_kind(path, &bytes)?, &bytes)
    }
}
