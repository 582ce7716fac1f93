//! The engine settings shared by the host, which compiles apps for the device, and the
//! device, which loads them. wasmtime compares each of them when code is loaded and
//! refuses code compiled otherwise, so both sides call [`configure`] and nothing else
//! that changes a checked setting.

use wasmtime::{Config, Inlining, WasmBacktraceDetails, WasmFeatures};

/// The code target: the Pulley interpreter, 32-bit.
pub const TARGET: &str = "pulley32";

/// The wasmtime release code must come from (wasmtime checks it too).
pub const WASMTIME_VERSION: &str = "48.0.8";

/// Proposals left out of the device's engine: the runtime support they need is not in
/// the device build (GC, exceptions, threads, stack switching, components) or costs
/// code and RAM a microcontroller does not have (SIMD, 64-bit memories).
const LEFT_OUT: [WasmFeatures; 12] = [
    WasmFeatures::GC_TYPES,
    WasmFeatures::GC,
    WasmFeatures::EXCEPTIONS,
    WasmFeatures::THREADS,
    WasmFeatures::SHARED_EVERYTHING_THREADS,
    WasmFeatures::STACK_SWITCHING,
    WasmFeatures::COMPONENT_MODEL,
    WasmFeatures::CM_ASYNC,
    WasmFeatures::SIMD,
    WasmFeatures::RELAXED_SIMD,
    WasmFeatures::MEMORY64,
    WasmFeatures::WIDE_ARITHMETIC,
];

/// Sets every setting wasmtime checks when it loads code: target `pulley32`, memories
/// on the heap (no reservation, no guard pages, free to move when they grow), no
/// signals, fuel metering always compiled in (each app has a budget), no epochs (a
/// Cortex-M has no 64-bit atomics), no components.
pub fn configure(config: &mut Config) -> wasmtime::Result<()> {
    config.target(TARGET)?;
    config
        .signals_based_traps(false)
        .memory_reservation(0)
        .memory_guard_size(0)
        .guard_before_linear_memory(false)
        .memory_init_cow(false)
        .memory_may_move(true)
        .table_lazy_init(true)
        .consume_fuel(true)
        .epoch_interruption(false)
        .concurrency_support(false)
        .wasm_backtrace_details(WasmBacktraceDetails::Disable)
        .debug_symbols(false)
        .compiler_inlining(Inlining::No)
        .relaxed_simd_deterministic(false);
    for feature in LEFT_OUT {
        config.wasm_features(feature, false);
    }
    Ok(())
}

/// The device's own settings, which code does not depend on: small stacks and memories
/// allocated at their size (grown when the app asks).
pub fn configure_device(config: &mut Config) -> wasmtime::Result<()> {
    configure(config)?;
    config
        .max_wasm_stack(DEVICE_WASM_STACK)
        .async_stack_size(DEVICE_NATIVE_STACK)
        .memory_reservation_for_growth(0);
    Ok(())
}

/// The interpreter's stack per app, for the Wasm frames (wasmtime's default, 512 KiB,
/// is half the RAM).
pub const DEVICE_WASM_STACK: usize = 16 * 1024;

/// The native stack per app (a fiber's), for the interpreter's and host functions'
/// frames; wasmtime wants it no smaller than the Wasm stack.
pub const DEVICE_NATIVE_STACK: usize = 16 * 1024;

/// Compiles a core module for the device, on the host: `pulley32` code with the
/// settings of [`configure`], which the device's engine loads and any other refuses.
#[cfg(feature = "compile")]
pub fn precompile(wasm: &[u8]) -> wasmtime::Result<alloc::vec::Vec<u8>> {
    let mut config = Config::new();
    configure(&mut config)?;
    wasmtime::Engine::new(&config)?.precompile_module(wasm)
}
