//! File modes and ownership: the data root private to its owner (folders 0700, files
//! 0600), and the socket's folder and the socket checked before they are trusted, as
//! ssh-agent and rootless Docker do.

use crate::DaemonError;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

/// Mode of the data root and every folder under it.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file under the data root.
pub const FILE_MODE: u32 = 0o600;

/// This process's effective user id.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// From now on, files and folders this process creates are private to its user (the
/// mode bits for group and others are cleared), as `UMask=0077` would make them.
pub fn private_umask() {
    // SAFETY: umask has no preconditions and cannot fail.
    unsafe { libc::umask(0o077) };
}

/// Creates the data root with mode 0700 when it is missing (its parents as usual).
pub fn create_private_root(root: &Path) -> std::io::Result<()> {
    if root.is_dir() {
        return Ok(());
    }
    if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::DirBuilder::new().mode(DIR_MODE).create(root) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
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

/// Checks the folder that holds (or will hold) the daemon's socket before it is used:
/// a real folder (not a symbolic link), owned by this user or root, and not writable by
/// other users unless sticky (as `/tmp` is). A folder another user made, or may write
/// in, could hold a fake daemon's socket that receives the secrets clients send.
pub fn check_socket_dir(dir: &Path) -> Result<(), DaemonError> {
    let refuse = |why: String| {
        DaemonError::Conflict(format!(
            "refusing the socket folder `{}`: {why}",
            dir.display()
        ))
    };
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| DaemonError::Internal(format!("cannot check `{}`: {e}", dir.display())))?;
    if !meta.file_type().is_dir() {
        return Err(refuse("it is not a folder".into()));
    }
    check_owner(meta.uid()).map_err(refuse)?;
    let mode = meta.mode();
    if mode & 0o022 != 0 && mode & 0o1000 == 0 {
        return Err(refuse(format!(
            "it is writable by other users (mode {:o})",
            mode & 0o7777
        )));
    }
    Ok(())
}

/// Checks an existing socket before it is connected to or replaced: owned by this user
/// or root.
pub fn check_socket(path: &Path) -> Result<(), DaemonError> {
    let meta = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        other => other.map_err(|e| {
            DaemonError::Internal(format!("cannot check `{}`: {e}", path.display()))
        })?,
    };
    check_owner(meta.uid()).map_err(|why| {
        DaemonError::Conflict(format!("refusing the socket `{}`: {why}", path.display()))
    })
}

fn check_owner(uid: u32) -> Result<(), String> {
    let me = euid();
    if uid == me || uid == 0 {
        Ok(())
    } else {
        Err(format!(
            "it is owned by uid {uid}, not by this user (uid {me})"
        ))
    }
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
    let limit: u64 = limit.rlim_cur;
    Ok(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn socket_folders_others_may_write_in_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("s");
        std::fs::create_dir(&sock).unwrap();
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o700)).unwrap();
        check_socket_dir(&sock).unwrap();
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = check_socket_dir(&sock).unwrap_err().to_string();
        assert!(err.contains("writable by other users (mode 777)"), "{err}");
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o1777)).unwrap();
        check_socket_dir(&sock).unwrap();
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&sock, &link).unwrap();
        assert!(check_socket_dir(&link).is_err());
    }
}
