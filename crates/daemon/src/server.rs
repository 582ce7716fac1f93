//! Listening: the unix socket (mode 0660) and the optional TCP listener that requires a
//! bearer token, optionally over TLS; one daemon per data root.
//!
//! The TCP listener faces the network, so it is bounded: at most
//! [`TcpLimits::max_connections`] connections at once (more wait in the kernel's
//! backlog, holding no descriptor of the daemon), request headers (and the wait for
//! them on an idle connection, and a TLS handshake) within
//! [`TcpLimits::header_timeout`], a request body within [`TcpLimits::body_timeout`].
//! The unix socket is served apart and keeps answering whatever TCP clients do.

use crate::DaemonError;
use crate::api;
use crate::manager::Manager;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::fs::File;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Where to listen.
#[derive(Debug, Clone)]
pub struct Listeners {
    /// The unix socket.
    pub socket: PathBuf,
    /// The TCP listener, if any.
    pub tcp: Option<TcpListener>,
}

/// The TCP listener's settings.
#[derive(Debug, Clone)]
pub struct TcpListener {
    /// The address to listen on.
    pub addr: SocketAddr,
    /// The bearer token every request must carry.
    pub token: String,
    /// PEM certificate chain and private key: serve HTTPS rather than plain HTTP.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Bounds on what clients may hold.
    pub limits: TcpLimits,
}

/// Bounds on the TCP listener's clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpLimits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time for a TLS handshake, and for a request's headers, counted from the moment
    /// the connection waits for them (so also how long an idle connection stays open).
    pub header_timeout: Duration,
    /// Time to receive a request's body.
    pub body_timeout: Duration,
}

/// Default of [`TcpLimits::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;
/// Default of [`TcpLimits::header_timeout`].
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of [`TcpLimits::body_timeout`].
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
        }
    }
}

/// How long to wait before accepting again after an accept failed (out of descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Takes the data root's lock, so two daemons never share a database.
pub fn lock_root(root: &Path) -> Result<File, DaemonError> {
    let path = root.join("wedged.lock");
    let file = File::create(&path)
        .map_err(|e| DaemonError::Internal(format!("cannot open `{}`: {e}", path.display())))?;
    file.try_lock().map_err(|_| {
        DaemonError::Conflict(format!(
            "another wedged already uses the data root `{}`",
            root.display()
        ))
    })?;
    Ok(file)
}

/// Serves the API until `shutdown` completes.
pub async fn serve(
    manager: Manager,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    let socket = bind_unix(&listeners.socket)?;
    let router = api::router(manager);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let wait_stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let tcp = match listeners.tcp {
        Some(config) => {
            let listener = tokio::net::TcpListener::bind(config.addr)
                .await
                .map_err(|e| {
                    DaemonError::Internal(format!("cannot listen on `{}`: {e}", config.addr))
                })?;
            let tls = match &config.tls {
                Some((cert, key)) => Some(tls_acceptor(cert, key)?),
                None => None,
            };
            // The token is checked first: no body is read for a client without it.
            let app = api::require_token(
                router.clone().layer(axum::middleware::from_fn_with_state(
                    config.limits.body_timeout,
                    api::body_deadline,
                )),
                config.token,
            );
            let rx = stop_rx.clone();
            Some(tokio::spawn(serve_tcp(
                listener,
                app,
                tls,
                config.limits,
                wait_stop(rx),
            )))
        }
        None => None,
    };
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let result = axum::serve(socket, router)
        .with_graceful_shutdown(wait_stop(stop_rx))
        .await;
    if let Some(tcp) = tcp {
        let _ = tcp.await;
    }
    let _ = std::fs::remove_file(&listeners.socket);
    result.map_err(|e| DaemonError::Internal(format!("serving the API: {e}")))
}

/// The TCP accept loop: a connection is accepted only while fewer than
/// `limits.max_connections` are open; each is served with the header timeout, behind
/// a TLS handshake when `tls` is given. Ends when `stop` completes (connections still
/// open are dropped with the runtime).
async fn serve_tcp(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: TcpLimits,
    stop: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut stop = std::pin::pin!(stop);
    loop {
        let permit = tokio::select! {
            () = &mut stop => return,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            () = &mut stop => return,
            accepted = listener.accept() => accepted,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(_) => {
                // Out of descriptors, or a connection reset before it was accepted.
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                Some(tls) => {
                    let handshake = tokio::time::timeout(limits.header_timeout, tls.accept(tcp));
                    if let Ok(Ok(stream)) = handshake.await {
                        serve_connection(stream, app, limits).await;
                    }
                }
                None => serve_connection(tcp, app, limits).await,
            }
        });
    }
}

/// Serves HTTP/1.1 on one connection until the client closes it or a timeout does.
async fn serve_connection<I>(io: I, app: Router, limits: TcpLimits)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(app))
        .await;
}

/// A rustls acceptor (HTTP/1.1) from a PEM certificate chain and private key.
fn tls_acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, DaemonError> {
    wedge_serve::tls_acceptor(cert, key, &[b"http/1.1"])
        .map_err(|e| DaemonError::BadRequest(format!("invalid {e}")))
}

/// Creates the socket's folder when missing and checks it and any socket already there
/// ([`wedge_client::local::check_socket_dir`], [`wedge_client::local::check_socket`]): done first
/// at start, and again when binding.
pub fn check_socket_path(path: &Path) -> Result<(), DaemonError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| {
        DaemonError::Internal(format!(
            "cannot create the folder of `{}`: {e}",
            path.display()
        ))
    })?;
    wedge_client::local::check_socket_dir(dir)?;
    Ok(wedge_client::local::check_socket(path)?)
}

/// Binds the socket, replacing a stale one, and sets mode 0660.
fn bind_unix(path: &Path) -> Result<tokio::net::UnixListener, DaemonError> {
    let fail = |what: &str, e: std::io::Error| {
        DaemonError::Internal(format!("cannot {what} `{}`: {e}", path.display()))
    };
    check_socket_path(path)?;
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(DaemonError::Conflict(format!(
                "a daemon is already listening on `{}`",
                path.display()
            )));
        }
        std::fs::remove_file(path).map_err(|e| fail("remove the stale socket", e))?;
    }
    let listener = tokio::net::UnixListener::bind(path).map_err(|e| fail("listen on", e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| fail("set the mode of", e))?;
    Ok(listener)
}
