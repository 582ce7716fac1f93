//! The bridge's one error type.

/// Why the bridge cannot start.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The broker URL or password is unusable.
    #[error("{0}")]
    Config(String),
    /// The TLS settings (the CA file) are unusable.
    #[error(transparent)]
    Tls(#[from] wedge_client::ClientError),
}
