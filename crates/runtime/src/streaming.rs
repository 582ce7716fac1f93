//! Compiling a core module while it downloads, for pulls (as `WebAssembly.compileStreaming`
//! does in browsers).
//!
//! wasmtime compiles whole modules only, so function bodies cannot be compiled as they
//! arrive. What a pull can use is that modules often end in custom sections that
//! compilation never reads: `producers` and `target_features` from every toolchain,
//! build metadata, payloads an app carries. Once the bytes before the first such
//! trailing section have arrived (everything from the header through the code and data
//! sections), they are compiled on a thread of their own while the rest downloads.
//!
//! The speculative result is used only if the whole content, once checked against its
//! digest, starts with exactly the bytes that were compiled and holds nothing after them
//! but well-formed custom sections that wasmtime does not read ([`compile_ignores`]):
//! compiled code depends on nothing else, so it is then the code of the whole module.
//! Otherwise (a name section or DWARF after the speculation point, a data section
//! there, a retried transfer that sent other bytes) the whole content is compiled as
//! usual and the speculative compile is left to finish on its own and be dropped (a
//! wasmtime compile cannot be cancelled); so is one whose download fails.
//!
//! This also relies on wedge's engines never embedding the Wasm bytes themselves in
//! compiled code (wasmtime's guest debugging and record/replay do): the tests compare
//! the code compiled while streaming with the whole module's, byte for byte.

use crate::{App, BASELINE_FIRST_MIN, CodeCache, Engine, RuntimeError, Tiering};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use wasmparser::BinaryReader;

/// The id of the code section.
const CODE_SECTION: u8 = 10;

/// One module's compile, started while its bytes are still arriving. Feed it the bytes
/// received so far with [`StreamingCompile::received`], then hand it the whole, verified
/// content with [`StreamingCompile::finish`].
pub struct StreamingCompile {
    engine: Engine,
    tiering: Tiering,
    state: Mutex<Scan>,
}

/// How far the scan for a speculation point has come.
#[derive(Default)]
struct Scan {
    /// Offset of the next section header to look at (0: the module header is not
    /// checked yet).
    next_section: usize,
    /// The code section has been passed.
    after_code: bool,
    /// Nothing more to scan: a compile has started, or the bytes are not a core module.
    done: bool,
    speculation: Option<Speculation>,
}

/// A compile of the first bytes of the module, running on its own thread.
struct Speculation {
    prefix: Arc<[u8]>,
    compiling: JoinHandle<wasmtime::Result<Vec<u8>>>,
}

impl StreamingCompile {
    /// A streaming compile for `engine`'s settings. With [`Tiering::BaselineFirst`], a
    /// module big enough to start on the baseline compiler's code is not compiled
    /// while it downloads: [`StreamingCompile::finish`] compiles it with the baseline
    /// compiler instead (where it can), and the caller has Cranelift's code made for the
    /// cache afterwards, as after a run.
    pub fn new(engine: &Engine, tiering: Tiering) -> StreamingCompile {
        StreamingCompile {
            engine: engine.clone(),
            tiering,
            state: Mutex::new(Scan::default()),
        }
    }

    /// More bytes have arrived: `so_far` is everything received in this transfer, not yet
    /// checked against any digest. Starts the compile once `so_far` reaches a custom
    /// section that compilation ignores, after the code section. Fewer bytes than were
    /// scanned (none, at the start of a retried transfer) mean the transfer started
    /// again: scanning restarts with them, unless a compile has started already (which
    /// [`StreamingCompile::finish`] then checks against the bytes that arrived).
    pub fn received(&self, so_far: &[u8]) {
        let mut scan = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if scan.done {
            return;
        }
        if so_far.len() < scan.next_section {
            *scan = Scan::default();
        }
        if scan.next_section == 0 {
            if so_far.len() < 8 {
                return;
            }
            if !wasmparser::Parser::is_core_wasm(so_far) {
                scan.done = true;
                return;
            }
            scan.next_section = 8;
        }
        while let Some(section) = section_at(so_far, scan.next_section) {
            if section.id == 0 && scan.after_code && section.name.is_some_and(compile_ignores) {
                scan.done = true;
                let prefix = &so_far[..scan.next_section];
                if self.tiering == Tiering::Off || prefix.len() < BASELINE_FIRST_MIN {
                    scan.speculation = self.speculate(prefix);
                }
                return;
            }
            if section.end > so_far.len() {
                return;
            }
            scan.after_code |= section.id == CODE_SECTION;
            scan.next_section = section.end;
        }
    }

