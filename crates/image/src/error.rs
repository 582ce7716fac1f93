//! The one error type of this crate.

use std::path::PathBuf;

/// What can go wrong with images and the store.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A reference that does not parse.
    #[error("invalid image reference `{reference}`: {reason}")]
    Reference {
        /// As written.
        reference: String,
        /// Why it is refused.
        reason: String,
    },
    /// No image by that name in the local store.
    #[error("no such image `{0}`")]
    NotFound(String),
    /// A file or folder of the store cannot be read or written.
    #[error("image store `{path}`: {error}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// Content whose digest is not what it should be.
    #[error("digest mismatch for `{expected}`: content hashes to `{actual}`")]
    DigestMismatch {
        /// The digest it was stored or announced under.
        expected: String,
        /// What the bytes hash to.
        actual: String,
    },
    /// A stored blob that no longer matches its digest (run `wedge image fsck`).
    #[error("corrupt blob `{0}` in the image store (run `wedge image fsck`)")]
    CorruptBlob(String),
    /// A manifest, config or index that does not parse or break the rules.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// Which document.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A registry operation failed.
    #[error("registry: {reference}: {reason}")]
    Registry {
        /// The image.
        reference: String,
        /// What went wrong, on one line.
        reason: String,
    },
    /// A blob whose declared size is over its limit (`--max-layer-size` for a layer).
    #[error("{what} `{digest}` is {size} bytes, over the limit of {max} bytes")]
    TooLarge {
        /// `layer` or `config`.
        what: &'static str,
        /// The blob's digest.
        digest: String,
        /// The size the manifest declares.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// An OCI image that is not a Wasm app (e.g. a Linux container image).
    #[error("`{reference}` is not a Wasm image: {reason}")]
    NotWasm {
        /// The image.
        reference: String,
        /// What it has instead.
        reason: String,
    },
}

impl ImageError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ImageError {
        let path = path.into();
        move |error| ImageError::Io { path, error }
    }

    pub(crate) fn invalid(what: &'static str, reason: impl ToString) -> ImageError {
        ImageError::Invalid {
            what,
            reason: reason.to_string(),
        }
    }
}
