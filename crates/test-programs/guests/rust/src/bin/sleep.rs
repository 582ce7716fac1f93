//! Sleeps in the host for `sleep SECONDS` (default 3600): a guest blocked outside Wasm code.
fn main() {
    let secs: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(3600);
    std::thread::sleep(std::time::Duration::from_secs(secs));
    println!("woke up");
}
