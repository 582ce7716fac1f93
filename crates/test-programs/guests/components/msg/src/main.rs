//! Drives `wedge:edge/messaging` from its arguments, for wedge's tests and benchmarks.
//! Prints what it receives on stdout (`TOPIC PAYLOAD` per message); a host error goes
//! to stderr, and it and a receive timeout (`timeout` on stdout) exit with status 1
//! (a `wasi:cli` 0.2 component has no other failing status).
//!
//! - `pub TOPIC PAYLOAD [COUNT]`: publishes COUNT (default 1) times
//! - `pub-seq TOPIC N INTERVAL_MS`: publishes `0`…`N-1` at least once, one every
//!   INTERVAL_MS
//! - `sub FILTER COUNT [TIMEOUT_MS] [DELAY_MS]`: subscribes, prints `ready`, then prints
//!   COUNT messages, waiting up to TIMEOUT_MS (default 10000) for each and DELAY_MS
//!   after each (a slow subscriber); then `dropped N`
//! - `pub-acked TOPIC N ACK_FILTER EVERY`: publishes `0`…`N-1`, waiting for a message
//!   on ACK_FILTER after every EVERY of them (flow control with a consumer), then
//!   prints `published N`
//! - `ack-sub FILTER N ACK_TOPIC EVERY`: prints `ready`, receives N messages and
//!   publishes to ACK_TOPIC after every EVERY of them, then prints `received N dropped D`
//! - `flood FILTER TOPIC BYTES COUNT SUBS`: a hostile app: subscribes SUBS times to
//!   FILTER and never reads, publishes COUNT payloads of BYTES bytes to TOPIC, prints
//!   `published COUNT`, then holds its subscriptions until stopped
//! - `bench-pub TOPIC N [RATE]`: publishes N 64-byte payloads carrying the wall-clock
//!   time (as fast as it can, or RATE per second) and prints `published N/s`
//! - `bench-sub FILTER N`: prints `ready`, receives N messages in batches, then prints
//!   `received N/s dropped D p50 US p99 US` (delivery latency from the publish time)

wit_bindgen::generate!({
    path: "../../../../../wit",
    world: "wedge:edge/messaging-client",
    generate_all,
});

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wedge::edge::messaging;
use wedge::edge::types::{Error, Qos};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn ready() {
    println!("ready");
    let _ = std::io::stdout().flush();
}

