//! Images whose app is a Wasm layer rather than a file in a tar layer (runwasi's
//! form: an OCI image config with platform `wasm`, and a layer of one of
//! [`LAYER_MEDIA_TYPES`]). containerd unpacks no such layer, so the container's root
//! filesystem holds no app; the shim reads the layer from containerd's content store
//! over containerd's gRPC API instead (the container's image, its manifest for the
//! `wasm` platform when the image is an index, its one Wasm layer), checks its digest
//! and keeps it in the shim's root, content-addressed, for the container's process.
//!
//! containerd pulls such images from 1.6.25 and 1.7.7 on; earlier versions (Debian
//! bookworm's 1.6.20) store the image but refuse to unpack it ("mismatched image
//! rootfs and manifest layers"), so no container can be made from it there.

use crate::error::ShimError;
use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::{GetContainerRequest, GetImageRequest, ReadContentRequest};
use containerd_client::tonic::Request;
use containerd_client::tonic::transport::Channel;
use containerd_client::with_namespace;
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The layer media types of a Wasm app: the CNCF Wasm artifact's, the Bytecode
/// Alliance's component layer (runwasi's images) and Spin's.
pub const LAYER_MEDIA_TYPES: [&str; 3] = [
    "application/wasm",
    "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm",
    "application/vnd.wasm.content.layer.v1+wasm",
];

/// The link in a bundle to the app taken from the image's Wasm layer.
pub const BUNDLE_LINK: &str = "wedge-layer.wasm";

/// The largest image index or manifest read (containerd's own limit on manifests).
const MAX_MANIFEST: i64 = 4 << 20;

/// When the image of container `id` (in containerd `namespace`, reached at `address`)
/// has a Wasm layer, stores it under `layers` (named by its digest, written once) and
/// links `bundle`'s [`BUNDLE_LINK`] to it. Returns whether it did; an image without
/// Wasm layers is left to the root filesystem.
pub async fn link_app(
    address: &str,
    namespace: &str,
    id: &str,
    bundle: &Path,
    layers: &Path,
) -> Result<bool, ShimError> {
    let store = Store::connect(address, namespace).await?;
    let Some(layer) = store.wasm_layer(id).await? else {
        return Ok(false);
    };
    let stored = store.keep(&layer, layers).await?;
    let link = bundle.join(BUNDLE_LINK);
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&stored, &link)
        .map_err(|e| ShimError::Host(format!("cannot link `{}`: {e}", link.display())))?;
    Ok(true)
}

/// containerd's content, containers and images, in one namespace.
struct Store {
    channel: Channel,
    namespace: String,
}

impl Store {
    async fn connect(address: &str, namespace: &str) -> Result<Store, ShimError> {
        let channel = containerd_client::connect(address)
            .await
            .map_err(|e| ShimError::Host(format!("cannot reach containerd at `{address}`: {e}")))?;
        Ok(Store {
            channel,
            namespace: namespace.to_string(),
        })
    }

    /// The Wasm layer of container `id`'s image, if it has one.
    async fn wasm_layer(&self, id: &str) -> Result<Option<Descriptor>, ShimError> {
        let request = GetContainerRequest { id: id.to_string() };
        let container = ContainersClient::new(self.channel.clone())
            .get(with_namespace!(request, self.namespace))
            .await
            .map_err(|e| containerd_error("container", id, e))?
            .into_inner()
            .container;
        let image = container.map(|c| c.image).unwrap_or_default();
        if image.is_empty() {
            return Ok(None);
        }
        let request = GetImageRequest {
            name: image.clone(),
        };
        let target = ImagesClient::new(self.channel.clone())
            .get(with_namespace!(request, self.namespace))
            .await
            .map_err(|e| containerd_error("image", &image, e))?
            .into_inner()
            .image
            .and_then(|i| i.target)
            .ok_or_else(|| ShimError::Spec(format!("image `{image}` has no content")))?;
        let mut bytes = self
            .read_manifest(&image, &target.digest, target.size)
            .await?;
        let mut digest = target.digest;
        if is_index(&target.media_type) {
            let index: ImageIndex = parse(&image, &digest, &bytes)?;
            let Some(chosen) = index.manifests().iter().find(|m| {
                m.platform()
                    .as_ref()
                    .is_some_and(|p| p.architecture().to_string() == "wasm")
            }) else {
                return Ok(None);
            };
            digest = chosen.digest().to_string();
            bytes = self
                .read_manifest(&image, &digest, chosen.size() as i64)
                .await?;
        }
        let manifest: ImageManifest = parse(&image, &digest, &bytes)?;
        let mut wasm = manifest
            .layers()
            .iter()
            .filter(|l| LAYER_MEDIA_TYPES.contains(&l.media_type().to_string().as_str()));
        match (wasm.next(), wasm.next()) {
            (None, _) => Ok(None),
            (Some(layer), None) => Ok(Some(layer.clone())),
            (Some(_), Some(_)) => Err(ShimError::Spec(format!(
                "image `{image}` has several Wasm layers: wedge runs one app per container"
            ))),
        }
    }

