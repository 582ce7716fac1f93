//! The scheduler: every app of the device on one core, each in its own store, run in
//! turns of [`crate::app::FUEL_SLICE`] fuel (or until it waits), started, stopped and
//! restarted by name.

use crate::app::{self, AppSpec, AppState, Device, Outcome, Restart, Run};
use crate::board::Board;
use crate::error::MicroError;
use crate::messaging::{self, Bus};
use crate::settings;
use crate::wasi;
use alloc::format;
use alloc::string::ToString;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll, Waker};
use wasmtime::{Config, Engine, InstancePre, Linker, Module};

/// The device's apps and the engine they run in.
pub struct Runtime {
    engine: Engine,
    device: Device,
    apps: Vec<Slot>,
}

/// One app: its code loaded and linked once, its current run if any.
struct Slot {
    spec: AppSpec,
    pre: InstancePre<AppState>,
    run: Option<Run>,
    waiting: Arc<AtomicBool>,
    restarts: u32,
    last: Option<Outcome>,
}

impl Runtime {
    /// A runtime for apps on `board`, with the engine settings shared with the host.
    pub fn new(board: &'static dyn Board) -> Result<Runtime, MicroError> {
        let mut config = Config::new();
        settings::configure_device(&mut config).map_err(|e| MicroError::Engine(e.to_string()))?;
        let engine = Engine::new(&config).map_err(|e| MicroError::Engine(e.to_string()))?;
        Ok(Runtime {
            engine,
            device: Device {
                board,
                bus: Arc::new(Bus::default()),
            },
            apps: Vec::new(),
        })
    }

    /// Loads `spec`'s code (refused unless it is this engine's: same wasmtime, target
    /// and settings) and links it; the app starts with [`Runtime::start`].
    pub fn add(&mut self, spec: AppSpec) -> Result<(), MicroError> {
        if self.slot(&spec.name).is_some() {
            return Err(MicroError::Link(format!(
                "two apps are named `{}`",
                spec.name
            )));
        }
        // SAFETY: wasmtime checks that the bytes are its code for this engine (version,
        // target, settings) before using them, and the slice lives as long as the
        // program ('static).
        let module = unsafe { Module::deserialize_raw(&self.engine, NonNull::from(spec.code)) }
            .map_err(|e| MicroError::Code(format!("{}: {e}", spec.name)))?;
        let link = |e: wasmtime::Error| MicroError::Link(format!("{}: {e}", spec.name));
        if module.get_export("_start").is_none() {
            return Err(MicroError::Link(format!(
                "{}: no `_start` to run",
                spec.name
            )));
        }
        let mut linker = Linker::new(&self.engine);
        wasi::add_to_linker(&mut linker, &module).map_err(link)?;
        messaging::add_to_linker(&mut linker).map_err(link)?;
        let pre = linker.instantiate_pre(&module).map_err(link)?;
        self.apps.push(Slot {
            spec,
            pre,
            run: None,
            waiting: Arc::new(AtomicBool::new(false)),
            restarts: 0,
            last: None,
        });
        Ok(())
    }

    /// Adds every app of `specs` ([`Runtime::add`]), or none of them: on the first
    /// refused, those added before it are taken out again.
    pub fn add_all(&mut self, specs: Vec<AppSpec>) -> Result<(), MicroError> {
        let before = self.apps.len();
        for spec in specs {
            if let Err(e) = self.add(spec) {
                self.apps.truncate(before);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Starts the app `name` (again, if it ended); false if there is none.
    pub fn start(&mut self, name: &str) -> bool {
        let Some(slot) = self.slot(name) else {
            return false;
        };
        let slot = &mut self.apps[slot];
        if slot.run.is_none() {
            slot.restarts = 0;
            slot.launch(&self.device);
        }
        true
    }

    /// Starts every app added.
    pub fn start_all(&mut self) {
        for slot in &mut self.apps {
            if slot.run.is_none() {
                slot.launch(&self.device);
            }
        }
    }

    /// Stops the app `name` where it is (its store and memory are freed); false if
    /// there is none.
    pub fn stop(&mut self, name: &str) -> bool {
        let Some(slot) = self.slot(name) else {
            return false;
        };
        let slot = &mut self.apps[slot];
        if slot.run.take().is_some() {
            Self::ended(&self.device, slot, Outcome::Stopped);
        }
        true
    }

    /// The names of the apps added, in the order they were added.
    pub fn apps(&self) -> impl Iterator<Item = &str> {
        self.apps.iter().map(|slot| slot.spec.name.as_str())
    }

    /// How the last run of the app `name` ended (None while it runs or before).
    pub fn outcome(&self, name: &str) -> Option<&Outcome> {
        self.apps[self.slot(name)?].last.as_ref()
    }

    /// Gives each running app one turn: until it yields (a slice of fuel spent), waits
    /// or ends. Apps that end are restarted as their [`Restart`] says. Returns whether
    /// any app still runs.
    pub fn step(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        for slot in &mut self.apps {
            let Some(run) = slot.run.as_mut() else {
                continue;
            };
            if let Poll::Ready(outcome) = run.as_mut().poll(&mut cx) {
                slot.run = None;
                Self::ended(&self.device, slot, outcome);
            }
        }
        self.apps.iter().any(|slot| slot.run.is_some())
    }

    /// Runs the apps until none runs: turn after turn, resting the core (the board's
    /// `idle`) while every app waits.
    pub fn run(&mut self) {
        while self.step() {
            let running = self.apps.iter().filter(|slot| slot.run.is_some());
            if running
                .clone()
                .all(|slot| slot.waiting.load(Ordering::Relaxed))
            {
                self.device.board.idle();
            }
        }
    }

    fn slot(&self, name: &str) -> Option<usize> {
        self.apps.iter().position(|slot| slot.spec.name == name)
    }

    /// Reports how a run ended on the console and restarts the app if it should be.
    fn ended(device: &Device, slot: &mut Slot, outcome: Outcome) {
        let board = device.board;
        let max = match slot.spec.restart {
            Restart::OnFailure { max } => max,
            Restart::Never => 0,
        };
        let restart = outcome.failed() && slot.restarts < max;
        let line = format!("wedge-micro: app `{}` {outcome}\n", slot.spec.name);
        board.console(line.as_bytes());
        slot.last = Some(outcome);
        if restart {
            slot.restarts += 1;
            let line = format!(
                "wedge-micro: restarting `{}` ({} of {max})\n",
                slot.spec.name, slot.restarts
            );
            board.console(line.as_bytes());
            slot.launch(device);
        }
    }
}

impl Slot {
    fn launch(&mut self, device: &Device) {
        self.last = None;
        self.waiting.store(false, Ordering::Relaxed);
        let engine = self.pre.module().engine();
        let run = app::launch(engine, &self.pre, &self.spec, device, self.waiting.clone());
        self.run = Some(run);
    }
}
