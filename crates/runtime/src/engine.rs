//! The wasmtime engine, its compiler tier, and the epoch ticker behind timeouts.

use crate::RuntimeError;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long one epoch tick lasts; timeouts are rounded up to whole ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Core instances (and tables) a pooled component may need: a Rust `wasm32-wasip2`
/// component has its main module plus wit-component's shim and fixup modules.
const CORE_INSTANCES_PER_COMPONENT: u32 = 4;

/// Bytes of each pooled table and fiber stack kept resident between instances.
const KEEP_RESIDENT: usize = 64 << 10;

/// The revision of the settings [`Engine::new`] gives wasmtime. Bump it whenever a
/// change there alters the code wasmtime makes, so that code precompiled by an older
/// wedge is never picked for a newer one (see [`Engine::code_settings`]).
const ENGINE_SETTINGS_REVISION: u32 = 1;

/// The compiler tier that turns Wasm into something the host executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EngineKind {
    /// Cranelift: optimizing compiler, near-native code (the default).
    #[default]
    Cranelift,
    /// Winch: baseline compiler, fast compiles, slower code.
    Winch,
    /// Pulley: wasmtime's portable interpreter; smallest footprint, runs anywhere.
    Pulley,
}

impl EngineKind {
    /// Every tier, in the order shown in help texts.
    pub const ALL: [EngineKind; 3] = [EngineKind::Cranelift, EngineKind::Winch, EngineKind::Pulley];
}

impl FromStr for EngineKind {
    type Err = RuntimeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cranelift" => Ok(EngineKind::Cranelift),
            "winch" => Ok(EngineKind::Winch),
            "pulley" => Ok(EngineKind::Pulley),
            other => Err(RuntimeError::Engine(format!(
                "unknown engine `{other}` (use `cranelift`, `winch` or `pulley`)"
            ))),
        }
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EngineKind::Cranelift => "cranelift",
            EngineKind::Winch => "winch",
            EngineKind::Pulley => "pulley",
        })
    }
}

/// Engine settings. Code compiled under one set of options only loads into an engine
/// with the same options; the [`crate::CodeCache`] keys entries accordingly.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EngineOptions {
    /// Compiler tier.
    pub kind: EngineKind,
    /// Instrument code with fuel metering (needed for `--fuel`).
    pub fuel: bool,
    /// Compile for another target triple (e.g. `pulley64`) instead of the host.
    /// Code for a foreign target can be written out but not run.
    pub target: Option<String>,
    /// Use the pooling instance allocator with room for this many instances at once.
    pub pooling: Option<u32>,
    /// Compile in epoch checks (the default), so that a run can be given a deadline,
    /// stopped, paused or made to yield (timeouts, the daemon, servers, push handlers).
    /// Without them code compiles and runs faster, and a run ends only by itself or
    /// with its process. Code with epoch checks also serves an engine without
    /// (see [`Engine::with_epochs`]).
    pub epochs: bool,
}

impl Default for EngineOptions {
    fn default() -> EngineOptions {
        EngineOptions {
            kind: EngineKind::default(),
            fuel: false,
            target: None,
            pooling: None,
            epochs: true,
        }
    }
}

impl EngineOptions {
    /// An engine with these options on the Pulley interpreter: where an app runs when
    /// the code generator crashes on it (a wasmtime bug on some targets).
    pub fn on_pulley(&self) -> Result<Engine, RuntimeError> {
        Engine::new(EngineOptions {
            kind: EngineKind::Pulley,
            ..self.clone()
        })
    }
}

/// A configured wasmtime engine. Cheap to clone; clones share compiled code and the
/// ticker thread.
#[derive(Clone)]
pub struct Engine {
    inner: wasmtime::Engine,
    options: EngineOptions,
    ticker: Arc<Mutex<bool>>,
}