    /// The image index or manifest `digest` of `image`, refused when larger than
    /// [`MAX_MANIFEST`].
    async fn read_manifest(
        &self,
        image: &str,
        digest: &str,
        size: i64,
    ) -> Result<Vec<u8>, ShimError> {
        if !(0..=MAX_MANIFEST).contains(&size) {
            return Err(ShimError::Spec(format!(
                "image `{image}`: `{digest}` is {size} bytes, too large for a manifest"
            )));
        }
        self.read(digest, size as u64).await
    }

    /// Stores `layer` under `dir` as `<hex digest>.wasm` unless it is there, and
    /// returns its path. What is read must match the layer's digest and size.
    async fn keep(&self, layer: &Descriptor, dir: &Path) -> Result<PathBuf, ShimError> {
        let digest = layer.digest().to_string();
        let hex = digest
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| ShimError::Spec(format!("layer digest `{digest}` is not sha256")))?;
        let path = dir.join(format!("{hex}.wasm"));
        if path.is_file() {
            return Ok(path);
        }
        let bytes = self.read(&digest, layer.size()).await?;
        let actual = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        if actual != digest || bytes.len() as u64 != layer.size() {
            return Err(ShimError::Spec(format!(
                "layer `{digest}` read from containerd does not match its digest or size"
            )));
        }
        let host = |e: std::io::Error| ShimError::Host(format!("`{}`: {e}", dir.display()));
        std::fs::create_dir_all(dir).map_err(host)?;
        // Written whole, then renamed: a container never sees half a layer.
        // A name of this write's own: a pod's containers are created concurrently.
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let write = WRITES.fetch_add(1, Ordering::Relaxed);
        let partial = dir.join(format!(".{hex}.{}.{write}", std::process::id()));
        std::fs::write(&partial, &bytes).map_err(host)?;
        std::fs::rename(&partial, &path).map_err(host)?;
        Ok(path)
    }

    /// The blob `digest` of containerd's content store, of `size` bytes: a longer
    /// one is cut off there (and then fails its digest check).
    async fn read(&self, digest: &str, size: u64) -> Result<Vec<u8>, ShimError> {
        let request = ReadContentRequest {
            digest: digest.to_string(),
            ..Default::default()
        };
        let mut stream = ContentClient::new(self.channel.clone())
            .read(with_namespace!(request, self.namespace))
            .await
            .map_err(|e| containerd_error("content", digest, e))?
            .into_inner();
        let mut bytes = Vec::new();
        while let Some(chunk) = stream
            .message()
            .await
            .map_err(|e| containerd_error("content", digest, e))?
        {
            bytes.extend_from_slice(&chunk.data);
            if bytes.len() as u64 > size {
                break;
            }
        }
        Ok(bytes)
    }
}

fn parse<T: serde::de::DeserializeOwned>(
    image: &str,
    digest: &str,
    bytes: &[u8],
) -> Result<T, ShimError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ShimError::Spec(format!("image `{image}`: `{digest}` is malformed: {e}")))
}

fn is_index(media_type: &str) -> bool {
    media_type == MediaType::ImageIndex.to_string()
        || media_type == "application/vnd.docker.distribution.manifest.list.v2+json"
}

fn containerd_error(what: &str, name: &str, e: containerd_client::tonic::Status) -> ShimError {
    ShimError::Host(format!("containerd: {what} `{name}`: {}", e.message()))
}
