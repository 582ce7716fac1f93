//! Where wedge keeps its data.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// The data root: `--root` / `WEDGE_ROOT` if given, `/var/lib/wedge` when running as
/// root, otherwise `$XDG_DATA_HOME/wedge` (default `~/.local/share/wedge`).
pub fn data_root(flag: Option<PathBuf>) -> PathBuf {
    if let Some(root) = flag {
        return root;
    }
    let is_root = std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    if is_root {
        return PathBuf::from("/var/lib/wedge");
    }
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("wedge");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/wedge")
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
