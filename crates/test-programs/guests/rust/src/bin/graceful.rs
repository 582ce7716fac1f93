//! Works in a loop (a line every 50 ms) and exports `wedge_stop`, the stop function
//! wedged calls on `wedge stop`: it reports how far the work got and returns.
use std::sync::atomic::{AtomicU64, Ordering};

static DONE: AtomicU64 = AtomicU64::new(0);

fn main() {
    loop {
        let n = DONE.fetch_add(1, Ordering::SeqCst) + 1;
        println!("working {n}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Called by wedged instead of waiting for `main` when the container is stopped.
#[unsafe(no_mangle)]
pub extern "C" fn wedge_stop() {
    println!("stopping after {} steps", DONE.load(Ordering::SeqCst));
}
