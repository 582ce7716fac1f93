//! `wedge run` on real guests (Rust for wasip1 and wasip2, C): output, arguments,
//! stdio, exit codes, traps and limits.

use crate::common::{Env, assert_stopped_at_cap};
use wedge_test_programs::{c, p1, p2, wat};

#[test]
fn hello_runs_as_module_component_and_c() {
    let env = Env::new();
    for wasm in [p1::HELLO, p2::HELLO] {
        let run = env.wedge(&["run", wasm]);
        run.expect_code(0);
        assert_eq!(run.stdout, "hello from wedge\n");
    }
    let run = env.wedge(&["run", c::HELLO]);
    run.expect_code(0);
    assert_eq!(run.stdout, "hello from C on wedge\n");
}

#[test]
fn args_follow_the_app_and_env_is_only_what_is_granted() {
    let env = Env::new();
    for wasm in [p1::ARGS_ENV, p2::ARGS_ENV] {
        let run = env.wedge(&[
            "run",
            "-e",
            "LOG=debug",
            "-e",
            "WEDGE_TEST_SECRET",
            wasm,
            "--",
            "one",
            "--two",
        ]);
        run.expect_code(0);
        assert_eq!(
            run.stdout,
            "arg[0]=args_env.wasm\narg[1]=one\narg[2]=--two\nenv LOG=debug\nenv WEDGE_TEST_SECRET=host-only\n"
        );
        // Nothing from the host environment leaks in without a grant.
        let run = env.wedge(&["run", wasm, "x"]);
        run.expect_code(0);
        assert_eq!(run.stdout, "arg[0]=args_env.wasm\narg[1]=x\n");
    }
}

#[test]
fn stdin_stdout_and_stderr_pass_through() {
    let env = Env::new();
    for wasm in [p1::STDIO, p2::STDIO] {
        let run = env.wedge_with_stdin(&["run", wasm], b"quiet input\n");
        run.expect_code(0);
        assert_eq!(run.stdout, "QUIET INPUT\n");
        assert_eq!(run.stderr, "stderr: 12 bytes\n");
    }
}

#[test]
fn guest_exit_status_becomes_wedges() {
    let env = Env::new();
    env.wedge(&["run", p1::EXIT42]).expect_code(42);
    // WASI 0.2.6's `wasi:cli/exit.exit(result)`, which Rust's wasip2 std uses, carries
    // only success or failure: a non-zero status arrives as 1 (as with `wasmtime run`).
    env.wedge(&["run", p2::EXIT42]).expect_code(1);
}

#[test]
fn traps_exit_134_with_message_and_backtrace() {
    let env = Env::new();
    for wasm in [p1::TRAP, p2::TRAP] {
        let run = env.wedge(&["run", wasm]);
        run.expect_code(134);
        assert_eq!(run.stdout, "about to trap\n");
        assert!(
            run.stderr
                .starts_with("wedge: guest trapped: wasm trap: wasm `unreachable`"),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains("deliberately_unreachable"),
            "no backtrace: {}",
            run.stderr
        );
    }
}

#[test]
fn timeout_stops_a_spinning_guest_and_a_sleeping_one() {
    let env = Env::new();
    for wasm in [p1::SPIN, p2::SPIN, p1::SLEEP, p2::SLEEP] {
        let start = std::time::Instant::now();
        let run = env.wedge(&["run", "--timeout", "300ms", wasm]);
        run.expect_code(124)
            .expect_one_line_error("time limit of 300ms exceeded");
        assert!(
            start.elapsed() < std::time::Duration::from_secs(300),
            "{wasm} was not stopped in time"
        );
    }
    // A guest that finishes inside its limit is unaffected.
    env.wedge(&["run", "--timeout", "30s", p1::SLEEP, "0"])
        .expect_code(0);
}

#[test]
fn fuel_exhaustion_exits_124() {
    let env = Env::new();
    for wasm in [p1::SPIN, p2::SPIN] {
        env.wedge(&["run", "--fuel", "1000000", wasm])
            .expect_code(124)
            .expect_one_line_error("fuel exhausted (budget 1000000)");
    }
    let run = env.wedge(&["run", "--fuel", "50000000", p1::HELLO]);
    run.expect_code(0);
    assert_eq!(run.stdout, "hello from wedge\n");
}

#[test]
fn memory_cap_fails_growth_inside_the_guest() {
    let env = Env::new();
    for wasm in [p1::MEMHOG, p2::MEMHOG] {
        let run = env.wedge(&["run", "-m", "32MiB", wasm]);
        assert_stopped_at_cap(&run, 16, 32, "memory limit of 32MiB");
        // Under the cap, the same guest finishes.
        let run = env.wedge(&["run", "-m", "64MiB", wasm, "20"]);
        run.expect_code(0);
        assert!(run.stdout.ends_with("done: 20 MiB\n"), "{}", run.stdout);
    }
}

#[test]
fn tables_count_against_the_memory_cap() {
    let env = Env::new();
    // Ten tables of ten million elements each would take 800 MB of the host.
    let run = env.wedge(&["run", "-m", "1MiB", wat::TABLES]);
    run.expect_code(0);
    assert_eq!(run.stdout, "grew 00 of 10 tables\n");
    // The cap, not a fixed ceiling, decides: 100 MiB holds one such table.
    let run = env.wedge(&["run", "-m", "100MiB", wat::TABLES]);
    run.expect_code(0);
    assert_eq!(run.stdout, "grew 01 of 10 tables\n");

    // A table that starts that large is counted when the instance is made.
    let run = env.wedge(&["run", "-m", "1MiB", wat::BIG_TABLE]);
    assert_ne!(run.code, 0);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(run.stderr.contains("table minimum size"), "{}", run.stderr);
    let run = env.wedge(&["run", "-m", "100MiB", wat::BIG_TABLE]);
    run.expect_code(0);
    assert_eq!(run.stdout, "instantiated\n");
}

#[test]
fn a_wasi_reactor_runs_its_initializer_then_its_default_export() {
    let env = Env::new();
    let run = env.wedge(&["run", c::REACTOR]);
    run.expect_code(0);
    assert_eq!(run.stdout, "reactor initialized\n");
}

#[test]
fn every_engine_tier_runs_hello() {
    let env = Env::new();
    for engine in ["cranelift", "winch", "pulley"] {
        for wasm in [p1::HELLO, p2::HELLO] {
            let run = env.wedge(&["run", "--engine", engine, wasm]);
            run.expect_code(0);
            assert_eq!(run.stdout, "hello from wedge\n", "engine {engine}");
        }
    }
    env.wedge(&["run", "--engine", "turbo", p1::HELLO])
        .expect_code(125)
        .expect_one_line_error("unknown engine");
}
