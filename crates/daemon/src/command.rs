//! The `wedged` command line: the `wedged` binary, and the `wedge` binary of a device
//! build called as `wedged` (one binary for both, `--features multicall`).
//!
//! Exit codes: 0 after a clean shutdown (SIGTERM or SIGINT), 1 when it cannot start
//! (data root locked, socket in use, bad flags: 2).

use crate::logs::LogConfig;
use crate::server::{self, Listeners, TcpLimits};
use crate::{Config, Manager, paths, perms};
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use wedge_manifest::{ByteSize, DurationSpec};

/// wedged: runs and supervises Wasm containers; the `wedge` CLI talks to it.
#[derive(Debug, Parser)]
#[command(name = "wedged", version)]
struct Args {
    /// Data root: state database, images, code cache, logs [default: /var/lib/wedge as root, else $XDG_DATA_HOME/wedge]
    #[arg(long, env = "WEDGE_ROOT", value_name = "DIR")]
    root: Option<PathBuf>,

    /// The API's unix socket [default: /run/wedge/wedged.sock as root, else $XDG_RUNTIME_DIR/wedge/wedged.sock]
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,

    /// Also serve the API on this TCP address (needs --token-file)
    #[arg(long, value_name = "ADDR", requires = "token_file")]
    listen: Option<SocketAddr>,

    /// File holding the bearer token that TCP clients must send
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,

    /// Serve the TCP listener over TLS with this PEM certificate chain (needs --tls-key)
    #[arg(long, value_name = "FILE", requires_all = ["tls_key", "listen"])]
    tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// TCP connections served at once (more wait in the kernel's backlog)
    #[arg(long, value_name = "N", default_value_t = server::DEFAULT_MAX_CONNECTIONS)]
    api_max_connections: usize,

    /// Time a TCP client has for a TLS handshake and a request's headers, counted from
    /// when the connection waits for them (so an idle connection is closed after it)
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    api_header_timeout: DurationSpec,

    /// Time a TCP client has to send a request's body
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    api_body_timeout: DurationSpec,

    /// Instance slots of the pooling allocator (0: allocate on demand). Each reserves
    /// address space up front; small devices and emulators do better with fewer
    #[arg(
        long,
        env = "WEDGED_POOL_SIZE",
        value_name = "N",
        default_value_t = 1000
    )]
    pool_size: u32,

    /// Rotate a container's log file at this size
    #[arg(long, value_name = "SIZE", default_value = "10MiB")]
    log_max_size: ByteSize,

    /// Log files kept per container (the live one included)
    #[arg(long, value_name = "N", default_value_t = 3)]
    log_max_files: u32,

    /// Messages each messaging subscription queues before its overflow policy applies
    #[arg(long, value_name = "N", default_value_t = wedge_runtime::DEFAULT_QUEUE)]
    queue_size: usize,

    /// Bytes (topics and payloads) each messaging subscription queues before its
    /// overflow policy applies
    #[arg(long, value_name = "SIZE", default_value = "8MiB")]
    queue_bytes: ByteSize,

    /// Bytes all subscription queues hold together; past it, a queue gives up its own
    /// messages as its overflow policy says
    #[arg(long, value_name = "SIZE", default_value = "64MiB")]
    bus_bytes: ByteSize,

    /// What a full subscription queue gives up: `drop-oldest` or `drop-newest`
    #[arg(long, value_name = "POLICY", default_value = "drop-oldest")]
    queue_overflow: wedge_runtime::Overflow,

    /// Largest Wasm layer a pull accepts; an image declaring a larger one is refused
    /// before it is downloaded
    #[arg(long, value_name = "SIZE", default_value_t = ByteSize(wedge_image::registry::DEFAULT_MAX_LAYER_SIZE))]
    max_layer_size: ByteSize,

    /// Run the code precompiled for this machine that pulled images carry (`wedge push
    /// --precompile`) instead of compiling their Wasm. That code is native code: use it
    /// only from registries whose pushers you trust as much as this machine's software
    #[arg(long, env = "WEDGE_USE_PRECOMPILED")]
    use_precompiled: bool,

    /// Bridge the message bus to an MQTT broker: `mqtt://[USER@]HOST[:PORT]`, or
    /// `mqtts://` for TLS; the password from --mqtt-password-file or WEDGE_MQTT_PASSWORD
    /// (one in the URL still works, but any local user can read it)
    #[arg(long, value_name = "URL")]
    mqtt: Option<wedge_bridge::BrokerUrl>,

    /// File whose first line is the broker password (instead of one in the URL)
    #[arg(long, value_name = "FILE", requires = "mqtt")]
    mqtt_password_file: Option<PathBuf>,

    /// The bridge's MQTT client id, which keeps its session on the broker
    /// [default: wedged-HOSTNAME]
    #[arg(long, value_name = "ID", requires = "mqtt")]
    mqtt_client_id: Option<String>,

    /// PEM certificates to trust for an `mqtts://` broker [default: the public web roots]
    #[arg(long, value_name = "FILE", requires = "mqtt")]
    mqtt_ca: Option<PathBuf>,
}

