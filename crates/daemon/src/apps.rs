//! Apps ready to run: one engine per setting shared by every container (with the pooling
//! allocator when the machine allows it), and each app compiled and linked once.

use crate::{DaemonError, paths};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use wedge_image::app_source::AppSource;
use wedge_image::precompiled::{CodeKey, PrecompiledCode};
use wedge_image::{ImageError, ImageStore};
use wedge_runtime::{
    App, CodeCache, Engine, EngineKind, EngineOptions, KvStore, Prepared, RuntimeError,
};

/// Which compiled app: the image layer's digest or a file's identity, and the engine.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct AppKey {
    content: String,
    options: EngineOptions,
}

/// Resolved image references and the store stamp they were resolved under.
#[derive(Default)]
struct ImageCache {
    stamp: Option<(u64, u64, std::time::SystemTime)>,
    sources: HashMap<String, AppSource>,
}

/// The daemon's engines and linked apps.
pub struct Apps {
    store: ImageStore,
    cache: CodeCache,
    /// Registry credentials (`wedge login` with the daemon's root).
    auth_file: PathBuf,
    pooling: Option<u32>,
    /// Largest layer a pull accepts, in bytes.
    max_layer_size: u64,
    /// Whether pulls use the code precompiled for this machine that images carry.
    use_precompiled: bool,
    /// Image references already resolved, valid while the store's tags are unchanged.
    images: Mutex<ImageCache>,
    engines: Mutex<HashMap<EngineOptions, Engine>>,
    compiled: Mutex<HashMap<AppKey, App>>,
    /// The key-value store, opened at the first grant.
    keyvalue: std::sync::OnceLock<KvStore>,
    keyvalue_path: PathBuf,
    prepared: Mutex<HashMap<AppKey, Arc<Prepared>>>,
}

impl Apps {
    /// Engines for the data root `root`. With `pool_size`, instances come from a pooling
    /// allocator with that many slots; if the machine cannot reserve its address space
    /// (small boards), a log line says so and instances are allocated on demand. Pulls
    /// refuse layers over `max_layer_size` bytes and, with `use_precompiled`, take the
    /// code precompiled for this machine that an image carries. Temp files a killed
    /// pull left in the image store are removed now.
    pub fn new(
        root: &Path,
        pool_size: Option<u32>,
        max_layer_size: u64,
        use_precompiled: bool,
    ) -> Result<Apps, DaemonError> {
        let store = ImageStore::open(paths::image_store(root))
            .map_err(|e| DaemonError::Internal(e.to_string()))?;
        match store.remove_stale_temp_files() {
            Ok(0) => {}
            Ok(n) => eprintln!("wedged: removed {n} leftover temp files from the image store"),
            Err(e) => eprintln!("wedged: cannot clean the image store's temp files: {e}"),
        }
        // The default engine is built now: with pooling, it is the probe of whether the
        // machine can reserve the pool, and it is kept for the first start.
        let mut engines = HashMap::new();
        let mut pooling = None;
        if let Some(n) = pool_size {
            let options = EngineOptions {
                pooling: Some(n),
                ..EngineOptions::default()
            };
            match Engine::new(options.clone()) {
                Ok(engine) => {
                    engines.insert(options, engine);
                    pooling = Some(n);
                }
                Err(e) => eprintln!(
                    "wedged: pooling allocator unavailable ({e}); allocating instances on demand"
                ),
            }
        }
        Ok(Apps {
            store,
            cache: CodeCache::new(paths::code_cache(root)),
            auth_file: paths::auth_file(root),
            pooling,
            max_layer_size,
            use_precompiled,
            images: Mutex::new(ImageCache::default()),
            engines: Mutex::new(engines),
            compiled: Mutex::new(HashMap::new()),
            keyvalue: std::sync::OnceLock::new(),
            keyvalue_path: paths::keyvalue(root),
            prepared: Mutex::new(HashMap::new()),
        })
    }

    /// Slots in the instance pool, when the pooling allocator is in use.
    pub fn pool_size(&self) -> Option<u32> {
        self.pooling
    }

