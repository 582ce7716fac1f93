//! Pushing and pulling images over the OCI distribution protocol (`oci-client`).
//!
//! Plain HTTP is used only for loopback registries or when the operator says
//! `--insecure`. Manifests are capped in size while they are read and checked against
//! the Wasm artifact layout *before* any layer is fetched; every blob must declare a size
//! within its cap ([`DEFAULT_MAX_LAYER_SIZE`] for the layer, [`MAX_CONFIG_BYTES`] for the
//! config) and a transfer stops as soon as it sends more; every blob is digest-checked
//! before it enters the store, and the tag is written last, so a failed pull leaves
//! nothing half-written. A layer's foreign `urls` are never fetched. Transient failures
//! (connection errors, 5xx) are retried with exponential backoff.

use crate::artifact;
use crate::precompiled::{self, CodeKey, PrecompiledCode};
use crate::store::{INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};
use crate::{Digest, ImageError, ImageStore, StoredImage};
use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol, ReferrersSource};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::{OciDescriptor, OciImageIndex, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use std::future::Future;
use std::time::Duration;

/// Largest manifest accepted from a registry.
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;
/// Largest image config accepted from a registry (a Wasm config is a few hundred bytes).
pub const MAX_CONFIG_BYTES: i64 = 4 << 20;
/// Largest Wasm layer a pull accepts unless told otherwise (`--max-layer-size`): larger
/// than any Wasm app we know of, small enough that a hostile registry cannot fill a
/// device's disk.
pub const DEFAULT_MAX_LAYER_SIZE: u64 = 256 << 20;
/// Precompiled code is accepted up to this many times the largest layer a pull accepts
/// (native code is larger than the Wasm it comes from).
pub const PRECOMPILED_SIZE_FACTOR: u64 = 4;
/// Largest layer a pull with a [`LayerObserver`] also keeps in memory, to hand it over
/// before it is durable on disk.
pub const MAX_LAYER_IN_MEMORY: usize = 64 << 20;
/// Chunks received but not yet written to disk, at most.
const WRITE_QUEUE: usize = 64;

/// A blob being written by its thread: the writer to commit, or the write's error.
type Writing = tokio::task::JoinHandle<std::io::Result<crate::store::BlobWriter>>;

/// What [`Registry::pull_observed`] tells about each layer it downloads.
pub trait LayerObserver: Sync {
    /// More of a layer of up to [`MAX_LAYER_IN_MEMORY`] bytes has arrived: `so_far` is
    /// everything received in this attempt, *not yet checked* against `digest`. Each
    /// attempt (a retry starts the transfer again) begins with a call with no bytes.
    /// Called from the transfer: keep it short.
    fn receiving(&self, digest: &Digest, so_far: &[u8]);
    /// The layer's whole content, checked against `digest`, before the store has
    /// committed it (fsync and rename).
    fn verified(&self, digest: &Digest, content: LayerContent);
}

/// A downloaded layer whose content matches its digest, handed to a [`LayerObserver`].
pub enum LayerContent {
    /// The content, kept in memory during the transfer.
    Bytes(Vec<u8>),
    /// The store's file, for a layer too large to keep in memory.
    File(std::fs::File),
}

/// An image manifest fetched from a registry and checked, its blobs not yet fetched
/// (see [`Registry::fetch_image`]).
pub struct RemoteImage {
    /// The reference it was fetched for.
    reference: Reference,
    /// The manifest as the registry sent it.
    bytes: bytes::Bytes,
    /// Its digest.
    digest: Digest,
    /// The manifest, parsed.
    manifest: OciImageManifest,
}

/// Attempts per request, counting the first.
const ATTEMPTS: u32 = 4;
/// Wait before the first retry; doubled each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// A connection to one registry for one image reference.
pub struct Registry {
    client: Client,
    auth: RegistryAuth,
    /// Largest layer accepted, in bytes.
    max_layer_size: u64,
}

impl Registry {
    /// A client for the registry of `reference`, with `auth`; `insecure` allows plain
    /// HTTP to a non-loopback registry. Fails when TLS cannot be set up (an HTTPS
    /// registry on a machine without CA certificates).
    pub fn new(
        reference: &Reference,
        auth: RegistryAuth,
        insecure: bool,
    ) -> Result<Registry, ImageError> {
        install_tls_provider();
        let registry = reference.resolve_registry();
        let plain_http = insecure || is_loopback(registry);
        let config = ClientConfig {
            protocol: if plain_http {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            // A plain-HTTP client never negotiates TLS; giving it one placeholder root
            // keeps reqwest from loading the system's ~150 CA certificates, which costs
            // about 60 ms per pull on a small machine.
            tls_certs_only: if plain_http {
                vec![placeholder_root()]
            } else {
                Vec::new()
            },
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(60)),
            ..ClientConfig::default()
        };
        let client = Client::try_from(config).map_err(|e| ImageError::Registry {
            reference: reference.whole(),
            reason: format!(
                "cannot set up a client for `{registry}`: {}",
                with_causes(&e)
            ),
        })?;
        Ok(Registry {
            client,
            auth,
            max_layer_size: DEFAULT_MAX_LAYER_SIZE,
        })
    }

    /// Sets the largest layer a pull accepts (default [`DEFAULT_MAX_LAYER_SIZE`]): an
    /// image whose manifest declares a larger one is refused before it is downloaded.
    pub fn with_max_layer_size(mut self, bytes: u64) -> Registry {
        self.max_layer_size = bytes;
        self
    }

    /// Uploads a stored image (its blobs, then its manifest, byte for byte) under
    /// `reference`: a Wasm artifact or its container form. Returns the manifest digest.
    pub async fn push(
        &self,
        store: &ImageStore,
        image: &StoredImage,
        reference: &Reference,
        progress: &dyn Progress,
    ) -> Result<Digest, ImageError> {
        let manifest = store.read_manifest(&image.digest)?;
        artifact::check_either_form(&image.reference, &manifest)?;
        let registry = reference.resolve_registry();
        self.client.store_auth_if_needed(registry, &self.auth).await;
        let manifest_bytes = store.read_blob(&image.digest)?;
        for descriptor in std::iter::once(&manifest.config).chain(&manifest.layers) {
            let digest: Digest = descriptor.digest.parse()?;
            self.upload(reference, &digest, || store.read_blob(&digest), progress)
                .await?;
        }
        self.put_manifest(reference, manifest_bytes, MANIFEST_MEDIA_TYPE)
            .await?;
        Ok(image.digest.clone())
    }

    /// Attaches precompiled code to `image` (a Wasm image of `store`, already pushed
    /// under `reference`) as referrers of its manifest (see [`crate::precompiled`]):
    /// pushes each code blob and its manifest and, on a registry without the referrers
    /// API, adds them to the referrers tag in place of earlier code for the same key.
    /// Returns the digest of each referrer manifest.
    pub async fn push_precompiled(
        &self,
        store: &ImageStore,
        image: &StoredImage,
        reference: &Reference,
        code: &[PrecompiledCode],
        progress: &dyn Progress,
    ) -> Result<Vec<Digest>, ImageError> {
        let wasm = artifact::open(store, image.clone())?;
        let subject = OciDescriptor {
            media_type: MANIFEST_MEDIA_TYPE.to_string(),
            digest: image.digest.to_string(),
            size: image.size,
            ..OciDescriptor::default()
        };
        let (config_digest, config) = precompiled::empty_config();
        self.upload(reference, &config_digest, || Ok(config.to_vec()), progress)
            .await?;
        let image_ref = by_digest(reference, &image.digest);
        let mut pushed = Vec::new();
        for compiled in code {
            let code_digest = Digest::of(&compiled.code);
            self.upload(
                reference,
                &code_digest,
                || Ok(compiled.code.clone()),
                progress,
            )
            .await?;
            let manifest = precompiled::manifest(
                subject.clone(),
                &wasm.layer,
                &compiled.key,
                &code_digest,
                compiled.code.len(),
            )?;
            let digest = Digest::of(&manifest);
            let size = manifest.len();
            self.put_manifest(
                &by_digest(reference, &digest),
                manifest,
                MANIFEST_MEDIA_TYPE,
            )
            .await?;
            let (list, source) = self.referrers(&image_ref, None).await?;
            if source == ReferrersSource::TagSchema {
                let list = list.unwrap_or_else(precompiled::empty_list);
                let list = precompiled::with_entry(list, &digest, size, &compiled.key);
                let bytes = serde_json::to_vec(&list)
                    .map_err(|e| ImageError::invalid("referrers list", e))?;
                let tag = Reference::with_tag(
                    reference.registry().into(),
                    reference.repository().into(),
                    image.digest.to_string().replace(':', "-"),
                );
                self.put_manifest(&tag, bytes, INDEX_MEDIA_TYPE).await?;
            }
            pushed.push(digest);
        }
        Ok(pushed)
    }

    /// The precompiled code attached to the image `remote` (see [`crate::precompiled`])
    /// for each of `keys` that it has, checked along the chain of digests from the image
    /// to the code, each code blob within [`PRECOMPILED_SIZE_FACTOR`] times the largest
    /// layer accepted; and every key the image has code for, for messages. Nothing is
    /// stored.
    pub async fn fetch_precompiled(
        &self,
        remote: &RemoteImage,
        keys: &[CodeKey],
    ) -> Result<FoundCode, ImageError> {
        let max_size = self.max_layer_size.saturating_mul(PRECOMPILED_SIZE_FACTOR);
        let reference = &remote.reference;
        let image_ref = by_digest(reference, &remote.digest);
        let (list, _) = self
            .referrers(&image_ref, Some(precompiled::ARTIFACT_TYPE))
            .await?;
        let listed = list.as_ref().map(precompiled::listed).unwrap_or_default();
        let wasm_layer: Digest = match &remote.manifest.layers[..] {
            [layer] => layer.digest.parse()?,
            _ => return Err(ImageError::invalid("image manifest", "not one Wasm layer")),
        };
        let mut found = FoundCode {
            code: Vec::new(),
            available: listed.iter().map(|l| l.key.clone()).collect(),
        };
        for key in keys {
            let Some(entry) = listed.iter().find(|l| &l.key == key) else {
                continue;
            };
            let manifest_ref = by_digest(reference, &entry.digest);
            let bytes = self
                .fetch_manifest(&manifest_ref, &[MANIFEST_MEDIA_TYPE])
                .await?;
            if Digest::of(&bytes) != entry.digest {
                return Err(ImageError::DigestMismatch {
                    expected: entry.digest.to_string(),
                    actual: Digest::of(&bytes).to_string(),
                });
            }
            let layer = precompiled::check(&bytes, &remote.digest, &wasm_layer, key, max_size)?;
            let code = retry(reference, || self.download_to_memory(reference, &layer)).await?;
            found.code.push(PrecompiledCode {
                key: key.clone(),
                code,
            });
        }
        Ok(found)
    }

    /// Downloads `reference` into the store and tags it (by its tag, if it has one).
    pub async fn pull(
        &self,
        store: &ImageStore,
        reference: &Reference,
        progress: &dyn Progress,
    ) -> Result<StoredImage, ImageError> {
        let remote = self.fetch_image(reference).await?;
        self.pull_observed(store, remote, progress, None).await
    }

    /// The first step of a pull: fetches the image manifest of `reference` (following a
    /// multi-platform index to its `wasm` entry), checks it against its digest and the
    /// Wasm artifact layout, and stores nothing. [`Registry::pull_observed`] fetches the
    /// rest.
    pub async fn fetch_image(&self, reference: &Reference) -> Result<RemoteImage, ImageError> {
        let whole = reference.whole();
        self.client
            .store_auth_if_needed(reference.resolve_registry(), &self.auth)
            .await;
        let bytes = self
            .fetch_manifest(reference, &[MANIFEST_MEDIA_TYPE, INDEX_MEDIA_TYPE])
            .await?;
        let mut digest = Digest::of(&bytes);
        if let Some(wanted) = reference.digest()
            && wanted != digest.to_string()
        {
            return Err(ImageError::DigestMismatch {
                expected: wanted.to_string(),
                actual: digest.to_string(),
            });
        }
        // A multi-platform index: follow its `wasm` entry.
        let bytes = match wasm_entry_of_index(&whole, &bytes)? {
            None => bytes,
            Some(entry) => {
                let child = by_digest(reference, &entry);
                let child_bytes = self.fetch_manifest(&child, &[MANIFEST_MEDIA_TYPE]).await?;
                digest = Digest::of(&child_bytes);
                if digest != entry {
                    return Err(ImageError::DigestMismatch {
                        expected: entry.to_string(),
                        actual: digest.to_string(),
                    });
                }
                child_bytes
            }
        };
        let manifest: OciImageManifest =
            serde_json::from_slice(&bytes).map_err(|e| ImageError::invalid("image manifest", e))?;
        artifact::check(&whole, &manifest)?;
        check_sizes(&manifest, self.max_layer_size)?;
        Ok(RemoteImage {
            reference: reference.clone(),
            bytes,
            digest,
            manifest,
        })
    }

    /// The rest of a pull: downloads the blobs of `remote` (from
    /// [`Registry::fetch_image`]) that the store lacks, stores its manifest and tags it
    /// (by the reference's tag, if it has one). `observer` sees each layer downloaded:
    /// the bytes as they arrive (layers of up to [`MAX_LAYER_IN_MEMORY`] bytes, kept in
    /// memory), then the whole content once its digest checks out, before the store
    /// makes it durable and commits it, so the caller may start using it (compiling the
    /// Wasm) while the pull finishes. A layer kept in memory is passed from there; a
    /// larger one as the store's file. Layers already in the store are not downloaded,
    /// nor passed.
    pub async fn pull_observed(
        &self,
        store: &ImageStore,
        remote: RemoteImage,
        progress: &dyn Progress,
        observer: Option<&dyn LayerObserver>,
    ) -> Result<StoredImage, ImageError> {
        let RemoteImage {
            reference,
            bytes,
            digest,
            manifest,
        } = remote;
        let reference = &reference;
        // Held until the image is tagged, so that a prune deletes neither a blob this pull
        // writes or finds in the store, nor the temp file it is writing.
        let guard_store = store.clone();
        let _writing = tokio::task::spawn_blocking(move || guard_store.writing())
            .await
            .map_err(|e| ImageError::Io {
                path: store.root().to_path_buf(),
                error: std::io::Error::other(e),
            })??;
        // Layers first: an observer's work (a compile) then overlaps the config's
        // transfer and the writes that finish the pull.
        let blobs = manifest
            .layers
            .iter()
            .map(|layer| (layer, true))
            .chain(std::iter::once((&manifest.config, false)));
        for (descriptor, is_layer) in blobs {
            let blob: Digest = descriptor.digest.parse()?;
            if store.verify_blob(&blob).is_ok() {
                continue;
            }
            let observer = observer.filter(|_| is_layer);
            let in_memory =
                observer.filter(|_| (0..=MAX_LAYER_IN_MEMORY as i64).contains(&descriptor.size));
            let (memory, writing) = retry(reference, || {
                self.download(store, reference, descriptor, &blob, progress, in_memory)
            })
            .await?;
            progress.finish();
            let blob_path = store.blob_path(&blob);
            let writer = writing
                .await
                .map_err(std::io::Error::other)
                .and_then(|written| written)
                .map_err(ImageError::io(&blob_path))?;
            // Nothing of the blob is used before its digest checks out: not the copy in
            // memory either.
            writer.verify(&blob)?;
            if let Some(observer) = observer {
                let content = match memory {
                    Some(bytes) => LayerContent::Bytes(bytes),
                    None => {
                        LayerContent::File(writer.reopen().map_err(ImageError::io(&blob_path))?)
                    }
                };
                observer.verified(&blob, content);
            }
            writer.commit(&blob)?;
        }
        store.put_blob(&bytes, Some(&digest))?;
        let size = bytes.len() as i64;
        if reference.tag().is_some() {
            let tagged = Reference::with_tag(
                reference.registry().into(),
                reference.repository().into(),
                reference.tag().unwrap_or("latest").into(),
            );
            store.tag(&tagged.whole(), &digest, size)?;
        }
        Ok(StoredImage {
            reference: reference.whole(),
            digest,
            size,
        })
    }
}

impl Registry {
    /// Pushes the blob `digest` unless the registry has it; `data` reads it.
    async fn upload(
        &self,
        reference: &Reference,
        digest: &Digest,
        data: impl FnOnce() -> Result<Vec<u8>, ImageError>,
        progress: &dyn Progress,
    ) -> Result<(), ImageError> {
        let short = digest.short();
        let digest = digest.to_string();
        if retry(reference, || self.client.blob_exists(reference, &digest)).await? {
            return Ok(());
        }
        let data = data()?;
        progress.start(&format!("push {short}"), data.len() as u64);
        retry(reference, || {
            self.client.push_blob(reference, data.clone(), &digest)
        })
        .await?;
        progress.advance(data.len() as u64);
        progress.finish();
        Ok(())
    }

    /// Pushes a manifest or index, byte for byte, under `reference` (a tag or a digest).
    async fn put_manifest(
        &self,
        reference: &Reference,
        bytes: Vec<u8>,
        media_type: &'static str,
    ) -> Result<(), ImageError> {
        let content_type = http::HeaderValue::from_static(media_type);
        let bytes = bytes::Bytes::from(bytes);
        retry(reference, || {
            self.client
                .push_manifest_raw(reference, bytes.clone(), content_type.clone())
        })
        .await?;
        Ok(())
    }

    /// The referrers list of the manifest `image` (a digest reference), and whether it
    /// came from the registry's referrers API; `None` where the tag schema has no list.
    async fn referrers(
        &self,
        image: &Reference,
        artifact_type: Option<&str>,
    ) -> Result<(Option<OciImageIndex>, ReferrersSource), ImageError> {
        let (bytes, source) = retry(image, || {
            self.client.pull_referrers_raw_capped(
                image,
                &self.auth,
                artifact_type,
                precompiled::MAX_REFERRERS_BYTES,
            )
        })
        .await?;
        let list = bytes
            .map(|bytes| precompiled::parse_list(&bytes))
            .transpose()?;
        Ok((list, source))
    }

    /// A blob's content from the registry, unhashed (the caller checks the digest).
    /// Only the registry is asked: a layer's foreign `urls` are never fetched.
    async fn blob_stream(
        &self,
        reference: &Reference,
        descriptor: &OciDescriptor,
    ) -> Result<oci_client::client::SizedStream, OciDistributionError> {
        let descriptor = &OciDescriptor {
            urls: None,
            ..descriptor.clone()
        };
        self.client
            .pull_blob_stream_unverified(reference, descriptor)
            .await
    }

    /// One attempt at a small blob (precompiled code), into memory, refused past the
    /// size `descriptor` declares and unless it matches its digest.
    async fn download_to_memory(
        &self,
        reference: &Reference,
        descriptor: &OciDescriptor,
    ) -> Result<Vec<u8>, OciDistributionError> {
        let size = usize::try_from(descriptor.size).unwrap_or(0);
        let mut stream = self.blob_stream(reference, descriptor).await?;
        let mut data = Vec::with_capacity(size);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(OciDistributionError::IoError)?;
            if data.len() + chunk.len() > size {
                return Err(larger_than_declared(descriptor, size as u64));
            }
            data.extend_from_slice(&chunk);
        }
        let actual = Digest::of(&data).to_string();
        if actual != descriptor.digest {
            // Not retried: the registry serves other content than the manifest names.
            return Err(OciDistributionError::GenericError(Some(format!(
                "digest mismatch for `{}`: content hashes to `{actual}`",
                descriptor.digest
            ))));
        }
        Ok(data)
    }

    /// One attempt at a blob: streamed from the registry to a thread that hashes it and
    /// writes it to a temp file in the store, so the network, the hashing and the disk
    /// work side by side (the caller checks the digest from that hash). With
    /// `in_memory`, a copy is kept in memory too, and that observer sees it grow.
    /// Returns that copy and the writer thread, which hands back the blob to commit once
    /// everything is written; a failed attempt's temp file is dropped.
    async fn download(
        &self,
        store: &ImageStore,
        reference: &Reference,
        descriptor: &OciDescriptor,
        blob: &Digest,
        progress: &dyn Progress,
        in_memory: Option<&dyn LayerObserver>,
    ) -> Result<(Option<Vec<u8>>, Writing), OciDistributionError> {
        // Checked by `check_sizes`; a negative size would allow no byte at all.
        let size = u64::try_from(descriptor.size).unwrap_or(0);
        progress.start(&format!("pull {}", blob.short()), size);
        // The store's own errors (a full disk, a read-only root) are not the network's:
        // they fail the pull without retrying.
        let store_error = |e: &dyn std::fmt::Display| {
            OciDistributionError::GenericError(Some(format!("cannot store the blob: {e}")))
        };
        let mut writer = store.blob_writer().map_err(|e| store_error(&e))?;
        let (chunks, mut to_write) = tokio::sync::mpsc::channel::<bytes::Bytes>(WRITE_QUEUE);
        let writing = tokio::task::spawn_blocking(move || {
            while let Some(chunk) = to_write.blocking_recv() {
                writer.write(&chunk)?;
            }
            Ok(writer)
        });
        let mut memory = in_memory.map(|observer| {
            observer.receiving(blob, &[]);
            Vec::with_capacity(size as usize)
        });
        // The writer hashes what it writes, and that digest is checked before the blob
        // is used or committed: the stream need not hash it too.
        let mut stream = self.blob_stream(reference, descriptor).await?;
        if stream.content_length.is_some_and(|length| length > size) {
            return Err(larger_than_declared(descriptor, size));
        }
        let mut received = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(OciDistributionError::IoError)?;
            received += chunk.len() as u64;
            // The digest is only checked at the end: a registry sending more than the
            // manifest declared is stopped now, not when memory or disk runs out.
            if received > size {
                return Err(larger_than_declared(descriptor, size));
            }
            progress.advance(chunk.len() as u64);
            if let (Some(memory), Some(observer)) = (memory.as_mut(), in_memory) {
                memory.extend_from_slice(&chunk);
                observer.receiving(blob, memory);
            }
            if chunks.send(chunk).await.is_err() {
                // The writer stopped on an error: the content is incomplete and unchecked,
                // so neither it nor the copy in memory may be used.
                return Err(match writing.await {
                    Ok(Err(e)) => store_error(&e),
                    Ok(Ok(_)) => store_error(&"the writer stopped early"),
                    Err(e) => store_error(&e),
                });
            }
        }
        // A body cut short is a transfer error (retried), not a digest mismatch.
        if received < size {
            return Err(OciDistributionError::IoError(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "blob `{}` ended after {received} of its {size} bytes",
                    descriptor.digest
                ),
            )));
        }
        Ok((memory, writing))
    }

    /// Fetches a manifest (or index) as raw bytes, refusing one over the size cap as it
    /// is read.
    async fn fetch_manifest(
        &self,
        reference: &Reference,
        accepted: &[&str],
    ) -> Result<bytes::Bytes, ImageError> {
        let (bytes, _) = retry(reference, || {
            self.client.pull_manifest_raw_capped(
                reference,
                &self.auth,
                accepted,
                MAX_MANIFEST_BYTES,
            )
        })
        .await?;
        Ok(bytes)
    }
}

