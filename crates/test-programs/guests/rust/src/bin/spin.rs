//! Loops forever without calling the host: only fuel or an epoch deadline stops it.
fn main() {
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}
