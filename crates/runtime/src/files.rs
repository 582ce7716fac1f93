//! The cap on handles one instance holds at once (files, directories, sockets), so a
//! guest with a volume or a listening socket cannot take the host's descriptors.
//!
//! A component's handles of every kind (files, sockets, streams, pollables) live in its
//! resource table, which is capped at [`crate::Policy::max_files`] plus
//! [`COMPONENT_RESERVE`]; opening past it fails in the guest. Core modules (WASI
//! preview 1) are not capped yet: wasmtime-wasi 48 keeps their table private and its
//! functions cannot be wrapped from the host (they read the calling instance's memory).

/// Table entries a component gets beyond its file cap, for its standard streams and
/// what the host keeps for it (pollables, streams of open files).
pub(crate) const COMPONENT_RESERVE: usize = 64;

/// The resource table of a component instance under `policy`: its file cap plus
/// [`COMPONENT_RESERVE`] entries.
pub(crate) fn component_table(policy: &crate::Policy) -> wasmtime::component::ResourceTable {
    let mut table = wasmtime::component::ResourceTable::new();
    table.set_max_capacity((policy.max_files as usize).saturating_add(COMPONENT_RESERVE));
    table
}
