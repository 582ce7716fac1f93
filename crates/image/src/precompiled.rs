//! Precompiled code attached to a Wasm image, so that a device runs an app without
//! compiling it.
//!
//! The portable Wasm stays the image and the source of truth. Code compiled from its
//! layer for one target and engine is an OCI 1.1 *referrer* of the image manifest: an
//! artifact manifest of type [`ARTIFACT_TYPE`] whose `subject` is the image manifest and
//! whose one layer ([`CODE_MEDIA_TYPE`]) is the code, annotated with its [`CodeKey`]
//! ([`TARGET_ANNOTATION`], [`SETTINGS_ANNOTATION`]) and the digest of the Wasm layer it
//! was compiled from ([`WASM_ANNOTATION`]). Registries list an image's referrers through
//! the referrers API or, where they have none (Debian's registry 2.8), under the tag
//! `sha256-<hex>` of the referrers tag schema, which the pusher maintains. Attaching
//! code never changes the image's digest, so `name@sha256:…` references get it too.
//!
//! A device checks a chain of digests before it keeps any code: the referrer manifest
//! against the digest the list gives, its `subject` against the image it pulled, its
//! Wasm annotation against that image's layer, the code against its descriptor.

use crate::store::MANIFEST_MEDIA_TYPE;
use crate::{Digest, ImageError};
use oci_client::manifest::{OciDescriptor, OciImageIndex, OciImageManifest};
use std::collections::BTreeMap;
use std::fmt;

/// The `artifactType` of a manifest carrying precompiled code.
pub const ARTIFACT_TYPE: &str = "application/vnd.wedge.precompiled.v1";
/// The media type of its one layer, the code (wasmtime's serialized code).
pub const CODE_MEDIA_TYPE: &str = "application/vnd.wedge.precompiled.code.v1";
/// The annotation naming the code's target (`aarch64-linux`, `pulley32`).
pub const TARGET_ANNOTATION: &str = "dev.wedge.precompiled.target";
/// The annotation naming the engine settings the code needs.
pub const SETTINGS_ANNOTATION: &str = "dev.wedge.precompiled.settings";
/// The annotation giving the digest of the Wasm layer the code was compiled from.
pub const WASM_ANNOTATION: &str = "dev.wedge.precompiled.wasm";
/// The OCI empty descriptor's media type, the config of an artifact manifest.
const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The OCI empty descriptor's content.
const EMPTY: &[u8] = b"{}";
/// Largest referrer manifest or referrers list read from a registry.
pub(crate) const MAX_REFERRERS_BYTES: usize = 4 << 20;

/// What precompiled code was compiled for; code loads only into an engine with the same
/// key (wedge_runtime's `Engine::code_target` and `Engine::code_settings`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CodeKey {
    /// The code's target, e.g. `aarch64-linux` or `pulley32`.
    pub target: String,
    /// The engine settings, e.g. `wasmtime 48.0.8, cranelift, no fuel, settings 1`.
    pub settings: String,
}

impl fmt::Display for CodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.target, self.settings)
    }
}

/// Code compiled for one [`CodeKey`] from an image's Wasm layer.
#[derive(Debug, Clone)]
pub struct PrecompiledCode {
    /// What it was compiled for.
    pub key: CodeKey,
    /// The code.
    pub code: Vec<u8>,
}

/// The empty config of a referrer manifest, as a blob to push.
pub(crate) fn empty_config() -> (Digest, &'static [u8]) {
    (Digest::of(EMPTY), EMPTY)
}

/// The referrer manifest attaching `code` (digest `code_digest`) to the image manifest
/// `subject`, whose Wasm layer is `wasm_layer`.
pub(crate) fn manifest(
    subject: OciDescriptor,
    wasm_layer: &Digest,
    key: &CodeKey,
    code_digest: &Digest,
    code_size: usize,
) -> Result<Vec<u8>, ImageError> {
    let (config_digest, config) = empty_config();
    let manifest = OciImageManifest {
        schema_version: 2,
        media_type: Some(MANIFEST_MEDIA_TYPE.to_string()),
        artifact_type: Some(ARTIFACT_TYPE.to_string()),
        config: OciDescriptor {
            media_type: EMPTY_MEDIA_TYPE.to_string(),
            digest: config_digest.to_string(),
            size: config.len() as i64,
            ..OciDescriptor::default()
        },
        layers: vec![OciDescriptor {
            media_type: CODE_MEDIA_TYPE.to_string(),
            digest: code_digest.to_string(),
            size: code_size as i64,
            ..OciDescriptor::default()
        }],
        subject: Some(subject),
        annotations: Some(annotations(key, Some(wasm_layer))),
    };
    serde_json::to_vec(&manifest).map_err(|e| ImageError::invalid("precompiled manifest", e))
}

