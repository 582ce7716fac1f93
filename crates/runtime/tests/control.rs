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
        assert!(started.elapsed() < Duration::from_secs(5), "{wasm}");
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
        tokio::time::sleep(Duration::from_millis(300)).await;
        control.pause();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let paused_at = ticks(&out);
        assert!(
            paused_at > 3,
            "{wasm}: only {paused_at} ticks before the pause"
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(ticks(&out), paused_at, "{wasm}: ticked while paused");
        control.resume();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let resumed = ticks(&out);
        assert!(
            resumed > paused_at + 3,
            "{wasm}: {resumed} ticks after resume"
        );
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