/// What [`Registry::fetch_precompiled`] found.
#[derive(Debug, Default)]
pub struct FoundCode {
    /// The code for the keys asked for, in their order, where the image has it.
    pub code: Vec<PrecompiledCode>,
    /// Every key the image has precompiled code for.
    pub available: Vec<CodeKey>,
}

impl FoundCode {
    /// When there is no code for `key` (the default engine's), a note saying so, and
    /// what the image `reference` has code for instead.
    pub fn missing_note(&self, reference: &Reference, key: &CodeKey) -> Option<String> {
        if self.code.iter().any(|c| &c.key == key) {
            return None;
        }
        let available = if self.available.is_empty() {
            "none".to_string()
        } else {
            let keys: Vec<String> = self.available.iter().map(|k| k.to_string()).collect();
            keys.join("; ")
        };
        Some(format!(
            "`{}` carries no code precompiled for this machine ({key}); it has code for: \
             {available}",
            reference.whole()
        ))
    }
}

/// The error for a blob that sends more than the `size` its descriptor declares.
fn larger_than_declared(descriptor: &OciDescriptor, size: u64) -> OciDistributionError {
    OciDistributionError::GenericError(Some(format!(
        "blob `{}` is larger than the {size} bytes its manifest declares",
        descriptor.digest
    )))
}

