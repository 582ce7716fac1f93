//! The one error type of this crate.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why a server could not start or keep running. Failed requests are not errors: they
/// are answered, logged and counted.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listen address cannot be bound.
    #[error("cannot listen on `{addr}`: {error}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        error: std::io::Error,
    },
    /// A TLS certificate or key file cannot be read or used.
    #[error("TLS: `{path}`: {message}")]
    Tls {
        /// The certificate or key file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A setting out of range.
    #[error("{0}")]
    Config(String),
    /// Accepting connections failed for good.
    #[error("accepting connections failed: {0}")]
    Accept(std::io::Error),
}
