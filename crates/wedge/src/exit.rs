//! Exit codes for wedge's own failures, as docs/architecture.md documents them; a guest's outcome
//! maps to its code in `wedge_runtime::Outcome::exit_code`.

use wedge_runtime::RuntimeError;

/// wedge itself failed: bad flags, a bad file, an unusable grant.
pub const WEDGE_ERROR: i32 = 125;
/// The app cannot be instantiated: invalid Wasm, a missing import, an unsupported world.
pub const CANNOT_INSTANTIATE: i32 = 126;

/// The exit code for an error that stopped a command.
pub fn for_error(err: &anyhow::Error) -> i32 {
    match err.downcast_ref::<RuntimeError>() {
        Some(e) if e.is_unrunnable_app() => CANNOT_INSTANTIATE,
        _ => WEDGE_ERROR,
    }
}
