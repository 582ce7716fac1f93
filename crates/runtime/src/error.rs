//! The one error type of this crate.

use std::path::PathBuf;

/// Why an app could not be loaded, linked or started. Guest failures while running
/// (traps, limits, exit codes) are not errors: they are [`crate::Outcome`]s.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The file cannot be read.
    #[error("cannot read `{path}`: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The bytes are not Wasm at all (no `\0asm` header, not a `.cwasm`).
    #[error("`{path}` is not a WebAssembly module or component")]
    NotWasm {
        /// The file.
        path: PathBuf,
    },
    /// The bytes look like Wasm but do not validate or compile.
    #[error("invalid WebAssembly in `{path}`: {message}")]
    InvalidWasm {
        /// The file.
        path: PathBuf,
        /// The validator's or compiler's message.
        message: String,
    },
    /// The compiler crashed on valid Wasm (a bug in wasmtime's code generator for this
    /// architecture); the interpreter can still run it.
    #[error(
        "the compiler failed on `{path}` ({message}: a bug in wasmtime's code generator \
         for this machine); run it with `--engine pulley`"
    )]
    CompilerBug {
        /// The file.
        path: PathBuf,
        /// The compiler's panic message.
        message: String,
    },
    /// Wasm that would need compiling, in a wedge built without the compilers (a device
    /// build): only precompiled code runs there.
    #[error(
        "`{path}` needs compiling, and this wedge was built without a compiler (a device \
         build): give it code precompiled for `{target}` (`wedge push --precompile {target}` \
         on a build machine and `--use-precompiled` here, or a `.cwasm` from `wedge compile \
         --target {target}`)"
    )]
    NoCompiler {
        /// The file.
        path: PathBuf,
        /// The code target precompiled code must be for (as `wedge compile --target`
        /// takes it).
        target: String,
    },
    /// A precompiled `.cwasm` built for another engine, version or setting.
    #[error("cannot load precompiled `{path}`: {message}")]
    Precompiled {
        /// The file.
        path: PathBuf,
        /// wasmtime's reason.
        message: String,
    },
    /// The app cannot be instantiated: a missing import, an unsupported world, no entry point.
    #[error("cannot instantiate `{path}`: {message}")]
    Link {
        /// The file.
        path: PathBuf,
        /// What is missing or unsupported.
        message: String,
    },
    /// A content-addressed file whose bytes no longer match their digest.
    #[error("corrupt blob `{path}`: its content does not match sha256 `{expected}`")]
    DigestMismatch {
        /// The file.
        path: PathBuf,
        /// The hex sha256 it should have.
        expected: String,
    },
    /// A grant that cannot be applied (missing directory, unresolvable name).
    #[error("{0}")]
    Grant(String),
    /// The engine cannot be configured as asked (unknown target, bad setting).
    #[error("engine: {0}")]
    Engine(String),
    /// The host failed while setting up or running the guest.
    #[error("{0}")]
    Host(String),
}

impl RuntimeError {
    /// True when the app itself is at fault (invalid Wasm, a missing import, an
    /// unsupported world): exit code 126 (docs/architecture.md). Otherwise wedge failed: 125.
    pub fn is_unrunnable_app(&self) -> bool {
        matches!(
            self,
            RuntimeError::NotWasm { .. }
                | RuntimeError::InvalidWasm { .. }
                | RuntimeError::Link { .. }
        )
    }
}

/// Formats a wasmtime error chain on one line (`outer: inner: root`).
pub(crate) fn one_line(err: &wasmtime::Error) -> String {
    format!("{err:#}").replace('\n', " ")
}