/// The annotations naming `key` (and the Wasm layer, on the manifest itself).
fn annotations(key: &CodeKey, wasm_layer: Option<&Digest>) -> BTreeMap<String, String> {
    let mut annotations = BTreeMap::from([
        (TARGET_ANNOTATION.to_string(), key.target.clone()),
        (SETTINGS_ANNOTATION.to_string(), key.settings.clone()),
    ]);
    if let Some(layer) = wasm_layer {
        annotations.insert(WASM_ANNOTATION.to_string(), layer.to_string());
    }
    annotations
}

/// The key an entry of a referrers list or a manifest announces, if it has both
/// annotations.
fn key_of(annotations: Option<&BTreeMap<String, String>>) -> Option<CodeKey> {
    let annotations = annotations?;
    Some(CodeKey {
        target: annotations.get(TARGET_ANNOTATION)?.clone(),
        settings: annotations.get(SETTINGS_ANNOTATION)?.clone(),
    })
}

/// An entry of a referrers list that announces precompiled code.
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    /// The referrer manifest's digest.
    pub digest: Digest,
    /// What the code is for, as announced (checked again on the manifest itself).
    pub key: CodeKey,
}

/// Parses a referrers list (an image index) as a registry sent it.
pub(crate) fn parse_list(bytes: &[u8]) -> Result<OciImageIndex, ImageError> {
    serde_json::from_slice(bytes).map_err(|e| ImageError::invalid("referrers list", e))
}

/// The entries of a referrers list that announce precompiled code; other referrers
/// (signatures, SBOMs) are left alone.
pub(crate) fn listed(index: &OciImageIndex) -> Vec<Listed> {
    index
        .manifests
        .iter()
        .filter(|entry| entry.artifact_type.as_deref() == Some(ARTIFACT_TYPE))
        .filter_map(|entry| {
            Some(Listed {
                digest: entry.digest.parse().ok()?,
                key: key_of(entry.annotations.as_ref())?,
            })
        })
        .collect()
}

/// The referrers list `index` with `manifest` (of `size` bytes, for `key`) added in
/// place of any earlier precompiled code for the same key, for a registry where the
/// pusher maintains the list (the referrers tag schema).
pub(crate) fn with_entry(
    mut index: OciImageIndex,
    manifest: &Digest,
    size: usize,
    key: &CodeKey,
) -> OciImageIndex {
    index.manifests.retain(|entry| {
        !(entry.artifact_type.as_deref() == Some(ARTIFACT_TYPE)
            && key_of(entry.annotations.as_ref()).as_ref() == Some(key))
    });
    index.manifests.push(oci_client::manifest::ImageIndexEntry {
        media_type: MANIFEST_MEDIA_TYPE.to_string(),
        digest: manifest.to_string(),
        size: size as i64,
        platform: None,
        annotations: Some(annotations(key, None)),
        artifact_type: Some(ARTIFACT_TYPE.to_string()),
    });
    index
}

/// An empty referrers list.
pub(crate) fn empty_list() -> OciImageIndex {
    OciImageIndex {
        schema_version: 2,
        media_type: Some(crate::store::INDEX_MEDIA_TYPE.to_string()),
        manifests: Vec::new(),
        artifact_type: None,
        annotations: None,
    }
}

