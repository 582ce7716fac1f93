//! File modes: the data root private to its owner (folders 0700, files 0600), and the
//! daemon's own process settings. The socket checks and the root's creation, which the
//! CLI shares, are `wedge_client::local`.

use crate::DaemonError;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use wedge_client::local::{DIR_MODE, FILE_MODE};

/// From now on, files and folders this process creates are private to its user (the
/// mode bits for group and others are cleared), as `UMask=0077` would make them.
pub fn private_umask() {
    // SAFETY: umask has no preconditions and cannot fail.
    unsafe { libc::umask(0o077) };
}

/// Makes an existing data root private: the root and every folder under it 0700, every
/// file 0600 (a root made by an older wedge, or under another umask). Symbolic links
/// are not followed. Returns how many entries were changed.
pub fn make_root_private(root: &Path) -> Result<usize, DaemonError> {
    let fail = |path: &Path, e: std::io::Error| {
        DaemonError::Internal(format!("cannot make `{}` private: {e}", path.display()))
    };
    let mut changed = 0;
    let mut folders = vec![root.to_path_buf()];
    while let Some(dir) = folders.pop() {
        changed += set_mode(&dir, DIR_MODE).map_err(|e| fail(&dir, e))? as usize;
        let entries = std::fs::read_dir(&dir).map_err(|e| fail(&dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| fail(&dir, e))?;
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                folders.push(path);
            } else if kind.is_file() {
                changed += set_mode(&path, FILE_MODE).map_err(|e| fail(&path, e))? as usize;
            }
        }
    }
    Ok(changed)
}

/// Sets the permission bits of `path` to `mode` when they differ; whether it changed.
fn set_mode(path: &Path, mode: u32) -> std::io::Result<bool> {
    let meta = std::fs::symlink_metadata(path)?;
    if meta.mode() & 0o7777 == mode {
        return Ok(false);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(true)
}

/// Raises this process's soft limit on open files to its hard limit, so that the
/// daemon's own sockets, logs and database are not the first to run out. Returns the
/// limit now in force.
pub fn raise_open_files_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        limit = raised;
    }
    // `rlim_t` is `u64` here but 32 bits wide on 32-bit targets (armv7).
    #[allow(clippy::unnecessary_cast)]
    let limit = limit.rlim_cur as u64;
    Ok(limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wedge_client::local::create_private_root;

    #[test]
    fn roots_become_private() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("a/root");
        create_private_root(&root).unwrap();
        let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(mode(&root), 0o700);
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/f"), "x").unwrap();
        std::fs::set_permissions(root.join("sub/f"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("link")).unwrap();
        assert!(make_root_private(&root).unwrap() >= 2);
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&root.join("sub/f")), 0o600);
        assert_eq!(make_root_private(&root).unwrap(), 0);
    }
}
