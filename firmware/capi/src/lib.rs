//! wedge-micro's C API (`include/wedge_micro.h`): the microcontroller runtime as a
//! static library for C firmware (Zephyr, FreeRTOS, bare metal). The firmware describes
//! its board with function pointers, hands over a bundle made by `wedge micro bundle`,
//! and runs the apps in it, in turns or all to their ends.
//!
//! The library brings wasmtime's thread-local slots (two statics: one thread uses the
//! runtime at a time), a global allocator over the firmware's `malloc`, and a panic
//! handler that calls the firmware's `wedge_micro_abort`. Every function here checks
//! its pointers for NULL; the rest of each contract is in the header.

#![no_std]

extern crate alloc;

mod abort;
mod board;
mod heap;

use alloc::boxed::Box;
use alloc::ffi::CString;
use alloc::string::ToString;
use alloc::vec::Vec;
use board::{CBoard, Checked};
use core::ffi::{CStr, c_char};
use wedge_micro::{MicroError, Outcome, Runtime, bundle};

/// Success.
pub const WEDGE_MICRO_OK: i32 = 0;
/// The engine could not be built.
pub const WEDGE_MICRO_E_ENGINE: i32 = -1;
/// An app's code is not this runtime's (another engine, or damaged).
pub const WEDGE_MICRO_E_CODE: i32 = -2;
/// An app cannot be linked (imports, `_start`, a name taken twice).
pub const WEDGE_MICRO_E_LINK: i32 = -3;
/// An app cannot be instantiated.
pub const WEDGE_MICRO_E_INSTANTIATE: i32 = -4;
/// The bundle is not one, is misaligned, or was tampered with.
pub const WEDGE_MICRO_E_BUNDLE: i32 = -5;
/// No app has that name.
pub const WEDGE_MICRO_E_NOT_FOUND: i32 = -6;
/// A NULL pointer, a board with a function missing, or a name that is not UTF-8.
pub const WEDGE_MICRO_E_INVALID: i32 = -7;

/// `wedge_micro_end_t`: how an app's last run ended.
#[repr(i32)]
#[derive(Clone, Copy)]
pub enum End {
    /// Running, or never started.
    None = 0,
    /// Exited, with `exit_code`.
    Exited = 1,
    /// Its fuel budget ran out.
    OutOfFuel = 2,
    /// Trapped or could not start; `message` says why.
    Failed = 3,
    /// Stopped by `wedge_micro_stop`.
    Stopped = 4,
}

/// `wedge_micro_outcome_t`.
#[repr(C)]
pub struct COutcome {
    /// How the run ended: an [`End`].
    pub end: i32,
    /// The exit code, when `end` is `Exited`.
    pub exit_code: i32,
    /// Why it failed when `end` is `Failed`, else "": NUL-terminated, valid until the
    /// next call on the runtime.
    pub message: *const c_char,
}

/// `wedge_micro_t`: a runtime, its board, and the strings it hands out.
pub struct Handle {
    /// Dropped first: its apps use `board`.
    runtime: Runtime,
    /// Owned here; the runtime reads it through a shared reference.
    _board: Box<Checked>,
    /// The apps' names, in the runtime's order.
    names: Vec<CString>,
    /// The last error's or failure's message, NUL-terminated.
    message: Vec<u8>,
}

impl Handle {
    /// Keeps `text` as the message handed out, and returns `status`.
    fn say(&mut self, status: i32, text: &str) -> i32 {
        self.message.clear();
        self.message.extend_from_slice(text.as_bytes());
        self.message.retain(|&b| b != 0);
        self.message.push(0);
        status
    }

    fn fail(&mut self, error: &MicroError) -> i32 {
        let status = match error {
            MicroError::Engine(_) => WEDGE_MICRO_E_ENGINE,
            MicroError::Code(_) => WEDGE_MICRO_E_CODE,
            MicroError::Link(_) => WEDGE_MICRO_E_LINK,
            MicroError::Instantiate(_) => WEDGE_MICRO_E_INSTANTIATE,
            MicroError::Bundle(_) => WEDGE_MICRO_E_BUNDLE,
        };
        self.say(status, &error.to_string())
    }

    /// The app `name` (a C string), or an error status with its message kept.
    ///
    /// # Safety
    /// `name` is NULL or a NUL-terminated string that stays for `'a`.
    unsafe fn app<'a>(&mut self, name: *const c_char) -> Result<&'a str, i32> {
        if name.is_null() {
            return Err(self.say(WEDGE_MICRO_E_INVALID, "no app name given"));
        }
        // SAFETY: the caller's contract.
        let name = unsafe { CStr::from_ptr(name) };
        let Ok(name) = name.to_str() else {
            return Err(self.say(WEDGE_MICRO_E_INVALID, "the app name is not UTF-8"));
        };
        if !self.runtime.apps().any(|app| app == name) {
            let text = alloc::format!("no app is named `{name}`");
            return Err(self.say(WEDGE_MICRO_E_NOT_FOUND, &text));
        }
        Ok(name)
    }
}

