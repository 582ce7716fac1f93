//! Where wedge keeps its data.

use std::path::PathBuf;

/// The data root: `--root` / `WEDGE_ROOT` if given, else the daemon's default
/// (`/var/lib/wedge` as root, `$XDG_DATA_HOME/wedge` otherwise), so `wedge` and
/// `wedged` share images and code.
/// A root that does not exist yet is created private to its user (mode 0700); a
/// failure here is left to the command that uses the root to report.
pub fn data_root(flag: Option<PathBuf>) -> PathBuf {
    let root = flag.unwrap_or_else(wedge_client::paths::default_root);
    let _ = wedge_client::local::create_private_root(&root);
    root
}

pub use wedge_client::paths::{
    auth_file, code_cache as code_cache_dir, image_store as image_store_dir,
    keyvalue as keyvalue_db,
};
