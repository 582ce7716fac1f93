//! Broken files and bad flags: one clear line on stderr and the documented exit code,
//! never a panic.

use crate::common::{Env, write_file};
use wedge_test_programs::p1;

/// A corpus of files that are not runnable apps, with the exit code each must give.
fn corpus() -> Vec<(&'static str, Vec<u8>, i32, &'static str)> {
    let hello = std::fs::read(p1::HELLO).unwrap();
    let mut bad_section = hello.clone();
    bad_section[8] = 0x7f; // an unknown section id right after the header
    let mut flipped = hello.clone();
    let mid = flipped.len() / 2;
    for b in &mut flipped[mid..mid + 64] {
        *b = 0xff;
    }
    let unknown_import = wat::parse_str(
        r#"(module (import "env" "launch_missiles" (func)) (func (export "_start") call 0))"#,
    )
    .unwrap();
    let no_start = wat::parse_str(r#"(module (func (export "main")))"#).unwrap();
    let other_world =
        wat::parse_str(r#"(component (import "wasi:http/outgoing-handler@0.2.0" (instance (export "handle" (func)))))"#)
            .unwrap();
    let not_command = wat::parse_str("(component)").unwrap();
    vec![
        (
            "empty.wasm",
            Vec::new(),
            126,
            "is not a WebAssembly module or component",
        ),
        (
            "text.wasm",
            b"#!/bin/sh\necho hi\n".to_vec(),
            126,
            "is not a WebAssembly module or component",
        ),
        (
            "header-only.wasm",
            b"\0asm".to_vec(),
            126,
            "invalid WebAssembly",
        ),
        (
            "future-version.wasm",
            b"\0asm\x02\0\0\0".to_vec(),
            126,
            "invalid WebAssembly",
        ),
        (
            "truncated.wasm",
            hello[..hello.len() / 3].to_vec(),
            126,
            "invalid WebAssembly",
        ),
        ("bad-section.wasm", bad_section, 126, "invalid WebAssembly"),
        ("flipped.wasm", flipped, 126, "invalid WebAssembly"),
        (
            "unknown-import.wasm",
            unknown_import,
            126,
            "launch_missiles",
        ),
        ("no-start.wasm", no_start, 126, "exports no entry point"),
        (
            "other-world.wasm",
            other_world,
            126,
            "wasi:http/outgoing-handler",
        ),
        ("not-command.wasm", not_command, 126, "wasi:cli/command"),
        (
            "fake.cwasm",
            b"\x7fELF\x02\x01\x01\0garbage".to_vec(),
            126,
            "not a WebAssembly",
        ),
    ]
}

#[test]
fn broken_files_give_one_line_and_exit_126() {
    let env = Env::new();
    for (name, bytes, code, needle) in corpus() {
        let path = write_file(env.dir.path(), name, &bytes);
        let run = env.wedge(&["run", &path]);
        assert_eq!(run.code, code, "{name}: {}", run.stderr);
        run.expect_one_line_error(needle);
        // inspect refuses what cannot be parsed, without panicking either.
        let run = env.wedge(&["inspect", &path]);
        assert!(!run.stderr.contains("panicked"), "{name}: {}", run.stderr);
    }
}

#[test]
fn missing_files_and_bad_flags_exit_125() {
    let env = Env::new();
    env.wedge(&["run", "/nonexistent/app.wasm"])
        .expect_code(125)
        .expect_one_line_error("cannot read");
    let cases: &[(&[&str], &str)] = &[
        (&["run", "-m", "lots", p1::HELLO], "invalid size `lots`"),
        (
            &["run", "--timeout", "2 fortnights", p1::HELLO],
            "invalid duration",
        ),
        (&["run", "--fuel", "-5", p1::HELLO], "-5"),
        (
            &["run", "--allow-net", "127.0.0.1", p1::HELLO],
            "invalid network address",
        ),
        (
            &["run", "-e", "=x", p1::HELLO],
            "invalid environment variable",
        ),
        (&["run", "--no-such-flag", p1::HELLO], "--no-such-flag"),
        (&["frobnicate"], "frobnicate"),
        // A flag that needs another: the message names the missing one.
        (
            &["push", "--precompile-fuel", "localhost:5000/x:1"],
            "were not provided: --precompile <TARGET>",
        ),
        (
            &[
                "compile",
                p1::HELLO,
                "--target",
                "mips-unknown-nothing",
                "-o",
                "/tmp/x.cwasm",
            ],
            "target",
        ),
    ];
    for (args, needle) in cases {
        env.wedge(args)
            .expect_code(125)
            .expect_one_line_error(needle);
    }
}

#[test]
fn help_and_version_exit_0() {
    let env = Env::new();
    let run = env.wedge(&["--help"]);
    run.expect_code(0);
    assert!(run.stdout.contains("run"));
    let run = env.wedge(&["run", "--help"]);
    run.expect_code(0);
    assert!(run.stdout.contains("--allow-net"));
    env.wedge(&["--version"]).expect_code(0);
}
