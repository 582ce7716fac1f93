//! Guest programs for wedge's tests and benchmarks, compiled from the sources in
//! `guests/` by `build.rs`. Each constant is the path of one compiled `.wasm` file:
//! [`p1`] holds Rust guests as `wasm32-wasip1` core modules, [`p2`] the same guests as
//! `wasm32-wasip2` components, [`http`] the `wasi:http/proxy` components for
//! `wedge serve`, and [`c`] C guests built with clang-16 and wasi-libc.

include!(concat!(env!("OUT_DIR"), "/programs.rs"));

/// The ONNX models for WASI-NN tests and benchmarks, made by `scripts/nn-models.py`
/// (see `models/README.md`), and onnxruntime's outputs for their canonical inputs.
pub mod models {
    /// `image` f32 [1, 1, 28, 28] → `logits` f32 [1, 10], about 2 ms per inference.
    pub const CLASSIFIER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/models/classifier.onnx");
    /// `tokens` i64 [1, 16] → `embedding` f32 [1, 32].
    pub const EMBEDDER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/models/embedder.onnx");
    /// onnxruntime's outputs for the canonical inputs (JSON).
    pub const REFERENCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/models/reference.json");
}
