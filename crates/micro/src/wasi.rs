//! WASI preview 1 for what a device has: arguments and environment, standard output and
//! error on the board's console (standard input is empty), clocks, random bytes, exit,
//! yield, and sleeping through `poll_oneoff` on clocks. Every other preview 1 call the
//! app imports answers `ENOSYS`, so an app that probes for files or sockets gets a clean
//! error, never a trap at link time.

use crate::app::AppState;
use crate::guest::{self, Guest, OutOfBounds};
use crate::wait::{self, YieldOnce};
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use wasmtime::{Caller, Linker, Module, Val, ValType};

/// The module name of WASI preview 1 imports.
pub const MODULE: &str = "wasi_snapshot_preview1";

/// WASI errno values used here.
mod errno {
    pub const SUCCESS: i32 = 0;
    pub const BADF: i32 = 8;
    pub const FAULT: i32 = 21;
    pub const INVAL: i32 = 28;
    pub const NOSYS: i32 = 52;
    pub const SPIPE: i32 = 70;
}

/// How an app ended its run with `proc_exit`: carried out of the call as its error.
#[derive(Debug)]
pub struct Exit(pub i32);

impl core::fmt::Display for Exit {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "exit with code {}", self.0)
    }
}

impl core::error::Error for Exit {}

/// In WASI, memory out of the app's bounds is `EFAULT`.
impl From<OutOfBounds> for i32 {
    fn from(_: OutOfBounds) -> i32 {
        errno::FAULT
    }
}

/// Runs `f` on the app's memory and state; its `Err` is the errno returned.
fn with_guest(
    caller: &mut Caller<'_, AppState>,
    f: impl FnOnce(&mut Guest<'_>, &mut AppState) -> Result<(), i32>,
) -> wasmtime::Result<i32> {
    Ok(match guest::with(caller, f) {
        None => errno::FAULT,
        Some(Ok(())) => errno::SUCCESS,
        Some(Err(errno)) => errno,
    })
}

/// Defines `{name}_get` and `{name}_sizes_get` over the list of strings `list` picks
/// from the app's state (its arguments, its environment).
fn add_strings(
    linker: &mut Linker<AppState>,
    name: &str,
    list: fn(&AppState) -> &[String],
) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        &format!("{name}_get"),
        move |mut c: Caller<'_, AppState>, ptrs: u32, buf: u32| {
            with_guest(&mut c, |g, s| put_strings(g, list(s), ptrs, buf))
        },
    )?;
    linker.func_wrap(
        MODULE,
        &format!("{name}_sizes_get"),
        move |mut c: Caller<'_, AppState>, n: u32, size: u32| {
            with_guest(&mut c, |g, s| put_sizes(g, list(s), n, size))
        },
    )?;
    Ok(())
}

/// Writes `items` as a list of NUL-terminated strings: pointers at `ptrs`, bytes at `buf`.
fn put_strings(guest: &mut Guest<'_>, items: &[String], ptrs: u32, buf: u32) -> Result<(), i32> {
    let mut at = u64::from(buf);
    for (i, item) in items.iter().enumerate() {
        guest.put(at, item.as_bytes())?;
        guest.put(at + item.len() as u64, &[0])?;
        // Within the memory (the bytes just went there): a 32-bit address.
        guest.put(u64::from(ptrs) + 4 * i as u64, &(at as u32).to_le_bytes())?;
        at += item.len() as u64 + 1;
    }
    Ok(())
}

/// Writes how many `items` there are and the bytes they take with their NULs.
fn put_sizes(guest: &mut Guest<'_>, items: &[String], count: u32, size: u32) -> Result<(), i32> {
    let bytes: usize = items.iter().map(|s| s.len() + 1).sum();
    guest.put(count.into(), &(items.len() as u32).to_le_bytes())?;
    Ok(guest.put(size.into(), &(bytes as u32).to_le_bytes())?)
}

