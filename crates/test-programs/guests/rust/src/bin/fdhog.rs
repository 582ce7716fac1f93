//! A hostile guest: opens the file at `PATH` (its first argument) again and again,
//! keeping every handle, until opening fails; prints `opened N files: ERROR`, then
//! holds them all for `SECS` seconds (its second argument, default 3600).
fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: fdhog PATH [SECS]");
    let secs: u64 = args.next().map_or(3600, |s| s.parse().expect("SECS"));
    let mut held = Vec::new();
    let error = loop {
        match std::fs::File::open(&path) {
            Ok(file) => held.push(file),
            Err(e) => break e,
        }
        if held.len() == 1_000_000 {
            break std::io::Error::other("a million files and counting");
        }
    };
    println!("opened {} files: {error}", held.len());
    std::thread::sleep(std::time::Duration::from_secs(secs));
    drop(held);
}
