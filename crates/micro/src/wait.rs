//! Waiting without threads: futures a host function awaits while its app waits (for a
//! deadline, a message, its turn), polled once per turn of the scheduler
//! ([`crate::Runtime`]), which rests the core while every app waits.

use crate::board::Board;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll};

/// Waits until `ready` gives a value (`Some`) or the board's monotonic clock reaches
/// `until` (`None`), the app marked as waiting meanwhile. `ready` is tried first, so a
/// deadline already past still takes what is there.
pub(crate) fn until<T>(
    board: &'static dyn Board,
    until: u64,
    waiting: &AtomicBool,
    ready: impl FnMut() -> Option<T> + Unpin,
) -> impl Future<Output = Option<T>> {
    Until {
        board,
        until,
        waiting,
        ready,
    }
}

struct Until<'a, F> {
    board: &'static dyn Board,
    until: u64,
    waiting: &'a AtomicBool,
    ready: F,
}

impl<T, F: FnMut() -> Option<T> + Unpin> Future for Until<'_, F> {
    type Output = Option<T>;

    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<T>> {
        let value = (self.ready)();
        let done = value.is_some() || self.board.monotonic_ns() >= self.until;
        self.waiting.store(!done, Ordering::Relaxed);
        if done {
            Poll::Ready(value)
        } else {
            Poll::Pending
        }
    }
}

/// Pending once: gives the other apps a turn.
pub(crate) struct YieldOnce(pub(crate) bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        Poll::Pending
    }
}
