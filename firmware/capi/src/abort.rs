//! What a Rust panic in the runtime becomes: the firmware's `wedge_micro_abort`, given
//! the message (a bug in the runtime, or the C heap exhausted; never an app's doing).

use core::ffi::c_char;
use core::fmt::Write;

unsafe extern "C" {
    /// The firmware's: reports `message` (NUL-terminated) and stops or resets the
    /// device; must not return.
    fn wedge_micro_abort(message: *const c_char) -> !;
}

/// The most of a panic's message passed on.
const MESSAGE_MAX: usize = 160;

/// A message cut to fit, NUL-terminated.
struct Message {
    bytes: [u8; MESSAGE_MAX + 1],
    len: usize,
}

impl Write for Message {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let take = s.len().min(MESSAGE_MAX - self.len);
        self.bytes[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut message = Message {
        bytes: [0; MESSAGE_MAX + 1],
        len: 0,
    };
    let _ = write!(message, "wedge-micro: {}", info.message());
    message.bytes[message.len] = 0;
    // SAFETY: the firmware's function, given a NUL-terminated string.
    unsafe { wedge_micro_abort(message.bytes.as_ptr().cast()) }
}