/// Builds a runtime for apps on `board` (copied); `*out` is the runtime on success.
///
/// # Safety
/// `board` and `out` are NULL or valid; the board's functions stay callable with its
/// `ctx` until the runtime is freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wedge_micro_new(board: *const CBoard, out: *mut *mut Handle) -> i32 {
    if board.is_null() || out.is_null() {
        return WEDGE_MICRO_E_INVALID;
    }
    // SAFETY: the caller's contract.
    let Some(board) = Checked::new(unsafe { *board }) else {
        return WEDGE_MICRO_E_INVALID;
    };
    let board = Box::new(board);
    // SAFETY: the box lives in the handle until it is freed, after the runtime (the
    // handle's first field), so the runtime never sees it dangle.
    let shared: &'static Checked = unsafe { &*(&*board as *const Checked) };
    match Runtime::new(shared) {
        Ok(runtime) => {
            let handle = Box::new(Handle {
                runtime,
                _board: board,
                names: Vec::new(),
                message: alloc::vec![0],
            });
            // SAFETY: `out` is valid (checked above, and the caller's contract).
            unsafe { out.write(Box::into_raw(handle)) };
            WEDGE_MICRO_OK
        }
        Err(e) => {
            use wedge_micro::Board;
            let line = alloc::format!("wedge-micro: {e}\n");
            board.console(line.as_bytes());
            WEDGE_MICRO_E_ENGINE
        }
    }
}

/// Checks the bundle at `bytes` (every digest) and adds its apps; all or none. Returns
/// the number of apps added, or an error status.
///
/// # Safety
/// `rt` is NULL or a runtime; `bytes` is NULL or `len` readable bytes that stay there,
/// unchanged, until the runtime is freed (code runs in place).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wedge_micro_load_bundle(
    rt: *mut Handle,
    bytes: *const u8,
    len: usize,
) -> i32 {
    // SAFETY: the caller's contract.
    let Some(handle) = (unsafe { rt.as_mut() }) else {
        return WEDGE_MICRO_E_INVALID;
    };
    if bytes.is_null() {
        return handle.say(WEDGE_MICRO_E_INVALID, "no bundle given");
    }
    // SAFETY: the caller's contract: readable, and kept as long as the runtime.
    let bytes: &'static [u8] = unsafe { core::slice::from_raw_parts(bytes, len) };
    let apps = match bundle::read(bytes) {
        Ok(apps) => apps,
        Err(e) => return handle.fail(&e),
    };
    let Ok(names) = apps
        .iter()
        .map(|app| CString::new(app.name.as_str()))
        .collect::<Result<Vec<_>, _>>()
    else {
        let e = MicroError::Bundle("an app's name holds a NUL byte".into());
        return handle.fail(&e);
    };
    if let Err(e) = handle.runtime.add_all(apps) {
        return handle.fail(&e);
    }
    let count = names.len();
    handle.names.extend(names);
    handle.say(count as i32, "")
}

/// How many apps the runtime has.
///
/// # Safety
/// `rt` is NULL or a runtime.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wedge_micro_app_count(rt: *const Handle) -> usize {
    // SAFETY: the caller's contract.
    unsafe { rt.as_ref() }.map_or(0, |handle| handle.names.len())
}

/// The name of app `index` (NUL-terminated, valid until the runtime is freed), or NULL
/// past the last.
///
/// # Safety
/// `rt` is NULL or a runtime.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wedge_micro_app_name(rt: *const Handle, index: usize) -> *const c_char {
    // SAFETY: the caller's contract.
    let name = unsafe { rt.as_ref() }.and_then(|handle| handle.names.get(index));
    name.map_or(core::ptr::null(), |name| name.as_ptr().cast())
}

/// Starts every app that is not running.
///
/// # Safety
/// `rt` is NULL or a runtime.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wedge_micro_start_all(rt: *mut Handle) -> i32 {
    // SAFETY: the caller's contract.
    let Some(handle) = (unsafe { rt.as_mut() }) else {
        return WEDGE_MICRO_E_INVALID;
    };
    handle.runtime.start_all();
    WEDGE_MICRO_OK
}

