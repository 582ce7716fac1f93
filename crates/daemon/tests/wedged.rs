//! The `wedged` binary's command line. (Having an integration test also makes
//! `cargo test --workspace` build `target/*/wedged`, which wedge's end-to-end tests run.)

use std::process::Command;

#[test]
fn bad_flags_are_a_one_line_error_with_exit_code_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_wedged"))
        .arg("--no-such-flag")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: unexpected argument"), "{stderr}");
}

#[test]
fn help_names_the_daemon() {
    let out = Command::new(env!("CARGO_BIN_EXE_wedged"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--root"));
}
