//! Panics wedge catches and reports itself: a host function failing on a guest's
//! arguments (turned into a trap, `run.rs`) and a crash of wasmtime's code generator
//! (turned into [`crate::RuntimeError::CompilerBug`], `app.rs`). The panic hook stays
//! quiet for those, and prints every other panic as before.

use std::any::Any;
use std::cell::Cell;
use std::panic::PanicHookInfo;

thread_local! {
    /// Set while this thread polls a guest call.
    static IN_GUEST_CALL: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` as a guest call's poll: a panic in it is caught by the caller.
pub(crate) fn in_guest_call<R>(f: impl FnOnce() -> R) -> R {
    IN_GUEST_CALL.set(true);
    let result = f();
    IN_GUEST_CALL.set(false);
    result
}

/// Installs, once per process, the panic hook that stays quiet for caught panics.
pub(crate) fn quiet_caught() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_GUEST_CALL.get() && !in_compiler(info) {
                previous(info);
            }
        }));
    });
}

/// Whether the panic comes from wasmtime's code generator (Cranelift), which runs on
/// compiler threads of its own: every compile wedge starts catches it.
fn in_compiler(info: &PanicHookInfo<'_>) -> bool {
    info.location()
        .is_some_and(|l| l.file().contains("cranelift"))
}

/// A caught panic's message, when it carries one.
pub(crate) fn message(payload: &(dyn Any + Send)) -> Option<String> {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
}
