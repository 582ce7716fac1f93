//! The shim binary's own command line. The shim under a real containerd is tested by
//! wedge's end-to-end tests (`crates/wedge/tests/e2e/containerd.rs`), which find this
//! binary beside `wedge`: by being here, this test makes `cargo test --workspace`
//! build it.

use std::process::Command;

const SHIM: &str = env!("CARGO_BIN_EXE_containerd-shim-wedge-v1");

#[test]
fn version_names_the_shim() {
    let output = Command::new(SHIM).arg("-v").output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("containerd-shim-wedge-v1 "), "{stdout}");
}

#[test]
fn outside_containerd_it_fails_with_one_line() {
    let output = Command::new(SHIM)
        .args([
            "-namespace",
            "default",
            "-id",
            "x",
            "-address",
            "/nonexistent",
            "start",
        ])
        .env_remove("TTRPC_ADDRESS")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn run_by_hand_it_says_what_it_is() {
    let output = Command::new(SHIM).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("io.containerd.wedge.v1"), "{stderr}");
}
