//! wedge-micro's reference firmware for QEMU's MPS2 AN386 (a Cortex-M4): reads the
//! bundle QEMU loaded at [`BUNDLE`], checks its digests, runs its apps to their ends,
//! reports the RAM it used and exits through semihosting (0 when the bundle ran, 1 when
//! it was refused or the firmware failed).

#![no_std]
#![no_main]

mod board;
mod memory;

use board::Mps2;
use cortex_m_rt::entry;
use cortex_m_semihosting::debug::{self, EXIT_FAILURE, EXIT_SUCCESS};
use wedge_micro::{Board, MicroError, Runtime, bundle};

/// Where QEMU's `-device loader` puts the bundle: the upper half of SSRAM1.
const BUNDLE: usize = 0x0020_0000;
/// The most a bundle may take there.
const BUNDLE_MAX: usize = 0x0020_0000;

static BOARD: Mps2 = Mps2::new();

#[entry]
fn main() -> ! {
    memory::init();
    board::init();
    // SAFETY: QEMU maps SSRAM1 whole; what the loader did not fill reads as zeros, and
    // nothing writes there while the firmware runs.
    let bundle = unsafe { core::slice::from_raw_parts(BUNDLE as *const u8, BUNDLE_MAX) };
    let status = match run(bundle) {
        Ok(()) => EXIT_SUCCESS,
        Err(e) => {
            say(format_args!("{e}"));
            EXIT_FAILURE
        }
    };
    let ram = memory::report();
    say(format_args!(
        "RAM static {} B, heap peak {} B, stack peak {} B, in all {} B",
        ram.statics,
        ram.heap_peak,
        ram.stack_peak,
        ram.statics + ram.heap_peak + ram.stack_peak
    ));
    debug::exit(status);
    #[allow(clippy::empty_loop)]
    loop {}
}

/// Checks the bundle, then runs every app in it until all have ended.
fn run(bundle: &'static [u8]) -> Result<(), MicroError> {
    let start = BOARD.monotonic_ns();
    let apps = bundle::read(bundle)?;
    say(format_args!("bundle checked: {} apps", apps.len()));
    let mut runtime = Runtime::new(&BOARD)?;
    runtime.add_all(apps)?;
    let loaded = BOARD.monotonic_ns();
    runtime.start_all();
    runtime.run();
    let end = BOARD.monotonic_ns();
    // In virtual time: under `-icount shift=0`, one nanosecond per instruction.
    say(format_args!(
        "checked and loaded in {} us, ran in {} us",
        (loaded - start) / 1_000,
        (end - loaded) / 1_000
    ));
    Ok(())
}

/// Writes a line of the firmware's on the console.
fn say(args: core::fmt::Arguments<'_>) {
    let line = alloc::format!("wedge-micro: {args}\n");
    BOARD.console(line.as_bytes());
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    board::write_raw(b"wedge-micro: firmware panic: ");
    let mut out = board::RawWriter;
    let _ = core::fmt::write(&mut out, format_args!("{}\n", info.message()));
    debug::exit(EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}

extern crate alloc;
