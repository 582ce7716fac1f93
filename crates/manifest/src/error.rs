//! The one error type of this crate.

/// An invalid manifest or grant value. Messages are lowercase, without a trailing period,
/// and quote the offending value in backticks.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    /// A value (size, duration, volume, address …) that does not parse.
    #[error("invalid {what} `{value}`: {reason}")]
    InvalidValue {
        /// What kind of value it is, e.g. `volume`.
        what: &'static str,
        /// The value as written.
        value: String,
        /// Why it is rejected.
        reason: String,
    },
    /// A manifest that is not valid TOML or does not follow the schema.
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        /// The manifest file (or `<string>`).
        path: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What is wrong there.
        message: String,
    },
    /// The manifest file cannot be read.
    #[error("cannot read `{path}`: {source}")]
    Read {
        /// The manifest file.
        path: String,
        /// The I/O error, as text.
        source: IoMessage,
    },
}

/// An I/O error kept as its message, so [`ManifestError`] stays `PartialEq` for tests.
#[derive(Debug, PartialEq, Eq)]
pub struct IoMessage(pub String);

impl std::fmt::Display for IoMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for IoMessage {}

impl ManifestError {
    pub(crate) fn invalid(what: &'static str, value: &str, reason: impl Into<String>) -> Self {
        ManifestError::InvalidValue {
            what,
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}