/// Runs the daemon with the process's arguments until it is told to stop; exits the
/// process when it cannot start.
pub fn main() {
    crate::resident::map_code_on_demand();
    let args = Args::parse();
    if let Err(e) = run(args) {
        eprintln!("wedged: {e}");
        std::process::exit(1);
    }
}

fn run(mut args: Args) -> Result<(), Box<dyn std::error::Error>> {
    // Everything wedged writes (database, logs, key-value store, images, code, the
    // socket's folder) is private to its user; the guests' files in volumes too.
    perms::private_umask();
    let socket = args.socket.take().unwrap_or_else(paths::default_socket);
    server::check_socket_path(&socket)?;
    if let Some(url) = &mut args.mqtt {
        let env = std::env::var(wedge_bridge::PASSWORD_VAR).ok();
        if let Some(warning) = url.resolve_password(args.mqtt_password_file.as_deref(), env)? {
            eprintln!("wedged: warning: {warning}");
        }
    }
    let root = args.root.unwrap_or_else(paths::default_root);
    wedge_client::local::create_private_root(&root)
        .map_err(|e| format!("cannot create the data root `{}`: {e}", root.display()))?;
    let _lock = server::lock_root(&root)?;
    let fixed = perms::make_root_private(&root)?;
    if fixed > 0 {
        eprintln!(
            "wedged: made {fixed} files and folders under `{}` private to their owner",
            root.display()
        );
    }
    let open_files = perms::raise_open_files_limit()
        .map_err(|e| format!("cannot raise the open files limit: {e}"))?;
    let token = match &args.token_file {
        Some(path) => {
            let token = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the token file `{}`: {e}", path.display()))?
                .trim()
                .to_string();
            if token.len() < 16 {
                return Err(format!(
                    "the token in `{}` is too short (16 characters at least)",
                    path.display()
                )
                .into());
            }
            Some(token)
        }
        None => None,
    };
    let listeners = Listeners {
        socket,
        tcp: args
            .listen
            .zip(token)
            .map(|(addr, token)| server::TcpListener {
                addr,
                token,
                tls: args.tls_cert.clone().zip(args.tls_key.clone()),
                limits: TcpLimits {
                    max_connections: args.api_max_connections.max(1),
                    header_timeout: args.api_header_timeout.0,
                    body_timeout: args.api_body_timeout.0,
                },
            }),
    };
    let config = Config {
        root: root.clone(),
        pool_size: Some(args.pool_size).filter(|&n| n > 0),
        log: LogConfig {
            max_size: args.log_max_size.0,
            max_files: args.log_max_files.max(1),
        },
        queue: wedge_runtime::BusLimits {
            messages: args.queue_size.max(1),
            queue_bytes: args.queue_bytes.0,
            bus_bytes: args.bus_bytes.0,
            overflow: args.queue_overflow,
        },
        max_layer_size: args.max_layer_size.0,
        use_precompiled: args.use_precompiled,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async move {
        let manager = Manager::open(config).await?;
        if let Some(url) = &args.mqtt {
            let client_id = args.mqtt_client_id.clone().unwrap_or_else(|| {
                let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
                format!("wedged-{}", host.trim())
            });
            wedge_bridge::start(manager.bus(), url, &client_id, args.mqtt_ca.as_deref(), "")?;
        }
        eprintln!(
            "wedged: data root {}, listening on unix://{}{}{}, {open_files} open files at most",
            root.display(),
            listeners.socket.display(),
            listeners.tcp.as_ref().map_or_else(String::new, |t| format!(
                " and {}://{}",
                if t.tls.is_some() { "https" } else { "tcp" },
                t.addr
            )),
            manager.pool_size().map_or_else(
                || ", on-demand allocation".into(),
                |n| format!(", pool of {n} instances")
            ),
        );
        server::serve(manager, listeners, shutdown_signal()).await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    // Running guests are not waited for: the database shows them running, and the next
    // start treats them as ended by the daemon's death.
    runtime.shutdown_background();
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    eprintln!("wedged: shutting down");
}
