//! The shim's one error type.

/// What can go wrong between containerd's request and a running Wasm app.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// The bundle's OCI spec cannot be read or asks for what wedge cannot give.
    #[error("{0}")]
    Spec(String),
    /// The `wedge.io/grants` annotation is malformed or asks for a grant the shim
    /// does not offer.
    #[error("annotation `{annotation}`: {message}")]
    Annotation {
        /// The annotation's key.
        annotation: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A host operation failed (a namespace, a FIFO, a process).
    #[error("{0}")]
    Host(String),
    /// The runtime refused the app or its grants.
    #[error(transparent)]
    Runtime(#[from] wedge_runtime::RuntimeError),
}