    /// Resolves what a create request names: an absolute path to an app, or an image
    /// in the daemon's store.
    pub fn source(&self, image: &str) -> Result<AppSource, DaemonError> {
        if image.starts_with('/') {
            let path = Path::new(image);
            if !path.exists() {
                return Err(DaemonError::NotFound(format!("no such file `{image}`")));
            }
            return AppSource::open(path).map_err(|e| DaemonError::BadRequest(e.to_string()));
        }
        let stamp = self.store.tags_stamp();
        {
            let mut cache = lock(&self.images);
            if cache.stamp != stamp {
                cache.sources.clear();
                cache.stamp = stamp;
            }
            if let Some(source) = cache.sources.get(image) {
                return Ok(source.clone());
            }
        }
        let reference = wedge_image::parse_reference(image).map_err(|_| {
            DaemonError::BadRequest(format!(
                "invalid image `{image}`: expected an image reference or an absolute path"
            ))
        })?;
        let stored = self.store.resolve(&reference).map_err(|e| match e {
            ImageError::NotFound(_) => DaemonError::NotFound(format!(
                "no such image `{image}` in the daemon's store (pull it first)"
            )),
            e => DaemonError::Internal(e.to_string()),
        })?;
        let source = AppSource::from_image(&self.store, stored)
            .map_err(|e| DaemonError::Internal(e.to_string()))?;
        let mut cache = lock(&self.images);
        if cache.stamp == stamp {
            cache.sources.insert(image.to_string(), source.clone());
        }
        Ok(source)
    }

    /// Pulls `image` from its registry into the daemon's store, with the credentials
    /// under the daemon's root (plain HTTP only for loopback registries). Returns the
    /// manifest digest.
    pub async fn pull(&self, image: &str) -> Result<String, DaemonError> {
        let reference = wedge_image::parse_reference(image)
            .map_err(|e| DaemonError::BadRequest(e.to_string()))?;
        let registry_error = |e: ImageError| match e {
            ImageError::NotFound(_) => DaemonError::NotFound(e.to_string()),
            e => DaemonError::Registry(e.to_string()),
        };
        let auth = wedge_image::credentials::lookup(reference.resolve_registry(), &self.auth_file)
            .map_err(registry_error)?;
        let registry = wedge_image::registry::Registry::new(&reference, auth, false)
            .map_err(registry_error)?
            .with_max_layer_size(self.max_layer_size);
        let remote = registry
            .fetch_image(&reference)
            .await
            .map_err(registry_error)?;
        let precompiled = if self.use_precompiled {
            self.fetch_precompiled(&registry, &remote, &reference)
                .await
                .map_err(registry_error)?
        } else {
            Vec::new()
        };
        let stored = registry
            .pull_observed(
                &self.store,
                remote,
                &wedge_image::registry::NoProgress,
                None,
            )
            .await
            .map_err(registry_error)?;
        if !precompiled.is_empty() {
            let wasm = wedge_image::artifact::open(&self.store, stored.clone())
                .map_err(|e| DaemonError::Internal(e.to_string()))?;
            let layer = self.store.blob_path(&wasm.layer);
            for (engine, code) in precompiled {
                if let Err(e) =
                    engine.install_precompiled(&self.cache, &layer, wasm.layer.hex(), &code.code)
                {
                    eprintln!("wedged: not using the image's code for {}: {e}", code.key);
                }
            }
        }
        Ok(stored.digest.to_string())
    }

    /// Code precompiled for this machine's engines (without and with fuel metering)
    /// that the image `remote` carries, with an engine to check and keep it with; a log
    /// line says when it has none for the default engine. Those engines have no
    /// instance pool: the cache keys code by target and settings alone, so the pooled
    /// engines that run it find it, and a pull reserves no second pool.
    async fn fetch_precompiled(
        &self,
        registry: &wedge_image::registry::Registry,
        remote: &wedge_image::registry::RemoteImage,
        reference: &wedge_image::Reference,
    ) -> Result<Vec<(Engine, PrecompiledCode)>, ImageError> {
        let mut engines = Vec::new();
        for fuel in [false, true] {
            match Engine::new(EngineOptions {
                fuel,
                ..EngineOptions::default()
            }) {
                Ok(engine) => engines.push(engine),
                Err(e) => eprintln!("wedged: {e}"),
            }
        }
        let keys: Vec<CodeKey> = engines
            .iter()
            .map(|e| CodeKey {
                target: e.code_target(),
                settings: e.code_settings(),
            })
            .collect();
        let found = registry.fetch_precompiled(remote, &keys).await?;
        if let Some(note) = keys.first().and_then(|k| found.missing_note(reference, k)) {
            eprintln!("wedged: {note}");
        }
        Ok(found
            .code
            .into_iter()
            .filter_map(|code| {
                let at = keys.iter().position(|k| *k == code.key)?;
                Some((engines[at].clone(), code))
            })
            .collect())
    }

