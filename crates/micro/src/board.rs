//! What the runtime needs of the board it runs on.

/// The board's services to apps: console, clocks, randomness, and a way to wait when
/// every app waits. One board is shared by every app on the device, for as long as the
/// program runs (a `&'static`); boards use memory-mapped registers or atomics, hence
/// `Sync`.
pub trait Board: Sync {
    /// Writes an app's standard output or error, or a line of the runtime's, to the
    /// console.
    fn console(&self, bytes: &[u8]);
    /// Nanoseconds since the board started (monotonic).
    fn monotonic_ns(&self) -> u64;
    /// Nanoseconds since the Unix epoch, as well as the board knows (counted from 0 at
    /// start without a real-time clock).
    fn realtime_ns(&self) -> u64;
    /// Fills `buf` with random bytes (the best source the board has).
    fn random(&self, buf: &mut [u8]);
    /// Waits for the next timer tick or interrupt: called when every app is waiting
    /// (sleeping), so the core can rest.
    fn idle(&self);
}
