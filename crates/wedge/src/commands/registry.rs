//! Registry commands: `push`, `pull`, `login`, `logout`, and the pull behind
//! `wedge run IMAGE` when the image is not local.

use crate::cli::{
    LoginArgs, LogoutArgs, MAX_LAYER_SIZE_ENV, PullArgs, PushArgs, USE_PRECOMPILED_ENV,
};
use crate::root::{auth_file, code_cache_dir, image_store_dir};
use anyhow::Context;
use std::io::Read;
use std::path::Path;
use std::sync::Mutex;
use std::thread::ScopedJoinHandle;
use wedge_image::artifact;
use wedge_image::precompiled::{CodeKey, PrecompiledCode};
use wedge_image::registry::{self, LayerContent, LayerObserver, Registry, RemoteImage};
use wedge_image::{Digest, ImageStore, Reference, StoredImage, credentials, parse_reference};
use wedge_runtime::{
    App, CodeCache, Engine, EngineOptions, RuntimeError, StreamingCompile, Tiering, baseline_takes,
    starts_on_baseline,
};

fn block_on<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    Ok(runtime()?.block_on(future))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn connect(root: &Path, reference: &Reference, insecure: bool) -> anyhow::Result<Registry> {
    let auth = credentials::lookup(reference.resolve_registry(), &auth_file(root))?;
    Ok(Registry::new(reference, auth, insecure)?)
}

/// `wedge push REF`: the image, then (with `--precompile`) code compiled from its
/// Wasm for each target, attached to it. Everything is compiled before anything is
/// pushed, so a target the compiler fails on pushes nothing.
pub fn push(root: &Path, args: PushArgs) -> anyhow::Result<i32> {
    let reference = parse_reference(&args.registry.image)?;
    let store = ImageStore::open(image_store_dir(root))?;
    let image = store.resolve(&reference)?;
    let code = precompile(&store, &image, &args)?;
    let registry = connect(root, &reference, args.registry.insecure)?;
    let progress = crate::progress::for_terminal();
    let digest = block_on(registry.push(&store, &image, &reference, &*progress))??;
    println!("{}@{digest}", reference.whole());
    if !code.is_empty() {
        let attached =
            block_on(registry.push_precompiled(&store, &image, &reference, &code, &*progress))??;
        for (compiled, digest) in code.iter().zip(attached) {
            eprintln!(
                "attached code for {} ({} bytes): {digest}",
                compiled.key,
                compiled.code.len()
            );
        }
    }
    Ok(0)
}

/// The code `wedge push --precompile` attaches: the image's Wasm compiled for each
/// target, with fuel metering too when asked.
fn precompile(
    store: &ImageStore,
    image: &StoredImage,
    args: &PushArgs,
) -> anyhow::Result<Vec<PrecompiledCode>> {
    if args.precompile.is_empty() {
        return Ok(Vec::new());
    }
    let wasm = artifact::open(store, image.clone())
        .context("precompiled code attaches to Wasm images only, not to their container form")?;
    let layer = store.blob_path(&wasm.layer);
    let fuel_variants: &[bool] = if args.precompile_fuel {
        &[false, true]
    } else {
        &[false]
    };
    let mut code = Vec::new();
    for target in &args.precompile {
        for &fuel in fuel_variants {
            let engine = Engine::new(EngineOptions {
                fuel,
                target: Some(target.clone()),
                ..EngineOptions::default()
            })?;
            code.push(PrecompiledCode {
                key: code_key(&engine),
                code: engine.precompile_file(&layer)?,
            });
        }
    }
    Ok(code)
}

/// The key of the code `engine` runs.
fn code_key(engine: &Engine) -> CodeKey {
    CodeKey {
        target: engine.code_target(),
        settings: engine.code_settings(),
    }
}

/// `wedge pull REF`.
pub fn pull(root: &Path, args: PullArgs) -> anyhow::Result<i32> {
    let reference = parse_reference(&args.registry.image)?;
    let from_env = PullOptions::from_env()?;
    let options = PullOptions {
        insecure: args.registry.insecure,
        max_layer_size: args
            .max_layer_size
            .map_or(from_env.max_layer_size, |size| size.0),
        use_precompiled: args.use_precompiled || from_env.use_precompiled,
        defer_big_compiles: true,
    };
    let (image, _) = pull_image(root, &reference, &options)?;
    println!("{}@{}", reference.whole(), image.digest);
    Ok(0)
}

/// How a pull goes.
pub struct PullOptions {
    /// Plain HTTP to a registry that is not on loopback.
    pub insecure: bool,
    /// The largest layer accepted.
    pub max_layer_size: u64,
    /// Use the image's precompiled code for this machine, if it has some.
    pub use_precompiled: bool,
    /// Leave a big app (one whose first run starts on the baseline compiler's code,
    /// [`wedge_runtime::baseline_takes`]) uncompiled: a `wedge tier-up` compiles it
    /// with Cranelift in the background. Otherwise the pull compiles it with Winch, for
    /// a run right after it. A big app Winch refuses is compiled with Cranelift by the
    /// pull either way: a run would wait for that compile.
    pub defer_big_compiles: bool,
}

