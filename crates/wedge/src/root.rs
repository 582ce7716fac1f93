//! Where wedge keeps its data.

use std::path::PathBuf;

/// The data root: `--root` / `WEDGE_ROOT` if given, else the daemon's default
/// (`/var/lib/wedge` as root, `$XDG_DATA_HOME/wedge` otherwise), so `wedge` and
/// `wedged` share images and code.
pub fn data_root(flag: Option<PathBuf>) -> PathBuf {
    flag.unwrap_or_else(wedge_daemon::paths::default_root)
}

pub use wedge_daemon::paths::{
    auth_file, code_cache as code_cache_dir, image_store as image_store_dir,
    keyvalue as keyvalue_db,
};
