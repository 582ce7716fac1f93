//! The process that runs one container, a child of the shim (the shim's own binary,
//! re-executed with a mode word). containerd's CRI plugin reads a task's pid when it
//! is created and points the pod's other containers at `/proc/<pid>/ns/*`, so the
//! process exists from `create` on and waits for `start` on a FIFO in the bundle:
//!
//! - [`APP_MODE`]: joins the pod's namespaces, loads and compiles the app, waits for
//!   `start`, then runs it on wedge's runtime. SIGTERM asks the app to stop (its
//!   `wedge_stop` export, as `wedge stop` does in the daemon); SIGKILL ends it. A
//!   `wasi:http/proxy` component is served instead, with wedge's HTTP server, on the
//!   container's listen address; SIGTERM drains it.
//! - [`SANDBOX_MODE`]: a pod's sandbox ("pause") container: holds the pod's
//!   namespaces and waits for SIGTERM or SIGKILL.

use crate::error::ShimError;
use crate::launch::Broker;
use crate::{cgroup, launch, namespaces};
use oci_spec::runtime::Spec;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wedge_bridge::Bridge;
use wedge_runtime::{
    App, BusLimits, CodeCache, Control, EngineOptions, HostServices, HttpApp, KvStore, MessageBus,
    NnModels, Policy, Prepared, RequestLimits, SharedOutput, Stdio, Tiering,
};
use wedge_serve::{AccessLog, DEFAULT_MAX_BODY, HttpMetrics, ServeConfig, Server};

/// The mode word of a process running an app.
pub const APP_MODE: &str = "wedge-app";
/// The mode word of a pod's sandbox process.
pub const SANDBOX_MODE: &str = "wedge-sandbox";
/// The FIFO in the bundle that `start` opens to let the app run.
pub const START_FIFO: &str = "wedge-start";

/// Where the shim keeps what outlives a container (the code cache): `$WEDGE_SHIM_ROOT`,
/// else `/var/lib/wedge-shim`.
pub fn state_root() -> PathBuf {
    std::env::var_os("WEDGE_SHIM_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/wedge-shim"))
}

/// Runs the process of `mode` for `bundle` and returns its exit status.
pub fn main(mode: &str, bundle: &Path) -> i32 {
    let result = launch::read_spec(bundle).and_then(|spec| {
        cgroup::join(&spec)?;
        match mode {
            SANDBOX_MODE => hold_sandbox(&spec),
            _ => run_app(bundle, &spec),
        }
    });
    result.unwrap_or_else(|e| {
        eprintln!("wedge: {e}");
        1
    })
}

fn hold_sandbox(spec: &Spec) -> Result<i32, ShimError> {
    namespaces::enter(spec, true)?;
    // SAFETY: a signal set on the stack, filled and used by the calls below only.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let mut signal = 0;
        libc::sigwait(&set, &mut signal);
    }
    Ok(0)
}

fn run_app(bundle: &Path, spec: &Spec) -> Result<i32, ShimError> {
    // Kept to reach the node's MQTT broker from the node's network, not the pod's.
    let node_net = std::fs::File::open("/proc/self/ns/net")
        .map_err(|e| ShimError::Host(format!("the node's network namespace: {e}")))?;
    namespaces::enter(spec, false)?;
    let launch = launch::resolve(bundle, spec)?;
    // One store per node, shared by its containers (SQLite, safe across processes).
    let keyvalue = || KvStore::open(&state_root().join("keyvalue.db"));
    // The container's own bus, bridged to the node's broker when it may use messaging.
    let bus = MessageBus::new(BusLimits::default());
    let host = HostServices {
        keyvalue: &keyvalue,
        bus: &|| bus.clone(),
        nn_models: &NnModels::default(),
    };
    let http_config = ServeConfig {
        listen: launch.listen,
        ..ServeConfig::default()
    };
    let cache = CodeCache::new(state_root().join("code-cache"));
    let options = EngineOptions {
        fuel: launch.grants.limits.fuel.is_some(),
        ..EngineOptions::default()
    };
    let mut app = App::open(options.clone(), &launch.wasm, Some(&cache), Tiering::Off)?;
    let serves_http = app.serves_http();
    if serves_http {
        // A server's instances come from a pool sized for its concurrency, as in
        // `wedge serve`: load it again (from the code cache) on a pooling engine.
        let pool = u32::try_from(http_config.max_concurrency)
            .unwrap_or(u32::MAX)
            .saturating_add(POOL_SLACK);
        let pooling = EngineOptions {
            pooling: Some(pool),
            ..options
        };
        app = App::open(pooling, &launch.wasm, Some(&cache), Tiering::Off)?;
    }
    let mut grants = launch.grants;
    let held = resident_bytes()?.max(cgroup::memory_usage(spec).unwrap_or(0));
    launch::cap_memory(&mut grants, launch.memory_limit, held);
    let policy = Policy::grant(&grants, launch.args, &launch.kv_namespace, &host)?;
    // The granted models are loaded: the files they were read through may close.
    drop(launch.models);
    let work = if serves_http {
        let http = HttpApp::new(
            &app,
            policy,
            SharedOutput::Inherit,
            RequestLimits::new(DEFAULT_MAX_BODY),
        )?;
        Work::Serve(http, http_config)
    } else {
        Work::Run(Prepared::new(&app)?, policy)
    };
    wait_for_start(bundle)?;
    // One thread, as `wedge serve` by default: a multi-threaded runtime pays for
    // every instance's `madvise` with TLB shootdowns on the other cores.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ShimError::Host(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let bridge = match &launch.broker {
            Some(broker) => Some(start_bridge(node_net, bus, broker)?),
            None => None,
        };
        let status = match work {
            Work::Serve(http, config) => serve(http, config).await,
            Work::Run(prepared, policy) => run(prepared, policy).await,
        };
        if let Some(bridge) = bridge {
            bridge.flush(BRIDGE_FLUSH).await;
        }
        status
    })
}

