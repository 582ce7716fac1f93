//! wedged benchmarks (issue figures), against a real daemon process built in release:
//!
//! 1. start latency: API request to the guest's entry point, for a precompiled image,
//!    p50 and p99 from the daemon's own histogram (interpolated within buckets, as
//!    Prometheus' `histogram_quantile` does); targets p50 <= 200 us, p99 <= 2 ms;
//! 2. throughput: create + start + wait + rm cycles of a hello app per second, from
//!    concurrent API clients on the same 2 cores; target >= 2,000/s;
//! 3. density: N sleeping guests in one daemon (default 10,000): daemon RSS per
//!    container (target <= 200 KiB) and the time `wedge ps` takes (target < 100 ms).
//!
//! `cargo build --release -p wedge-daemon && cargo bench -p wedge --bench daemon [--
//! STARTS CYCLE_SECONDS DENSITY]` (`wedged` is another package's binary: built first,
//! found beside `wedge`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use wedge_client::types::CreateRequest;
use wedge_client::{Client, Host};
use wedge_test_programs::p1;

struct Daemon {
    child: Child,
    client: Client,
    socket: PathBuf,
}

impl Daemon {
    fn start(root: &Path, extra: &[&str]) -> Daemon {
        let socket = root.join("wedged.sock");
        let child = Command::new(Path::new(env!("CARGO_BIN_EXE_wedge")).with_file_name("wedged"))
            .arg("--root")
            .arg(root)
            .arg("--socket")
            .arg(&socket)
            .args(extra)
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn wedged");
        let client = Client::new(Host::Unix(socket.clone()), None);
        let rt = runtime(1);
        let deadline = Instant::now() + Duration::from_secs(20);
        while rt.block_on(client.version()).is_err() {
            assert!(Instant::now() < deadline, "wedged did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Daemon {
            child,
            client,
            socket,
        }
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn runtime(threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Builds `bench/NAME:1` from `wasm` into the data root `root`.
fn build_image(root: &Path, name: &str, wasm: &str) -> String {
    let dir = root.join(format!("app-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(wasm, dir.join("app.wasm")).unwrap();
    std::fs::write(
        dir.join("wedge.toml"),
        format!("manifest_version = 1\n[app]\nname = \"{name}\"\nwasm = \"app.wasm\"\n"),
    )
    .unwrap();
    let image = format!("bench/{name}:1");
    let ok = Command::new(env!("CARGO_BIN_EXE_wedge"))
        .args(["--root"])
        .arg(root)
        .args(["build", "-t", &image])
        .arg(&dir)
        .output()
        .expect("wedge build")
        .status
        .success();
    assert!(ok, "wedge build failed");
    image
}

/// Quantile `q` of the daemon's start-latency histogram, by linear interpolation.
fn histogram_quantile(metrics: &str, q: f64) -> f64 {
    let buckets: Vec<(f64, f64)> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("wedge_container_start_latency_seconds_bucket{le=\""))
        .filter_map(|l| {
            let (le, count) = l.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.trim().parse().ok()?))
        })
        .collect();
    let total = buckets.last().map_or(0.0, |b| b.1);
    let rank = q * total;
    let mut prev = (0.0, 0.0);
    for &(le, count) in &buckets {
        if count >= rank {
            if le.is_infinite() {
                return prev.0;
            }
            let within = (rank - prev.1) / (count - prev.1).max(1.0);
            return prev.0 + (le - prev.0) * within;
        }
        prev = (le, count);
    }
    f64::NAN
}

/// Concurrent API clients in the throughput run (`WEDGE_BENCH_CLIENTS`, default 16).
static CLIENTS: std::sync::LazyLock<usize> = std::sync::LazyLock::new(|| {
    std::env::var("WEDGE_BENCH_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16)
});

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let starts = args.first().copied().unwrap_or(2000) as usize;
    let cycle_secs = args.get(1).copied().unwrap_or(5);
    let density = args.get(2).copied().unwrap_or(10_000) as usize;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let hello = build_image(&root, "hello", p1::HELLO);
    let sleep = build_image(&root, "sleep", p1::SLEEP);
    let rt = runtime(2);

    // 1. Start latency.
    {
        let d = Daemon::start(&root, &[]);
        let c = &d.client;
        let request = |name: String| CreateRequest {
            name: Some(name),
            image: hello.clone(),
            ..CreateRequest::default()
        };
        // Warm up: compile into the AOT cache and link once; its start is in the
        // histogram too, which thousands of starts do not notice.
        rt.block_on(async {
            c.create(&request("warm".into())).await.unwrap();
            c.start("warm").await.unwrap();
            c.wait("warm").await.unwrap();
        });
        let mut round_trips = Vec::with_capacity(starts);
        for i in 0..starts {
            let name = format!("s{i}");
            rt.block_on(c.create(&request(name.clone()))).unwrap();
            let t = Instant::now();
            rt.block_on(c.start(&name)).unwrap();
            round_trips.push(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(200));
        let metrics = rt.block_on(c.metrics()).unwrap();
        round_trips.sort();
        println!(
            "start latency (API request -> guest entry, {starts} starts of a precompiled image): p50 {:.0} us, p99 {:.0} us (daemon histogram); start request round trip p50 {:?}, p99 {:?}",
            histogram_quantile(&metrics, 0.50) * 1e6,
            histogram_quantile(&metrics, 0.99) * 1e6,
            percentile(&round_trips, 0.50),
            percentile(&round_trips, 0.99),
        );
    }

    // 2. Throughput of create + start + wait + rm.
    {
        let d = Daemon::start(&root, &[]);
        let client = Arc::new(d.client.clone());
        let cycles = Arc::new(AtomicU64::new(0));
        let until = Instant::now() + Duration::from_secs(cycle_secs);
        let hello = Arc::new(hello.clone());
        let started = Instant::now();
        rt.block_on(async {
            let mut tasks = Vec::new();
            for worker in 0..*CLIENTS {
                let (client, cycles, hello) = (client.clone(), cycles.clone(), hello.clone());
                tasks.push(tokio::spawn(async move {
                    let mut i = 0u64;
                    while Instant::now() < until {
                        let created = client
                            .create(&CreateRequest {
                                name: Some(format!("w{worker}-{i}")),
                                image: (*hello).clone(),
                                ..CreateRequest::default()
                            })
                            .await
                            .unwrap();
                        client.start(&created.id).await.unwrap();
                        let exit = client.wait(&created.id).await.unwrap();
                        assert_eq!(exit.exit_code, 0);
                        client.remove(&created.id, false).await.unwrap();
                        cycles.fetch_add(1, Ordering::Relaxed);
                        i += 1;
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        });
        let n = cycles.load(Ordering::Relaxed);
        println!(
            "throughput: {n} create+start+wait+rm cycles in {:.1} s = {:.0} cycles/s ({} concurrent clients, 2 cores shared with the daemon)",
            started.elapsed().as_secs_f64(),
            n as f64 / started.elapsed().as_secs_f64(),
            *CLIENTS
        );
    }

    // 3. Density.
    {
        let pool = density.to_string();
        let d = Daemon::start(&root, &["--pool-size", &pool]);
        let c = &d.client;
        let idle = d.rss_kib();
        let t = Instant::now();
        rt.block_on(async {
            for i in 0..density {
                let created = c
                    .create(&CreateRequest {
                        name: Some(format!("d{i}")),
                        image: sleep.clone(),
                        args: vec!["3600".into()],
                        ..CreateRequest::default()
                    })
                    .await
                    .unwrap();
                c.start(&created.id).await.unwrap();
            }
        });
        let took = t.elapsed();
        std::thread::sleep(Duration::from_secs(1));
        let running = rt.block_on(c.list(false)).unwrap().len();
        let rss = d.rss_kib();
        let mut ps_times = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            let out = Command::new(env!("CARGO_BIN_EXE_wedge"))
                .arg("-H")
                .arg(format!("unix://{}", d.socket.display()))
                .arg("ps")
                .output()
                .unwrap();
            assert!(out.status.success());
            ps_times.push(t.elapsed());
        }
        ps_times.sort();
        println!(
            "density: {running} sleeping guests running (created and started in {took:.1?}); daemon RSS {} MiB idle -> {} MiB = {:.0} KiB per container; `wedge ps` (table of {running}) median {:?}",
            idle / 1024,
            rss / 1024,
            (rss - idle) as f64 / running.max(1) as f64,
            ps_times[2],
        );
    }
}