/// Calls `f` with the runtime and the app `name` names, if it has one.
///
/// # Safety
/// `rt` is NULL or a runtime; `name` is NULL or a NUL-terminated string.
unsafe fn by_name(rt: *mut Handle, name: *const c_char, f: impl FnOnce(&mut Runtime, &str)) -> i32 {
    // SAFETY: the caller's contract.
    let Some(handle) = (unsafe { rt.as_mut() }) else {
        return WEDGE_MICRO_E_INVALID;
    };
    // SAFETY: the caller's contract.
    match unsafe { handle.app(name) } {
        Ok(name) => {
            f(&mut handle.runtime, name);
            WEDGE_MICRO_OK
        }
        Err(status) => status,
    }
}

/// Starts the app `name` (again, if it ended; its restart count begins anew).
///
/// # Safety
/// `rt` is NULL or a runtime; `name` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wedge_micro_start(rt: *mut Handle, name: *const c_char) -> i32 {
    // SAFETY: the caller's contract.
    unsafe {
        by_name(rt, name, |runtime, name| {
            runtime.start(name);
        })
    }
}

/// Stops the app `name` where it is, freeing its memory.
///
/// # Safety
/// `rt` is NULL or a runtime; `name` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wedge_micro_stop(rt: *mut Handle, name: *const c_char) -> i32 {
    // SAFETY: the caller's contract.
    unsafe {
        by_name(rt, name, |runtime, name| {
            runtime.stop(name);
        })
    }
}

/// Gives each running app one turn; returns 1 while any app runs, else 0.
///
/// # Safety
/// `rt` is NULL or a runtime.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wedge_micro_step(rt: *mut Handle) -> i32 {
    // SAFETY: the caller's contract.
    unsafe { rt.as_mut() }.map_or(0, |handle| i32::from(handle.runtime.step()))
}

/// Runs the apps until none runs, resting the core (the board's `idle`) while all wait.
///
/// # Safety
/// `rt` is NULL or a runtime.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wedge_micro_run(rt: *mut Handle) -> i32 {
    // SAFETY: the caller's contract.
    let Some(handle) = (unsafe { rt.as_mut() }) else {
        return WEDGE_MICRO_E_INVALID;
    };
    handle.runtime.run();
    WEDGE_MICRO_OK
}

/// How the last run of the app `name` ended, in `*out`.
///
/// # Safety
/// `rt` is NULL or a runtime; `name` is NULL or a NUL-terminated string; `out` is NULL
/// or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wedge_micro_outcome(
    rt: *mut Handle,
    name: *const c_char,
    out: *mut COutcome,
) -> i32 {
    // SAFETY: the caller's contract.
    let Some(handle) = (unsafe { rt.as_mut() }) else {
        return WEDGE_MICRO_E_INVALID;
    };
    if out.is_null() {
        return handle.say(WEDGE_MICRO_E_INVALID, "nowhere to put the outcome");
    }
    // SAFETY: the caller's contract.
    let name = match unsafe { handle.app(name) } {
        Ok(name) => name,
        Err(status) => return status,
    };
    let (end, exit_code, why) = match handle.runtime.outcome(name) {
        None => (End::None, 0, None),
        Some(Outcome::Exited(code)) => (End::Exited, *code, None),
        Some(Outcome::OutOfFuel) => (End::OutOfFuel, 0, None),
        Some(Outcome::Failed(why)) => (End::Failed, 0, Some(why.clone())),
        Some(Outcome::Stopped) => (End::Stopped, 0, None),
    };
    handle.say(WEDGE_MICRO_OK, why.as_deref().unwrap_or(""));
    // SAFETY: `out` is valid (checked above, and the caller's contract).
    unsafe {
        out.write(COutcome {
            end: end as i32,
            exit_code,
            message: handle.message.as_ptr().cast(),
        })
    };
    WEDGE_MICRO_OK
}

/// The message of the last error (NUL-terminated, "" if none; valid until the next call
/// on the runtime).
///
/// # Safety
/// `rt` is NULL or a runtime.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wedge_micro_last_error(rt: *const Handle) -> *const c_char {
    // SAFETY: the caller's contract.
    match unsafe { rt.as_ref() } {
        Some(handle) => handle.message.as_ptr().cast(),
        None => c"no runtime given".as_ptr(),
    }
}

/// Frees the runtime: every app's run ends without a word, their memories freed.
///
/// # Safety
/// `rt` is NULL or a runtime, not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wedge_micro_free(rt: *mut Handle) {
    if !rt.is_null() {
        // SAFETY: made by `wedge_micro_new` with Box::into_raw, freed once.
        drop(unsafe { Box::from_raw(rt) });
    }
}
