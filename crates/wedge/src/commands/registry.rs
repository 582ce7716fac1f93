//! Registry commands: `push`, `pull`, `login`, `logout`, and the pull behind
//! `wedge run IMAGE` when the image is not local.

use crate::cli::{LoginArgs, LogoutArgs, RegistryArgs};
use crate::root::{auth_file, code_cache_dir, image_store_dir};
use anyhow::Context;
use std::io::Read;
use std::path::Path;
use wedge_image::artifact;
use wedge_image::registry::{self, LayerContent, Registry};
use wedge_image::{Digest, ImageStore, Reference, StoredImage, credentials, parse_reference};
use wedge_runtime::{App, CodeCache, Engine, EngineOptions};

fn block_on<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok(rt.block_on(future))
}

fn connect(root: &Path, reference: &Reference, insecure: bool) -> anyhow::Result<Registry> {
    let auth = credentials::lookup(reference.resolve_registry(), &auth_file(root))?;
    Ok(Registry::new(reference, auth, insecure)?)
}

/// `wedge push REF`.
pub fn push(root: &Path, args: RegistryArgs) -> anyhow::Result<i32> {
    let reference = parse_reference(&args.image)?;
    let store = ImageStore::open(image_store_dir(root))?;
    let image = artifact::open(&store, store.resolve(&reference)?)?;
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
pub fn pull(root: &Path, args: RegistryArgs) -> anyhow::Result<i32> {
    let reference = parse_reference(&args.image)?;
    let (image, _) = pull_image(root, &reference, args.insecure)?;
    println!("{}@{}", reference.whole(), image.digest);
    Ok(0)
}

/// Pulls `reference` into the local store and compiles its Wasm into the AOT cache
/// (default engine settings), so the first run after a pull starts warm. Returns the
/// compiled app too, so a run right after the pull does not load it a second time.
///
/// The compile starts on its own thread as soon as the layer's digest is checked, while
/// the pull makes the layer durable and writes the manifest and the tag.
pub fn pull_image(
    root: &Path,
    reference: &Reference,
    insecure: bool,
) -> anyhow::Result<(StoredImage, App)> {
    let store = ImageStore::open(image_store_dir(root))?;
    let registry = connect(root, reference, insecure)?;
    let cache = CodeCache::new(code_cache_dir(root));
    let engine = Engine::new(EngineOptions::default())?;
    let (engine, cache, store) = (&engine, &cache, &store);
    std::thread::scope(|scope| {
        let mut compiling = None;
        let mut compile_layer = |digest: &Digest, layer: LayerContent| {
            let path = store.blob_path(digest);
            let sha256 = digest.hex().to_string();
            compiling = Some(scope.spawn(move || -> anyhow::Result<App> {
                let bytes = match layer {
                    LayerContent::Bytes(bytes) => bytes,
                    LayerContent::File(mut file) => {
                        let mut bytes = Vec::new();
                        file.read_to_end(&mut bytes)
                            .with_context(|| format!("cannot read `{}`", path.display()))?;
                        bytes
                    }
                };
                Ok(App::compile_verified(
                    engine,
                    &path,
                    &bytes,
                    &sha256,
                    Some(cache),
                )?)
            }));
        };
        let pulled = block_on(registry.pull_observed(
            store,
            reference,
            &*crate::progress::for_terminal(),
            Some(&mut compile_layer),
        ))?;
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
                let wasm = artifact::open(store, image.clone())?;
                App::open_content_addressed(
                    engine,
                    &store.blob_path(&wasm.layer),
                    wasm.layer.hex(),
                    Some(cache),
                )?
            }
        };
        Ok((image, app))
    })
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