/// `reference`'s repository, at the manifest `digest`.
fn by_digest(reference: &Reference, digest: &Digest) -> Reference {
    Reference::with_digest(
        reference.registry().into(),
        reference.repository().into(),
        digest.to_string(),
    )
}

/// Checks the sizes a manifest declares before anything is downloaded: the config and
/// the layer each declare one (a negative size once meant "unchecked"), within their
/// caps.
fn check_sizes(manifest: &OciImageManifest, max_layer_size: u64) -> Result<(), ImageError> {
    let blobs = std::iter::once((&manifest.config, "config", MAX_CONFIG_BYTES as u64))
        .chain(manifest.layers.iter().map(|l| (l, "layer", max_layer_size)));
    for (descriptor, what, max) in blobs {
        let Ok(size) = u64::try_from(descriptor.size) else {
            return Err(ImageError::invalid(
                "image manifest",
                format!(
                    "{what} `{}` declares a negative size `{}`",
                    descriptor.digest, descriptor.size
                ),
            ));
        };
        if size > max {
            return Err(ImageError::TooLarge {
                what,
                digest: descriptor.digest.clone(),
                size,
                max,
            });
        }
    }
    Ok(())
}

/// For an image index, the digest of its entry for the `wasm` architecture (an index
/// without one is not a Wasm image); `None` for a plain image manifest.
fn wasm_entry_of_index(reference: &str, bytes: &[u8]) -> Result<Option<Digest>, ImageError> {
    let doc: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ImageError::invalid("image manifest", e))?;
    let Some(entries) = doc.get("manifests").and_then(|m| m.as_array()) else {
        return Ok(None);
    };
    let wasm = entries
        .iter()
        .find(|e| e["platform"]["architecture"] == "wasm");
    match wasm.and_then(|e| e["digest"].as_str()) {
        Some(digest) => Ok(Some(digest.parse()?)),
        None => Err(ImageError::NotWasm {
            reference: reference.to_string(),
            reason: "it is an image index with no entry for the `wasm` platform".into(),
        }),
    }
}

