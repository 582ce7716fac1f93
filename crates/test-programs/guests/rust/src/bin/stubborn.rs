//! A hostile guest for `wedge stop -t <huge>`: sleeps, and when wedged calls its stop
//! function, says so and never returns, so only a kill ends it.

fn main() {
    println!("started");
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

/// Called by wedged on `wedge stop`: announces the stop and ignores it.
#[unsafe(no_mangle)]
pub extern "C" fn wedge_stop() {
    println!("ignoring the stop");
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