/// Checks a referrer manifest fetched for `key` (its bytes already checked against the
/// digest the list gave): precompiled code for exactly `key`, attached to the image
/// manifest `image`, compiled from the Wasm layer `wasm_layer`, one code layer within
/// `max_size` bytes. Returns that layer.
pub(crate) fn check(
    bytes: &[u8],
    image: &Digest,
    wasm_layer: &Digest,
    key: &CodeKey,
    max_size: u64,
) -> Result<OciDescriptor, ImageError> {
    let invalid = |reason: String| ImageError::invalid("precompiled manifest", reason);
    let manifest: OciImageManifest =
        serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
    if manifest.artifact_type.as_deref() != Some(ARTIFACT_TYPE) {
        return Err(invalid(format!(
            "its artifact type is not `{ARTIFACT_TYPE}`"
        )));
    }
    if manifest.subject.as_ref().map(|s| s.digest.as_str()) != Some(&image.to_string()) {
        return Err(invalid(format!("it is not attached to `{image}`")));
    }
    let annotations = manifest.annotations.as_ref();
    if key_of(annotations).as_ref() != Some(key) {
        return Err(invalid(format!(
            "it is not the code its list announced ({key})"
        )));
    }
    if annotations.and_then(|a| a.get(WASM_ANNOTATION)) != Some(&wasm_layer.to_string()) {
        return Err(invalid(format!(
            "it was not compiled from this image's Wasm layer `{wasm_layer}`"
        )));
    }
    let [layer] = &manifest.layers[..] else {
        return Err(invalid(format!(
            "it has {} layers, not one",
            manifest.layers.len()
        )));
    };
    if layer.media_type != CODE_MEDIA_TYPE {
        return Err(invalid(format!(
            "its layer's media type is not `{CODE_MEDIA_TYPE}`"
        )));
    }
    let size = u64::try_from(layer.size).map_err(|_| invalid("a negative size".into()))?;
    if size > max_size {
        return Err(ImageError::TooLarge {
            what: "precompiled code",
            digest: layer.digest.clone(),
            size,
            max: max_size,
        });
    }
    layer.digest.parse::<Digest>()?;
    Ok(layer.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(target: &str) -> CodeKey {
        CodeKey {
            target: target.into(),
            settings: "wasmtime 48.0.8, cranelift, no fuel, settings 1".into(),
        }
    }

    #[test]
    fn a_referrer_is_checked_against_the_image_layer_and_key() {
        let image = Digest::of(b"image manifest");
        let layer = Digest::of(b"wasm");
        let code = Digest::of(b"code");
        let subject = OciDescriptor {
            media_type: MANIFEST_MEDIA_TYPE.into(),
            digest: image.to_string(),
            size: 14,
            ..OciDescriptor::default()
        };
        let bytes = manifest(subject, &layer, &key("aarch64-linux"), &code, 4).unwrap();
        let checked = check(&bytes, &image, &layer, &key("aarch64-linux"), 4).unwrap();
        assert_eq!(checked.digest, code.to_string());

        let other = Digest::of(b"other");
        assert!(check(&bytes, &other, &layer, &key("aarch64-linux"), 4).is_err());
        assert!(check(&bytes, &image, &other, &key("aarch64-linux"), 4).is_err());
        assert!(check(&bytes, &image, &layer, &key("riscv64-linux"), 4).is_err());
        assert!(matches!(
            check(&bytes, &image, &layer, &key("aarch64-linux"), 3),
            Err(ImageError::TooLarge { .. })
        ));
    }

    #[test]
    fn a_new_entry_replaces_code_for_the_same_key_only() {
        let mut index = empty_list();
        index.manifests.push(oci_client::manifest::ImageIndexEntry {
            media_type: MANIFEST_MEDIA_TYPE.into(),
            digest: Digest::of(b"signature").to_string(),
            size: 9,
            platform: None,
            annotations: None,
            artifact_type: Some("application/vnd.cncf.notary.signature".into()),
        });
        let first = Digest::of(b"first");
        let index = with_entry(index, &first, 5, &key("aarch64-linux"));
        let index = with_entry(index, &Digest::of(b"pulley"), 6, &key("pulley32"));
        let second = Digest::of(b"second");
        let index = with_entry(index, &second, 6, &key("aarch64-linux"));
        assert_eq!(index.manifests.len(), 3, "the signature stays");
        let listed = listed(&index);
        let digests: Vec<_> = listed.iter().map(|l| l.digest.clone()).collect();
        assert_eq!(digests, [Digest::of(b"pulley"), second]);
        let bytes = serde_json::to_vec(&index).unwrap();
        assert_eq!(listed_of(&bytes).len(), 2);
    }

    fn listed_of(bytes: &[u8]) -> Vec<Listed> {
        listed(&parse_list(bytes).unwrap())
    }
}