impl PullOptions {
    /// The pull behind `wedge run IMAGE`: over HTTPS (plain HTTP on loopback), with the
    /// largest layer `$WEDGE_MAX_LAYER_SIZE` (else the default) and precompiled code if
    /// `$WEDGE_USE_PRECOMPILED` says so.
    pub fn from_env() -> anyhow::Result<PullOptions> {
        let max_layer_size = match std::env::var(MAX_LAYER_SIZE_ENV) {
            Ok(value) => {
                value
                    .parse::<wedge_manifest::ByteSize>()
                    .with_context(|| format!("invalid `{MAX_LAYER_SIZE_ENV}`"))?
                    .0
            }
            Err(_) => registry::DEFAULT_MAX_LAYER_SIZE,
        };
        let use_precompiled = match std::env::var(USE_PRECOMPILED_ENV).as_deref() {
            Ok("1" | "true" | "yes" | "on") => true,
            Ok("0" | "false" | "no" | "off" | "") | Err(_) => false,
            Ok(other) => {
                anyhow::bail!("invalid `{USE_PRECOMPILED_ENV}` value `{other}` (use `1` or `0`)")
            }
        };
        Ok(PullOptions {
            insecure: false,
            max_layer_size,
            use_precompiled,
            defer_big_compiles: false,
        })
    }
}

