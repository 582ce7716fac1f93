//! Wasm apps as OCI images.
//!
//! - [`artifact`]: the CNCF TAG-Runtime Wasm OCI artifact layout — one `application/wasm`
//!   layer, an `application/vnd.wasm.config.v0+json` config, and wedge's *requested*
//!   grants in `dev.wedge.*` manifest annotations ([`Requested`]).
//! - [`ImageStore`]: the local store, an OCI image-layout directory (`oci-layout`,
//!   `index.json`, `blobs/sha256/…`) that other OCI tools can read. Blobs are
//!   content-addressed and written by temp file, fsync, digest check and rename;
//!   `index.json` is replaced atomically; [`ImageStore::fsck`] finds and quarantines
//!   corrupt blobs.

pub mod archive;
pub mod artifact;
pub mod credentials;
mod digest;
mod error;
pub mod registry;
mod requested;
mod store;

pub use digest::Digest;
pub use error::ImageError;
pub use oci_client::Reference;
pub use requested::Requested;
pub use store::{FsckReport, ImageStore, StoredImage};

/// Parses an image reference the way Docker does (`logger:1.2` is
/// `docker.io/library/logger:1.2`; no tag means `latest`).
pub fn parse_reference(s: &str) -> Result<Reference, ImageError> {
    let bad = |reason: String| ImageError::Reference {
        reference: s.to_string(),
        reason,
    };
    let reference = s.parse::<Reference>().map_err(|e| bad(e.to_string()))?;
    // The distribution spec's repository grammar: lowercase components joined by `/`,
    // each made of alphanumerics separated by `.`, `_`, `__` or dashes.
    let valid_component = |c: &str| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
            && c.ends_with(|ch: char| ch.is_ascii_alphanumeric())
    };
    if !reference.repository().split('/').all(valid_component) {
        return Err(bad(
            "repository names are lowercase letters, digits and `._-` separators".into(),
        ));
    }
    Ok(reference)
}

#[cfg(test)]
mod tests {
    #[test]
    fn references_follow_docker_normalization_and_grammar() {
        let r = super::parse_reference("logger:1.2").unwrap();
        assert_eq!(r.whole(), "docker.io/library/logger:1.2");
        let r = super::parse_reference("localhost:5000/sensors/logger").unwrap();
        assert_eq!(r.whole(), "localhost:5000/sensors/logger:latest");
        for bad in ["UPPER/case:1", "a//b", "-lead/x", "x:", "::"] {
            assert!(
                super::parse_reference(bad).is_err(),
                "{bad} should be refused"
            );
        }
    }
}
