#!/usr/bin/env bash
# Runs every test: installs prerequisites (scripts/setup.sh), then the whole workspace's
# unit, golden and end-to-end tests, then the WASI-NN tests again with the optional
# onnxruntime backend built in (its library from the PyPI wheel, scripts/onnxruntime.sh).
# The guest programs are compiled from source by crates/test-programs/build.rs.
# Formatting and lints are checked first (`cargo fmt --check`, clippy with warnings
# denied), as the development rules ask.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
ORT_DYLIB_PATH=$(bash scripts/onnxruntime.sh) cargo test -p wedge --features onnxruntime --locked --test e2e -- nn::