/// Pulls `reference` into the local store and compiles its Wasm into the AOT cache
/// (default engine settings), so the first run after a pull starts warm. Returns the
/// compiled app too, so a run right after the pull does not load it a second time.
/// A big app is compiled with the baseline compiler instead ([`Tiering::BaselineFirst`]:
/// the app says so, and the caller has Cranelift's code made in the background), or
/// with [`PullOptions::defer_big_compiles`] not at all: no app is returned, and a
/// `wedge tier-up` compiles it in the background.
///
/// The compile overlaps the pull: a [`StreamingCompile`] starts on the layer's first
/// bytes while the rest arrives, and the final compile runs on its own thread as soon
/// as the layer's digest is checked, while the pull makes the layer durable and writes
/// the manifest and the tag. A first pull into a root creates the store (its layout
/// files, fsynced) while the manifest is fetched. A layer over `max_layer_size` bytes is
/// refused before it is downloaded.
pub fn pull_image(
    root: &Path,
    reference: &Reference,
    options: &PullOptions,
) -> anyhow::Result<(StoredImage, Option<App>)> {
    let registry =
        connect(root, reference, options.insecure)?.with_max_layer_size(options.max_layer_size);
    let runtime = runtime()?;
    let (store, remote) = std::thread::scope(|scope| {
        let opening = scope.spawn(|| ImageStore::open(image_store_dir(root)));
        let remote = runtime.block_on(registry.fetch_image(reference));
        let store = opening
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (store, remote)
    });
    let (store, remote) = (store?, remote?);
    let cache = CodeCache::new(code_cache_dir(root));
    let engine = Engine::new(EngineOptions::default())?;
    let precompiled = if options.use_precompiled {
        runtime.block_on(fetch_precompiled(&registry, &remote, reference, &engine))?
    } else {
        Vec::new()
    };
    // Code for the default engine came with the image: nothing to compile meanwhile.
    let compile = !precompiled
        .iter()
        .any(|(e, _)| e.options() == engine.options());
    let defer = |wasm_len: usize| {
        compile && options.defer_big_compiles && starts_on_baseline(engine.options(), wasm_len)
    };
    let streaming = StreamingCompile::new(&engine, Tiering::BaselineFirst);
    std::thread::scope(|scope| {
        let compiler = LayerCompiler {
            scope,
            cache: &cache,
            store: &store,
            streaming: &streaming,
            defer: &defer,
            compiling: Mutex::new(None),
        };
        let pulled = runtime.block_on(registry.pull_observed(
            &store,
            remote,
            &*crate::progress::for_terminal(),
            Some(&compiler as &dyn LayerObserver).filter(|_| compile),
        ));
        let compiling = compiler
            .compiling
            .into_inner()
            .unwrap_or_else(|e| e.into_inner());
        let compiled = compiling.map(|thread| {
            thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        let image = pulled?;
        let wasm = artifact::open(&store, image.clone())?;
        let layer = store.blob_path(&wasm.layer);
        let size = std::fs::metadata(&layer).map_or(0, |m| m.len());
        if compiled.is_none()
            && defer(usize::try_from(size).unwrap_or(usize::MAX))
            && baseline_takes(engine.options(), &read_layer(&layer)?)
        {
            super::run::tier_up_in_background(root, &layer, Some(wasm.layer.hex()), &engine);
            return Ok((image, None));
        }
        let app = match compiled.map(|app| app.map_err(|e| e.downcast::<RuntimeError>())) {
            Some(Ok(app)) => app,
            // The code generator crashed on it (a wasmtime bug on some targets): it runs
            // on Pulley, as `wedge run` would.
            Some(Err(Ok(RuntimeError::CompilerBug { .. }))) => {
                let on_pulley = engine.options().on_pulley()?;
                let app = App::open_content_addressed(
                    &on_pulley,
                    &layer,
                    wasm.layer.hex(),
                    Some(&cache),
                )?;
                super::run::note_if_on_pulley(&app, engine.options().kind);
                app
            }
            Some(Err(Ok(e))) => return Err(e.into()),
            Some(Err(Err(e))) => return Err(e),
            // The layer was in the store already (its code may be cached too), or its
            // code came with the image.
            None => {
                for (engine, code) in &precompiled {
                    if let Err(e) =
                        engine.install_precompiled(&cache, &layer, wasm.layer.hex(), &code.code)
                    {
                        eprintln!("wedge: not using the image's code for {}: {e}", code.key);
                    }
                }
                App::open_content_addressed(&engine, &layer, wasm.layer.hex(), Some(&cache))?
            }
        };
        Ok((image, Some(app)))
    })
}

/// The bytes of a stored layer.
fn read_layer(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading `{}`", path.display()))
}

/// Code precompiled for this machine that `remote` carries, with the engine each is
/// for: the default engine, and with fuel metering. Says on stderr when there is none
/// for the default engine, and what the image has instead.
async fn fetch_precompiled(
    registry: &Registry,
    remote: &RemoteImage,
    reference: &Reference,
    engine: &Engine,
) -> anyhow::Result<Vec<(Engine, PrecompiledCode)>> {
    let engines = [
        engine.clone(),
        Engine::new(EngineOptions {
            fuel: true,
            ..engine.options().clone()
        })?,
    ];
    let keys = engines.each_ref().map(code_key);
    let found = registry.fetch_precompiled(remote, &keys).await?;
    if let Some(note) = found.missing_note(reference, &keys[0]) {
        eprintln!("wedge: {note}");
    }
    Ok(found
        .code
        .into_iter()
        .filter_map(|code| {
            let engine = engines.iter().find(|e| code_key(e) == code.key)?;
            Some((engine.clone(), code))
        })
        .collect())
}

/// Compiles a pulled layer while the pull goes on (see [`pull_image`]).
struct LayerCompiler<'scope, 'env> {
    scope: &'scope std::thread::Scope<'scope, 'env>,
    cache: &'env CodeCache,
    store: &'env ImageStore,
    streaming: &'env StreamingCompile,
    /// Whether a layer of this many bytes is left uncompiled while it arrives (the
    /// pull decides once it has it all: [`PullOptions::defer_big_compiles`]).
    defer: &'env (dyn Fn(usize) -> bool + Sync),
    /// The thread finishing the compile, once the layer is verified.
    compiling: Mutex<Option<ScopedJoinHandle<'scope, anyhow::Result<App>>>>,
}

impl LayerObserver for LayerCompiler<'_, '_> {
    fn receiving(&self, _digest: &Digest, so_far: &[u8]) {
        self.streaming.received(so_far);
    }

    fn verified(&self, digest: &Digest, content: LayerContent) {
        let len = match &content {
            LayerContent::Bytes(bytes) => bytes.len(),
            LayerContent::File(file) => file
                .metadata()
                .map_or(0, |m| usize::try_from(m.len()).unwrap_or(usize::MAX)),
        };
        if (self.defer)(len) {
            return;
        }
        let path = self.store.blob_path(digest);
        let sha256 = digest.hex().to_string();
        let (cache, streaming) = (self.cache, self.streaming);
        let thread = self.scope.spawn(move || -> anyhow::Result<App> {
            let bytes = match content {
                LayerContent::Bytes(bytes) => bytes,
                LayerContent::File(mut file) => {
                    let mut bytes = Vec::new();
                    file.read_to_end(&mut bytes)
                        .with_context(|| format!("cannot read `{}`", path.display()))?;
                    bytes
                }
            };
            Ok(streaming.finish(&path, &bytes, &sha256, Some(cache))?)
        });
        *self.compiling.lock().unwrap_or_else(|e| e.into_inner()) = Some(thread);
    }
}

/// `wedge login HOST -u USER --password-stdin`.
pub fn login(root: &Path, args: LoginArgs) -> anyhow::Result<i32> {
    if !args.password_stdin {
        anyhow::bail!("pass the password on standard input with `--password-stdin`");
    }
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .context("cannot read the password from standard input")?;
    let password = password.trim_end_matches(['\n', '\r']);
    block_on(registry::check_login(
        &args.registry,
        &args.username,
        password,
        args.insecure,
    ))??;
    credentials::save(&auth_file(root), &args.registry, &args.username, password)?;
    println!("Login Succeeded");
    Ok(0)
}

/// `wedge logout HOST`.
pub fn logout(root: &Path, args: LogoutArgs) -> anyhow::Result<i32> {
    if credentials::remove(&auth_file(root), &args.registry)? {
        println!("Removed login credentials for {}", args.registry);
    } else {
        println!("Not logged in to {}", args.registry);
    }
    Ok(0)
}
