//! The cap on handles one instance holds at once (files, directories, sockets), so a
//! guest with a volume or a listening socket cannot take the host's descriptors.
//!
//! A core module (WASI preview 1) gets `EMFILE` from `path_open` and `sock_accept` once
//! it holds [`crate::Policy::max_files`] handles it opened; `fd_close` gives one back.
//! The calls are wasmtime-wasi's own, wrapped: the wrapper counts, the original opens.
//! A component's handles of every kind (files, sockets, streams, pollables) live in its
//! resource table, which is capped at the same number plus [`COMPONENT_RESERVE`];
//! opening past it fails in the guest.

use wasmtime::{Caller, Func, Linker, WasmParams, WasmResults};

/// Table entries a component gets beyond its file cap, for its standard streams and
/// what the host keeps for it (pollables, streams of open files).
pub(crate) const COMPONENT_RESERVE: usize = 64;

/// WASI preview 1's `errno::mfile`: too many open files.
const ERRNO_MFILE: i32 = 33;

/// The preview 1 module name.
const P1: &str = "wasi_snapshot_preview1";

/// The resource table of a component instance under `policy`: its file cap plus
/// [`COMPONENT_RESERVE`] entries.
pub(crate) fn component_table(policy: &crate::Policy) -> wasmtime::component::ResourceTable {
    let mut table = wasmtime::component::ResourceTable::new();
    table.set_max_capacity((policy.max_files as usize).saturating_add(COMPONENT_RESERVE));
    table
}

/// The handles an instance opened and may still open.
#[derive(Debug)]
pub(crate) struct OpenFiles {
    open: u32,
    max: u32,
    /// wasmtime-wasi's own functions, found on first use.
    originals: Vec<(&'static str, Func)>,
}

impl OpenFiles {
    pub(crate) fn new(max: u32) -> OpenFiles {
        OpenFiles {
            open: 0,
            max,
            originals: Vec::new(),
        }
    }
}

/// Store data of a preview 1 instance, which holds its [`OpenFiles`].
pub(crate) trait HasOpenFiles: Send + 'static {
    fn open_files(&mut self) -> &mut OpenFiles;
}

/// Wraps `path_open`, `sock_accept` and `fd_close` of a linker that already holds
/// wasmtime-wasi's preview 1 functions, so that they count against the cap.
pub(crate) fn add_to_linker<T: HasOpenFiles>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    let originals = std::sync::Arc::new(linker.clone());
    linker.allow_shadowing(true);
    let o = originals.clone();
    linker.func_wrap_async(
        P1,
        "path_open",
        move |mut caller: Caller<'_, T>, args: (i32, i32, i32, i32, i32, i64, i64, i32, i32)| {
            let o = o.clone();
            Box::new(async move { opening(&mut caller, &o, "path_open", args).await })
        },
    )?;
    let o = originals.clone();
    linker.func_wrap_async(
        P1,
        "sock_accept",
        move |mut caller: Caller<'_, T>, args: (i32, i32, i32)| {
            let o = o.clone();
            Box::new(async move { opening(&mut caller, &o, "sock_accept", args).await })
        },
    )?;
    linker.func_wrap_async(
        P1,
        "fd_close",
        move |mut caller: Caller<'_, T>, args: (i32,)| {
            let o = originals.clone();
            Box::new(async move {
                let errno: i32 = original(&mut caller, &o, "fd_close", args).await?;
                if errno == 0 {
                    let files = caller.data_mut().open_files();
                    files.open = files.open.saturating_sub(1);
                }
                Ok(errno)
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Calls the original `name`, which opens one handle on success, unless the cap is
/// reached: then `EMFILE`.
async fn opening<T: HasOpenFiles, P: WasmParams + Send + Sync>(
    caller: &mut Caller<'_, T>,
    originals: &Linker<T>,
    name: &'static str,
    args: P,
) -> wasmtime::Result<i32> {
    let files = caller.data_mut().open_files();
    if files.open >= files.max {
        return Ok(ERRNO_MFILE);
    }
    let errno: i32 = original(caller, originals, name, args).await?;
    if errno == 0 {
        caller.data_mut().open_files().open += 1;
    }
    Ok(errno)
}

/// Calls wasmtime-wasi's own `name` with `args`.
async fn original<T: HasOpenFiles, P: WasmParams + Send + Sync, R: WasmResults + Send + Sync>(
    caller: &mut Caller<'_, T>,
    originals: &Linker<T>,
    name: &'static str,
    args: P,
) -> wasmtime::Result<R> {
    let known = caller
        .data_mut()
        .open_files()
        .originals
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f);
    let func = match known {
        Some(func) => func,
        None => {
            let func = originals
                .get(&mut *caller, P1, name)?
                .into_func()
                .ok_or_else(|| wasmtime::format_err!("`{P1}::{name}` is not a function"))?;
            caller.data_mut().open_files().originals.push((name, func));
            func
        }
    };
    func.typed::<P, R>(&*caller)?
        .call_async(&mut *caller, args)
        .await
}
