//! What the user pointed at: a Wasm file, a `wedge.toml`, a folder holding one, or an
//! image in the local store.

use anyhow::Context;
use std::path::{Path, PathBuf};
use wedge_image::artifact::{self, WasmImage};
use wedge_image::{ImageError, ImageStore};
use wedge_manifest::Manifest;
use wedge_runtime::App;

/// The manifest file name looked for in an app folder.
pub const MANIFEST_FILE: &str = "wedge.toml";

/// An app to run or inspect.
pub struct Source {
    /// The Wasm (or `.cwasm`) file.
    pub wasm: PathBuf,
    /// Its manifest, when the app was given as a manifest or folder.
    pub manifest: Option<Manifest>,
    /// The image, when the app was given as an image reference.
    pub image: Option<WasmImage>,
    /// The app compiled with default engine settings, when it was just pulled.
    pub pulled: Option<App>,
}

impl Source {
    /// Resolves `path`: a folder means `<folder>/wedge.toml`, a `.toml` file is a
    /// manifest, anything else is the Wasm file itself.
    pub fn open(path: &Path) -> anyhow::Result<Source> {
        let manifest_path = if path.is_dir() {
            let candidate = path.join(MANIFEST_FILE);
            if !candidate.is_file() {
                anyhow::bail!(
                    "`{}` is a folder without a `{MANIFEST_FILE}`",
                    path.display()
                );
            }
            Some(candidate)
        } else if path.extension().is_some_and(|e| e == "toml") {
            Some(path.to_path_buf())
        } else {
            None
        };
        match manifest_path {
            Some(p) => {
                let manifest = Manifest::load(&p).context("invalid manifest")?;
                Ok(Source {
                    wasm: manifest.app.wasm.clone(),
                    manifest: Some(manifest),
                    image: None,
                    pulled: None,
                })
            }
            None => Ok(Source {
                wasm: path.to_path_buf(),
                manifest: None,
                image: None,
                pulled: None,
            }),
        }
    }

    /// Like [`Source::open`] for an existing path; otherwise `arg` names an image in
    /// the local store under `root`.
    pub fn open_or_image(arg: &str, root: &Path) -> anyhow::Result<Source> {
        let path = Path::new(arg);
        let looks_like_a_path = arg.starts_with(['/', '.'])
            || [".wasm", ".cwasm", ".toml"]
                .iter()
                .any(|e| arg.ends_with(e));
        if path.exists() || looks_like_a_path {
            return Source::open(path);
        }
        let not_found = || {
            anyhow::anyhow!("`{arg}`: no such file, and no image by that name in the local store")
        };
        let Ok(reference) = wedge_image::parse_reference(arg) else {
            return Err(not_found());
        };
        let store = ImageStore::open(crate::root::image_store_dir(root))?;
        let (image, pulled) = match store.resolve(&reference) {
            Ok(image) => (image, None),
            // Not local: pull it, as `docker run` does.
            Err(ImageError::NotFound(_)) => super::registry::pull_image(root, &reference, false)
                .map_err(|e| {
                    anyhow::anyhow!(
                        "`{arg}`: no such file, and no such image locally; pulling it failed: {e:#}"
                    )
                })
                .map(|(image, app)| (image, Some(app)))?,
            Err(e) => return Err(e.into()),
        };
        let image = artifact::open(&store, image)?;
        Ok(Source {
            wasm: store.blob_path(&image.layer),
            manifest: None,
            image: Some(image),
            pulled,
        })
    }
}