/// Reports transfer progress (a progress bar on a terminal). Pushes report whole blobs,
/// pulls every chunk as it arrives.
pub trait Progress: Sync {
    /// A blob of `total` bytes starts; `what` names it (`pull 1a2b3c4d5e6f`).
    fn start(&self, what: &str, total: u64);
    /// `bytes` more were transferred.
    fn advance(&self, bytes: u64);
    /// The blob is done.
    fn finish(&self);
}

/// Progress that goes nowhere (scripts, tests, no terminal).
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _what: &str, _total: u64) {}
    fn advance(&self, _bytes: u64) {}
    fn finish(&self) {}
}

/// Checks credentials the way `docker login` does: `GET /v2/` with basic auth. A
/// registry that answers with a bearer-token challenge cannot be checked this way and
/// is accepted; a refused basic login is an error.
pub async fn check_login(
    registry: &str,
    user: &str,
    password: &str,
    insecure: bool,
) -> Result<(), ImageError> {
    let scheme = if insecure || is_loopback(registry) {
        "http"
    } else {
        "https"
    };
    let failed = |reason: String| ImageError::Registry {
        reference: registry.to_string(),
        reason,
    };
    install_tls_provider();
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| failed(e.to_string()))?;
    let response = client
        .get(format!("{scheme}://{registry}/v2/"))
        .basic_auth(user, Some(password))
        .send()
        .await
        .map_err(|e| {
            failed(if e.is_connect() {
                format!("cannot connect to `{registry}`")
            } else {
                one_line(&e.to_string())
            })
        })?;
    let challenge = response
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    match response.status().as_u16() {
        200..=299 => Ok(()),
        401 if challenge.starts_with("bearer") => Ok(()),
        401 | 403 => Err(failed("login failed: wrong username or password".into())),
        code => Err(failed(format!("unexpected HTTP status {code} from `/v2/`"))),
    }
}

