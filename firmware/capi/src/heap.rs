//! Rust's global allocator over the firmware's C heap (`malloc`, `realloc`, `free`):
//! the runtime's allocations (apps' memories, stores, fibers' stacks) come from the
//! same heap as the rest of the firmware's.

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_void;

unsafe extern "C" {
    fn malloc(size: usize) -> *mut c_void;
    fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void;
    fn free(ptr: *mut c_void);
}

/// The alignment `malloc` gives on 32-bit ARM (that of `max_align_t`, 8).
const MALLOC_ALIGN: usize = 8;

#[global_allocator]
static HEAP: CHeap = CHeap;

/// `malloc` and `free`; an allocation aligned more strictly than `malloc` aligns takes
/// `align` bytes more, the pointer `malloc` gave kept in the word before the one given.
struct CHeap;

unsafe impl GlobalAlloc for CHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MALLOC_ALIGN {
            // SAFETY: C's malloc, for a nonzero size (GlobalAlloc's contract).
            return unsafe { malloc(layout.size()) }.cast();
        }
        let Some(size) = layout.size().checked_add(layout.align()) else {
            return core::ptr::null_mut();
        };
        // SAFETY: as above.
        let raw: *mut u8 = unsafe { malloc(size) }.cast();
        if raw.is_null() {
            return raw;
        }
        // At least MALLOC_ALIGN bytes past `raw` (align > MALLOC_ALIGN), room for the
        // word that keeps `raw`, and `align` bytes before the end of the block.
        let offset = layout.align() - (raw as usize & (layout.align() - 1));
        // SAFETY: within the block malloc gave; the word before `aligned` is in it too,
        // and aligned for a pointer.
        unsafe {
            let aligned = raw.add(offset);
            aligned.cast::<*mut u8>().sub(1).write(raw);
            aligned
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` with this layout: from malloc itself, or with
        // malloc's pointer in the word before it.
        unsafe {
            if layout.align() <= MALLOC_ALIGN {
                free(ptr.cast());
            } else {
                free(ptr.cast::<*mut u8>().sub(1).read().cast());
            }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= MALLOC_ALIGN {
            // SAFETY: `ptr` came from malloc (as above); C's realloc keeps malloc's
            // alignment.
            return unsafe { realloc(ptr.cast(), new_size) }.cast();
        }
        // SAFETY: GlobalAlloc's contract: `new_size` is valid with this alignment.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a fresh block, the old one's bytes copied over, the old one freed.
        unsafe {
            let new = self.alloc(new_layout);
            if !new.is_null() {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}