    /// The app compiled and linked for `kind` (with fuel metering when `fuel`), from
    /// memory when a container already runs it, else through the AOT cache.
    pub fn prepare(
        &self,
        source: &AppSource,
        kind: EngineKind,
        fuel: bool,
    ) -> Result<Arc<Prepared>, DaemonError> {
        let (key, app) = self.compiled(source, kind, fuel)?;
        if let Some(p) = lock(&self.prepared).get(&key) {
            return Ok(p.clone());
        }
        let prepared = Arc::new(Prepared::new(&app).map_err(runtime_error)?);
        lock(&self.prepared).insert(key, prepared.clone());
        Ok(prepared)
    }

    /// The app compiled for `kind` (with fuel metering when `fuel`), not linked: an
    /// HTTP app is linked per container, with its own policy.
    #[cfg(feature = "serve")]
    pub fn app(
        &self,
        source: &AppSource,
        kind: EngineKind,
        fuel: bool,
    ) -> Result<App, DaemonError> {
        self.compiled(source, kind, fuel).map(|(_, app)| app)
    }

    fn compiled(
        &self,
        source: &AppSource,
        kind: EngineKind,
        fuel: bool,
    ) -> Result<(AppKey, App), DaemonError> {
        let options = EngineOptions {
            kind,
            fuel,
            target: None,
            pooling: self.pooling,
            epochs: true,
        };
        let key = AppKey {
            content: content_key(source)?,
            options: options.clone(),
        };
        if let Some(app) = lock(&self.compiled).get(&key) {
            return Ok((key, app.clone()));
        }
        let load = |engine: &Engine| match &source.image {
            Some(image) => App::open_content_addressed(
                engine,
                &source.wasm,
                image.layer.hex(),
                Some(&self.cache),
            ),
            None => App::load(engine, &source.wasm, Some(&self.cache)),
        };
        let app = match load(&self.engine(options.clone())?) {
            // The interpreter runs what the code generator crashed on (as `wedge run`).
            Err(RuntimeError::CompilerBug { .. }) if kind != EngineKind::Pulley => {
                eprintln!(
                    "wedged: the {kind} compiler failed on `{}` (a wasmtime bug on this \
                     machine); running it on the Pulley interpreter",
                    source.wasm.display()
                );
                load(&self.engine(EngineOptions {
                    kind: EngineKind::Pulley,
                    ..options
                })?)
            }
            other => other,
        }
        .map_err(runtime_error)?;
        lock(&self.compiled).insert(key.clone(), app.clone());
        Ok((key, app))
    }

    /// The key-value store under the daemon's root, opened once.
    pub fn keyvalue(&self) -> Result<KvStore, RuntimeError> {
        if let Some(store) = self.keyvalue.get() {
            return Ok(store.clone());
        }
        let store = KvStore::open(&self.keyvalue_path)?;
        Ok(self.keyvalue.get_or_init(|| store).clone())
    }

    fn engine(&self, options: EngineOptions) -> Result<Engine, DaemonError> {
        let mut engines = lock(&self.engines);
        if let Some(e) = engines.get(&options) {
            return Ok(e.clone());
        }
        let engine = Engine::new(options.clone()).map_err(runtime_error)?;
        engines.insert(options, engine.clone());
        Ok(engine)
    }
}

/// An image's layer digest, or a file's path, size and modification time (so an edited
/// file is compiled again).
fn content_key(source: &AppSource) -> Result<String, DaemonError> {
    if let Some(image) = &source.image {
        return Ok(image.layer.to_string());
    }
    let path: PathBuf = source.wasm.clone();
    let meta = std::fs::metadata(&path)
        .map_err(|e| DaemonError::NotFound(format!("cannot read `{}`: {e}", path.display())))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .unwrap_or_default();
    Ok(format!(
        "{}:{}:{}",
        path.display(),
        meta.len(),
        mtime.as_nanos()
    ))
}

/// A runtime error as an API error: a missing file is 404, a bad grant 400, an app that
/// cannot run 422.
pub fn runtime_error(e: RuntimeError) -> DaemonError {
    match e {
        RuntimeError::Read { .. } => DaemonError::NotFound(e.to_string()),
        RuntimeError::Grant(_) => DaemonError::BadRequest(e.to_string()),
        e if e.is_unrunnable_app() => DaemonError::Unrunnable(e.to_string()),
        e => DaemonError::Internal(e.to_string()),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