/// Makes ring the process's rustls crypto provider, which the registry clients use
/// (wedge carries no other; one already installed stays).
fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A self-signed certificate trusted by plain-HTTP clients only, where no TLS
/// connection is ever made (see [`Registry::new`]).
fn placeholder_root() -> oci_client::client::Certificate {
    oci_client::client::Certificate {
        encoding: oci_client::client::CertificateEncoding::Pem,
        data: include_bytes!("../assets/plain-http-placeholder.pem").to_vec(),
    }
}

/// Whether a registry host is on this machine (plain HTTP allowed).
pub fn is_loopback(registry: &str) -> bool {
    let host = registry.rsplit_once(':').map_or(registry, |(h, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            registry
        }
    });
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Runs `op`, retrying transient failures with exponential backoff, and turns the
/// final error into an [`ImageError`].
async fn retry<T, F, Fut>(reference: &Reference, mut op: F) -> Result<T, ImageError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, OciDistributionError>>,
{
    let mut wait = FIRST_BACKOFF;
    for attempt in 1.. {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt < ATTEMPTS && is_transient(&e) => {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(e) => return Err(registry_error(reference, e)),
        }
    }
    unreachable!("the loop returns on the last attempt")
}

fn is_transient(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::RequestError(r) => match r.status() {
            Some(status) => status.is_server_error(),
            None => r.is_connect() || r.is_timeout() || r.is_request() || r.is_body(),
        },
        OciDistributionError::ServerError { code, .. } => *code >= 500,
        OciDistributionError::IoError(_) => true,
        _ => false,
    }
}

