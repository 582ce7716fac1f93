//! A hostile guest for the daemon's descriptors: `fdstarve DIR` opens `DIR/f` again
//! and again until the host refuses (its process out of descriptors), then writes a
//! line while it still holds them all, closes them, and writes a last line. Without
//! a per-instance cap the host's table is full when the first line is written.

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "/data".into());
    let path = format!("{dir}/f");
    std::fs::write(&path, b"x").expect("create the file");
    let mut held = Vec::new();
    let error = loop {
        match std::fs::File::open(&path) {
            Ok(f) => held.push(f),
            Err(e) => break e,
        }
        if held.len() >= 1 << 20 {
            break std::io::Error::other("a million files");
        }
    };
    println!("holding {} files ({error})", held.len());
    drop(held);
    println!("released");
}
