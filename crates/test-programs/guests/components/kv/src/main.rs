//! Drives `wasi:keyvalue` and `wasi:config` from its arguments, for wedge's tests and
//! benchmarks. Prints results on stdout; an error from the host goes to stderr with exit
//! status 1.
//!
//! - `set KEY VALUE`, `get KEY` (prints the value or `(none)`), `delete KEY`,
//!   `incr KEY N` (prints the new value), `list` (one key per line)
//! - `fill N [BYTES]`: sets keys `k0`…`k{N-1}` (values of BYTES bytes, default 1),
//!   stopping at the first error
//! - `batch N`: sets `b0`…`b{N-1}` in one `set-many` (all or nothing)
//! - `config KEY`: prints the config value or `(none)`
//! - `bench-set N`, `bench-get N`: times N sets (each committed) or N gets of 64-byte
//!   values and prints `OPS/s`
//! - any command with `--bucket NAME` first uses that bucket instead of `""`

wit_bindgen::generate!({
    path: "../../../../../wit",
    world: "wedge:edge/imports",
    generate_all,
});

use std::process::ExitCode;
use std::time::Instant;
use wasi::keyvalue::{atomics, batch, store};

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut bucket_name = String::new();
    if args.first().map(String::as_str) == Some("--bucket") && args.len() >= 2 {
        bucket_name = args.remove(1);
        args.remove(0);
    }
    match run(&bucket_name, &args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(bucket_name: &str, args: &[String]) -> Result<(), String> {
    let arg = |i: usize| args.get(i).map(String::as_str).ok_or("missing argument");
    let number = |i: usize| -> Result<u64, String> {
        arg(i)?.parse().map_err(|_| format!("`{}` is not a number", args[i]))
    };
    if arg(0)? == "config" {
        let value = wasi::config::store::get(arg(1)?).map_err(|e| format!("{e:?}"))?;
        println!("{}", value.as_deref().unwrap_or("(none)"));
        return Ok(());
    }
    let bucket = store::open(bucket_name).map_err(show)?;
    match arg(0)? {
        "set" => bucket.set(arg(1)?, arg(2)?.as_bytes()).map_err(show)?,
        "get" => match bucket.get(arg(1)?).map_err(show)? {
            Some(v) => println!("{}", String::from_utf8_lossy(&v)),
            None => println!("(none)"),
        },
        "delete" => bucket.delete(arg(1)?).map_err(show)?,
        "incr" => println!("{}", atomics::increment(&bucket, arg(1)?, number(2)?).map_err(show)?),
        "list" => {
            let mut cursor = None;
            loop {
                let page = bucket.list_keys(cursor).map_err(show)?;
                for key in page.keys {
                    println!("{key}");
                }
                cursor = page.cursor;
                if cursor.is_none() {
                    break;
                }
            }
        }
        "fill" => {
            let size = if args.len() > 2 { number(2)? } else { 1 } as usize;
            for i in 0..number(1)? {
                bucket.set(&format!("k{i}"), &vec![b'x'; size]).map_err(|e| format!("at k{i}: {}", show(e)))?;
            }
        }
        "batch" => {
            let pairs: Vec<(String, Vec<u8>)> =
                (0..number(1)?).map(|i| (format!("b{i}"), b"v".to_vec())).collect();
            batch::set_many(&bucket, &pairs).map_err(show)?;
        }
        "bench-set" | "bench-get" => {
            let n = number(1)?;
            let value = [7u8; 64];
            if arg(0)? == "bench-get" {
                bucket.set("bench", &value).map_err(show)?;
            }
            let start = Instant::now();
            for i in 0..n {
                if arg(0)? == "bench-set" {
                    bucket.set(&format!("bench{}", i % 1000), &value).map_err(show)?;
                } else {
                    bucket.get("bench").map_err(show)?;
                }
            }
            println!("{:.0}/s", n as f64 / start.elapsed().as_secs_f64());
        }
        other => return Err(format!("unknown command `{other}`")),
    }
    Ok(())
}

fn show(e: store::Error) -> String {
    match e {
        store::Error::NoSuchStore => "no such store".into(),
        store::Error::AccessDenied => "access denied".into(),
        store::Error::Other(m) => m,
    }
}