/// Defines the preview 1 calls `module` imports: those of this module's docs, and
/// `ENOSYS` for the rest.
pub fn add_to_linker(linker: &mut Linker<AppState>, module: &Module) -> wasmtime::Result<()> {
    // `ENOSYS` first for every preview 1 import, then the calls defined here over them.
    linker.allow_shadowing(true);
    answer_with_enosys(linker, module)?;
    add_strings(linker, "args", |s| &s.args)?;
    add_strings(linker, "environ", |s| &s.env)?;
    linker.func_wrap(
        MODULE,
        "clock_res_get",
        |mut c: Caller<'_, AppState>, id: u32, out: u32| {
            with_guest(&mut c, |g, _| {
                if id > 3 {
                    return Err(errno::INVAL);
                }
                Ok(g.put(out.into(), &1_000u64.to_le_bytes())?)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "clock_time_get",
        |mut c: Caller<'_, AppState>, id: u32, _precision: u64, out: u32| {
            with_guest(&mut c, |g, s| {
                let now = match id {
                    0 => s.board.realtime_ns(),
                    1..=3 => s.board.monotonic_ns(),
                    _ => return Err(errno::INVAL),
                };
                Ok(g.put(out.into(), &now.to_le_bytes())?)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_write",
        |mut c: Caller<'_, AppState>, fd: u32, iovs: u32, count: u32, written: u32| {
            with_guest(&mut c, |g, s| {
                if fd != 1 && fd != 2 {
                    return Err(errno::BADF);
                }
                let mut total = 0u32;
                for i in 0..count {
                    let iov = u64::from(iovs) + 8 * u64::from(i);
                    let ptr = g.u32(iov)?;
                    let len = g.u32(iov + 4)?;
                    s.board.console(g.bytes(ptr.into(), len.into())?);
                    total = total.saturating_add(len);
                }
                Ok(g.put(written.into(), &total.to_le_bytes())?)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_read",
        |mut c: Caller<'_, AppState>, fd: u32, _iovs: u32, _count: u32, read: u32| {
            with_guest(&mut c, |g, _| {
                if fd != 0 {
                    return Err(errno::BADF);
                }
                Ok(g.put(read.into(), &0u32.to_le_bytes())?)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_fdstat_get",
        |mut c: Caller<'_, AppState>, fd: u32, out: u32| {
            with_guest(&mut c, |g, _| {
                if fd > 2 {
                    return Err(errno::BADF);
                }
                // A character device, no flags, only reads or writes.
                let mut stat = [0u8; 24];
                stat[0] = 2;
                stat[8] = if fd == 0 { 2 } else { 64 };
                Ok(g.put(out.into(), &stat)?)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_seek",
        |_: Caller<'_, AppState>, fd: u32, _offset: i64, _whence: u32, _out: u32| {
            Ok(if fd <= 2 { errno::SPIPE } else { errno::BADF })
        },
    )?;
    linker.func_wrap(MODULE, "fd_close", |_: Caller<'_, AppState>, fd: u32| {
        Ok(if fd <= 2 { errno::SUCCESS } else { errno::BADF })
    })?;
    // No preopened directories: the listing ends at once.
    linker.func_wrap(
        MODULE,
        "fd_prestat_get",
        |_: Caller<'_, AppState>, _fd: u32, _out: u32| Ok(errno::BADF),
    )?;
    linker.func_wrap(
        MODULE,
        "fd_prestat_dir_name",
        |_: Caller<'_, AppState>, _fd: u32, _path: u32, _len: u32| Ok(errno::BADF),
    )?;
    linker.func_wrap(
        MODULE,
        "random_get",
        |mut c: Caller<'_, AppState>, buf: u32, len: u32| {
            with_guest(&mut c, |g, s| {
                s.board.random(g.bytes(buf.into(), len.into())?);
                Ok(())
            })
        },
    )?;
    linker.func_wrap_async(MODULE, "sched_yield", |_: Caller<'_, AppState>, (): ()| {
        Box::new(async {
            YieldOnce(false).await;
            Ok(errno::SUCCESS)
        })
    })?;
    linker.func_wrap(
        MODULE,
        "proc_exit",
        |_: Caller<'_, AppState>, code: i32| -> wasmtime::Result<()> {
            Err(wasmtime::Error::new(Exit(code)))
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "poll_oneoff",
        |mut c: Caller<'_, AppState>, (subs, events, count, out): (u32, u32, u32, u32)| {
            Box::new(async move {
                let now = c.data().board.monotonic_ns();
                let mut wanted = Vec::new();
                let read = with_guest(&mut c, |g, _| {
                    wanted = subscriptions(g, subs, count, now)?;
                    Ok(())
                })?;
                if read != errno::SUCCESS {
                    return Ok(read);
                }
                let fds = wanted.iter().any(|sub| sub.tag != CLOCK);
                let wake = wanted.iter().map(|sub| sub.deadline).min().unwrap_or(now);
                if !fds {
                    let state = c.data();
                    wait::until(state.board, wake, &state.waiting, || None::<()>).await;
                }
                // A board's clock may lag the deadline slept to by a tick: it has come.
                let now = if fds {
                    now
                } else {
                    c.data().board.monotonic_ns().max(wake)
                };
                with_guest(&mut c, |g, _| put_events(g, &wanted, fds, now, events, out))
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// The tag of a clock subscription or event.
const CLOCK: u8 = 0;

/// One subscription of `poll_oneoff`: its userdata, its tag, its deadline (monotonic
/// nanoseconds; for clocks only).
struct Subscription {
    userdata: u64,
    tag: u8,
    deadline: u64,
}

/// Reads `poll_oneoff`'s `count` subscriptions at `subs`.
fn subscriptions(
    g: &mut Guest<'_>,
    subs: u32,
    count: u32,
    now: u64,
) -> Result<Vec<Subscription>, i32> {
    const SIZE: u64 = 48;
    if count == 0 {
        return Err(errno::INVAL);
    }
    let mut wanted = Vec::new();
    for i in 0..count {
        let sub = u64::from(subs) + u64::from(i) * SIZE;
        let userdata = g.u64(sub)?;
        let tag = g.bytes(sub + 8, 1)?[0];
        let deadline = if tag == CLOCK {
            let timeout = g.u64(sub + 24)?;
            let absolute = g.u32(sub + 40)? & 1 == 1;
            if absolute {
                timeout
            } else {
                now.saturating_add(timeout)
            }
        } else {
            0
        };
        wanted.push(Subscription {
            userdata,
            tag,
            deadline,
        });
    }
    Ok(wanted)
}

/// Writes `poll_oneoff`'s events: every clock due at `now`, or when the app also asked
/// for file descriptors (which a device does not have), an `ENOSYS` event for each of
/// those at once.
fn put_events(
    g: &mut Guest<'_>,
    wanted: &[Subscription],
    fds: bool,
    now: u64,
    events: u32,
    out: u32,
) -> Result<(), i32> {
    const SIZE: u64 = 32;
    let mut written = 0u32;
    for sub in wanted {
        let report = if fds {
            sub.tag != CLOCK
        } else {
            sub.deadline <= now
        };
        if !report {
            continue;
        }
        let mut event = [0u8; SIZE as usize];
        event[..8].copy_from_slice(&sub.userdata.to_le_bytes());
        let error = if sub.tag == CLOCK {
            errno::SUCCESS
        } else {
            errno::NOSYS
        };
        event[8..10].copy_from_slice(&(error as u16).to_le_bytes());
        event[10] = sub.tag;
        g.put(u64::from(events) + u64::from(written) * SIZE, &event)?;
        written += 1;
    }
    Ok(g.put(out.into(), &written.to_le_bytes())?)
}

/// Defines every preview 1 function `module` imports as one returning `ENOSYS`.
fn answer_with_enosys(linker: &mut Linker<AppState>, module: &Module) -> wasmtime::Result<()> {
    for import in module.imports() {
        let Some(ty) = import.ty().func().cloned() else {
            continue;
        };
        if import.module() != MODULE {
            continue;
        }
        let returns_errno =
            ty.results().len() == 1 && matches!(ty.results().next(), Some(ValType::I32));
        linker.func_new(MODULE, import.name(), ty, move |_, _, results| {
            if returns_errno {
                results[0] = Val::I32(errno::NOSYS);
            }
            Ok(())
        })?;
    }
    Ok(())
}
