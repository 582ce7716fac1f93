//! The one error type of this crate.

/// What went wrong talking to the daemon, or checking where it listens.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The daemon cannot be reached.
    #[error("cannot connect to the wedge daemon at `{host}`: {reason} (is wedged running?)")]
    Connect {
        /// The address tried.
        host: String,
        /// Why it failed.
        reason: String,
    },
    /// The daemon answered with an error status.
    #[error("{message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The daemon's one-line message.
        message: String,
    },
    /// The daemon's answer could not be understood.
    #[error("unexpected answer from the daemon: {0}")]
    Protocol(String),
    /// A host, certificate file or other setting given is invalid.
    #[error("{0}")]
    Invalid(String),
    /// A socket or its folder is not safe to use ([`crate::local`]).
    #[error("{0}")]
    Refused(String),
    /// A file could not be read or checked.
    #[error("{0}")]
    Io(String),
}
