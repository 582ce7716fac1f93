//! Apps ready to run: one engine per setting shared by every container (with the pooling
//! allocator when the machine allows it), and each app compiled and linked once. A big
//! app's first start runs on the baseline compiler's code while Cranelift's is compiled
//! in the background for the starts after it.

use crate::{DaemonError, paths};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use wedge_image::app_source::AppSource;
use wedge_image::precompiled::{CodeKey, PrecompiledCode};
use wedge_image::{ImageError, ImageStore};
use wedge_runtime::{
    App, BACKGROUND_NICE, CodeCache, Engine, EngineKind, EngineOptions, FileStamp, KvStore,
    Prepared, RuntimeError, Tiering,
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
    compiled: Shared<HashMap<AppKey, App>>,
    /// The key-value store, opened at the first grant.
    keyvalue: std::sync::OnceLock<KvStore>,
    keyvalue_path: PathBuf,
    /// Apps linked, on their final code (not the baseline compiler's).
    prepared: Mutex<HashMap<AppKey, Arc<Prepared>>>,
    /// Apps whose Cranelift code is being compiled in the background.
    tiering_up: Shared<HashSet<AppKey>>,
}

/// A map the background compiles update too.
type Shared<T> = Arc<Mutex<T>>;

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
            compiled: Shared::default(),
            keyvalue: std::sync::OnceLock::new(),
            keyvalue_path: paths::keyvalue(root),
            prepared: Mutex::new(HashMap::new()),
            tiering_up: Shared::default(),
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
        // Code that the background compile replaces is linked again at each start.
        if !app.tier_up_pending() {
            lock(&self.prepared).insert(key, prepared.clone());
        }
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
        let engine = self.engine(options.clone())?;
        // A big app's first start runs on the baseline compiler's code, compiled in a
        // second; Cranelift's follows in the background.
        let app = match load(&engine, source, &self.cache, Tiering::BaselineFirst) {
            // The interpreter runs what the code generator crashed on (as `wedge run`).
            Err(RuntimeError::CompilerBug { .. }) if kind != EngineKind::Pulley => {
                eprintln!(
                    "wedged: the {kind} compiler failed on `{}` (a wasmtime bug on this \
                     machine); running it on the Pulley interpreter",
                    source.wasm.display()
                );
                let on_pulley = self.engine(EngineOptions {
                    kind: EngineKind::Pulley,
                    ..options
                })?;
                load(&on_pulley, source, &self.cache, Tiering::Off)
            }
            other => other,
        }
        .map_err(runtime_error)?;
        lock(&self.compiled).insert(key.clone(), app.clone());
        if app.tier_up_pending() {
            self.tier_up(&key, source, engine);
        }
        Ok((key, app))
    }

    /// Compiles `source`, whose containers start on the baseline compiler's code for
    /// now, with `engine` (Cranelift) into the code cache, on a thread at low priority;
    /// then the containers started after that get the new code. Running containers keep
    /// theirs. One compile per app at a time.
    fn tier_up(&self, key: &AppKey, source: &AppSource, engine: Engine) {
        if !lock(&self.tiering_up).insert(key.clone()) {
            return;
        }
        let (key, source, cache) = (key.clone(), source.clone(), self.cache.clone());
        let compiled = Arc::clone(&self.compiled);
        let tiering_up = Arc::clone(&self.tiering_up);
        let started = Instant::now();
        let done = {
            let key = key.clone();
            move || {
                let name = source.wasm.display();
                match at_low_priority(|| load(&engine, &source, &cache, Tiering::Off)) {
                    Ok(app) => {
                        lock(&compiled).insert(key.clone(), app);
                        eprintln!(
                            "wedged: `{name}` compiled with Cranelift in {:.1} s: containers \
                             started from now on run its code",
                            started.elapsed().as_secs_f64()
                        );
                    }
                    Err(e) => eprintln!(
                        "wedged: cannot compile `{name}` with Cranelift ({e}); its containers \
                         keep starting on the baseline compiler's code"
                    ),
                }
                lock(&tiering_up).remove(&key);
            }
        };
        let spawned = std::thread::Builder::new()
            .name("wedged-tier-up".into())
            .spawn(done);
        if let Err(e) = spawned {
            eprintln!("wedged: cannot start a background compile: {e}");
            lock(&self.tiering_up).remove(&key);
        }
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

/// Loads `source` for `engine`, through `cache`, compiling as `tiering` says.
fn load(
    engine: &Engine,
    source: &AppSource,
    cache: &CodeCache,
    tiering: Tiering,
) -> Result<App, RuntimeError> {
    match &source.image {
        Some(image) => App::open_content_addressed_with(
            engine,
            &source.wasm,
            image.layer.hex(),
            Some(cache),
            tiering,
        ),
        None => App::load_with(engine, &source.wasm, Some(cache), tiering),
    }
}

/// Runs `work` with its compile threads at the lowest priority ([`BACKGROUND_NICE`]), so
/// that a background compile takes the CPU the containers leave.
fn at_low_priority<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    let pool = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("wedged-compile-{i}"))
        .start_handler(|_| lower_this_threads_priority())
        .build();
    match pool {
        Ok(pool) => pool.install(work),
        Err(_) => work(),
    }
}

/// Lowers the calling thread's priority to [`BACKGROUND_NICE`] (Linux keeps one per
/// thread).
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: changes the scheduling priority of the calling thread; no memory involved.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS as _, 0, BACKGROUND_NICE);
    }
}

/// An image's layer digest, or a file's path and stamp (its inode, size and times, so an
/// edited file is compiled again, even one whose old size and modification time were put
/// back).
fn content_key(source: &AppSource) -> Result<String, DaemonError> {
    if let Some(image) = &source.image {
        return Ok(image.layer.to_string());
    }
    let path: PathBuf = source.wasm.clone();
    let stamp = FileStamp::of(&path)
        .map_err(|e| DaemonError::NotFound(format!("cannot read `{}`: {e}", path.display())))?;
    Ok(format!("{}:{stamp:?}", path.display()))
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
