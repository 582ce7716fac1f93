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
# Both binaries get the backend: `wedge run` loads models itself, `wedged` for `run -d`
# (`--test wedged` makes cargo rebuild the daemon binary with the feature).
ORT_DYLIB_PATH=$(bash scripts/onnxruntime.sh) cargo test --workspace --locked \
  --features wedge/onnxruntime,wedge-daemon/onnxruntime --test e2e --test wedged -- nn::
