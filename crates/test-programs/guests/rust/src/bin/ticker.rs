//! Busy guest code that prints `tick N` every 20 ms of wall time, forever: while it is
//! paused the ticks stop, and they go on from the same count once it is resumed.
fn main() {
    let mut n: u64 = 0;
    let mut next = std::time::Instant::now();
    loop {
        if std::time::Instant::now() >= next {
            println!("tick {n}");
            n += 1;
            next = std::time::Instant::now() + std::time::Duration::from_millis(20);
        }
        std::hint::black_box(n);
    }
}
