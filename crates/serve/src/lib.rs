//! `wedge serve`: an HTTP server for `wasi:http/proxy` apps, each request handled in a
//! fresh instance by [`wedge_runtime::HttpApp`].
//!
//! What this crate adds around the runtime is what production needs and `wasmtime serve`
//! lacks: load shedding (a concurrency cap with a bounded queue; beyond it 503 with
//! `Retry-After`), header and body caps (431, 413), HTTP/1.1 keep-alive and HTTP/2 (h2c
//! and ALPN), TLS with rustls, a graceful drain on shutdown, one access-log line per
//! request and Prometheus metrics. The CLI's `wedge serve` and the daemon's HTTP
//! containers both run a [`Server`]. Without the `server` feature (a device build) the
//! crate holds only what the daemon's API shares with the server: settings, TLS,
//! metrics.

mod access_log;
mod config;
mod error;
#[cfg(feature = "server")]
mod exchange;
mod metrics;
#[cfg(feature = "server")]
mod server;
mod tls;

pub use access_log::AccessLog;
pub use config::{DEFAULT_LISTEN, DEFAULT_MAX_BODY, ServeConfig};
pub use error::ServeError;
pub use metrics::{Histogram, HttpMetrics, serve_metrics};
#[cfg(feature = "server")]
pub use server::Server;
pub use tls::acceptor as tls_acceptor;
