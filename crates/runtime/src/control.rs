//! Steering a running guest from outside its task: kill, pause and resume, checked at
//! the guest's epoch checks (every engine tick) and while it waits in the host.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// A handle shared between a run and whoever manages it (the daemon). Cloning it gives
/// another handle to the same run.
#[derive(Clone, Default)]
pub struct Control {
    inner: Arc<Inner>,
}

struct Inner {
    killed: AtomicBool,
    stop: AtomicBool,
    paused: AtomicBool,
    changed: Notify,
    memory: AtomicU64,
    busy_ns: AtomicU64,
    /// `u64::MAX` until a metered run ends.
    fuel_used: AtomicU64,
    /// Called once, when the guest's entry point is about to run.
    on_entry: std::sync::Mutex<Option<EntryHook>>,
}

/// A function called when a run reaches the guest's entry point.
type EntryHook = Box<dyn FnOnce() + Send>;

impl Default for Inner {
    fn default() -> Self {
        Inner {
            killed: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            changed: Notify::new(),
            memory: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
            fuel_used: AtomicU64::new(u64::MAX),
            on_entry: std::sync::Mutex::new(None),
        }
    }
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("killed", &self.is_killed())
            .field("paused", &self.is_paused())
            .finish_non_exhaustive()
    }
}

impl Control {
    /// A handle for a run that has not started yet.
    pub fn new() -> Control {
        Control::default()
    }

    /// Ends the run at once: guest code traps at its next epoch check (within one engine
    /// tick) and a guest waiting in the host (a sleep, a read) is dropped. The run's
    /// outcome is [`crate::Outcome::Killed`].
    pub fn kill(&self) {
        self.inner.killed.store(true, Ordering::SeqCst);
        self.inner.changed.notify_waiters();
    }

    /// Asks the guest to stop. An app that exports a stop function
    /// ([`crate::STOP_EXPORT`]) has its main function abandoned (at its next epoch
    /// check, or at once when it waits in the host) and the stop function called in
    /// the same instance, with all its state; the run then ends as the stop function
    /// does. Other apps are not affected (closing their stdin is the caller's polite
    /// request).
    pub fn request_stop(&self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        self.inner.changed.notify_waiters();
    }

    /// Suspends guest code at its next epoch check, keeping its whole state, until
    /// [`Control::resume`] or [`Control::kill`].
    pub fn pause(&self) {
        self.inner.paused.store(true, Ordering::SeqCst);
        self.inner.changed.notify_waiters();
    }

    /// Lets a paused guest go on.
    pub fn resume(&self) {
        self.inner.paused.store(false, Ordering::SeqCst);
        self.inner.changed.notify_waiters();
    }

    /// Whether [`Control::kill`] was called.
    pub fn is_killed(&self) -> bool {
        self.inner.killed.load(Ordering::SeqCst)
    }

    /// Whether the guest is held paused.
    pub fn is_paused(&self) -> bool {
        self.inner.paused.load(Ordering::SeqCst)
    }

    /// Calls `hook` when the next run is instantiated and about to enter the guest's
    /// entry point (`_start`, `wasi:cli/run`): for start-latency figures.
    pub fn on_entry(&self, hook: impl FnOnce() + Send + 'static) {
        *self
            .inner
            .on_entry
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Box::new(hook));
    }

    /// Calls the [`Control::on_entry`] hook, if one is set: the runtime does it when a
    /// guest reaches its entry point; a server does it once it accepts requests.
    pub fn entered(&self) {
        let hook = self
            .inner
            .on_entry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(hook) = hook {
            hook();
        }
    }

    /// The guest's linear memory now, in bytes.
    pub fn memory_bytes(&self) -> u64 {
        self.inner.memory.load(Ordering::Relaxed)
    }

    /// Time the run has spent on a thread so far: guest code and host calls, not
    /// waits.
    pub fn busy_time(&self) -> Duration {
        Duration::from_nanos(self.inner.busy_ns.load(Ordering::Relaxed))
    }

    /// Fuel the run used, once a run with a fuel limit has ended.
    pub fn fuel_used(&self) -> Option<u64> {
        Some(self.inner.fuel_used.load(Ordering::Relaxed)).filter(|&f| f != u64::MAX)
    }

    pub(crate) fn set_memory(&self, bytes: u64) {
        self.inner.memory.store(bytes, Ordering::Relaxed);
    }

    pub(crate) fn add_busy(&self, time: Duration) {
        self.inner
            .busy_ns
            .fetch_add(time.as_nanos() as u64, Ordering::Relaxed);
    }

    pub(crate) fn set_fuel_used(&self, fuel: u64) {
        self.inner.fuel_used.store(fuel, Ordering::Relaxed);
    }

    /// Runs `future`, adding the time spent polling it to [`Control::busy_time`].
    pub(crate) async fn timed<F: Future>(&self, future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        std::future::poll_fn(|cx| {
            let started = std::time::Instant::now();
            let poll = future.as_mut().poll(cx);
            self.add_busy(started.elapsed());
            poll
        })
        .await
    }

    /// Completes once `done` holds, re-checking after every change.
    async fn until(&self, done: impl Fn(&Control) -> bool) {
        loop {
            let mut changed = std::pin::pin!(self.inner.changed.notified());
            changed.as_mut().enable();
            if done(self) {
                return;
            }
            changed.await;
        }
    }

    /// Completes when the run is killed.
    pub async fn killed(&self) {
        self.until(Control::is_killed).await
    }

    /// Completes when a stop is requested.
    pub async fn stop_requested(&self) {
        self.until(|c| c.inner.stop.load(Ordering::SeqCst)).await
    }

    /// Completes when the guest may run again: resumed or killed.
    pub(crate) async fn runnable(&self) {
        self.until(|c| c.is_killed() || !c.is_paused()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn waiters_wake_on_change() {
        let control = Control::new();
        control.pause();
        let waiter = {
            let c = control.clone();
            tokio::spawn(async move { c.runnable().await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        control.resume();
        waiter.await.unwrap();
        let killed = {
            let c = control.clone();
            tokio::spawn(async move { c.killed().await })
        };
        control.kill();
        killed.await.unwrap();
        assert!(control.is_killed());
    }
}