    /// Starts compiling `prefix` on a thread; `None` when no thread can be started (or
    /// there is no compiler).
    #[cfg(not(feature = "compiler"))]
    fn speculate(&self, _prefix: &[u8]) -> Option<Speculation> {
        None
    }

    /// Starts compiling `prefix` on a thread; `None` when no thread can be started.
    #[cfg(feature = "compiler")]
    fn speculate(&self, prefix: &[u8]) -> Option<Speculation> {
        let prefix: Arc<[u8]> = prefix.into();
        // A crash of the code generator here is caught by `join` (and the whole
        // content compiled again, where it is reported).
        crate::panics::quiet_caught();
        let engine = self.engine.wasmtime().clone();
        let bytes = Arc::clone(&prefix);
        let compiling = std::thread::Builder::new()
            .name("wedge-streaming-compile".into())
            .spawn(move || engine.precompile_module(&bytes))
            .ok()?;
        Some(Speculation { prefix, compiling })
    }

    /// The app for the whole content, `bytes`, which the caller has checked against their
    /// hex sha256 `sha256`: the speculative compile's code when it is the whole module's
    /// (see the module docs), a fresh compile otherwise; stored in `cache` under
    /// `sha256` either way, as [`App::compile_verified`] does. A big module with
    /// [`Tiering::BaselineFirst`] gets the baseline compiler's code, kept nowhere
    /// ([`App::tier_up_pending`]).
    pub fn finish(
        &self,
        path: &Path,
        bytes: &[u8],
        sha256: &str,
        cache: Option<&CodeCache>,
    ) -> Result<App, RuntimeError> {
        let speculation = {
            let mut scan = self.state.lock().unwrap_or_else(|e| e.into_inner());
            scan.done = true;
            scan.speculation.take()
        };
        // A failed speculative compile is redone on the whole content, whose error
        // message is the one to report.
        let precompiled = speculation
            .filter(|s| bytes.starts_with(&s.prefix) && only_ignored_after(bytes, s.prefix.len()))
            .and_then(|s| s.compiling.join().ok()?.ok());
        App::compile_checked(
            &self.engine,
            path,
            bytes,
            sha256,
            cache,
            precompiled,
            self.tiering,
        )
    }

    /// Whether a speculative compile has started (for tests and diagnostics).
    pub fn speculating(&self) -> bool {
        let scan = self.state.lock().unwrap_or_else(|e| e.into_inner());
        scan.speculation.is_some()
    }
}

/// Whether wasmtime 48's compile ignores the custom section `name`: it reads the `name`
/// section (function names for backtraces), DWARF (`.debug_*`, also noting its mere
/// presence), code metadata such as branch hints (`metadata.code.*`), and refuses the
/// retired interface-types sections. Checked against wasmtime's module translation
/// (`register_custom_section`); the tests compare compiled code with and without such
/// sections.
pub fn compile_ignores(name: &str) -> bool {
    !(name == "name"
        || name.starts_with(".debug_")
        || name.starts_with("metadata.code.")
        || name == "webidl-bindings"
        || name == "wasm-interface-types")
}

/// Whether everything in `bytes` from `offset` on is whole, well-formed custom sections
/// that compilation ignores.
fn only_ignored_after(bytes: &[u8], mut offset: usize) -> bool {
    while offset < bytes.len() {
        match section_at(bytes, offset) {
            Some(Section {
                id: 0,
                end,
                name: Some(name),
            }) if end <= bytes.len() && compile_ignores(name) => offset = end,
            _ => return false,
        }
    }
    true
}

/// A section's header, as far as the bytes hold it.
struct Section<'a> {
    /// The section id (0 for a custom section).
    id: u8,
    /// Offset just past the section's body (possibly beyond the bytes received).
    end: usize,
    /// A custom section's name.
    name: Option<&'a str>,
}

/// The section whose header starts at `offset` of `bytes`; `None` when the header (and a
/// custom section's name) is not all there yet or is malformed.
fn section_at(bytes: &[u8], offset: usize) -> Option<Section<'_>> {
    let mut reader = BinaryReader::new(bytes.get(offset..)?, offset);
    let id = reader.read_u8().ok()?;
    let size = reader.read_var_u32().ok()? as usize;
    let end = reader.original_position().checked_add(size)?;
    let name = if id == 0 {
        let name = reader.read_string().ok()?;
        if reader.original_position() > end {
            return None;
        }
        Some(name)
    } else {
        None
    };
    Some(Section { id, end, name })
}
