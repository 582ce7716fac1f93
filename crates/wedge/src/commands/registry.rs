//! Registry commands: `push`, `pull`, `login`, `logout`, and the pull behind
//! `wedge run IMAGE` when the image is not local.

use crate::cli::{LoginArgs, LogoutArgs, MAX_LAYER_SIZE_ENV, PullArgs, RegistryArgs};
use crate::root::{auth_file, code_cache_dir, image_store_dir};
use anyhow::Context;
use std::io::Read;
use std::path::Path;
use std::sync::Mutex;
use std::thread::ScopedJoinHandle;
use wedge_image::artifact;
use wedge_image::registry::{self, LayerContent, LayerObserver, Registry};
use wedge_image::{Digest, ImageStore, Reference, StoredImage, credentials, parse_reference};
use wedge_runtime::{App, CodeCache, Engine, EngineOptions, StreamingCompile};

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

/// `wedge push REF`.
pub fn push(root: &Path, args: RegistryArgs) -> anyhow::Result<i32> {
    let reference = parse_reference(&args.image)?;
    let store = ImageStore::open(image_store_dir(root))?;
    let image = store.resolve(&reference)?;
    let registry = connect(root, &reference, args.insecure)?;
    let digest = block_on(registry.push(
        &store,
        &image,
        &reference,
        &*crate::progress::for_terminal(),
    ))??;
    println!("{}@{digest}", reference.whole());
    Ok(0)
}

/// `wedge pull REF`.
pub fn pull(root: &Path, args: PullArgs) -> anyhow::Result<i32> {
    let reference = parse_reference(&args.registry.image)?;
    let max_layer_size = args
        .max_layer_size
        .map_or(registry::DEFAULT_MAX_LAYER_SIZE, |size| size.0);
    let (image, _) = pull_image(root, &reference, args.registry.insecure, max_layer_size)?;
    println!("{}@{}", reference.whole(), image.digest);
    Ok(0)
}

/// The largest layer a pull accepts: `$WEDGE_MAX_LAYER_SIZE`, else the default.
pub fn max_layer_size_from_env() -> anyhow::Result<u64> {
    match std::env::var(MAX_LAYER_SIZE_ENV) {
        Ok(value) => Ok(value
            .parse::<wedge_manifest::ByteSize>()
            .with_context(|| format!("invalid `{MAX_LAYER_SIZE_ENV}`"))?
            .0),
        Err(_) => Ok(registry::DEFAULT_MAX_LAYER_SIZE),
    }
}

/// Pulls `reference` into the local store and compiles its Wasm into the AOT cache
/// (default engine settings), so the first run after a pull starts warm. Returns the
/// compiled app too, so a run right after the pull does not load it a second time.
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
    insecure: bool,
    max_layer_size: u64,
) -> anyhow::Result<(StoredImage, App)> {
    let registry = connect(root, reference, insecure)?.with_max_layer_size(max_layer_size);
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
    let streaming = StreamingCompile::new(&engine);
    std::thread::scope(|scope| {
        let compiler = LayerCompiler {
            scope,
            cache: &cache,
            store: &store,
            streaming: &streaming,
            compiling: Mutex::new(None),
        };
        let pulled = runtime.block_on(registry.pull_observed(
            &store,
            remote,
            &*crate::progress::for_terminal(),
            Some(&compiler),
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
        let app = match compiled {
            Some(app) => app?,
            // The layer was in the store already: its code may be cached too.
            None => {
                let wasm = artifact::open(&store, image.clone())?;
                App::open_content_addressed(
                    &engine,
                    &store.blob_path(&wasm.layer),
                    wasm.layer.hex(),
                    Some(&cache),
                )?
            }
        };
        Ok((image, app))
    })
}

/// Compiles a pulled layer while the pull goes on (see [`pull_image`]).
struct LayerCompiler<'scope, 'env> {
    scope: &'scope std::thread::Scope<'scope, 'env>,
    cache: &'env CodeCache,
    store: &'env ImageStore,
    streaming: &'env StreamingCompile,
    /// The thread finishing the compile, once the layer is verified.
    compiling: Mutex<Option<ScopedJoinHandle<'scope, anyhow::Result<App>>>>,
}

impl LayerObserver for LayerCompiler<'_, '_> {
    fn receiving(&self, _digest: &Digest, so_far: &[u8]) {
        self.streaming.received(so_far);
    }

    fn verified(&self, digest: &Digest, content: LayerContent) {
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
