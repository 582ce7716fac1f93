//! A hostile guest for the daemon's descriptors: `fdstarve DIR` waits for `DIR/go`
//! (so the test's own requests to the daemon are over), then opens `DIR/f` again and
//! again until the host refuses (its process out of descriptors) and a pause frees no
//! more, writes a line while it still holds them all, closes them, and writes a last
//! line. Without a per-instance cap the host's table is full when the first line is
//! written.

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "/data".into());
    let go = format!("{dir}/go");
    for _ in 0..6000 {
        if std::fs::exists(&go).unwrap_or(false) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let path = format!("{dir}/f");
    std::fs::write(&path, b"x").expect("create the file");
    let mut held = Vec::new();
    let open_all = |held: &mut Vec<std::fs::File>| loop {
        match std::fs::File::open(&path) {
            Ok(f) => held.push(f),
            Err(e) => break e,
        }
        if held.len() >= 1 << 20 {
            break std::io::Error::other("a million files");
        }
    };
    // Descriptors the host frees a little later (a request it is finishing) are taken
    // too: again after a pause, until a pause frees none.
    open_all(&mut held);
    let error = loop {
        let before = held.len();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let error = open_all(&mut held);
        if held.len() == before {
            break error;
        }
    };
    println!("holding {} files ({error})", held.len());
    drop(held);
    println!("released");
}
