//! Kill, pause and resume of running guests through `Control`.

use std::path::Path;
use std::time::{Duration, Instant};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wedge_manifest::Grants;
use wedge_runtime::{App, Control, Engine, EngineOptions, Outcome, Policy, Prepared, Stdio};
use wedge_test_programs::{p1, p2};

fn prepared(wasm: &str) -> Prepared {
    let engine = Engine::new(EngineOptions::default()).unwrap();
    Prepared::new(&App::load(&engine, Path::new(wasm), None).unwrap()).unwrap()
}

fn policy(args: &[&str]) -> Policy {
    let argv = std::iter::once("app")
        .chain(args.iter().copied())
        .map(String::from)
        .collect();
    Policy::resolve(&Grants::default(), argv).unwrap()
}

fn streams(stdout: &MemoryOutputPipe) -> Stdio {
    Stdio::Streams {
        stdin: Box::new(tokio::io::empty()),
        stdout: Box::new(stdout.clone()),
        stderr: Box::new(MemoryOutputPipe::new(1 << 16)),
    }
}

fn ticks(out: &MemoryOutputPipe) -> usize {
    String::from_utf8_lossy(&out.contents()).lines().count()
}

/// Waits until the guest has printed at least `n` ticks (a minute at most: the machine
/// may be busy).
async fn ticks_reach(out: &MemoryOutputPipe, n: usize, wasm: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while ticks(out) < n {
        assert!(
            Instant::now() < deadline,
            "{wasm}: only {} ticks",
            ticks(out)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The tick count once it has not changed for 500 ms (a minute at most).
async fn steady_ticks(out: &MemoryOutputPipe) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = ticks(out);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = ticks(out);
        if now == last {
            return now;
        }
        assert!(Instant::now() < deadline, "the ticks never stopped");
        last = now;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_ends_a_busy_loop_and_a_sleeping_guest() {
    for (wasm, args) in [
        (p1::SPIN, &[][..]),
        (p2::SPIN, &[]),
        (p1::SLEEP, &["3600"]),
        (p2::SLEEP, &["3600"]),
    ] {
        let prepared = prepared(wasm);
        let control = Control::new();
        let killer = {
            let control = control.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                control.kill();
            })
        };
        let started = Instant::now();
        let outcome = prepared
            .run_controlled(&policy(args), Stdio::Null, &control)
            .await
            .unwrap();
        killer.await.unwrap();
        assert_eq!(outcome, Outcome::Killed, "{wasm}");
        assert_eq!(outcome.exit_code(), 137);
        // Without the kill both guests would run for an hour or more.
        assert!(started.elapsed() < Duration::from_secs(120), "{wasm}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_guest_code_and_resume_goes_on() {
    for wasm in [p1::TICKER, p2::TICKER] {
        let prepared = std::sync::Arc::new(prepared(wasm));
        let control = Control::new();
        let out = MemoryOutputPipe::new(1 << 20);
        let run = {
            let (prepared, control, stdio) = (prepared.clone(), control.clone(), streams(&out));
            tokio::spawn(
                async move { prepared.run_controlled(&policy(&[]), stdio, &control).await },
            )
        };
        ticks_reach(&out, 4, wasm).await;
        control.pause();
        // The pause takes effect at the next epoch check: wait until the count holds
        // still, then check that it stays still.
        let paused_at = steady_ticks(&out).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(ticks(&out), paused_at, "{wasm}: ticked while paused");
        control.resume();
        ticks_reach(&out, paused_at + 4, wasm).await;
        let text = String::from_utf8_lossy(&out.contents()).into_owned();
        assert!(
            text.contains(&format!("tick {paused_at}\n")),
            "count went on"
        );
        control.kill();
        assert_eq!(run.await.unwrap().unwrap(), Outcome::Killed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_paused_guest_ends() {
    let prepared = std::sync::Arc::new(prepared(p1::TICKER));
    let control = Control::new();
    let run = {
        let (prepared, control) = (prepared.clone(), control.clone());
        tokio::spawn(async move {
            prepared
                .run_controlled(&policy(&[]), Stdio::Null, &control)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    control.pause();
    tokio::time::sleep(Duration::from_millis(100)).await;
    control.kill();
    assert_eq!(run.await.unwrap().unwrap(), Outcome::Killed);
}
