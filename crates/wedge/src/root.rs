//! Where wedge keeps its data.

use std::path::PathBuf;

/// The data root: `--root` / `WEDGE_ROOT` if given, else the daemon's default
/// (`/var/lib/wedge` as root, `$XDG_DATA_HOME/wedge` otherwise), so `wedge` and
/// `wedged` share images and code.
pub fn data_root(flag: Option<PathBuf>) -> PathBuf {
    flag.unwrap_or_else(wedge_daemon::paths::default_root)
}

/// The AOT code cache folder under a data root.
pub fn code_cache_dir(root: &std::path::Path) -> PathBuf {
    root.join("cache").join("aot")
}

/// The local OCI image store under a data root.
pub fn image_store_dir(root: &std::path::Path) -> PathBuf {
    root.join("images")
}

/// wedge's registry credentials file under a data root.
pub fn auth_file(root: &std::path::Path) -> PathBuf {
    root.join("auth.json")
}
