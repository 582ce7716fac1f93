//! What the user pointed at for an in-process run: a path, or an image in the local
//! store, pulled first when it is missing (as `docker run` does).

use std::path::Path;
use wedge_image::app_source::AppSource;
use wedge_image::{ImageError, ImageStore};
use wedge_runtime::App;

/// An app to run, and its code when it was compiled by a pull just now.
pub struct Source {
    /// The app.
    pub app: AppSource,
    /// The app compiled with default engine settings, when it was just pulled.
    pub pulled: Option<App>,
}

impl Source {
    /// An existing path (or one that looks like a path) is opened as a file; otherwise
    /// `arg` names an image in the local store under `root`.
    pub fn open_or_image(arg: &str, root: &Path) -> anyhow::Result<Source> {
        if AppSource::looks_like_path(arg) {
            return Ok(Source {
                app: AppSource::open(Path::new(arg))?,
                pulled: None,
            });
        }
        let not_found = || {
            anyhow::anyhow!("`{arg}`: no such file, and no image by that name in the local store")
        };
        let Ok(reference) = wedge_image::parse_reference(arg) else {
            return Err(not_found());
        };
        let dir = crate::root::image_store_dir(root);
        // A root without a store holds no images; the pull creates the store.
        let local = if ImageStore::exists(&dir) {
            ImageStore::open(&dir)?.resolve(&reference)
        } else {
            Err(ImageError::NotFound(reference.whole()))
        };
        let (image, pulled) = match local {
            Ok(image) => (image, None),
            Err(ImageError::NotFound(_)) => super::registry::pull_image(
                root,
                &reference,
                &super::registry::PullOptions::from_env()?,
            )
            .map_err(|e| {
                anyhow::anyhow!(
                    "`{arg}`: no such file, and no such image locally; pulling it failed: {e:#}"
                )
            })?,
            Err(e) => return Err(e.into()),
        };
        Ok(Source {
            app: AppSource::from_image(&ImageStore::open(&dir)?, image)?,
            pulled,
        })
    }
}
