//! What the user pointed at: a Wasm file, a `wedge.toml`, or a folder holding one.

use anyhow::Context;
use std::path::{Path, PathBuf};
use wedge_manifest::Manifest;

/// The manifest file name looked for in an app folder.
pub const MANIFEST_FILE: &str = "wedge.toml";

/// An app to run or inspect.
pub struct Source {
    /// The Wasm (or `.cwasm`) file.
    pub wasm: PathBuf,
    /// Its manifest, when the app was given as a manifest or folder.
    pub manifest: Option<Manifest>,
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
                })
            }
            None => Ok(Source {
                wasm: path.to_path_buf(),
                manifest: None,
            }),
        }
    }
}
