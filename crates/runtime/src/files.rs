//! The cap on handles one instance holds at once (files, directories, sockets), so a
//! guest with a volume or a listening socket cannot take the host's descriptors.
//!
//! - A component's handles of every kind (files, sockets, streams, pollables) live in
//!   its resource table, which is capped at [`crate::Policy::max_files`] plus
//!   [`COMPONENT_RESERVE`]; opening past it fails in the guest.
//! - A core module (WASI preview 1) opens files and directories only through
//!   `path_open`, which [`cap_path_open`] replaces: past the cap it answers `EMFILE`
//!   ("too many open files"), as a POSIX host does at its descriptor limit.

use crate::sandbox::Sandbox;
use wasmtime::{AsContextMut, Caller, Extern, Linker};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::filesystem::Descriptor;
use wasmtime_wasi::p1::{WasiP1Ctx, types::Errno, wasi_snapshot_preview1 as p1};
use wiggle::{GuestMemory, GuestPtr};

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

/// How many files and directories a core module may hold open: its file cap plus its
/// volumes, whose preopened directories are descriptors too.
pub(crate) fn module_open_limit(policy: &crate::Policy) -> usize {
    (policy.max_files as usize).saturating_add(policy.volumes.len())
}

/// Replaces WASI preview 1's `path_open` in `linker` (already holding wasmtime-wasi's)
/// with one that closes what it just opened and answers `EMFILE` when the instance
/// then holds more files and directories than its sandbox's limit. Counting after the
/// open is exact: the preopens are in the table by then.
pub(crate) fn cap_path_open(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let defined = linker
        .func_wrap_async(
            "wasi_snapshot_preview1",
            "path_open",
            move |mut caller: Caller<'_, Sandbox>,
                  (dir, lookup, path, path_len, oflags, base, inheriting, fdflags, opened): (
                i32,
                i32,
                i32,
                i32,
                i32,
                i64,
                i64,
                i32,
                i32,
            )| {
                Box::new(async move {
                    let export = caller.get_export("memory");
                    let fuel = caller.as_context_mut().hostcall_fuel();
                    let (mut memory, state) = match &export {
                        Some(Extern::Memory(m)) => {
                            let (bytes, state) = m.data_and_store_mut(&mut caller);
                            (GuestMemory::Unshared(bytes), state)
                        }
                        Some(Extern::SharedMemory(m)) => {
                            (GuestMemory::Shared(m.data()), caller.data_mut())
                        }
                        _ => wasmtime::bail!("missing required memory export"),
                    };
                    let (ctx, limit) = state.module_wasi();
                    p1::WasiSnapshotPreview1::set_hostcall_fuel(ctx, fuel);
                    let errno = p1::path_open(
                        ctx,
                        &mut memory,
                        dir,
                        lookup,
                        path,
                        path_len,
                        oflags,
                        base,
                        inheriting,
                        fdflags,
                        opened,
                    )
                    .await?;
                    if errno != Errno::Success as i32 || open_descriptors(ctx) <= limit {
                        return Ok(errno);
                    }
                    let fd = memory.read(GuestPtr::<u32>::new(opened as u32))?;
                    p1::fd_close(ctx, &mut memory, fd as i32).await?;
                    Ok(Errno::Mfile as i32)
                })
            },
        )
        .map(|_| ());
    linker.allow_shadowing(false);
    defined
}

/// The files and directories (preopens included) open in a core module's context.
fn open_descriptors(ctx: &mut WasiP1Ctx) -> usize {
    ctx.ctx()
        .table
        .iter_mut()
        .filter(|entry| entry.is::<Descriptor>())
        .count()
}
