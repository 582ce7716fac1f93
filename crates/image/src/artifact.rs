//! The CNCF TAG-Runtime Wasm OCI artifact layout: building images and checking that an
//! image is one.
//!
//! An image is an OCI image manifest whose config has media type
//! `application/vnd.wasm.config.v0+json` (fields `architecture: "wasm"`, `os: "wasip1"`
//! or `"wasip2"`, `layerDigests`, and for components a `component` object with its
//! imports, exports and target world) and exactly one `application/wasm` layer: the
//! module or component itself. wedge's [`Requested`] grants ride in manifest annotations.

use crate::store::MANIFEST_MEDIA_TYPE;
use crate::wasm_config::{ARCHITECTURE, COMPONENT_OS, Component, MODULE_OS, WasmConfig};
use crate::{Digest, ImageError, ImageStore, Requested, StoredImage};
use oci_client::manifest::{OciDescriptor, OciImageManifest};

pub use crate::wasm_config::{CONFIG_MEDIA_TYPE, LAYER_MEDIA_TYPE};
/// Layer media types wedge runs: the CNCF one and those of earlier tools.
pub const ACCEPTED_LAYER_MEDIA_TYPES: [&str; 3] = [
    LAYER_MEDIA_TYPE,
    "application/vnd.wasm.content.layer.v1+wasm",
    "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm",
];
/// Standard annotation for when the image was built.
const CREATED: &str = "org.opencontainers.image.created";

/// A Wasm image in the store, checked against the artifact layout.
#[derive(Debug, Clone)]
pub struct WasmImage {
    /// The image's reference and manifest digest.
    pub image: StoredImage,
    /// The manifest.
    pub manifest: OciImageManifest,
    /// Digest of the Wasm layer.
    pub layer: Digest,
    /// What the image requests.
    pub requested: Requested,
}

/// Builds an image for `wasm` into `store` (untagged) and returns the manifest digest
/// and size. The build time is `$SOURCE_DATE_EPOCH` when set, for reproducible digests.
pub fn build(
    store: &ImageStore,
    wasm: &[u8],
    requested: &Requested,
) -> Result<(Digest, i64), ImageError> {
    let created = build_time()?;
    let (os, component) = os_of(wasm)?;
    let layer = store.put_blob(wasm, None)?;
    let config = WasmConfig {
        created,
        author: None,
        architecture: ARCHITECTURE.to_string(),
        os: os.to_string(),
        layer_digests: vec![layer.to_string()],
        component,
    };
    let config_bytes = serde_json::to_vec(&config).map_err(|e| ImageError::invalid("config", e))?;
    let config_digest = store.put_blob(&config_bytes, None)?;
    put_manifest(
        store,
        descriptor(CONFIG_MEDIA_TYPE, &config_digest, config_bytes.len()),
        descriptor(LAYER_MEDIA_TYPE, &layer, wasm.len()),
        requested,
        created,
    )
}

/// The WASI version a Wasm binary targets (`wasip1` for a core module, `wasip2` for a
/// component, with the component's description).
pub(crate) fn os_of(wasm: &[u8]) -> Result<(&'static str, Option<Component>), ImageError> {
    match wasm.get(4..8) {
        _ if !wasm.starts_with(b"\0asm") => {
            Err(ImageError::invalid("Wasm file", "no `\\0asm` header"))
        }
        Some([1, 0, 0, 0]) => Ok((MODULE_OS, None)),
        Some([0x0d, 0, 1, 0]) => Ok((COMPONENT_OS, Some(Component::of(wasm)?))),
        _ => Err(ImageError::invalid(
            "Wasm file",
            "unsupported binary version",
        )),
    }
}

/// Stores the manifest of one `config` and one `layer`, annotated with `requested`
/// and the build time; returns its digest and size.
pub(crate) fn put_manifest(
    store: &ImageStore,
    config: OciDescriptor,
    layer: OciDescriptor,
    requested: &Requested,
    created: chrono::DateTime<chrono::Utc>,
) -> Result<(Digest, i64), ImageError> {
    let mut annotations = requested.to_annotations()?;
    annotations.insert(
        CREATED.to_string(),
        created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    let manifest = OciImageManifest {
        schema_version: 2,
        media_type: Some(MANIFEST_MEDIA_TYPE.to_string()),
        config,
        layers: vec![layer],
        subject: None,
        artifact_type: None,
        annotations: Some(annotations),
    };
    let bytes =
        serde_json::to_vec(&manifest).map_err(|e| ImageError::invalid("image manifest", e))?;
    let digest = store.put_blob(&bytes, None)?;
    Ok((digest, bytes.len() as i64))
}

/// Reads a stored image and checks it is a Wasm app: exactly one layer, of an accepted
/// Wasm media type. A Linux container image or any other artifact is refused.
pub fn open(store: &ImageStore, image: StoredImage) -> Result<WasmImage, ImageError> {
    let manifest = store.read_manifest(&image.digest)?;
    check(&image.reference, &manifest)?;
    let layer = manifest.layers[0].digest.parse()?;
    let requested = Requested::from_annotations(manifest.annotations.as_ref())?;
    Ok(WasmImage {
        image,
        manifest,
        layer,
        requested,
    })
}

/// Checks a manifest is one of the two forms `wedge build` makes: the Wasm artifact,
/// or its container form for containerd ([`crate::container_image`]).
pub fn check_either_form(reference: &str, manifest: &OciImageManifest) -> Result<(), ImageError> {
    if crate::container_image::is_one(manifest) {
        Ok(())
    } else {
        check(reference, manifest)
    }
}

/// Checks a manifest against the Wasm artifact layout.
pub fn check(reference: &str, manifest: &OciImageManifest) -> Result<(), ImageError> {
    let not_wasm = |reason: String| ImageError::NotWasm {
        reference: reference.to_string(),
        reason,
    };
    match manifest.layers.as_slice() {
        [layer] if ACCEPTED_LAYER_MEDIA_TYPES.contains(&layer.media_type.as_str()) => Ok(()),
        _ if crate::container_image::is_one(manifest) => Err(not_wasm(
            "it is the container form for containerd (`wedge build --for containerd`): \
             run it with containerd or Kubernetes (runtime `io.containerd.wedge.v1`), \
             or build it without `--for`"
                .into(),
        )),
        [layer] => Err(not_wasm(format!(
            "its layer has media type `{}`",
            layer.media_type
        ))),
        layers => Err(not_wasm(format!(
            "it has {} layers (config media type `{}`); a Wasm image has exactly one",
            layers.len(),
            manifest.config.media_type
        ))),
    }
}

pub(crate) fn descriptor(media_type: &str, digest: &Digest, size: usize) -> OciDescriptor {
    OciDescriptor {
        media_type: media_type.to_string(),
        digest: digest.to_string(),
        size: size as i64,
        urls: None,
        annotations: None,
        artifact_type: None,
    }
}

pub(crate) fn build_time() -> Result<chrono::DateTime<chrono::Utc>, ImageError> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(epoch) => epoch
            .trim()
            .parse::<i64>()
            .ok()
            .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
            .ok_or_else(|| {
                ImageError::invalid("SOURCE_DATE_EPOCH", format!("`{epoch}` is not a Unix time"))
            }),
        Err(_) => Ok(chrono::Utc::now()),
    }
}
