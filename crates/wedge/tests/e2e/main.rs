//! wedge's end-to-end tests, one binary with a module per area (as wasmtime's
//! `tests/all`): each drives the real `wedge` and `wedged` binaries against real guest
//! programs (`wedge-test-programs`), a real registry, broker and clients on loopback.
//! Run one area with `cargo test -p wedge --test e2e -- daemon::`.

mod common;

mod bad_input;
mod cache_and_compile;
mod containerd;
mod cri;
mod daemon;
mod device_build;
mod guests;
mod images;
mod keyvalue;
mod manifest_and_inspect;
mod messaging;
mod micro;
mod nn;
mod precompiled;
mod registry;
mod run_guests;
mod sandbox;
mod serve;
