//! What an operator points at — a Wasm file, a `wedge.toml`, a folder holding one, or an
//! image in the local store — and what the app gets once the operator's flags are laid
//! over what it asks for. Shared by `wedge run` and the daemon.

use crate::artifact::{self, WasmImage};
use crate::{ImageError, ImageStore, StoredImage};
use sha2::Digest as _;
use std::path::{Path, PathBuf};
use wedge_manifest::{Grants, Manifest};

/// The manifest file name looked for in an app folder.
pub const MANIFEST_FILE: &str = "wedge.toml";

/// An app to run or inspect.
#[derive(Debug, Clone)]
pub struct AppSource {
    /// The Wasm (or `.cwasm`) file.
    pub wasm: PathBuf,
    /// Its manifest, when the app was given as a manifest or folder.
    pub manifest: Option<Manifest>,
    /// The image, when the app was given as an image reference.
    pub image: Option<WasmImage>,
}

/// What one run of an app gets: its grants and its argv.
pub struct Launch {
    /// The operator's flags laid over the manifest's grants or the image's request.
    pub grants: Grants,
    /// The program name followed by the app's arguments.
    pub argv: Vec<String>,
    /// The app's name: from its manifest or image, else its file's name without `.wasm`.
    pub name: String,
    /// The default key-value namespace, which the app cannot choose: derived from the
    /// canonical path of its Wasm file, or from its image's repository (registry and
    /// path, without tag or digest), as `LABEL.HASH` (see [`AppSource::kv_namespace`]).
    pub kv_namespace: String,
}

impl AppSource {
    /// Whether `arg` names a file rather than an image: it exists, starts with `/` or
    /// `.`, or ends in `.wasm`, `.cwasm` or `.toml`.
    pub fn looks_like_path(arg: &str) -> bool {
        Path::new(arg).exists()
            || arg.starts_with(['/', '.'])
            || [".wasm", ".cwasm", ".toml"]
                .iter()
                .any(|e| arg.ends_with(e))
    }

    /// Resolves `path`: a folder means `<folder>/wedge.toml`, a `.toml` file is a
    /// manifest, anything else is the Wasm file itself.
    pub fn open(path: &Path) -> Result<AppSource, ImageError> {
        let manifest_path = if path.is_dir() {
            let candidate = path.join(MANIFEST_FILE);
            if !candidate.is_file() {
                return Err(ImageError::Invalid {
                    what: "app",
                    reason: format!(
                        "`{}` is a folder without a `{MANIFEST_FILE}`",
                        path.display()
                    ),
                });
            }
            Some(candidate)
        } else if path.extension().is_some_and(|e| e == "toml") {
            Some(path.to_path_buf())
        } else {
            None
        };
        let Some(manifest_path) = manifest_path else {
            return Ok(AppSource {
                wasm: path.to_path_buf(),
                manifest: None,
                image: None,
            });
        };
        let manifest = Manifest::load(&manifest_path).map_err(|e| ImageError::Invalid {
            what: "manifest",
            reason: e.to_string(),
        })?;
        Ok(AppSource {
            wasm: manifest.app.wasm.clone(),
            manifest: Some(manifest),
            image: None,
        })
    }

    /// The app of an image in `store`.
    pub fn from_image(store: &ImageStore, image: StoredImage) -> Result<AppSource, ImageError> {
        let image = artifact::open(store, image)?;
        Ok(AppSource {
            wasm: store.blob_path(&image.layer),
            manifest: None,
            image: Some(image),
        })
    }

