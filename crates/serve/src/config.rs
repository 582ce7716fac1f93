//! What a server is told: where to listen, how much to take on, TLS and shutdown.

use crate::ServeError;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The address `wedge serve` listens on when none is given: loopback, so nothing is
/// exposed by accident.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Largest request body an HTTP app accepts unless told otherwise.
pub const DEFAULT_MAX_BODY: u64 = 10 << 20;

/// Smallest header cap hyper accepts for HTTP/1.
const MIN_HEADER_SIZE: usize = 8 << 10;

/// Server settings. Per-request limits (timeout, memory, fuel, body size) belong to the
/// [`wedge_runtime::HttpApp`].
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Requests handled at once; more wait in the queue.
    pub max_concurrency: usize,
    /// Requests that may wait for a free slot; beyond them requests get 503.
    pub queue: usize,
    /// How long a request may wait in the queue before it gets 503.
    pub queue_timeout: Duration,
    /// Cap on a request's header section (request line and headers); above it 431.
    pub max_header_size: usize,
    /// Connections open at once; more wait in the kernel's accept backlog.
    pub max_connections: usize,
    /// Certificate chain and private key (PEM) to serve HTTPS instead of HTTP.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// On shutdown, how long in-flight requests may take before they are cut off.
    pub grace: Duration,
    /// Set `SO_REUSEPORT`, so several servers (processes) can share the address.
    pub reuse_port: bool,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: DEFAULT_LISTEN.parse().expect("valid default address"),
            max_concurrency: 256,
            queue: 1024,
            queue_timeout: Duration::from_secs(10),
            max_header_size: 16 << 10,
            max_connections: 10_000,
            tls: None,
            grace: Duration::from_secs(10),
            reuse_port: false,
        }
    }
}

impl ServeConfig {
    /// Checks the settings hyper and the semaphores depend on.
    pub fn validate(&self) -> Result<(), ServeError> {
        if self.max_concurrency == 0 || self.max_connections == 0 {
            return Err(ServeError::Config(
                "`--max-concurrency` and `--max-connections` must be at least 1".into(),
            ));
        }
        if self.max_header_size < MIN_HEADER_SIZE {
            return Err(ServeError::Config(format!(
                "`--max-header-size` must be at least {} bytes",
                MIN_HEADER_SIZE
            )));
        }
        Ok(())
    }
}
