//! The one error type of this crate.

use alloc::string::String;
use core::fmt;

/// Why an app could not be run (what it did once running is an [`crate::Outcome`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MicroError {
    /// The engine could not be built with the shared settings.
    Engine(String),
    /// wasmtime refused the app's code: not `pulley32` code of this wasmtime with the
    /// settings of [`crate::settings::configure`], or damaged.
    Code(String),
    /// The app's imports cannot be satisfied, or it has no `_start`.
    Link(String),
    /// The app's initial memory or tables are over its cap.
    Instantiate(String),
    /// The bundle is not one, or it was tampered with.
    Bundle(String),
}

impl fmt::Display for MicroError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MicroError::Engine(m) => write!(f, "cannot build the engine: {m}"),
            MicroError::Code(m) => write!(f, "refused the app's code: {m}"),
            MicroError::Link(m) => write!(f, "cannot link the app: {m}"),
            MicroError::Instantiate(m) => write!(f, "cannot instantiate the app: {m}"),
            MicroError::Bundle(m) => write!(f, "bad bundle: {m}"),
        }
    }
}

impl core::error::Error for MicroError {}
