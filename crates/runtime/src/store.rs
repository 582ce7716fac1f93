//! One store set-up for every kind of run (a command, a push handler's message, an HTTP
//! request): the memory limiter, the fuel budget, and the epoch callback that enforces
//! the wall-clock limit, pause and kill.

use crate::limits::MemoryLimiter;
use crate::{Control, Engine, Policy};
use std::time::Instant;
use wasmtime::{Store, UpdateDeadline};

/// A store holding `state` under `policy`'s memory cap and fuel. At every epoch tick
/// (when the engine's ticker runs: with a time limit or a `control`) guest code yields
/// to the host; it is interrupted once `deadline` has passed or `control` is killed,
/// and waits while `control` is paused.
pub(crate) fn new<T: 'static>(
    engine: &Engine,
    state: T,
    policy: &Policy,
    deadline: Option<Instant>,
    control: Option<&Control>,
    limiter: fn(&mut T) -> &mut MemoryLimiter,
) -> wasmtime::Result<Store<T>> {
    let mut store = Store::new(engine.wasmtime(), state);
    store.limiter(move |s| limiter(s) as &mut dyn wasmtime::ResourceLimiter);
    if let Some(fuel) = policy.fuel {
        store.set_fuel(fuel)?;
    }
    let control = control.cloned();
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        let late = deadline.is_some_and(|at| Instant::now() >= at);
        let Some(control) = &control else {
            return Ok(if late {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Yield(1)
            });
        };
        Ok(if late || control.is_killed() {
            UpdateDeadline::Interrupt
        } else if control.is_paused() {
            let control = control.clone();
            UpdateDeadline::YieldCustom(1, Box::pin(async move { control.runnable().await }))
        } else {
            UpdateDeadline::Yield(1)
        })
    });
    Ok(store)
}
