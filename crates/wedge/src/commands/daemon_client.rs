//! The connection to wedged for the commands that manage containers: the host from
//! `-H` / `WEDGE_HOST`, the token from `WEDGE_TOKEN`, and a single-threaded runtime to
//! drive the async client on.

use std::path::PathBuf;
use std::str::FromStr;
use wedge_client::{Client, Host};

/// `--tls-ca` / `WEDGE_TLS_CA`, set once from the command line.
static TLS_CA: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();

/// Records `--tls-ca` for the daemon clients made later.
pub fn set_tls_ca(ca: Option<PathBuf>) {
    let _ = TLS_CA.set(ca);
}

/// A client for the daemon and the runtime its calls run on.
pub struct Daemon {
    runtime: tokio::runtime::Runtime,
    /// The API client.
    pub client: Client,
}

impl Daemon {
    /// A client for `host` (`-H`), or for the default socket when none is given. Nothing
    /// is sent until the first call.
    pub fn new(host: Option<&str>) -> anyhow::Result<Daemon> {
        let host = match host.filter(|h| !h.is_empty()) {
            Some(h) => Host::from_str(h)?,
            None => Host::Unix(checked_default_socket()?),
        };
        // The token only travels over TCP; the socket's file permissions guard the rest.
        let token = match host {
            Host::Tcp(_) | Host::Tls(_) => {
                std::env::var("WEDGE_TOKEN").ok().filter(|t| !t.is_empty())
            }
            Host::Unix(_) => None,
        };
        let mut client = Client::new(host, token);
        if let (Some(ca), false) = (TLS_CA.get().and_then(Option::as_deref), client.is_unix()) {
            client = client.with_tls_ca(ca)?;
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
        Ok(Daemon { runtime, client })
    }

    /// Runs one call (or any future) to completion.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }
}

/// The default socket, after checking that its folder and the socket are this user's
/// (or root's): in a shared place such as `/tmp`, another user could have made them to
/// catch what clients send.
fn checked_default_socket() -> anyhow::Result<PathBuf> {
    let socket = wedge_client::paths::default_socket();
    if let Some(dir) = socket.parent().filter(|d| d.exists()) {
        wedge_client::local::check_socket_dir(dir)?;
        wedge_client::local::check_socket(&socket)?;
    }
    Ok(socket)
}