    /// Lays `flags` over the manifest's grants or, for an image, over its request: its
    /// requested limits may only lower the operator's (or the defaults; see
    /// [`Limits::lowered_by`](wedge_manifest::Limits::lowered_by)), its requested env
    /// and network apply only when `grant_requested`. Puts the program name and packaged
    /// arguments before `args`.
    pub fn launch(&self, flags: Grants, grant_requested: bool, args: Vec<String>) -> Launch {
        let (grants, mut argv, program, name) = match (&self.manifest, &self.image) {
            (Some(m), _) => (
                m.grants.clone().overlay(flags),
                m.app.args.clone(),
                file_name(&self.wasm),
                m.app.name.clone(),
            ),
            (None, Some(image)) => {
                let requested = &image.requested;
                let name = if requested.name.is_empty() {
                    "app".to_string()
                } else {
                    requested.name.clone()
                };
                let limits = flags.limits.lowered_by(requested.limits, grant_requested);
                let mut grants = requested.grants(grant_requested).overlay(flags);
                grants.limits = limits;
                (grants, requested.args.clone(), name.clone(), name)
            }
            (None, None) => (
                flags,
                Vec::new(),
                file_name(&self.wasm),
                file_stem(&self.wasm),
            ),
        };
        argv.insert(0, program);
        argv.extend(args);
        Launch {
            grants,
            argv,
            name,
            kv_namespace: self.kv_namespace(),
        }
    }

    /// The default key-value namespace: something the app cannot choose (not its file
    /// name, manifest name or image title, which another app could copy), so two apps
    /// share data only when the operator names one namespace for both. For a file or a
    /// manifest, the canonical path of the Wasm file; for an image, its repository
    /// (`registry/path`, so a new tag keeps the data). Written `LABEL.HASH`: the file
    /// stem or the repository's last part, then 16 hex digits of the SHA-256 of the
    /// whole identity.
    pub fn kv_namespace(&self) -> String {
        let (label, identity) = match &self.image {
            Some(image) => {
                let repository = repository(&image.image.reference);
                let last = repository.rsplit('/').next().unwrap_or("app").to_string();
                (last, format!("image:{repository}"))
            }
            None => {
                let path = std::fs::canonicalize(&self.wasm).unwrap_or_else(|_| self.wasm.clone());
                (file_stem(&self.wasm), format!("file:{}", path.display()))
            }
        };
        let label: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .take(64)
            .collect();
        let digest = sha2::Sha256::digest(identity.as_bytes());
        let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("{label}.{hash}")
    }
}

/// The repository of an image reference: `registry/path` without tag or digest.
fn repository(reference: &str) -> String {
    match crate::parse_reference(reference) {
        Ok(r) => format!("{}/{}", r.registry(), r.repository()),
        Err(_) => reference.to_string(),
    }
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map_or_else(|| "app".into(), |n| n.to_string_lossy().into_owned())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| "app".into(), |n| n.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_app(path: &Path) -> AppSource {
        AppSource {
            wasm: path.to_path_buf(),
            manifest: None,
            image: None,
        }
    }

    #[test]
    fn the_default_namespace_comes_from_the_canonical_path_not_the_file_name() {
        let dir = std::env::temp_dir().join(format!("wedge-ns-{}", std::process::id()));
        for sub in ["victim", "thief"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
            std::fs::write(dir.join(sub).join("sensor.wasm"), b"\0asm").unwrap();
        }
        let victim = file_app(&dir.join("victim/sensor.wasm")).kv_namespace();
        let thief = file_app(&dir.join("thief/sensor.wasm")).kv_namespace();
        assert_ne!(victim, thief);
        assert!(victim.starts_with("sensor."), "{victim}");
        // The same file by another path is the same app.
        let again = file_app(&dir.join("thief/../victim/./sensor.wasm")).kv_namespace();
        assert_eq!(victim, again);
        wedge_manifest::KeyValueGrant::validate_namespace(&victim).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_images_namespace_is_its_repository() {
        assert_eq!(
            repository("localhost:5000/sensors/logger:1.2.0"),
            "localhost:5000/sensors/logger"
        );
        assert_eq!(
            repository("localhost:5000/sensors/logger:2.0"),
            repository(
                "localhost:5000/sensors/logger@sha256:0000000000000000000000000000000000000000000000000000000000000000"
            )
        );
        assert_ne!(
            repository("localhost:5000/a/sensor:1"),
            repository("localhost:5000/b/sensor:1")
        );
    }
}