impl Engine {
    /// Builds an engine. With [`EngineOptions::epochs`], epoch interruption is compiled
    /// in, so any run can get a deadline (and a daemon can stop it) without recompiling.
    pub fn new(options: EngineOptions) -> Result<Engine, RuntimeError> {
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(options.epochs);
        config.consume_fuel(options.fuel);
        config.native_unwind_info(false);
        let target = match (options.kind, &options.target) {
            (_, Some(t)) => Some(t.clone()),
            (EngineKind::Pulley, None) => Some(host_pulley_target().to_string()),
            _ => None,
        };
        if let Some(target) = &target {
            config
                .target(target)
                .map_err(|e| RuntimeError::Engine(format!("target `{target}`: {e}")))?;
        }
        if options.kind == EngineKind::Winch {
            #[cfg(feature = "compiler")]
            config.strategy(wasmtime::Strategy::Winch);
            #[cfg(not(feature = "compiler"))]
            return Err(RuntimeError::Engine(
                "`winch` is a compiler, and this wedge was built without one (a device \
                 build): use `cranelift` for code precompiled with Cranelift, or `pulley`"
                    .into(),
            ));
        }
        if let Some(count) = options.pooling {
            let mut pool = wasmtime::PoolingAllocationConfig::new();
            // Keep the hot top of each fiber stack and the table slots resident, reset
            // with memset instead of madvise: fewer page faults and TLB shootdowns per
            // instance. (Linear memories are not: Rust guests touch pages spread over
            // their first megabyte, which costs more to memset than to fault back.)
            // A component holds several core instances and tables (its shims and
            // adapters besides the main module); slots for those cost little.
            let extra = count.saturating_mul(CORE_INSTANCES_PER_COMPONENT);
            pool.total_core_instances(extra)
                .total_component_instances(count)
                .total_memories(count)
                .total_tables(extra)
                .total_stacks(count)
                .max_memory_size(crate::DEFAULT_MEMORY as usize)
                .table_keep_resident(KEEP_RESIDENT)
                .async_stack_keep_resident(KEEP_RESIDENT);
            config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        }
        let inner = wasmtime::Engine::new(&config)
            .map_err(|e| RuntimeError::Engine(crate::error::one_line(&e)))?;
        Ok(Engine {
            inner,
            options,
            ticker: Arc::new(Mutex::new(false)),
        })
    }

    /// The wasmtime engine.
    pub fn wasmtime(&self) -> &wasmtime::Engine {
        &self.inner
    }

    /// The options this engine was built with.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// The engine whose code has epoch checks and is otherwise this one's: this one, or
    /// a new one if this one's code has none. Its code runs in this one's place (the
    /// checks cost a little speed), so code compiled with checks (precompiled in an
    /// image, or by a pull) serves a run that needs none.
    pub fn with_epochs(&self) -> Result<Engine, RuntimeError> {
        if self.options.epochs {
            return Ok(self.clone());
        }
        Engine::new(EngineOptions {
            epochs: true,
            ..self.options.clone()
        })
    }

    /// Starts, once per engine, the thread that advances the epoch every
    /// [`EPOCH_TICK`]. One thread serves every store of the engine; it ends when the
    /// engine is dropped. An engine without epoch checks cannot bound a run's time.
    pub(crate) fn ensure_ticker(&self) -> Result<(), RuntimeError> {
        if !self.options.epochs {
            return Err(RuntimeError::Engine(
                "a time limit, or stopping a run, needs an engine with epoch checks".into(),
            ));
        }
        let mut started = self
            .ticker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if *started {
            return Ok(());
        }
        let weak = self.inner.weak();
        std::thread::Builder::new()
            .name("wedge-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .map_err(|e| RuntimeError::Host(format!("cannot start the epoch thread: {e}")))?;
        *started = true;
        Ok(())
    }

    /// A stable text hash of what makes compiled code compatible with this engine: its
    /// [`Engine::code_target`] and [`Engine::code_settings`] (wasmtime version,
    /// compiler, fuel metering, wedge's settings). The CPU features code may use are
    /// left to wasmtime, which checks them when it loads code (the code cache then
    /// replaces code it refuses). Needs no compiler, unlike wasmtime's own hash.
    pub fn compatibility_hash(&self) -> String {
        use sha2::Digest;
        let key = format!("{}\n{}", self.code_target(), self.code_settings());
        hex::encode(&sha2::Sha256::digest(key.as_bytes())[..12])
    }
}

/// What code precompiled elsewhere must have been compiled for to load into an engine:
/// the code's target and the engine settings that shape it. The two halves are what
/// images carry beside precompiled code (`wedge push --precompile`), so a device picks
/// code for its own engine without downloading any other. They leave out what wasmtime
/// checks itself when it loads code (the CPU features it may use): code whose key
/// matches can still be refused then, never run.
impl Engine {
    /// The target the engine's code is for: `pulley32`/`pulley64` for the interpreter
    /// (whichever compiler made it), else `<architecture>-<os>` (`aarch64-linux`):
    /// target triples that differ only in vendor or C library share code.
    pub fn code_target(&self) -> String {
        match &self.options.target {
            Some(target) => code_target_of(target),
            None if self.inner.is_pulley() => host_pulley_target().to_string(),
            None => code_target_of(&target_lexicon::HOST.to_string()),
        }
    }

