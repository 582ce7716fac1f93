//! Default places: the daemon's socket, and the files under its data root.

use std::path::{Path, PathBuf};

/// Whether this process runs as root.
fn is_root() -> bool {
    crate::local::euid() == 0
}

/// The daemon's socket when none is given: `/run/wedge/wedged.sock` as root, otherwise
/// `$XDG_RUNTIME_DIR/wedge/wedged.sock`, or without it `$TMPDIR/wedge-$UID/wedged.sock`
/// (`/tmp/wedge-$UID/…`): a folder in a shared place, which the daemon and the client
/// check before trusting ([`crate::local::check_socket_dir`]).
pub fn default_socket() -> PathBuf {
    if is_root() {
        return PathBuf::from("/run/wedge/wedged.sock");
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("wedge/wedged.sock"),
        None => {
            let uid = crate::local::euid();
            std::env::temp_dir().join(format!("wedge-{uid}/wedged.sock"))
        }
    }
}

/// The local OCI image store under a data root.
pub fn image_store(root: &Path) -> PathBuf {
    root.join("images")
}

/// The AOT code cache under a data root.
pub fn code_cache(root: &Path) -> PathBuf {
    root.join("cache").join("aot")
}

/// wedge's registry credentials file under a data root.
pub fn auth_file(root: &Path) -> PathBuf {
    root.join("auth.json")
}

/// The key-value store (`wasi:keyvalue` data of every app) under a data root, shared by
/// `wedge run` and the daemon.
pub fn keyvalue(root: &Path) -> PathBuf {
    root.join("keyvalue.db")
}

/// The state database under a data root.
pub fn database(root: &Path) -> PathBuf {
    root.join("wedged.db")
}

/// A container's live log file under a data root (rotated ones add `.1`, `.2` …).
/// Files rather than a folder per container: creating and removing folders serializes
/// on the parent folder's lock, and on a filesystem mounted with `discard` a removal
/// waits for the disk.
pub fn container_log(root: &Path, id: &str) -> PathBuf {
    root.join("containers").join(format!("{id}.log"))
}

/// The data root when none is given: `/var/lib/wedge` as root, otherwise
/// `$XDG_DATA_HOME/wedge` (default `~/.local/share/wedge`).
pub fn default_root() -> PathBuf {
    if is_root() {
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
