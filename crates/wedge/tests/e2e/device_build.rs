//! The device build: `wedge` without the compilers and WASI-NN's tract backend, one
//! binary that is also `wedged` (`--no-default-features --features multicall`, a link
//! named `wedged`), without the HTTP server, the component tooling or backtrace
//! details. It runs precompiled code only, says clearly what is missing for anything
//! else, and pulls the code images carry.
//!
//! Ignored in a plain `cargo test`, whose binaries have everything: `scripts/test.sh`
//! builds the device binaries into `target/device-build` and runs these with
//! `WEDGE_E2E_BIN_DIR` pointing there and `--ignored`.

use crate::common::{Env, TestDaemon, TestRegistry};
use std::path::Path;
use std::process::Command;
use wedge_runtime::{Engine, EngineOptions};
use wedge_test_programs::{c, p1};

/// The full `wedge` of this test build (with compilers): the build machine.
fn build_machine(env: &Env, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_wedge"))
        .args(args)
        .env("WEDGE_ROOT", env.root())
        .output()
        .expect("run the full wedge");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
#[ignore = "needs the device build (scripts/test.sh)"]
fn a_device_build_runs_precompiled_code_and_names_what_it_lacks() {
    let env = Env::new();
    let host = Engine::new(EngineOptions::default()).unwrap();
    env.wedge(&["run", p1::HELLO])
        .expect_code(125)
        .expect_one_line_error("built without a compiler")
        .expect_one_line_error(&format!("--precompile {}", host.compile_target()));
    env.wedge(&["compile", p1::HELLO])
        .expect_code(125)
        .expect_one_line_error("built without a compiler");
    env.wedge(&["run", "--engine", "winch", p1::HELLO])
        .expect_code(125)
        .expect_one_line_error("`winch` is a compiler");

    // Code compiled on a build machine runs.
    let cwasm = env.path("hello.cwasm");
    std::fs::write(&cwasm, host.precompile_file(Path::new(p1::HELLO)).unwrap()).unwrap();
    let run = env.wedge(&["run", &cwasm.to_string_lossy()]);
    run.expect_code(0);
    assert_eq!(run.stdout, "hello from wedge\n");

    // A model grant: no backend to load it with.
    let model = env.path("model.onnx");
    std::fs::write(&model, b"not loaded").unwrap();
    env.wedge(&[
        "run",
        "--nn-model",
        &format!("m={}", model.display()),
        &cwasm.to_string_lossy(),
    ])
    .expect_code(125)
    .expect_one_line_error("built without WASI-NN's tract backend");

    // No HTTP server.
    env.wedge(&["serve", &cwasm.to_string_lossy()])
        .expect_code(125)
        .expect_one_line_error("built without the HTTP server");

    // No build tools: a C module importing wedge's interfaces needs componentizing (and
    // then compiling) on a build machine, and images are built there.
    env.wedge(&["run", c::PUBLISHER])
        .expect_code(125)
        .expect_one_line_error("built without a compiler");
    let dir = crate::common::app_folder(&env, c::PUBLISHER, "publisher", "");
    env.wedge(&["build", "-t", "publisher:1", &dir.to_string_lossy()])
        .expect_code(125)
        .expect_one_line_error("build images on a build machine");
}

#[test]
#[ignore = "needs the device build (scripts/test.sh)"]
fn a_device_build_pulls_the_code_an_image_carries_and_its_daemon_runs_it() {
    let registry = TestRegistry::start(None);
    let reference = format!("{}/edge/hello:1", registry.host);
    let builder = Env::new();
    let dir = crate::common::app_folder(&builder, p1::HELLO, "hello", "");
    build_machine(
        &builder,
        &["build", "-t", &reference, &dir.to_string_lossy()],
    );
    let host = Engine::new(EngineOptions::default()).unwrap();
    build_machine(
        &builder,
        &["push", "--precompile", &host.compile_target(), &reference],
    );

    // Without precompiled code there is nothing it can run: the pull says so.
    let device = Env::new();
    device
        .wedge(&["pull", &reference])
        .expect_code(125)
        .expect_one_line_error("built without a compiler");
    let device = Env::new();
    device
        .wedge(&["pull", "--use-precompiled", &reference])
        .expect_code(0);
    let run = device.wedge(&["run", &reference]);
    run.expect_code(0);
    assert_eq!(run.stdout, "hello from wedge\n");

    // The same binary, called `wedged`, is the daemon.
    let env = Env::new();
    let daemon = TestDaemon::start(&env, &["--use-precompiled"]);
    daemon
        .wedge(&env, &["run", "-d", "--name", "hello", &reference])
        .expect_code(0);
    daemon.wedge(&env, &["wait", "hello"]).expect_code(0);
    assert_eq!(
        daemon.wedge(&env, &["logs", "hello"]).stdout,
        "hello from wedge\n"
    );
    // Its daemon serves no HTTP apps.
    daemon
        .wedge(&env, &["run", "-d", "-p", "127.0.0.1:0", &reference])
        .expect_code(125)
        .expect_one_line_error("built without the HTTP server");
}
