//! Steering a running guest from outside its task: kill, pause and resume, checked at
//! the guest's epoch checks (every engine tick) and while it waits in the host.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Notify;

/// A handle shared between a run and whoever manages it (the daemon). Cloning it gives
/// another handle to the same run.
#[derive(Clone, Default)]
pub struct Control {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    killed: AtomicBool,
    paused: AtomicBool,
    changed: Notify,
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
    pub(crate) async fn killed(&self) {
        self.until(Control::is_killed).await
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
