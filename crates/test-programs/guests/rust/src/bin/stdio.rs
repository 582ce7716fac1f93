//! Copies stdin to stdout in upper case and writes a line to stderr.
use std::io::{Read, Write};

fn main() {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).expect("read stdin");
    std::io::stdout().write_all(input.to_uppercase().as_bytes()).expect("write stdout");
    eprintln!("stderr: {} bytes", input.len());
}
