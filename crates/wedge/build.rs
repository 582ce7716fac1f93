//! Links the crate's binaries as position-dependent executables on x86_64 Linux: `wedge`
//! here, and `containerd-shim-wedge-v1` (crates/shim uses this file as its build
//! script too).
//!
//! A PIE binary of this size (wasmtime + cranelift + winch) carries ~40,000 relative
//! relocations that the dynamic loader applies at every start, dirtying read-only data
//! pages as it goes; for a command that starts an app in about a millisecond, that is a
//! third of the time. A fixed-address executable has none. See bench/run-vs-wasmtime.sh.
//! The shim starts three times per container (`start`, its server, the container's
//! process).

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if os == "linux" && arch == "x86_64" {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
