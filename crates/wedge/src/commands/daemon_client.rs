//! The connection to wedged for the commands that manage containers: the host from
//! `-H` / `WEDGE_HOST`, the token from `WEDGE_TOKEN`, and a single-threaded runtime to
//! drive the async client on.

use std::str::FromStr;
use wedge_daemon::{Client, Host};

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
            None => Host::Unix(wedge_daemon::paths::default_socket()),
        };
        // The token only travels over TCP; the socket's file permissions guard the rest.
        let token = match host {
            Host::Tcp(_) => std::env::var("WEDGE_TOKEN").ok().filter(|t| !t.is_empty()),
            Host::Unix(_) => None,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
        Ok(Daemon {
            runtime,
            client: Client::new(host, token),
        })
    }

    /// Runs one call (or any future) to completion.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }
}
