//! The Linux namespaces a container's process lives in: the pod's network, IPC and
//! UTS namespaces, which the spec names by path (the sandbox process's own), or new
//! ones for the sandbox process itself. Called before the process starts any thread:
//! `setns` moves only the calling thread.

use crate::error::ShimError;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::os::fd::AsRawFd;

/// Joins the network, IPC and UTS namespaces `spec` names by path and, when `create`,
/// creates new ones for those it lists without a path (the sandbox container). The
/// PID and mount namespaces are left as they are: a Wasm guest sees neither.
pub fn enter(spec: &Spec, create: bool) -> Result<(), ShimError> {
    let namespaces = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    let mut unshare = 0;
    for ns in namespaces {
        let flag = match ns.typ() {
            LinuxNamespaceType::Network => libc::CLONE_NEWNET,
            LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
            LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
            _ => continue,
        };
        match ns.path() {
            Some(path) => {
                let file = std::fs::File::open(path)
                    .map_err(|e| ShimError::Host(format!("namespace `{}`: {e}", path.display())))?;
                // SAFETY: `file` is an open namespace descriptor for the whole call.
                if unsafe { libc::setns(file.as_raw_fd(), flag) } != 0 {
                    return Err(ShimError::Host(format!(
                        "cannot join namespace `{}`: {}",
                        path.display(),
                        std::io::Error::last_os_error()
                    )));
                }
            }
            None if create => unshare |= flag,
            None => {}
        }
    }
    // SAFETY: plain system call on flags built above.
    if unshare != 0 && unsafe { libc::unshare(unshare) } != 0 {
        return Err(ShimError::Host(format!(
            "cannot create the pod's namespaces: {}",
            std::io::Error::last_os_error()
        )));
    }
    if let Some(name) = spec
        .hostname()
        .as_deref()
        .filter(|_| unshare & libc::CLONE_NEWUTS != 0)
    {
        // SAFETY: the pointer and length describe `name`'s bytes.
        if unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) } != 0 {
            return Err(ShimError::Host(format!(
                "cannot set the hostname `{name}`: {}",
                std::io::Error::last_os_error()
            )));
        }
    }
    Ok(())
}
