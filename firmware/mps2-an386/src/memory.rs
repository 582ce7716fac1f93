//! The heap (the rest of the 1 MiB of RAM after the statics and the main stack) and
//! what the firmware reports of its RAM: statics, the heap's high-water mark, the main
//! stack's (measured by painting it at boot).

use core::alloc::{GlobalAlloc, Layout};
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicUsize, Ordering};
use embedded_alloc::LlffHeap;

/// Bytes of the heap: apps' memories, stores, code metadata, the fibers' stacks.
const HEAP_SIZE: usize = 896 * 1024;
/// What the paint marks the unused stack with.
const PAINT: u32 = 0xA5A5_A5A5;

static mut HEAP: [MaybeUninit<u8>; HEAP_SIZE] = [MaybeUninit::uninit(); HEAP_SIZE];

#[global_allocator]
static ALLOCATOR: Counting = Counting {
    heap: LlffHeap::empty(),
    used: AtomicUsize::new(0),
    peak: AtomicUsize::new(0),
};

/// The heap, counting the bytes allocated and their peak.
struct Counting {
    heap: LlffHeap,
    used: AtomicUsize,
    peak: AtomicUsize,
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { self.heap.alloc(layout) };
        if !ptr.is_null() {
            let used = self.used.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            self.peak.fetch_max(used, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { self.heap.dealloc(ptr, layout) };
        self.used.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

unsafe extern "C" {
    /// cortex-m-rt's symbols: the end of the statics, the top of the main stack.
    static __sheap: u32;
    static _stack_start: u32;
}

const RAM_START: usize = 0x2000_0000;

fn statics_end() -> usize {
    (&raw const __sheap) as usize
}

fn stack_top() -> usize {
    (&raw const _stack_start) as usize
}

/// Gives the heap its memory and paints the unused main stack.
pub fn init() {
    // SAFETY: called once, first thing; HEAP is used by nothing else.
    unsafe { ALLOCATOR.heap.init((&raw mut HEAP) as usize, HEAP_SIZE) };
    let sp = cortex_m::register::msp::read() as usize;
    let mut at = statics_end();
    // Leave what this function's frame may use below the stack pointer.
    while at + 256 < sp {
        // SAFETY: between the statics and the stack pointer: unused stack.
        unsafe { (at as *mut u32).write_volatile(PAINT) };
        at += 4;
    }
}

/// The RAM the firmware used, in bytes.
pub struct Ram {
    /// Statics, the heap's reservation left out.
    pub statics: usize,
    /// The most the heap held at once.
    pub heap_peak: usize,
    /// The deepest the main stack went.
    pub stack_peak: usize,
}

/// What the firmware used so far.
pub fn report() -> Ram {
    let mut at = statics_end();
    // SAFETY: reads the painted region, word by word, up to the first word used.
    while at < stack_top() && unsafe { (at as *const u32).read_volatile() } == PAINT {
        at += 4;
    }
    Ram {
        statics: statics_end() - RAM_START - HEAP_SIZE,
        heap_peak: ALLOCATOR.peak.load(Ordering::Relaxed),
        stack_peak: stack_top() - at,
    }
}
