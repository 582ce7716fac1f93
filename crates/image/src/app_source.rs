//! What an operator points at — a Wasm file, a `wedge.toml`, a folder holding one, or an
//! image in the local store — and what the app gets once the operator's flags are laid
//! over what it asks for. Shared by `wedge run` and the daemon.

use crate::artifact::{self, WasmImage};
use crate::{ImageError, ImageStore, StoredImage};
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
    /// The app's name: from its manifest or image, else its file's name without `.wasm`
    /// (the default key-value namespace).
    pub name: String,
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
    /// [`Requested::limits_within`](crate::Requested::limits_within)), its requested env
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
                let limits = requested.limits_within(flags.limits, grant_requested);
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
        Launch { grants, argv, name }
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
