//! The local image store: an OCI image-layout directory.
//!
//! ```text
//! <root>/oci-layout          {"imageLayoutVersion":"1.0.0"}
//! <root>/index.json          an OCI image index; each tagged manifest carries its name
//!                            in `org.opencontainers.image.ref.name`
//! <root>/blobs/sha256/<hex>  content-addressed blobs
//! <root>/quarantine/         corrupt blobs moved aside by fsck
//! ```
//!
//! Every write goes to a temp file in the destination folder, is fsynced, checked and
//! renamed into place, so a crash leaves either the old or the new file, never half of
//! one. Writers of `index.json` hold an exclusive lock on `<root>/.lock`.
//!
//! Whatever adds an image (a pull, a load, a build) holds a shared lock on
//! `<root>/.gc.lock` from its first blob to its tag ([`ImageStore::writing`]); prune,
//! fsck and the removal of stale temp files hold it exclusively. So prune never deletes
//! a blob that an image being added has written or counted on, nor the temp file a
//! transfer is writing, and a temp file found while nothing writes is a leftover of a
//! process that died.

use crate::{Digest, ImageError};
use oci_client::manifest::{ImageIndexEntry, OciImageIndex, OciImageManifest};
use std::collections::BTreeSet;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Annotation naming a tagged manifest in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Media type of an OCI image manifest.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of an OCI image index.
pub(crate) const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// Prefix of temp files, which fsck and prune clean up.
const TEMP_PREFIX: &str = ".tmp-";
/// The lock that adding images shares and garbage collection holds alone.
const GC_LOCK: &str = ".gc.lock";

/// An OCI image-layout directory holding wedge's images.
#[derive(Debug, Clone)]
pub struct ImageStore {
    root: PathBuf,
}

/// A tagged image: its reference and the manifest it points at.
#[derive(Debug, Clone)]
pub struct StoredImage {
    /// Full reference, e.g. `localhost:5000/sensors/logger:1.2.0`.
    pub reference: String,
    /// Manifest digest.
    pub digest: Digest,
    /// Manifest size in bytes.
    pub size: i64,
}

/// A shared hold on the store while an image is being added (see
/// [`ImageStore::writing`]); prune and fsck wait until it is dropped.
#[derive(Debug)]
pub struct WriteGuard {
    _lock: File,
}

/// What `fsck` found and did.
#[derive(Debug, Default, serde::Serialize)]
pub struct FsckReport {
    /// Blobs checked.
    pub blobs_checked: usize,
    /// Blobs whose content no longer matched their digest, moved to `quarantine/`.
    pub quarantined: Vec<String>,
    /// Tags removed because their manifest, config or layer is missing or corrupt.
    pub untagged: Vec<String>,
    /// Leftover temp files removed.
    pub temp_files_removed: usize,
}

impl ImageStore {
    /// Whether a store has been created at `root` ([`ImageStore::open`] creates one):
    /// a root without one holds no images.
    pub fn exists(root: &Path) -> bool {
        root.join("index.json").is_file()
    }

    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<ImageStore, ImageError> {
        let store = ImageStore { root: root.into() };
        let blobs = store.root.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).map_err(ImageError::io(&blobs))?;
        // Under the index lock: a prune or fsck removing the root's temp files holds it,
        // so it cannot take the temp file of a first write from under it.
        let layout = store.root.join("oci-layout");
        let index = store.root.join("index.json");
        if !layout.exists() || !index.exists() {
            let _lock = store.lock()?;
            if !layout.exists() {
                write_atomically(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
            }
            if !index.exists() {
                store.write_index(&empty_index())?;
            }
        }
        Ok(store)
    }

    /// The store's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a blob lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// Whether a blob is present (not checked).
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Holds off [`ImageStore::prune`], [`ImageStore::fsck`] and temp-file cleanup until
    /// the guard is dropped, waiting for one in progress to finish. Take it before
    /// checking which blobs the store has and keep it until the image is tagged: blobs
    /// written or found meanwhile are not deleted from under the image.
    pub fn writing(&self) -> Result<WriteGuard, ImageError> {
        let file = self.open_lock_file(GC_LOCK)?;
        file.lock_shared()
            .map_err(ImageError::io(self.root.join(GC_LOCK)))?;
        Ok(WriteGuard { _lock: file })
    }

