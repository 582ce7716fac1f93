//! `wedge save` / `wedge load`: images as an OCI image-layout tar, for moving them to
//! air-gapped devices. The tar holds `oci-layout`, an `index.json` naming the saved
//! references, and their blobs; any OCI tool (e.g. `skopeo copy oci-archive:…`) reads it,
//! and `ctr image import --all-platforms` imports the container form of an app
//! (`wedge build --for containerd`) into containerd.

use crate::artifact;
use crate::registry::MAX_MANIFEST_BYTES;
use crate::store::{MANIFEST_MEDIA_TYPE, REF_NAME};
use crate::{Digest, ImageError, ImageStore, StoredImage, parse_reference};
use oci_client::manifest::{ImageIndexEntry, OciImageIndex};
use std::io::{Read, Write};

/// The index annotation containerd names an imported image by.
const CONTAINERD_IMAGE_NAME: &str = "io.containerd.image.name";
/// Largest single file accepted from an archive.
const MAX_ENTRY_BYTES: u64 = 1 << 30;

/// Writes `images` (already resolved in `store`) as an OCI-layout tar to `out`.
pub fn save(store: &ImageStore, images: &[StoredImage], out: impl Write) -> Result<(), ImageError> {
    let mut tar = tar::Builder::new(out);
    let mut index = OciImageIndex {
        schema_version: 2,
        media_type: Some("application/vnd.oci.image.index.v1+json".into()),
        manifests: Vec::new(),
        artifact_type: None,
        annotations: None,
    };
    let mut blobs = std::collections::BTreeSet::new();
    for image in images {
        let manifest = store.read_manifest(&image.digest)?;
        artifact::check_either_form(&image.reference, &manifest)?;
        blobs.insert(image.digest.clone());
        for d in std::iter::once(&manifest.config).chain(&manifest.layers) {
            blobs.insert(d.digest.parse()?);
        }
        // The standard name annotation, and containerd's (which `ctr image import`
        // names the image by).
        let names =
            [REF_NAME, CONTAINERD_IMAGE_NAME].map(|k| (k.to_string(), image.reference.clone()));
        index.manifests.push(ImageIndexEntry {
            media_type: MANIFEST_MEDIA_TYPE.into(),
            digest: image.digest.to_string(),
            size: image.size,
            platform: None,
            annotations: Some(names.into()),
            artifact_type: None,
        });
    }
    let io = |e: std::io::Error| ImageError::Io {
        path: "archive".into(),
        error: e,
    };
    append(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io)?;
    let index_bytes =
        serde_json::to_vec_pretty(&index).map_err(|e| ImageError::invalid("index.json", e))?;
    append(&mut tar, "index.json", &index_bytes).map_err(io)?;
    for digest in blobs {
        let bytes = store.read_blob(&digest)?;
        append(&mut tar, &format!("blobs/sha256/{}", digest.hex()), &bytes).map_err(io)?;
    }
    tar.into_inner().and_then(|mut w| w.flush()).map_err(io)
}

fn append<W: Write>(tar: &mut tar::Builder<W>, path: &str, bytes: &[u8]) -> std::io::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, path, bytes)
}

/// An image [`load`] tagged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// Its full reference.
    pub reference: String,
    /// The manifest it now points at.
    pub digest: Digest,
    /// The manifest the tag pointed at before, when the load moved an existing tag to
    /// another image.
    pub moved_from: Option<Digest>,
}

/// Reads an OCI-layout tar into `store`, streaming it: each blob goes from the archive
/// to a temp file in the store, hashed on the way, and is kept only if it matches its
/// name; every named image must then be a complete Wasm image, and only then is it
/// tagged. Returns the images tagged, saying which existing tags moved.
pub fn load(store: &ImageStore, input: impl Read) -> Result<Vec<Loaded>, ImageError> {
    let io = |e: std::io::Error| ImageError::Io {
        path: "archive".into(),
        error: e,
    };
    // Until the images are tagged, no prune may delete the blobs committed here.
    let _writing = store.writing()?;
    let mut archive = tar::Archive::new(input);
    let mut index: Option<OciImageIndex> = None;
    for entry in archive.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        if entry.size() > MAX_ENTRY_BYTES {
            return Err(ImageError::invalid(
                "archive",
                "an entry is larger than 1 GiB",
            ));
        }
        let path = entry
            .path()
            .map_err(io)?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        if path == "index.json" {
            if entry.size() > MAX_MANIFEST_BYTES as u64 {
                return Err(ImageError::invalid(
                    "archive index.json",
                    format!("over the {MAX_MANIFEST_BYTES}-byte cap"),
                ));
            }
            let mut bytes = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut bytes).map_err(io)?;
            index = Some(
                serde_json::from_slice(&bytes)
                    .map_err(|e| ImageError::invalid("archive index.json", e))?,
            );
        } else if let Some(hex) = path.strip_prefix("blobs/sha256/") {
            let digest: Digest = format!("sha256:{hex}").parse()?;
            if store.verify_blob(&digest).is_ok() {
                continue;
            }
            let mut writer = store.blob_writer()?;
            let mut buf = vec![0u8; 64 << 10];
            loop {
                let n = entry.read(&mut buf).map_err(io)?;
                if n == 0 {
                    break;
                }
                writer.write(&buf[..n]).map_err(io)?;
            }
            writer.commit(&digest)?;
        }
    }
    let index = index
        .ok_or_else(|| ImageError::invalid("archive", "no index.json: not an OCI image layout"))?;
    let mut loaded = Vec::new();
    for entry in &index.manifests {
        let Some(name) = entry.annotations.as_ref().and_then(|a| a.get(REF_NAME)) else {
            continue;
        };
        let reference = parse_reference(name)?.whole();
        let digest: Digest = entry.digest.parse()?;
        let manifest_size = std::fs::metadata(store.blob_path(&digest)).map_or(0, |m| m.len());
        if manifest_size > MAX_MANIFEST_BYTES as u64 {
            return Err(ImageError::invalid(
                "image manifest",
                format!("`{digest}` is over the {MAX_MANIFEST_BYTES}-byte cap"),
            ));
        }
        let image = StoredImage {
            reference: reference.clone(),
            digest,
            size: entry.size,
        };
        let manifest = store.read_manifest(&image.digest)?;
        artifact::check_either_form(&image.reference, &manifest)?;
        for d in std::iter::once(&manifest.config).chain(&manifest.layers) {
            store.verify_blob(&d.digest.parse()?)?;
        }
        let digest = image.digest;
        let moved_from = store
            .list()?
            .into_iter()
            .find(|i| i.reference == reference)
            .map(|i| i.digest)
            .filter(|old| *old != digest);
        store.tag(&reference, &digest, entry.size)?;
        loaded.push(Loaded {
            reference,
            digest,
            moved_from,
        });
    }
    Ok(loaded)
}
