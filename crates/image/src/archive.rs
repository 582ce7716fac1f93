//! `wedge save` / `wedge load`: images as an OCI image-layout tar, for moving them to
//! air-gapped devices. The tar holds `oci-layout`, an `index.json` naming the saved
//! references, and their blobs; any OCI tool (e.g. `skopeo copy oci-archive:…`) reads it.

use crate::artifact;
use crate::store::{MANIFEST_MEDIA_TYPE, REF_NAME};
use crate::{Digest, ImageError, ImageStore, StoredImage, parse_reference};
use oci_client::manifest::{ImageIndexEntry, OciImageIndex};
use std::collections::BTreeMap;
use std::io::{Read, Write};

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
        let wasm = artifact::open(store, image.clone())?;
        blobs.insert(image.digest.clone());
        for d in std::iter::once(&wasm.manifest.config).chain(&wasm.manifest.layers) {
            blobs.insert(d.digest.parse()?);
        }
        index.manifests.push(ImageIndexEntry {
            media_type: MANIFEST_MEDIA_TYPE.into(),
            digest: image.digest.to_string(),
            size: image.size,
            platform: None,
            annotations: Some([(REF_NAME.to_string(), image.reference.clone())].into()),
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

/// Reads an OCI-layout tar into `store`: every blob is digest-checked, every named
/// image must be a complete Wasm image, and only then is it tagged. Returns the
/// references loaded.
pub fn load(store: &ImageStore, input: impl Read) -> Result<Vec<String>, ImageError> {
    let io = |e: std::io::Error| ImageError::Io {
        path: "archive".into(),
        error: e,
    };
    let mut archive = tar::Archive::new(input);
    let mut index: Option<OciImageIndex> = None;
    let mut blobs: BTreeMap<Digest, Vec<u8>> = BTreeMap::new();
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
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut bytes).map_err(io)?;
        if path == "index.json" {
            index = Some(
                serde_json::from_slice(&bytes)
                    .map_err(|e| ImageError::invalid("archive index.json", e))?,
            );
        } else if let Some(hex) = path.strip_prefix("blobs/sha256/") {
            let digest: Digest = format!("sha256:{hex}").parse()?;
            if Digest::of(&bytes) != digest {
                return Err(ImageError::DigestMismatch {
                    expected: digest.to_string(),
                    actual: Digest::of(&bytes).to_string(),
                });
            }
            blobs.insert(digest, bytes);
        }
    }
    let index = index
        .ok_or_else(|| ImageError::invalid("archive", "no index.json: not an OCI image layout"))?;
    for (digest, bytes) in &blobs {
        store.put_blob(bytes, Some(digest))?;
    }
    let mut loaded = Vec::new();
    for entry in &index.manifests {
        let Some(name) = entry.annotations.as_ref().and_then(|a| a.get(REF_NAME)) else {
            continue;
        };
        let reference = parse_reference(name)?.whole();
        let image = StoredImage {
            reference: reference.clone(),
            digest: entry.digest.parse()?,
            size: entry.size,
        };
        let wasm = artifact::open(store, image)?;
        for d in std::iter::once(&wasm.manifest.config).chain(&wasm.manifest.layers) {
            store.read_blob(&d.digest.parse()?)?;
        }
        store.tag(&reference, &wasm.image.digest, entry.size)?;
        loaded.push(reference);
    }
    Ok(loaded)
}
