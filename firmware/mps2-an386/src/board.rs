//! The MPS2 AN386 as wedge-micro's [`Board`]: the console on UART0 (CMSDK), clocks from
//! SysTick at 1 kHz on the 25 MHz system clock, a pseudo-random generator (the board
//! has no entropy source), and `wfi` to rest.

use core::cell::Cell;
use core::sync::atomic::{AtomicU32, Ordering};
use cortex_m::interrupt::Mutex;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{SCB, SYST};
use cortex_m_rt::exception;
use wedge_micro::Board;

/// UART0's registers (ARM CMSDK APB UART).
const UART0: usize = 0x4000_4000;
const UART_DATA: usize = UART0;
const UART_STATE: usize = UART0 + 0x4;
const UART_CTRL: usize = UART0 + 0x8;
const UART_BAUDDIV: usize = UART0 + 0x10;
const UART_TX_FULL: u32 = 1;
const UART_TX_ENABLE: u32 = 1;

/// The system clock, and SysTick's reload for 1 ms ticks.
const SYSCLK_HZ: u32 = 25_000_000;
const RELOAD: u32 = SYSCLK_HZ / 1_000 - 1;
const NS_PER_CYCLE: u64 = 1_000_000_000 / SYSCLK_HZ as u64;

/// Milliseconds since boot, counted by the SysTick exception.
static TICKS: Mutex<Cell<u64>> = Mutex::new(Cell::new(0));

/// Turns on the UART's transmitter and the 1 kHz tick.
pub fn init() {
    // SAFETY: the UART's documented registers; nothing else drives them.
    unsafe {
        (UART_BAUDDIV as *mut u32).write_volatile(16);
        (UART_CTRL as *mut u32).write_volatile(UART_TX_ENABLE);
    }
    // SAFETY: the firmware's one user of SysTick, set up once before anything runs.
    let mut syst = unsafe { cortex_m::Peripherals::steal() }.SYST;
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(RELOAD);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

#[exception]
fn SysTick() {
    cortex_m::interrupt::free(|cs| {
        let ticks = TICKS.borrow(cs);
        ticks.set(ticks.get() + 1);
    });
}

/// Writes bytes on UART0, waiting while its transmit buffer is full.
pub fn write_raw(bytes: &[u8]) {
    for &byte in bytes {
        // SAFETY: the UART's documented registers.
        unsafe {
            while (UART_STATE as *const u32).read_volatile() & UART_TX_FULL != 0 {}
            (UART_DATA as *mut u32).write_volatile(byte as u32);
        }
    }
}

/// `core::fmt` onto UART0, for the panic handler.
pub struct RawWriter;

impl core::fmt::Write for RawWriter {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        write_raw(s.as_bytes());
        Ok(())
    }
}

/// The board: the registers above, and the generator's state.
pub struct Mps2 {
    rng: AtomicU32,
}

impl Mps2 {
    /// The board with its generator's fixed seed (QEMU runs are reproducible).
    pub const fn new() -> Mps2 {
        Mps2 {
            rng: AtomicU32::new(0x9E37_79B9),
        }
    }
}

impl Board for Mps2 {
    fn console(&self, bytes: &[u8]) {
        write_raw(bytes);
    }

    fn monotonic_ns(&self) -> u64 {
        cortex_m::interrupt::free(|cs| {
            let mut ticks = TICKS.borrow(cs).get();
            let mut current = SYST::get_current();
            // A tick that came since interrupts were masked: count it, and read the
            // counter again after its reload.
            if SCB::is_pendst_pending() {
                ticks += 1;
                current = SYST::get_current();
            }
            ticks * 1_000_000 + u64::from(RELOAD - current) * NS_PER_CYCLE
        })
    }

    fn realtime_ns(&self) -> u64 {
        // No real-time clock: time since boot.
        self.monotonic_ns()
    }

    fn random(&self, buf: &mut [u8]) {
        // xorshift32: not cryptographic; a real board would read its TRNG here.
        for byte in buf {
            let mut x = self.rng.load(Ordering::Relaxed);
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            self.rng.store(x, Ordering::Relaxed);
            *byte = x as u8;
        }
    }

    fn idle(&self) {
        cortex_m::asm::wfi();
    }
}
