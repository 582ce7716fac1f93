//! Exit codes, as DESIGN.md documents them.

use wedge_runtime::RuntimeError;

/// A time or fuel limit ended the app.
pub const LIMIT: i32 = 124;
/// wedge itself failed: bad flags, a bad file, an unusable grant.
pub const WEDGE_ERROR: i32 = 125;
/// The app cannot be instantiated: invalid Wasm, a missing import, an unsupported world.
pub const CANNOT_INSTANTIATE: i32 = 126;
/// The guest trapped.
pub const TRAP: i32 = 134;

/// The exit code for an error that stopped a command.
pub fn for_error(err: &anyhow::Error) -> i32 {
    match err.downcast_ref::<RuntimeError>() {
        Some(e) if e.is_unrunnable_app() => CANNOT_INSTANTIATE,
        _ => WEDGE_ERROR,
    }
}

/// A guest's exit status as a process exit code: 0–255 pass through, anything else is 1.
pub fn for_guest_status(status: i32) -> i32 {
    if (0..=255).contains(&status) {
        status
    } else {
        1
    }
}
