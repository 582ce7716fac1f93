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
//! - [`precompiled`]: code compiled ahead of time for a device's target and engine,
//!   attached to an image as OCI referrers of its manifest.

pub mod app_source;
pub mod archive;
pub mod artifact;
pub mod container_image;
pub mod credentials;
mod digest;
mod error;
pub mod precompiled;
pub mod registry;
mod requested;
mod store;
mod wasm_config;

pub use digest::Digest;
pub use error::ImageError;
pub use oci_client::Reference;
pub use requested::{Requested, RequestedNn};
pub use store::{FsckReport, ImageStore, StoredImage, WriteGuard};

/// Parses an image reference the way Docker does (`logger:1.2` is
/// `docker.io/library/logger:1.2`; no tag and no digest means `latest`), following the
/// distribution spec's grammar. Hand-written rather than the regex-based parser of
/// `oci-spec`, whose one-time regex compilation costs ~30 ms in every `wedge run IMAGE`.
pub fn parse_reference(s: &str) -> Result<Reference, ImageError> {
    let bad = |reason: &str| ImageError::Reference {
        reference: s.to_string(),
        reason: reason.to_string(),
    };
    let (name_tag, digest) = match s.split_once('@') {
        Some((n, d)) => (
            n,
            Some(
                d.parse::<Digest>()
                    .map_err(|_| bad("the digest must be `sha256:` and 64 hex digits"))?,
            ),
        ),
        None => (s, None),
    };
    let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name_tag[last_slash..].rfind(':') {
        Some(i) => (
            &name_tag[..last_slash + i],
            Some(&name_tag[last_slash + i + 1..]),
        ),
        None => (name_tag, None),
    };
    if let Some(tag) = tag {
        let valid = (1..=128).contains(&tag.len())
            && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !valid {
            return Err(bad("a tag is 1 to 128 letters, digits, `_`, `.` and `-`"));
        }
    }
    let (mut registry, mut repository) = match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            (first.to_string(), rest.to_string())
        }
        _ => ("docker.io".to_string(), name.to_string()),
    };
    let valid_registry = !registry.is_empty()
        && registry
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        && !registry.starts_with(['.', '-', ':']);
    if !valid_registry {
        return Err(bad("invalid registry host"));
    }
    // Repository: lowercase components joined by `/`, each alphanumerics separated by
    // `.`, `_`, `__` or dashes.
    let valid_component = |c: &str| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
            && c.ends_with(|ch: char| ch.is_ascii_alphanumeric())
    };
    if !repository.split('/').all(valid_component) {
        return Err(bad(
            "repository names are lowercase letters, digits and `._-` separators",
        ));
    }
    if registry == "index.docker.io" {
        registry = "docker.io".into();
    }
    if registry == "docker.io" && !repository.contains('/') {
        repository = format!("library/{repository}");
    }
    if registry.len() + repository.len() > 255 {
        return Err(bad("name longer than 255 characters"));
    }
    Ok(match (tag, digest) {
        (Some(tag), Some(digest)) => {
            Reference::with_tag_and_digest(registry, repository, tag.into(), digest.to_string())
        }
        (None, Some(digest)) => Reference::with_digest(registry, repository, digest.to_string()),
        (tag, None) => Reference::with_tag(registry, repository, tag.unwrap_or("latest").into()),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn references_follow_docker_normalization_and_grammar() {
        let r = super::parse_reference("logger:1.2").unwrap();
        assert_eq!(r.whole(), "docker.io/library/logger:1.2");
        let r = super::parse_reference("localhost:5000/sensors/logger").unwrap();
        assert_eq!(r.whole(), "localhost:5000/sensors/logger:latest");
        assert!(super::parse_reference("127.0.0.1:5000/a/b@sha256:").is_err());
        let digest = format!("sha256:{}", "a".repeat(64));
        let r = super::parse_reference(&format!("127.0.0.1:5000/a/b@{digest}")).unwrap();
        assert_eq!(r.whole(), format!("127.0.0.1:5000/a/b@{digest}"));
        assert_eq!(r.tag(), None);
        let r = super::parse_reference("index.docker.io/x:v1.2-rc_3").unwrap();
        assert_eq!(r.whole(), "docker.io/library/x:v1.2-rc_3");
        for bad in [
            "UPPER/case:1",
            "a//b",
            "-lead/x",
            "x:",
            "::",
            "",
            "a:b:c",
            "a@md5:00",
            "x:-tag",
        ] {
            assert!(
                super::parse_reference(bad).is_err(),
                "{bad} should be refused"
            );
        }
    }
}