fn registry_error(reference: &Reference, e: OciDistributionError) -> ImageError {
    let registry = reference.resolve_registry().to_string();
    let reason = match &e {
        OciDistributionError::RequestError(r) if r.is_connect() => {
            format!("cannot connect to `{registry}`")
        }
        OciDistributionError::RequestError(r)
            if matches!(r.status().map(|s| s.as_u16()), Some(401 | 403)) =>
        {
            format!("not authorized by `{registry}` (run `wedge login {registry}`)")
        }
        OciDistributionError::RequestError(r) if r.status().map(|s| s.as_u16()) == Some(404) => {
            format!("`{}` not found", reference.whole())
        }
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => {
            format!("not authorized by `{registry}` (run `wedge login {registry}`)")
        }
        OciDistributionError::GenericError(Some(message)) => message.clone(),
        OciDistributionError::ImageManifestNotFoundError(_) => {
            format!("`{}` not found", reference.whole())
        }
        OciDistributionError::RegistryError { envelope, .. }
            if envelope
                .errors
                .iter()
                .any(|e| format!("{:?}", e.code).contains("Unknown")) =>
        {
            format!("`{}` not found", reference.whole())
        }
        other => one_line(&other.to_string()),
    };
    ImageError::Registry {
        reference: reference.whole(),
        reason,
    }
}

/// An error and what caused it, on one line (`builder error: no CA certificates …`).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = one_line(&e.to_string());
    let mut cause = e.source();
    while let Some(inner) = cause {
        text = format!("{text}: {}", one_line(&inner.to_string()));
        cause = inner.source();
    }
    text
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_registries_get_plain_http() {
        for host in [
            "localhost:5000",
            "127.0.0.1:5000",
            "[::1]:5000",
            "localhost",
            "127.1.2.3",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "registry.example:5000",
            "10.0.0.1:5000",
            "docker.io",
            "localhost.evil.com",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