fn run(args: &[String]) -> Result<u8, String> {
    let arg = |i: usize| args.get(i).map(String::as_str).ok_or("missing argument");
    let number = |i: usize, default: u64| -> Result<u64, String> {
        match args.get(i) {
            None => Ok(default),
            Some(s) => s.parse().map_err(|_| format!("`{s}` is not a number")),
        }
    };
    match arg(0)? {
        "pub" => {
            for _ in 0..number(3, 1)? {
                messaging::publish(arg(1)?, arg(2)?.as_bytes(), Qos::AtLeastOnce).map_err(show)?;
            }
        }
        "pub-seq" => {
            for i in 0..number(2, 1)? {
                messaging::publish(arg(1)?, i.to_string().as_bytes(), Qos::AtLeastOnce)
                    .map_err(show)?;
                std::thread::sleep(Duration::from_millis(number(3, 0)?));
            }
        }
        "sub" => {
            let sub = messaging::subscribe(arg(1)?).map_err(show)?;
            ready();
            let (timeout, delay) = (number(3, 10_000)? as u32, number(4, 0)?);
            for _ in 0..number(2, 1)? {
                match sub.receive(timeout).map_err(show)? {
                    Some(m) => println!("{} {}", m.topic, String::from_utf8_lossy(&m.payload)),
                    None => {
                        println!("timeout");
                        return Ok(1);
                    }
                }
                let _ = std::io::stdout().flush();
                if delay > 0 {
                    std::thread::sleep(Duration::from_millis(delay));
                }
            }
            println!("dropped {}", sub.dropped());
        }
        "pub-acked" => {
            let (n, every) = (number(2, 1)?, number(4, 1)?.max(1));
            let acks = messaging::subscribe(arg(3)?).map_err(show)?;
            for i in 0..n {
                messaging::publish(arg(1)?, i.to_string().as_bytes(), Qos::AtLeastOnce)
                    .map_err(show)?;
                if (i + 1) % every == 0 && acks.receive(60_000).map_err(show)?.is_none() {
                    println!("timeout waiting for an ack after {}", i + 1);
                    return Ok(1);
                }
            }
            println!("published {n}");
        }
        "ack-sub" => {
            let sub = messaging::subscribe(arg(1)?).map_err(show)?;
            ready();
            let (n, every) = (number(2, 1)?, number(4, 1)?.max(1));
            for i in 0..n {
                if sub.receive(60_000).map_err(show)?.is_none() {
                    println!("timeout after {i}");
                    return Ok(1);
                }
                if (i + 1) % every == 0 {
                    messaging::publish(arg(3)?, b"ack", Qos::AtLeastOnce).map_err(show)?;
                }
            }
            println!("received {n} dropped {}", sub.dropped());
        }
        "flood" => {
            let subs: Vec<_> = (0..number(5, 1)?)
                .map(|_| messaging::subscribe(arg(1)?).map_err(show))
                .collect::<Result<_, _>>()?;
            let payload = vec![b'x'; number(3, 1 << 20)? as usize];
            let count = number(4, 1024)?;
            for _ in 0..count {
                messaging::publish(arg(2)?, &payload, Qos::AtMostOnce).map_err(show)?;
            }
            println!("published {count}");
            let _ = std::io::stdout().flush();
            loop {
                std::thread::sleep(Duration::from_secs(3600));
                let _ = &subs;
            }
        }
        "bench-pub" => {
            let n = number(2, 100_000)?;
            let rate = number(3, 0)?;
            let start = Instant::now();
            let mut payload = [0u8; 64];
            for i in 0..n {
                if rate > 0 {
                    let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
                payload[..8].copy_from_slice(&now_us().to_le_bytes());
                messaging::publish(arg(1)?, &payload, Qos::AtMostOnce).map_err(show)?;
            }
            println!("published {:.0}/s", n as f64 / start.elapsed().as_secs_f64());
        }
        "bench-sub" => {
            let n = number(2, 100_000)? as usize;
            let sub = messaging::subscribe(arg(1)?).map_err(show)?;
            ready();
            let mut latencies = Vec::with_capacity(n);
            let mut start = None;
            while latencies.len() < n {
                let batch = sub.receive_many(1024, 10_000).map_err(show)?;
                if batch.is_empty() {
                    println!("timeout after {}", latencies.len());
                    return Ok(1);
                }
                start.get_or_insert_with(Instant::now);
                let now = now_us();
                for m in batch {
                    let sent = u64::from_le_bytes(m.payload[..8].try_into().unwrap_or_default());
                    latencies.push(now.saturating_sub(sent));
                }
            }
            let secs = start.map_or(1.0, |s| s.elapsed().as_secs_f64());
            latencies.sort_unstable();
            let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
            println!(
                "received {:.0}/s dropped {} p50 {} p99 {}",
                latencies.len() as f64 / secs,
                sub.dropped(),
                pct(0.5),
                pct(0.99)
            );
        }
        other => return Err(format!("unknown command `{other}`")),
    }
    Ok(0)
}

fn show(e: Error) -> String {
    match e {
        Error::PermissionDenied(m) => format!("permission denied: {m}"),
        Error::InvalidTopic(m) => format!("invalid topic: {m}"),
        Error::PayloadTooLarge(n) => format!("payload too large (limit {n})"),
        Error::LimitExceeded => "too many subscriptions".into(),
        Error::Other(m) => m,
    }
}
