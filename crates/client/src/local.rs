//! Checks made on this machine before the daemon's socket is trusted, by the CLI and by
//! the daemon alike, as ssh-agent and rootless Docker do, and the private data root.

use crate::ClientError;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
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

/// Checks the folder that holds (or will hold) the daemon's socket before it is used:
/// a real folder (not a symbolic link), owned by this user or root, and not writable by
/// other users unless sticky (as `/tmp` is). A folder another user made, or may write
/// in, could hold a fake daemon's socket that receives the secrets clients send.
pub fn check_socket_dir(dir: &Path) -> Result<(), ClientError> {
    let refuse = |why: String| {
        ClientError::Refused(format!(
            "refusing the socket folder `{}`: {why}",
            dir.display()
        ))
    };
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| ClientError::Io(format!("cannot check `{}`: {e}", dir.display())))?;
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
pub fn check_socket(path: &Path) -> Result<(), ClientError> {
    let meta = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        other => {
            other.map_err(|e| ClientError::Io(format!("cannot check `{}`: {e}", path.display())))?
        }
    };
    check_owner(meta.uid()).map_err(|why| {
        ClientError::Refused(format!("refusing the socket `{}`: {why}", path.display()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

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
