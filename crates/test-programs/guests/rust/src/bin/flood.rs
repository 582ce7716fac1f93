//! Writes lines to stdout as fast as it can, forever: a guest that floods its log.
use std::io::Write;

fn main() {
    let mut out = std::io::stdout().lock();
    let mut n: u64 = 0;
    loop {
        let _ = writeln!(out, "flood line {n} ........................................................");
        n += 1;
    }
}
