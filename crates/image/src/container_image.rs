//! The container form of a Wasm app, for containerd and Kubernetes
//! (`wedge build --for containerd`): an ordinary OCI image whose one filesystem layer
//! (an uncompressed tar) holds the app as `/app.wasm` and whose config names it as the
//! entrypoint, with platform `wasip1/wasm` (a module) or `wasip2/wasm` (a component).
//! Every containerd unpacks and runs it with `containerd-shim-wedge-v1`, including
//! versions that know nothing of Wasm layers (Debian's 1.6.20). The manifest carries
//! the same grant annotations as the Wasm artifact.

use crate::artifact::{build_time, descriptor, os_of, put_manifest};
use crate::store::MANIFEST_MEDIA_TYPE;
use crate::wasm_config::ARCHITECTURE;
use crate::{Digest, ImageError, ImageStore, Requested};
use oci_client::manifest::OciImageManifest;

/// The OCI image config media type.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// The OCI media type of an uncompressed tar layer.
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
/// Where the app lies in the image's filesystem, and its entrypoint.
pub const ENTRYPOINT: &str = "/app.wasm";

/// Builds the container form of `wasm` into `store` (untagged) and returns the
/// manifest digest and size. Reproducible under `$SOURCE_DATE_EPOCH`, as
/// [`crate::artifact::build`].
pub fn build(
    store: &ImageStore,
    wasm: &[u8],
    requested: &Requested,
) -> Result<(Digest, i64), ImageError> {
    let created = build_time()?;
    let (os, _) = os_of(wasm)?;
    let layer = layer_tar(wasm, created.timestamp().max(0) as u64)?;
    let layer_digest = store.put_blob(&layer, None)?;
    // Uncompressed: the layer's digest is its diff id.
    let config = serde_json::json!({
        "created": created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "architecture": ARCHITECTURE,
        "os": os,
        "config": {"Entrypoint": [ENTRYPOINT]},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest.to_string()]},
        "history": [{"created_by": "wedge build --for containerd"}],
    });
    let config_bytes = serde_json::to_vec(&config).map_err(|e| ImageError::invalid("config", e))?;
    let config_digest = store.put_blob(&config_bytes, None)?;
    put_manifest(
        store,
        descriptor(CONFIG_MEDIA_TYPE, &config_digest, config_bytes.len()),
        descriptor(LAYER_MEDIA_TYPE, &layer_digest, layer.len()),
        requested,
        created,
    )
}

/// Whether `manifest` has this form: an OCI image config and one uncompressed tar
/// layer (Linux images, whose layers are compressed, do not).
pub fn is_one(manifest: &OciImageManifest) -> bool {
    manifest
        .media_type
        .as_deref()
        .unwrap_or(MANIFEST_MEDIA_TYPE)
        == MANIFEST_MEDIA_TYPE
        && manifest.config.media_type == CONFIG_MEDIA_TYPE
        && matches!(manifest.layers.as_slice(), [layer] if layer.media_type == LAYER_MEDIA_TYPE)
}

/// A tar holding `wasm` as `app.wasm` (mode 0644, owner root, time `mtime`).
fn layer_tar(wasm: &[u8], mtime: u64) -> Result<Vec<u8>, ImageError> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(wasm.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(mtime);
    header.set_cksum();
    let name = ENTRYPOINT.trim_start_matches('/');
    tar.append_data(&mut header, name, wasm)
        .and_then(|()| tar.into_inner())
        .map_err(|e| ImageError::invalid("image layer", e))
}
