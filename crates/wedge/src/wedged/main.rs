//! `wedged`: the wedge container manager daemon.
//!
//! Exit codes: 0 after a clean shutdown (SIGTERM or SIGINT), 1 when it cannot start
//! (data root locked, socket in use, bad flags: 2).

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use wedge_daemon::logs::LogConfig;
use wedge_daemon::server::{self, Listeners};
use wedge_daemon::{Config, Manager, paths};
use wedge_manifest::ByteSize;

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

    /// Instance slots of the pooling allocator (0: allocate on demand)
    #[arg(long, value_name = "N", default_value_t = 1000)]
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

    /// Bridge the message bus to an MQTT broker: `mqtt://[USER@]HOST[:PORT]`, or
    /// `mqtts://` for TLS; the password from --mqtt-password-file or WEDGE_MQTT_PASSWORD
    /// (one in the URL still works, but any local user can read it)
    #[arg(long, value_name = "URL")]
    mqtt: Option<wedge_daemon::bridge::BrokerUrl>,

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

fn main() {
    let args = Args::parse();
    if let Err(e) = run(args) {
        eprintln!("wedged: {e}");
        std::process::exit(1);
    }
}

fn run(mut args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(url) = &mut args.mqtt {
        let env = std::env::var(wedge_daemon::bridge::PASSWORD_VAR).ok();
        if let Some(warning) = url.resolve_password(args.mqtt_password_file.as_deref(), env)? {
            eprintln!("wedged: warning: {warning}");
        }
    }
    let root = args.root.unwrap_or_else(paths::default_root);
    std::fs::create_dir_all(&root)
        .map_err(|e| format!("cannot create the data root `{}`: {e}", root.display()))?;
    let _lock = server::lock_root(&root)?;
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
        socket: args.socket.unwrap_or_else(paths::default_socket),
        tcp: args.listen.zip(token),
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
            wedge_daemon::bridge::start(manager.bus(), url, &client_id, args.mqtt_ca.as_deref())?;
        }
        eprintln!(
            "wedged: data root {}, listening on unix://{}{}{}",
            root.display(),
            listeners.socket.display(),
            listeners
                .tcp
                .as_ref()
                .map_or_else(String::new, |(addr, _)| format!(" and tcp://{addr}")),
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
