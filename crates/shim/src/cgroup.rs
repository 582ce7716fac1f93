//! The container's control group: the one its spec names (`linux.cgroupsPath`, which
//! containerd's CRI plugin puts under the pod's cgroup), created with the spec's
//! resource limits (memory, CPU, pids), as runc does. The kubelet's accounting, its
//! memory limits and OOM handling, and `stats` then see a Wasm container as they see
//! any other.

use crate::error::ShimError;
use cgroups_rs::CgroupPid;
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::{Cgroup, hierarchies};
use oci_spec::runtime::Spec;

/// Creates the spec's cgroup, applies its resource limits and moves the calling
/// process into it. A spec without a cgroup path leaves the process where it is.
pub fn join(spec: &Spec) -> Result<(), ShimError> {
    let Some(path) = cgroup_path(spec) else {
        return Ok(());
    };
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        ShimError::Host(format!("cgroup `{path}`: cannot {what}: {e}"))
    };
    let cgroup = Cgroup::new(hierarchies::auto(), &path).map_err(|e| fail("create it", &e))?;
    if let Some(resources) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) {
        containerd_shim::cgroup::update_resources(&cgroup, resources)
            .map_err(|e| fail("set its limits", &e))?;
    }
    cgroup
        .add_task_by_tgid(CgroupPid::from(u64::from(std::process::id())))
        .map_err(|e| fail("join it", &e))
}

/// The memory the spec's cgroup is charged for now (the process's pages and the page
/// cache it filled), when it has a memory controller.
pub fn memory_usage(spec: &Spec) -> Option<u64> {
    let cgroup = Cgroup::load(hierarchies::auto(), cgroup_path(spec)?);
    let memory: &MemController = cgroup.controller_of()?;
    Some(memory.memory_stat().usage_in_bytes)
}

/// Removes the spec's cgroup once its process is gone (nothing to do if it never
/// existed or is gone already).
pub fn remove(spec: &Spec) {
    if let Some(path) = cgroup_path(spec) {
        let cgroup = Cgroup::load(hierarchies::auto(), &path);
        if let Err(e) = cgroup.delete() {
            log::warn!("cannot remove cgroup `{path}`: {e}");
        }
    }
}

/// The cgroup's path relative to the hierarchy's root. A systemd-style path
/// (`slice:prefix:name`, as containerd writes with `SystemdCgroup = true`) is mapped
/// to the directory systemd would give it, as runc's cgroupfs driver does.
fn cgroup_path(spec: &Spec) -> Option<String> {
    let path = spec.linux().as_ref()?.cgroups_path().as_ref()?;
    let path = path.to_str()?;
    if path.is_empty() {
        return None;
    }
    let relative = match path.split(':').collect::<Vec<_>>().as_slice() {
        [slice, prefix, name] => format!("{}/{prefix}-{name}.scope", expand_slice(slice)),
        _ => path.to_string(),
    };
    Some(relative.trim_start_matches('/').to_string())
}

/// `a-b-c.slice` → `a.slice/a-b.slice/a-b-c.slice`, as systemd nests slices.
fn expand_slice(slice: &str) -> String {
    let name = slice.strip_suffix(".slice").unwrap_or(slice);
    if name.is_empty() || name == "-" {
        return String::new();
    }
    let mut levels = Vec::new();
    let mut prefix = String::new();
    for part in name.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        levels.push(format!("{prefix}.slice"));
    }
    levels.join("/")
}

#[cfg(test)]
mod tests {
    use super::expand_slice;

    #[test]
    fn systemd_slices_nest_by_their_dashes() {
        assert_eq!(
            expand_slice("kubepods-burstable-pod12.slice"),
            "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod12.slice"
        );
        assert_eq!(expand_slice("system.slice"), "system.slice");
        assert_eq!(expand_slice("-.slice"), "");
    }
}
