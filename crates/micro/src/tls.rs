//! The two thread-local slots wasmtime needs of a platform without std, as two statics:
//! for firmware that runs the runtime on one thread (feature `one-thread-tls`; an RTOS
//! running runtimes on several threads supplies its own, per thread).

use core::ptr::null_mut;
use core::sync::atomic::{AtomicPtr, Ordering};

static SLOTS: [AtomicPtr<u8>; 2] = [AtomicPtr::new(null_mut()), AtomicPtr::new(null_mut())];

/// wasmtime's `wasmtime_tls_get`: the value of `slot` (0 or 1), NULL at first.
#[unsafe(no_mangle)]
pub extern "C" fn wasmtime_tls_get(slot: usize) -> *mut u8 {
    SLOTS[slot].load(Ordering::Relaxed)
}

/// wasmtime's `wasmtime_tls_set`.
#[unsafe(no_mangle)]
pub extern "C" fn wasmtime_tls_set(slot: usize, ptr: *mut u8) {
    SLOTS[slot].store(ptr, Ordering::Relaxed)
}