/// How long a container's last messages may take to reach the broker after its app
/// ends.
const BRIDGE_FLUSH: std::time::Duration = std::time::Duration::from_secs(5);

/// Starts the MQTT bridge of `bus` on a thread of its own that returns to the node's
/// network namespace (`node_net`) first: the broker is the node's, reached (and its
/// name resolved) from the node's network, where no pod can stand in for it and
/// collect its credentials.
fn start_bridge(
    node_net: std::fs::File,
    bus: MessageBus,
    broker: &Broker,
) -> Result<Bridge, ShimError> {
    use std::os::fd::AsRawFd;
    let (url, client_id) = (broker.url.clone(), broker.client_id.clone());
    let (ca, prefix) = (broker.ca.clone(), broker.prefix.clone());
    let (started, result) = std::sync::mpsc::channel();
    let thread = move || {
        // SAFETY: `node_net` is an open namespace descriptor; setns moves only this
        // thread.
        if unsafe { libc::setns(node_net.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            let e = std::io::Error::last_os_error();
            let _ = started.send(Err(ShimError::Host(format!(
                "cannot reach the node's network for the MQTT bridge: {e}"
            ))));
            return;
        }
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                let _ = started.send(Err(ShimError::Host(format!("MQTT bridge: {e}"))));
                return;
            }
        };
        runtime.block_on(async move {
            let bridge = wedge_bridge::start(bus, &url, &client_id, ca.as_deref(), &prefix)
                .map_err(|e| ShimError::Host(e.to_string()));
            let running = bridge.is_ok();
            let _ = started.send(bridge);
            if running {
                std::future::pending::<()>().await;
            }
        });
    };
    std::thread::Builder::new()
        .name("mqtt-bridge".into())
        .spawn(thread)
        .map_err(|e| ShimError::Host(format!("cannot start the MQTT bridge: {e}")))?;
    result
        .recv()
        .map_err(|_| ShimError::Host("the MQTT bridge did not start".into()))?
}

/// What a container's process does once started.
enum Work {
    /// Serve an HTTP component.
    Serve(HttpApp, ServeConfig),
    /// Run a command (a module, or a component's `wasi:cli/run`).
    Run(Prepared, Policy),
}

/// Runs the app to its end; SIGTERM asks it to stop. Returns its exit status.
async fn run(prepared: Prepared, policy: Policy) -> Result<i32, ShimError> {
    let control = Control::new();
    let stopper = control.clone();
    tokio::spawn(async move {
        terminated().await;
        stopper.request_stop();
    });
    let outcome = prepared
        .run_controlled(&policy, Stdio::Inherit, &control)
        .await?;
    if let Some(text) = outcome.diagnostic() {
        eprintln!("{text}");
    }
    Ok(outcome.exit_code())
}

/// Instances kept in a server's pool beyond its concurrency: requests whose response
/// was sent but whose instance is still finishing (as `wedge serve`).
const POOL_SLACK: u32 = 16;

/// Serves a `wasi:http/proxy` component with wedge's HTTP server (its queue,
/// connection and header limits, and the policy's per-request limits) until SIGTERM,
/// then drains: in-flight requests get the grace period.
async fn serve(app: HttpApp, config: ServeConfig) -> Result<i32, ShimError> {
    let server = Server::bind(
        Arc::new(app),
        config,
        AccessLog::off(),
        Arc::new(HttpMetrics::default()),
        Control::new(),
    )
    .await
    .map_err(|e| ShimError::Host(e.to_string()))?;
    eprintln!("wedge: serving on http://{}/", server.local_addr());
    server
        .run(terminated())
        .await
        .map_err(|e| ShimError::Host(e.to_string()))?;
    Ok(0)
}

/// Resolves on SIGTERM (never, if the handler cannot be installed).
async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            term.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

/// The process's resident memory, from `/proc/self/statm`.
fn resident_bytes() -> Result<u64, ShimError> {
    let statm = std::fs::read_to_string("/proc/self/statm")
        .map_err(|e| ShimError::Host(format!("/proc/self/statm: {e}")))?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| ShimError::Host(format!("/proc/self/statm: `{statm}`")))?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Ok(pages * page.max(4096) as u64)
}

/// Blocks until the shim opens the bundle's start FIFO and closes it (`start`).
fn wait_for_start(bundle: &Path) -> Result<(), ShimError> {
    let path = bundle.join(START_FIFO);
    let mut fifo = std::fs::File::open(&path)
        .map_err(|e| ShimError::Host(format!("start FIFO `{}`: {e}", path.display())))?;
    let mut byte = [0u8; 1];
    let read = fifo
        .read(&mut byte)
        .map_err(|e| ShimError::Host(format!("start FIFO `{}`: {e}", path.display())))?;
    if read == 0 {
        return Err(ShimError::Host("the shim went away before `start`".into()));
    }
    Ok(())
}