    /// The target as `wedge compile --target` and `wedge push --precompile` take it:
    /// the host's triple, or `pulley32`/`pulley64`.
    pub fn compile_target(&self) -> String {
        match &self.options.target {
            Some(target) => target.clone(),
            None if self.inner.is_pulley() => host_pulley_target().to_string(),
            None => target_lexicon::HOST.to_string(),
        }
    }

    /// The engine settings the code depends on, as text: the wasmtime version, the
    /// compiler, fuel metering, and [`ENGINE_SETTINGS_REVISION`]
    /// (`wasmtime 48.0.8, cranelift, no fuel, settings 1`), and `, no epochs` for code
    /// without epoch checks. Pulley bytecode is always Cranelift's.
    pub fn code_settings(&self) -> String {
        let compiler = match self.options.kind {
            EngineKind::Winch => "winch",
            EngineKind::Cranelift | EngineKind::Pulley => "cranelift",
        };
        let fuel = if self.options.fuel { "fuel" } else { "no fuel" };
        let epochs = if self.options.epochs {
            ""
        } else {
            ", no epochs"
        };
        format!(
            "wasmtime {}, {compiler}, {fuel}, settings {ENGINE_SETTINGS_REVISION}{epochs}",
            wasmtime_environ::VERSION
        )
    }
}

/// The code target (see [`Engine::code_target`]) of a target name wasmtime accepts.
fn code_target_of(target: &str) -> String {
    use target_lexicon::Architecture;
    match target.parse::<target_lexicon::Triple>() {
        Ok(triple) => {
            let architecture = match triple.architecture {
                Architecture::Pulley32
                | Architecture::Pulley64
                | Architecture::Pulley32be
                | Architecture::Pulley64be => return triple.architecture.to_string(),
                Architecture::Riscv64(_) => "riscv64".to_string(),
                other => other.to_string(),
            };
            format!("{architecture}-{}", triple.operating_system)
        }
        Err(_) => target.to_string(),
    }
}

/// The Pulley target matching the host's pointer width and byte order.
fn host_pulley_target() -> &'static str {
    match (
        cfg!(target_pointer_width = "64"),
        cfg!(target_endian = "little"),
    ) {
        (true, true) => "pulley64",
        (true, false) => "pulley64be",
        (false, true) => "pulley32",
        (false, false) => "pulley32be",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_targets_ignore_vendor_and_c_library() {
        assert_eq!(code_target_of("aarch64-unknown-linux-gnu"), "aarch64-linux");
        assert_eq!(
            code_target_of("aarch64-unknown-linux-musl"),
            "aarch64-linux"
        );
        assert_eq!(
            code_target_of("riscv64gc-unknown-linux-gnu"),
            "riscv64-linux"
        );
        assert_eq!(code_target_of("x86_64-unknown-linux-gnu"), "x86_64-linux");
        assert_eq!(code_target_of("pulley32"), "pulley32");
        let engine = |kind, fuel, target: Option<&str>| {
            Engine::new(EngineOptions {
                kind,
                fuel,
                target: target.map(str::to_string),
                ..EngineOptions::default()
            })
            .unwrap()
        };
        let host = engine(EngineKind::Cranelift, false, None);
        assert_eq!(
            host.code_target(),
            code_target_of(&target_lexicon::HOST.to_string())
        );
        let pulley = engine(EngineKind::Pulley, false, None);
        assert_eq!(pulley.code_target(), host_pulley_target());
        // Pulley bytecode is the same whether asked for as an engine or as a target.
        let pulley_target = engine(EngineKind::Cranelift, false, Some(host_pulley_target()));
        assert_eq!(pulley.code_settings(), pulley_target.code_settings());
        assert_eq!(pulley.code_target(), pulley_target.code_target());
        let fuel = engine(EngineKind::Cranelift, true, None);
        assert_ne!(host.code_settings(), fuel.code_settings());
        assert!(host.code_settings().contains(wasmtime_environ::VERSION));
        let bare = Engine::new(EngineOptions {
            epochs: false,
            ..EngineOptions::default()
        })
        .unwrap();
        assert_ne!(host.code_settings(), bare.code_settings());
        assert_eq!(
            bare.with_epochs().unwrap().code_settings(),
            host.code_settings()
        );
        assert!(bare.ensure_ticker().is_err());
    }
}
