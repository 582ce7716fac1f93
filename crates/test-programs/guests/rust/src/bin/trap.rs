//! Traps with `unreachable` inside a named function, for trap messages and backtraces.
#[inline(never)]
fn deliberately_unreachable(depth: u32) {
    if std::hint::black_box(depth) == 0 {
        core::arch::wasm32::unreachable();
    }
    deliberately_unreachable(depth - 1);
}

fn main() {
    println!("about to trap");
    deliberately_unreachable(2);
}
