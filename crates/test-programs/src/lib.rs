//! Guest programs for wedge's tests and benchmarks, compiled from the sources in
//! `guests/` by `build.rs`. Each constant is the path of one compiled `.wasm` file:
//! [`p1`] holds Rust guests as `wasm32-wasip1` core modules, [`p2`] the same guests as
//! `wasm32-wasip2` components, [`http`] the `wasi:http/proxy` components for
//! `wedge serve`, and [`c`] C guests built with clang-16 and wasi-libc.

include!(concat!(env!("OUT_DIR"), "/programs.rs"));
