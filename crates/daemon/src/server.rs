//! Listening: the unix socket (mode 0660) and the optional TCP listener that requires a
//! bearer token; one daemon per data root.

use crate::DaemonError;
use crate::api;
use crate::manager::Manager;
use std::fs::File;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Where to listen.
#[derive(Debug, Clone)]
pub struct Listeners {
    /// The unix socket.
    pub socket: PathBuf,
    /// A TCP address, with the token every request must carry.
    pub tcp: Option<(SocketAddr, String)>,
}

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
        Some((addr, token)) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| DaemonError::Internal(format!("cannot listen on `{addr}`: {e}")))?;
            let app = api::require_token(router.clone(), token);
            let rx = stop_rx.clone();
            Some(tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(wait_stop(rx))
                    .await
            }))
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

/// Binds the socket, replacing a stale one, and sets mode 0660.
fn bind_unix(path: &Path) -> Result<tokio::net::UnixListener, DaemonError> {
    let fail = |what: &str, e: std::io::Error| {
        DaemonError::Internal(format!("cannot {what} `{}`: {e}", path.display()))
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| fail("create the folder of", e))?;
    }
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
