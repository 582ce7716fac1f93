//! The board a C firmware describes with function pointers ([`CBoard`]), as the
//! runtime's [`Board`].

use core::ffi::c_void;
use wedge_micro::Board;

/// `wedge_micro_board_t`: the firmware's services, each called with `ctx`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CBoard {
    /// Passed to every function below.
    pub ctx: *mut c_void,
    /// Writes bytes on the console.
    pub console: Option<unsafe extern "C" fn(*mut c_void, *const u8, usize)>,
    /// Nanoseconds since the board started.
    pub monotonic_ns: Option<unsafe extern "C" fn(*mut c_void) -> u64>,
    /// Nanoseconds since the Unix epoch, as well as the board knows.
    pub realtime_ns: Option<unsafe extern "C" fn(*mut c_void) -> u64>,
    /// Fills a buffer with random bytes.
    pub random: Option<unsafe extern "C" fn(*mut c_void, *mut u8, usize)>,
    /// Waits for the next tick or interrupt.
    pub idle: Option<unsafe extern "C" fn(*mut c_void)>,
}

/// A [`CBoard`] whose functions are all there.
pub struct Checked(CBoard);

impl Checked {
    /// `board`, unless one of its functions is missing.
    pub fn new(board: CBoard) -> Option<Checked> {
        let complete = board.console.is_some()
            && board.monotonic_ns.is_some()
            && board.realtime_ns.is_some()
            && board.random.is_some()
            && board.idle.is_some();
        complete.then_some(Checked(board))
    }
}

// SAFETY: the header's contract: the runtime, and so the board's functions, are used
// from one thread at a time, the one the firmware calls the runtime from.
unsafe impl Sync for Checked {}

// The `unwrap`s below cannot fail: `Checked::new` found every function there.
// SAFETY (each call): the firmware's functions, called with its own `ctx` and with
// pointers to buffers of the length given, as the header describes them.
impl Board for Checked {
    fn console(&self, bytes: &[u8]) {
        unsafe { self.0.console.unwrap()(self.0.ctx, bytes.as_ptr(), bytes.len()) }
    }

    fn monotonic_ns(&self) -> u64 {
        unsafe { self.0.monotonic_ns.unwrap()(self.0.ctx) }
    }

    fn realtime_ns(&self) -> u64 {
        unsafe { self.0.realtime_ns.unwrap()(self.0.ctx) }
    }

    fn random(&self, buf: &mut [u8]) {
        unsafe { self.0.random.unwrap()(self.0.ctx, buf.as_mut_ptr(), buf.len()) }
    }

    fn idle(&self) {
        unsafe { self.0.idle.unwrap()(self.0.ctx) }
    }
}