    /// Removes temp files (`.tmp-*`) left by a process that died while writing, when
    /// nothing is adding an image now (otherwise they may be in use, and nothing is
    /// removed). Returns the number removed.
    pub fn remove_stale_temp_files(&self) -> Result<usize, ImageError> {
        let gc = self.open_lock_file(GC_LOCK)?;
        match gc.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(0),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(ImageError::io(self.root.join(GC_LOCK))(e));
            }
        }
        let _lock = self.lock()?;
        self.remove_temp_files()
    }

    /// Stores `bytes`, checking them against `expected` when given. Idempotent.
    pub fn put_blob(&self, bytes: &[u8], expected: Option<&Digest>) -> Result<Digest, ImageError> {
        let digest = Digest::of(bytes);
        if let Some(expected) = expected
            && *expected != digest
        {
            return Err(ImageError::DigestMismatch {
                expected: expected.to_string(),
                actual: digest.to_string(),
            });
        }
        let path = self.blob_path(&digest);
        if !path.is_file() || self.read_blob(&digest).is_err() {
            write_atomically(&path, bytes)?;
        }
        Ok(digest)
    }

    /// A blob written as it arrives (a pull), hashed on the way, into a temp file in
    /// the blob folder; [`BlobWriter::commit`] checks, fsyncs and renames it.
    pub fn blob_writer(&self) -> Result<BlobWriter, ImageError> {
        let dir = self.root.join("blobs/sha256");
        let file = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempfile_in(&dir)
            .map_err(ImageError::io(&dir))?;
        Ok(BlobWriter {
            file,
            hasher: sha2::Sha256::default(),
            store: self.root.clone(),
        })
    }

    /// Reads a blob and checks it against its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, ImageError> {
        let path = self.blob_path(digest);
        let bytes = std::fs::read(&path).map_err(ImageError::io(&path))?;
        if Digest::of(&bytes) != *digest {
            return Err(ImageError::CorruptBlob(digest.to_string()));
        }
        Ok(bytes)
    }

    /// Checks a blob against its digest, reading it in pieces rather than whole.
    pub fn verify_blob(&self, digest: &Digest) -> Result<(), ImageError> {
        let path = self.blob_path(digest);
        let mut file = File::open(&path).map_err(ImageError::io(&path))?;
        let mut hasher = sha2::Sha256::default();
        std::io::copy(&mut file, &mut hasher).map_err(ImageError::io(&path))?;
        if Digest::from_hasher(hasher) != *digest {
            return Err(ImageError::CorruptBlob(digest.to_string()));
        }
        Ok(())
    }

    /// Reads and parses an image manifest blob.
    pub fn read_manifest(&self, digest: &Digest) -> Result<OciImageManifest, ImageError> {
        let bytes = self.read_blob(digest)?;
        serde_json::from_slice(&bytes).map_err(|e| ImageError::invalid("image manifest", e))
    }

    /// A stamp of `index.json` (inode, size, modification time) that changes whenever
    /// the set of tags changes, for callers that cache what a reference resolves to.
    pub fn tags_stamp(&self) -> Option<(u64, u64, std::time::SystemTime)> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(self.root.join("index.json")).ok()?;
        Some((m.ino(), m.len(), m.modified().ok()?))
    }

    /// The parsed `index.json`.
    pub fn index(&self) -> Result<OciImageIndex, ImageError> {
        let path = self.root.join("index.json");
        let bytes = std::fs::read(&path).map_err(ImageError::io(&path))?;
        serde_json::from_slice(&bytes).map_err(|e| ImageError::invalid("index.json", e))
    }

    /// Every tagged image, in index order.
    pub fn list(&self) -> Result<Vec<StoredImage>, ImageError> {
        let index = self.index()?;
        let mut out = Vec::with_capacity(index.manifests.len());
        for entry in &index.manifests {
            let Some(reference) = entry.annotations.as_ref().and_then(|a| a.get(REF_NAME)) else {
                continue;
            };
            out.push(StoredImage {
                reference: reference.clone(),
                digest: entry.digest.parse()?,
                size: entry.size,
            });
        }
        Ok(out)
    }

    /// Finds an image by full reference. A reference with a digest matches a tagged
    /// image with that digest, or any stored manifest with it.
    pub fn resolve(&self, reference: &oci_client::Reference) -> Result<StoredImage, ImageError> {
        let whole = reference.whole();
        let images = self.list()?;
        if let Some(digest) = reference.digest() {
            let digest: Digest = digest.parse()?;
            if let Some(found) = images.iter().find(|i| i.digest == digest) {
                return Ok(StoredImage {
                    reference: whole,
                    ..found.clone()
                });
            }
            if self.has_blob(&digest) {
                let size = std::fs::metadata(self.blob_path(&digest))
                    .map(|m| m.len() as i64)
                    .unwrap_or(0);
                return Ok(StoredImage {
                    reference: whole,
                    digest,
                    size,
                });
            }
            return Err(ImageError::NotFound(whole));
        }
        images
            .into_iter()
            .find(|i| i.reference == whole)
            .ok_or(ImageError::NotFound(whole))
    }

    /// Points `reference` at a stored manifest, replacing any previous target.
    pub fn tag(&self, reference: &str, digest: &Digest, size: i64) -> Result<(), ImageError> {
        let _lock = self.lock()?;
        let mut index = self.index()?;
        index.manifests.retain(|e| ref_name(e) != Some(reference));
        index.manifests.push(ImageIndexEntry {
            media_type: MANIFEST_MEDIA_TYPE.to_string(),
            digest: digest.to_string(),
            size,
            platform: None,
            artifact_type: None,
            annotations: Some([(REF_NAME.to_string(), reference.to_string())].into()),
        });
        self.write_index(&index)
    }

    /// Removes a tag; returns whether it existed. Blobs stay until [`ImageStore::prune`].
    pub fn untag(&self, reference: &str) -> Result<bool, ImageError> {
        let _lock = self.lock()?;
        let mut index = self.index()?;
        let before = index.manifests.len();
        index.manifests.retain(|e| ref_name(e) != Some(reference));
        let removed = index.manifests.len() != before;
        if removed {
            self.write_index(&index)?;
        }
        Ok(removed)
    }

    /// Deletes blobs no tagged image uses, and leftover temp files, once no image is
    /// being added (it waits for pulls and loads in progress). Returns the number of
    /// files removed and the bytes freed.
    pub fn prune(&self) -> Result<(usize, u64), ImageError> {
        let _gc = self.gc()?;
        let _lock = self.lock()?;
        let mut live = BTreeSet::new();
        for entry in self.index()?.manifests {
            let digest: Digest = entry.digest.parse()?;
            if let Ok(manifest) = self.read_manifest(&digest) {
                for d in std::iter::once(&manifest.config).chain(&manifest.layers) {
                    live.insert(d.digest.clone());
                }
            }
            live.insert(digest.to_string());
        }
        let (mut files, mut bytes) = (0, 0);
        for (path, name) in self.blob_files()? {
            if live.contains(&format!("sha256:{name}")) {
                continue;
            }
            bytes += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            std::fs::remove_file(&path).map_err(ImageError::io(&path))?;
            files += 1;
        }
        files += self.remove_root_temp_files()?;
        Ok((files, bytes))
    }

    /// Checks every blob against its digest, moves corrupt ones to `quarantine/`,
    /// removes tags whose manifest, config or layer is missing or corrupt, and deletes
    /// leftover temp files. Afterwards every tagged image is complete and intact.
    pub fn fsck(&self) -> Result<FsckReport, ImageError> {
        let _gc = self.gc()?;
        let _lock = self.lock()?;
        let mut report = FsckReport {
            temp_files_removed: self.remove_root_temp_files()?,
            ..FsckReport::default()
        };
        let quarantine = self.root.join("quarantine");
        for (path, name) in self.blob_files()? {
            if name.starts_with(TEMP_PREFIX) {
                std::fs::remove_file(&path).map_err(ImageError::io(&path))?;
                report.temp_files_removed += 1;
                continue;
            }
            report.blobs_checked += 1;
            let intact = std::fs::read(&path).is_ok_and(|b| Digest::of(&b).hex() == name);
            if !intact {
                std::fs::create_dir_all(&quarantine).map_err(ImageError::io(&quarantine))?;
                let dest = quarantine.join(&name);
                std::fs::rename(&path, &dest).map_err(ImageError::io(&path))?;
                report.quarantined.push(format!("sha256:{name}"));
            }
        }
        let mut index = self.index()?;
        index.manifests.retain(|entry| {
            let complete = entry
                .digest
                .parse::<Digest>()
                .is_ok_and(|d| self.image_is_complete(&d));
            if !complete {
                report
                    .untagged
                    .push(ref_name(entry).unwrap_or(&entry.digest).to_string());
            }
            complete
        });
        if !report.untagged.is_empty() {
            self.write_index(&index)?;
        }
        Ok(report)
    }

    fn image_is_complete(&self, digest: &Digest) -> bool {
        let Ok(manifest) = self.read_manifest(digest) else {
            return false;
        };
        std::iter::once(&manifest.config)
            .chain(&manifest.layers)
            .all(|d| d.digest.parse::<Digest>().is_ok_and(|d| self.has_blob(&d)))
    }

    /// Every file under `blobs/sha256`, with its name.
    fn blob_files(&self) -> Result<Vec<(PathBuf, String)>, ImageError> {
        let dir = self.root.join("blobs/sha256");
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(ImageError::io(&dir))? {
            let entry = entry.map_err(ImageError::io(&dir))?;
            out.push((
                entry.path(),
                entry.file_name().to_string_lossy().into_owned(),
            ));
        }
        Ok(out)
    }

    fn write_index(&self, index: &OciImageIndex) -> Result<(), ImageError> {
        let bytes =
            serde_json::to_vec_pretty(index).map_err(|e| ImageError::invalid("index.json", e))?;
        write_atomically(&self.root.join("index.json"), &bytes)
    }

    /// Removes every temp file of the blob folder and the root; the caller holds the
    /// garbage-collection lock and the index lock.
    fn remove_temp_files(&self) -> Result<usize, ImageError> {
        let mut removed = self.remove_root_temp_files()?;
        for (path, name) in self.blob_files()? {
            if name.starts_with(TEMP_PREFIX) {
                std::fs::remove_file(&path).map_err(ImageError::io(&path))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Removes the temp files of `index.json` and `oci-layout` writes left in the root;
    /// the caller holds the index lock.
    fn remove_root_temp_files(&self) -> Result<usize, ImageError> {
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.root).map_err(ImageError::io(&self.root))? {
            let entry = entry.map_err(ImageError::io(&self.root))?;
            if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                let path = entry.path();
                std::fs::remove_file(&path).map_err(ImageError::io(&path))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// The garbage-collection lock, exclusively: waits until no image is being added.
    fn gc(&self) -> Result<File, ImageError> {
        let file = self.open_lock_file(GC_LOCK)?;
        file.lock()
            .map_err(ImageError::io(self.root.join(GC_LOCK)))?;
        Ok(file)
    }

    /// An exclusive lock on `index.json`, released when the returned file is dropped.
    fn lock(&self) -> Result<File, ImageError> {
        let file = self.open_lock_file(".lock")?;
        file.lock()
            .map_err(ImageError::io(self.root.join(".lock")))?;
        Ok(file)
    }

    fn open_lock_file(&self, name: &str) -> Result<File, ImageError> {
        let path = self.root.join(name);
        File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(ImageError::io(&path))
    }
}

fn ref_name(entry: &ImageIndexEntry) -> Option<&str> {
    entry
        .annotations
        .as_ref()
        .and_then(|a| a.get(REF_NAME))
        .map(String::as_str)
}

fn empty_index() -> OciImageIndex {
    OciImageIndex {
        schema_version: 2,
        media_type: Some(INDEX_MEDIA_TYPE.to_string()),
        manifests: Vec::new(),
        artifact_type: None,
        annotations: None,
    }
}

/// Writes `bytes` to `path` through a temp file in the same folder: write, fsync,
/// rename, fsync the folder.
/// A blob being written; dropped without [`BlobWriter::commit`], it leaves nothing.
pub struct BlobWriter {
    file: tempfile::NamedTempFile,
    hasher: sha2::Sha256,
    store: PathBuf,
}

impl BlobWriter {
    /// Appends a chunk.
    pub fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        use sha2::Digest as _;
        self.hasher.update(chunk);
        self.file.write_all(chunk)
    }

    /// Checks what was written so far against `expected`.
    pub fn verify(&self, expected: &Digest) -> Result<(), ImageError> {
        let actual = Digest::from_hasher(self.hasher.clone());
        if actual != *expected {
            return Err(ImageError::DigestMismatch {
                expected: expected.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(())
    }

    /// A new handle on the content written so far, for reading it while the blob is
    /// committed; it stays valid after [`BlobWriter::commit`] renames the file.
    pub fn reopen(&self) -> std::io::Result<File> {
        self.file.reopen()
    }

    /// Checks the content against `expected`, then fsyncs and renames it into place.
    pub fn commit(self, expected: &Digest) -> Result<(), ImageError> {
        self.verify(expected)?;
        let path = self.store.join("blobs/sha256").join(expected.hex());
        self.file
            .as_file()
            .sync_all()
            .map_err(ImageError::io(&path))?;
        self.file.persist(&path).map_err(|e| ImageError::Io {
            path: path.clone(),
            error: e.error,
        })?;
        let dir = self.store.join("blobs/sha256");
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(ImageError::io(&dir))
    }
}

pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)
        .map_err(ImageError::io(dir))?;
    tmp.write_all(bytes).map_err(ImageError::io(path))?;
    tmp.as_file().sync_all().map_err(ImageError::io(path))?;
    tmp.persist(path).map_err(|e| ImageError::Io {
        path: path.to_path_buf(),
        error: e.error,
    })?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(ImageError::io(dir))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_tags_prune_and_fsck() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open(dir.path().join("images")).unwrap();
        assert!(store.root().join("oci-layout").is_file());
        assert!(store.list().unwrap().is_empty());

        let layer = store.put_blob(b"\0asm\x01\0\0\0", None).unwrap();
        let config = store.put_blob(b"{}", None).unwrap();
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{MANIFEST_MEDIA_TYPE}","config":{{"mediaType":"application/vnd.wasm.config.v0+json","digest":"{config}","size":2}},"layers":[{{"mediaType":"application/wasm","digest":"{layer}","size":8}}]}}"#
        );
        let m = store.put_blob(manifest.as_bytes(), None).unwrap();
        store
            .tag("localhost:5000/a/b:1", &m, manifest.len() as i64)
            .unwrap();
        store
            .tag("localhost:5000/a/b:2", &m, manifest.len() as i64)
            .unwrap();
        let stray = store.put_blob(b"orphan", None).unwrap();
        assert_eq!(store.list().unwrap().len(), 2);

        let wrong = Digest::of(b"other");
        assert!(matches!(
            store.put_blob(b"x", Some(&wrong)),
            Err(ImageError::DigestMismatch { .. })
        ));

        assert_eq!(store.prune().unwrap().0, 1);
        assert!(!store.has_blob(&stray) && store.has_blob(&layer));

        // Corrupt the layer: fsck quarantines it and untags both images using it.
        std::fs::write(store.blob_path(&layer), b"tampered").unwrap();
        assert!(matches!(
            store.read_blob(&layer),
            Err(ImageError::CorruptBlob(_))
        ));
        std::fs::write(store.root().join("blobs/sha256/.tmp-leftover"), b"half").unwrap();
        let report = store.fsck().unwrap();
        assert_eq!(report.quarantined, vec![layer.to_string()]);
        assert_eq!(report.untagged.len(), 2);
        assert_eq!(report.temp_files_removed, 1);
        assert!(store.list().unwrap().is_empty());
        assert!(store.root().join("quarantine").join(layer.hex()).is_file());
        assert_eq!(
            store.fsck().unwrap().quarantined.len(),
            0,
            "a second fsck finds a clean store"
        );
    }

    #[test]
    fn prune_and_temp_cleanup_wait_while_an_image_is_being_added() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open(dir.path().join("images")).unwrap();
        let temp = store.root().join("blobs/sha256/.tmp-in-flight");
        std::fs::write(&temp, b"half a layer").unwrap();
        let writing = store.writing().unwrap();
        assert_eq!(store.remove_stale_temp_files().unwrap(), 0);
        let (done, finished) = std::sync::mpsc::channel();
        let pruning = {
            let store = store.clone();
            std::thread::spawn(move || {
                let pruned = store.prune();
                done.send(()).unwrap();
                pruned
            })
        };
        // Whatever the machine's load, prune must not get past the writer.
        assert!(
            finished
                .recv_timeout(std::time::Duration::from_millis(300))
                .is_err()
        );
        assert!(temp.is_file(), "prune deleted a file being written");
        drop(writing);
        assert_eq!(pruning.join().unwrap().unwrap().0, 1);
        assert!(!temp.exists());
        std::fs::write(&temp, b"left by a killed pull").unwrap();
        assert_eq!(store.remove_stale_temp_files().unwrap(), 1);
    }
}
